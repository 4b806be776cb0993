"""End-effector commands through the graph (the controller streams poses or twists, the sim follows them), and
the Franka picking through the graph."""

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, TwistStamped
from sensor_msgs.msg import JointState
from support import Probe, record_diagnostics, start_graph, wait_for_nodes

from vla_ros.core.transforms import quat_wxyz_to_matrix
from vla_ros.demo import DemoClient, run_episode
from vla_ros.robots import load_robot
from vla_ros.ros.conversions import to_sec

pytestmark = pytest.mark.integration


def _xs_types():
    from interbotix_xs_msgs.msg import JointGroupCommand, JointSingleCommand

    return JointGroupCommand, JointSingleCommand
ROBOT = load_robot("widowx")


@pytest.mark.parametrize("interface, topic, kind", [("ee_pose", "/servo_node/pose_target_cmds", PoseStamped),
                                                    ("ee_twist", "/servo_node/delta_twist_cmds", TwistStamped)])
def test_the_scripted_expert_picks_through_end_effector_commands(ros, tmp_path, interface, topic, kind):
    probe = Probe()
    record_diagnostics(probe)
    probe.record(topic, kind, 1000)
    probe.record("/vla/controller/state", JointState, 500)
    group, single = _xs_types()
    probe.record("/wx250s/commands/joint_group", group, 50)
    probe.record("/wx250s/commands/joint_single", single, 500)
    # (every control tick sent, so that each command meets the controller state of its stamp)
    graph = start_graph(tmp_path, output_interface=interface, driver="preset",
                        params={"controller_node": {"command_rate": 500.0}})
    try:
        wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node"])
        with probe.guest(DemoClient(ROBOT.action_joints, None, max_frames=0)) as client:
            episode = run_episode(client, 0, seed=11, timeout=25.0)
        assert episode.success, graph.log_path.read_text()[-3000:]
        assert not probe.messages("/wx250s/commands/joint_group"), "joint commands sent for the arm"
        assert len(probe.messages("/wx250s/commands/joint_single")) >= 2  # the gripper on its driver: open, close
        assert "switch the command type to" in graph.log_path.read_text()
        msgs = probe.messages(topic)
        assert len(msgs) > 500 and all(m.msg.header.frame_id == ROBOT.base_link for m in msgs)
        # each command is the tool pose / twist of the commanded joints at its stamp (controller state, 100 Hz)
        chain, arm = ROBOT.chain(), [ROBOT.action_joints.index(j) for j in ROBOT.chain().joint_names]
        states = {round(to_sec(s.msg.header.stamp), 6): s.msg for s in probe.messages("/vla/controller/state")}
        matched = 0
        for m in msgs:
            state = states.get(round(to_sec(m.msg.header.stamp), 6))
            if state is None:
                continue
            q, qdot = np.array(state.position)[arm], np.array(state.velocity)[arm]
            if kind is PoseStamped:
                o, p = m.msg.pose.orientation, m.msg.pose.position
                pose = chain.fk(q)
                np.testing.assert_allclose([p.x, p.y, p.z], pose[:3, 3], atol=1e-6)
                np.testing.assert_allclose(quat_wxyz_to_matrix([o.w, o.x, o.y, o.z]), pose[:3, :3], atol=1e-6)
            else:
                t = m.msg.twist
                expected = chain.jacobian(q) @ qdot
                np.testing.assert_allclose([t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y,
                                            t.angular.z], expected, atol=1e-6)
            matched += 1
        assert matched > 50
    finally:
        code = graph.stop()
        probe.close()
        assert code == 0, graph.log_path.read_text()[-3000:]


def test_the_franka_graph_picks_with_the_scripted_expert(ros, tmp_path):
    """FR3 + hand in the MuJoCo sim through the graph (joint trajectories for the arm, franka_gripper goals)."""
    robot = load_robot("franka")
    probe = Probe("franka_probe")
    record_diagnostics(probe)
    graph = start_graph(tmp_path, robot="franka", driver="preset")
    try:
        wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node"])
        with probe.guest(DemoClient(robot.action_joints, None, max_frames=0)) as client:
            episode = run_episode(client, 0, seed=3, timeout=25.0, instruction="pick up the green cube")
        assert episode.success, graph.log_path.read_text()[-3000:]
    finally:
        code = graph.stop()
        probe.close()
        assert code == 0, graph.log_path.read_text()[-3000:]
