"""Franka and ALOHA through the whole graph (sim, relay, policy and controller processes) and their real drivers'
interfaces as the sim emulates them: each arm's scripted expert succeeds from the sim's first placement, and
every command it streams stays within the URDF limits (the monitor, subscribed as the drivers do, counts
violations). No episode reset: a reset moves the simulated arm home at once, and the
controller's command follows it in one step, which is no command a real arm would get."""

import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from support import Probe, assert_no_violation, limit_monitor, record_diagnostics, start_graph, wait_for_nodes

from vla_ros.robots import load_robot

pytestmark = pytest.mark.integration


def _succeeds(probe: Probe, timeout: float) -> bool:
    try:
        probe.wait_for(lambda: any(r.msg.data for r in probe.messages("/sim/task_success")), timeout, "success")
        return True
    except AssertionError:
        return False


def test_the_aloha_graph_hands_the_cube_over_from_per_arm_joint_states(ros, tmp_path):
    """Each follower is an emulated xs_sdk: JointGroupCommand / JointSingleCommand in, joint states out
    (unprefixed, per arm); the relay merges them; the right arm picks the cube up and the left one ends up holding
    it. Commands reach each follower at ALOHA's 50 Hz."""
    robot = load_robot("aloha")
    probe = Probe("aloha_probe")
    record_diagnostics(probe)
    probe.record("/sim/task_success", Bool, 10)
    for topic in ("/follower_left/joint_states", "/follower_right/joint_states", "/joint_states"):
        probe.record(topic, JointState, 20)
    monitor = limit_monitor(probe, robot, driver="")  # the followers' streams at the preset's 50 Hz
    graph = start_graph(tmp_path, robot="aloha", driver="preset",
                        params={"sim_node": {"seed": 5}, "policy_node": {"instruction": "transfer the red cube"}})
    try:
        wait_for_nodes(probe, graph, ["sim_node", "joint_state_relay", "policy_node", "controller_node"])
        assert _succeeds(probe, 40.0), graph.log_path.read_text()[-3000:]
        arm = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper",
               "left_finger", "right_finger"]
        for side in ("left", "right"):
            assert list(probe.messages(f"/follower_{side}/joint_states")[-1].msg.name) == arm
        merged = probe.messages("/joint_states")[-1].msg
        assert set(merged.name) == {f"{side}_{j}" for side in ("left", "right") for j in arm}
        running = monitor.now()  # the rate is the running graph's, not its stop's (braking, late arrivals)
    finally:
        code = graph.stop()
        probe.close()
    assert_no_violation(monitor, 200)  # (~8 s at 50 Hz per follower)
    assert 45.0 <= monitor.rate(running - 4.0, running) <= 52.0, monitor.rate(running - 4.0, running)
    assert monitor.counts["follower_left/gripper"] > 0 and monitor.counts["follower_right/gripper"] > 0
    assert code == 0, graph.log_path.read_text()[-3000:]


def test_the_franka_picks_through_its_trajectory_controller_and_gripper_actions(ros, tmp_path):
    """The arm's JTC windows stay within the limits; the hand closes and opens by franka_gripper goals."""
    robot = load_robot("franka")
    probe = Probe("franka_limits_probe")
    record_diagnostics(probe)
    probe.record("/sim/task_success", Bool, 10)
    probe.record("/joint_states", JointState, 50)
    monitor = limit_monitor(probe, robot, driver="")
    graph = start_graph(tmp_path, robot="franka", driver="preset",
                        params={"sim_node": {"seed": 7}})  # (the sim judges its default target, the red cube)
    try:
        wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node"])
        assert _succeeds(probe, 40.0), graph.log_path.read_text()[-3000:]
        probe.wait_for(lambda: int(probe.diagnostics("controller_node")[-1].get("gripper_goals_succeeded", 0)) >= 1,
                       5.0, "a succeeded gripper goal")
        ctrl = probe.diagnostics("controller_node")[-1]
        assert ctrl["gripper_goals_failed"] == "0", ctrl
        names = probe.messages("/joint_states")[-1].msg.name
        assert {"fr3_finger_joint1", "fr3_finger_joint2"} <= set(names)
        t = probe.messages("/joint_states")[-1].source
        assert 27.0 <= len([m for m in probe.messages("/joint_states") if t - 2.0 <= m.source < t]) / 2.0 <= 33.0
    finally:
        code = graph.stop()
        probe.close()
    assert_no_violation(monitor, 500)  # (a pick takes ~4 s: ~1000 windows at 250 Hz)
    assert code == 0, graph.log_path.read_text()[-3000:]
