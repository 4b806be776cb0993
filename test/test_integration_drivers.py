"""The real drivers' interfaces through the graph: a probe subscribes exactly as each upstream driver does
(types, topics, QoS) while the sim plays the driver; with no driver, the controller holds and says so."""

import re
import time

import numpy as np
import pytest
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool
from support import Probe, record_diagnostics, start_graph, wait_for_nodes

from vla_ros.drivers.units import xs_gripper_command
from vla_ros.robots import load_robot

pytestmark = pytest.mark.integration
XS_QOS = QoSProfile(depth=10)  # xs_sdk's subscriptions: reliable, keep last 10
WIDOWX = load_robot("widowx")


def _xs_probe(name: str) -> Probe:
    """A probe subscribed to the WidowX's xs_sdk command topics exactly as xs_sdk subscribes, and /diagnostics."""
    from interbotix_xs_msgs.msg import JointGroupCommand, JointSingleCommand

    probe = Probe(name)
    record_diagnostics(probe)
    probe.record("/wx250s/commands/joint_group", JointGroupCommand, XS_QOS)
    probe.record("/wx250s/commands/joint_single", JointSingleCommand, XS_QOS)
    return probe


def _rate(msgs, start: float, end: float) -> float:
    sent = [m.source for m in msgs if start <= m.source < end]
    return len(sent) / (end - start)


def test_the_widowx_streams_to_the_emulated_xs_sdk_in_its_units_and_rate(ros, tmp_path):
    probe = _xs_probe("xs_probe")
    probe.record("/wx250s/joint_states", JointState, 50)
    probe.record("/sim/task_success", Bool, 10)
    probe.record("/vla/controller/state", JointState, 200)
    graph = start_graph(tmp_path, driver="preset", params={"sim_node": {"seed": 4}})
    try:
        wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node"])
        probe.wait_for(lambda: any(r.msg.data for r in probe.messages("/sim/task_success")), 40.0, "a pick")
        arm = probe.messages("/wx250s/commands/joint_group")
        assert {m.msg.name for m in arm} == {"arm"} and {len(m.msg.cmd) for m in arm} == {6}
        t0, t = arm[0].source, arm[-1].source
        assert t - t0 > 1.0 and 90.0 <= _rate(arm, t0 + 0.1, t) <= 105.0  # the preset's 100 Hz, not 500 Hz
        grips = probe.messages("/wx250s/commands/joint_single")
        assert grips and {m.msg.name for m in grips} == {"gripper"}
        # holding the cube: the last command is the commanded finger as the motor angle of the wx250s linkage
        time.sleep(0.3)
        finger = probe.messages("/vla/controller/state")[-1].msg.position[6]
        grips = probe.messages("/wx250s/commands/joint_single")
        assert grips[-1].msg.cmd == pytest.approx(xs_gripper_command(finger, WIDOWX.driver.interbotix.gripper),
                                                  abs=2e-4), finger
        # every command within the finger's range in motor radians: fully open (0.037 m) is
        # asin((0.037^2 + 0.014^2 - 0.024^2) / (2 * 0.014 * 0.037)) = asin(0.989 / 1.036) rad
        assert all(-0.38 < m.msg.cmd <= np.arcsin(0.989 / 1.036) + 1e-4 for m in grips)
        js = probe.messages("/wx250s/joint_states")[-1].msg
        assert list(js.name) == [*WIDOWX.arm_joints, "gripper", "left_finger", "right_finger"]
        assert js.position[8] == pytest.approx(-js.position[7])
        log = graph.log_path.read_text()
        for step in ("put group 'arm' in position mode with no profile", "put the gripper in current_based_position",
                     "Current_Limit to 200", "switch torque on"):
            assert step in log, log[-3000:]
        ctrl = probe.diagnostics("controller_node")[-1]
        assert ctrl["driver_setup"].startswith("done") and ctrl["_level"] < 2, ctrl
    finally:
        code = graph.stop()
        probe.close()
    assert code == 0, graph.log_path.read_text()[-3000:]


def test_without_the_set_up_the_emulated_widowx_crawls_as_the_real_one_would(ros, tmp_path):
    """driver_setup:=false leaves the bring-up's 2 s time profile on: each 100 Hz goal restarts it, and the arm
    hardly moves (with the set-up, the test above picks the cube in ~4 s)."""
    probe = Probe("crawl_probe")
    record_diagnostics(probe)
    probe.record("/wx250s/joint_states", JointState, 200)
    probe.record("/sim/task_success", Bool, 10)
    graph = start_graph(tmp_path, driver="preset", params={"controller_node": {"driver_setup": False},
                                                           "sim_node": {"seed": 4}})
    try:
        wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node"])
        time.sleep(6.0)
        meas = np.array([m.msg.position[:6] for m in probe.messages("/wx250s/joint_states")])
        assert np.abs(meas - meas[0]).max() < 0.05, np.abs(meas - meas[0]).max()
        assert not any(r.msg.data for r in probe.messages("/sim/task_success"))
    finally:
        code = graph.stop()
        probe.close()
    assert code == 0


def _log_time(line: str) -> float:
    return float(re.search(r"\[(\d+\.\d+)\]", line).group(1))


@pytest.mark.parametrize("robot, missing", [("franka", "/fr3_arm_controller/joint_trajectory (no subscriber)"),
                                            ("widowx", "/wx250s/set_operating_modes is not available")])
def test_with_no_driver_the_controller_holds_and_names_what_is_missing_within_2_s(ros, tmp_path, robot, missing):
    probe = Probe("nodriver_probe")
    record_diagnostics(probe)
    params = {"policy_node": {"chunk_dt": 1 / 15}} if robot == "franka" else None  # (the DROID layout's)
    graph = start_graph(tmp_path, robot=robot, sim="none", policy="openpi", driver="preset", params=params)
    try:
        wait_for_nodes(probe, graph, ["controller_node"])
        probe.wait_for(lambda: any(d["_level"] == 2 for d in probe.diagnostics("controller_node")), 10.0,
                       "an ERROR status")
        error = next(d for d in probe.diagnostics("controller_node") if d["_level"] == 2)
        assert missing in error["_message"] and "tracking" not in error["_message"], error
        if robot == "franka":
            assert "/franka_gripper/move (no action server)" in error["_message"]
        lines = graph.log_path.read_text().splitlines()
        ready = next(_log_time(x) for x in lines if "controller ready" in x)
        first_error = next(_log_time(x) for x in lines if "[ERROR]" in x and missing in x)
        assert 0.0 < first_error - ready <= 2.6, (first_error - ready)  # driver_timeout 2 s (+ a 0.1 s check)
    finally:
        graph.stop()
        probe.close()


def test_a_real_robot_gets_no_command_before_enable_and_then_starts_from_its_measured_pose(ros, tmp_path):
    """sim:=none: the probe is the xs_sdk (its services, joint states and command subscriptions)."""
    from interbotix_xs_msgs.srv import OperatingModes, RegisterValues, TorqueEnable

    probe = _xs_probe("xs_driver_probe")
    calls = []
    for name, kind in (("set_operating_modes", OperatingModes), ("set_motor_registers", RegisterValues),
                       ("torque_enable", TorqueEnable)):
        probe.create_service(kind, f"/wx250s/{name}", lambda req, resp, n=name: (calls.append((n, req)), resp)[1])
    pose = [0.1, -0.5, 0.4, 0.05, 1.2, -0.1]
    js = probe.create_publisher(JointState, "/wx250s/joint_states", 10)

    def publish() -> None:
        msg = JointState(name=[*WIDOWX.arm_joints, "gripper", "left_finger", "right_finger"],
                         position=[*pose, 1.0, 0.03, -0.03])
        msg.header.stamp = probe.get_clock().now().to_msg()
        js.publish(msg)

    timer = probe.create_timer(0.01, publish)
    graph = start_graph(tmp_path, sim="none", policy="openpi", driver="preset", enable="auto")
    try:
        wait_for_nodes(probe, graph, ["controller_node"])
        probe.wait_for(lambda: len(calls) >= 4, 10.0, "the set-up's service calls")
        modes = [r for n, r in calls if n == "set_operating_modes"]
        assert (modes[0].cmd_type, modes[0].name, modes[0].mode, modes[0].profile_type, modes[0].profile_velocity) \
            == ("group", "arm", "position", "velocity", 0)
        assert (modes[1].name, modes[1].mode) == ("gripper", "current_based_position")
        time.sleep(3.0)
        assert probe.messages("/wx250s/commands/joint_group") == []  # disabled: nothing sent
        assert probe.messages("/wx250s/commands/joint_single") == []
        assert "disabled" in probe.diagnostics("controller_node")[-1]["_message"]
        probe.call(SetBool, "/vla/controller/enable", SetBool.Request(data=True))
        probe.wait_for(lambda: len(probe.messages("/wx250s/commands/joint_group")) > 10, 5.0, "commands")
        first = probe.messages("/wx250s/commands/joint_group")[0].msg
        np.testing.assert_allclose(first.cmd, pose, atol=1e-5)  # from the measured pose (float32)
        assert probe.messages("/wx250s/commands/joint_single")[0].msg.cmd == pytest.approx(
            xs_gripper_command(0.03, WIDOWX.driver.interbotix.gripper), abs=1e-5)
    finally:
        probe.destroy_timer(timer)
        graph.stop()
        probe.close()


def test_a_failed_franka_gripper_goal_is_reported_on_diagnostics(ros, tmp_path):
    """A grasp whose epsilon excludes the cube it closes on fails (as franka_gripper's does): the controller
    reports it, and keeps running."""
    import yaml

    from vla_ros.robots import preset_path

    preset = yaml.safe_load(preset_path("franka").read_text())
    preset["driver"]["franka"]["epsilon"] = 0.001  # the cube (5 cm) stops the fingers far outside 0 +- 1 mm
    path = tmp_path / "franka_tight.yaml"
    path.write_text(yaml.safe_dump(preset))
    probe = Probe("franka_fail_probe")
    record_diagnostics(probe)
    graph = start_graph(tmp_path, robot=str(path), driver="preset", params={"sim_node": {"seed": 7}})
    try:
        wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node"])
        probe.wait_for(lambda: any(int(d.get("gripper_goals_failed", 0)) >= 1
                                   for d in probe.diagnostics("controller_node")), 40.0, "a failed gripper goal")
        failed = next(d for d in probe.diagnostics("controller_node") if int(d.get("gripper_goals_failed", 0)) >= 1)
        assert "franka_gripper goal to grasp" in failed["_message"] and failed["_level"] == 1, failed
        assert "grasp stopped at a gap of" in graph.log_path.read_text()
    finally:
        code = graph.stop()
        probe.close()
    assert code == 0
