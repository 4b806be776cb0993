"""Bad input to the real nodes: a clear message once, a diagnostic, no crash, no unsafe command."""

import time

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray
from support import (
    FakeRobot,
    Probe,
    assert_no_violation,
    limit_monitor,
    record_diagnostics,
    start_graph,
    wait_for_nodes,
)
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from vla_ros.robots import load_robot
from vla_ros.ros.conversions import to_duration, to_time

pytestmark = pytest.mark.integration
ROBOT = load_robot("widowx")
JOINTS = ROBOT.action_joints
HOME = [0.0, -0.55, 0.45, 0.0, 1.3, 0.0, 0.03]


@pytest.fixture(scope="module")
def rig(ros, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_input")
    probe = Probe("bad_input_probe")
    record_diagnostics(probe)
    probe.record("/arm_controller/commands", Float64MultiArray, 500)
    probe.record("/gripper_controller/commands", Float64MultiArray, 500)
    monitor = limit_monitor(probe, ROBOT)  # every command of every test: within position and velocity limits
    robot = FakeRobot(probe, JOINTS, HOME)  # joint states at 100 Hz; ``mode`` changes what it sends
    # (the scripted expert reads no images: named explicitly, the camera is still subscribed and checked)
    cameras = {"image_keys": ["image_0"], "image_topics": ["/camera/image_raw"], "image_sizes": ["224x224"]}
    graph = start_graph(tmp, sim="none", params={"policy_node": cameras})
    try:
        wait_for_nodes(probe, graph, ["policy_node", "controller_node"])
        probe.wait_for(lambda: len(probe.messages("/arm_controller/commands")) > 20, 20, "controller commands")
        yield probe, robot, graph
    finally:
        robot.stop()
        code = graph.stop()
        probe.close()
        assert code == 0, graph.log_path.read_text()
    assert_no_violation(monitor, 2000)


def latest_diag(probe: Probe, node: str, since: float, predicate, timeout: float = 5.0) -> dict:
    found = {}

    def check() -> bool:
        for d in reversed(probe.diagnostics(node, since)):
            if predicate(d):
                found.update(d)
                return True
        return False

    probe.wait_for(check, timeout, f"a {node} diagnostic matching the condition")
    return found


def commands_since(probe: Probe, since: float) -> np.ndarray:
    return np.array([r.msg.data for r in probe.messages("/arm_controller/commands", since)])


def assert_within_limits(cmds: np.ndarray) -> None:
    limits = ROBOT.limits_for(JOINTS[:6])
    assert cmds.size and np.all(np.isfinite(cmds))
    assert np.all(cmds >= limits.lower - 1e-9) and np.all(cmds <= limits.upper + 1e-9)


def log_count(graph, node: str, text: str, wait: float = 3.0) -> int:
    """Log lines of ``node`` containing ``text`` (waiting up to ``wait`` s for the first to arrive)."""

    def count() -> int:
        lines = graph.log_path.read_text().splitlines()
        return sum(1 for line in lines if line.startswith(f"[{node}]") and text in line)

    deadline = time.monotonic() + wait
    while count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return count()


def send_image(probe: Probe, pub, encoding: str, width: int, height: int, step: int, size: int) -> None:
    msg = Image(encoding=encoding, width=width, height=height, step=step, data=bytes(size))
    msg.header.stamp = probe.get_clock().now().to_msg()
    pub.publish(msg)


def test_bad_images_are_reported_once_and_dropped(rig):
    probe, _, graph = rig
    pub = probe.create_publisher(Image, "/camera/image_raw", 10)
    since = probe.now()
    for _ in range(20):
        send_image(probe, pub, "16UC1", 224, 224, 448, 448 * 224)
        time.sleep(0.02)
    d = latest_diag(probe, "policy_node", since, lambda d: "unsupported image encoding" in d["_message"]
                    and int(d.get("problem_count.image:image_0:encoding", 0)) >= 15)
    assert d["_level"] == 1  # WARN
    assert log_count(graph, "policy_node", "unsupported image encoding '16UC1'") == 1
    for _ in range(5):
        send_image(probe, pub, "rgb8", 224, 224, 672, 1000)  # truncated data
        send_image(probe, pub, "rgb8", 320, 240, 960, 960 * 240)  # wrong size: resized
        time.sleep(0.02)
    d = latest_diag(probe, "policy_node", since, lambda d: "expected step*height" in d["_message"]
                    and "resizing with padding" in d["_message"])
    assert log_count(graph, "policy_node", "is 320x240, expected 224x224") == 1
    assert log_count(graph, "policy_node", "expected step*height") == 1
    assert not graph.failed()


def test_nan_and_missing_joints_hold_position(rig):
    probe, robot, graph = rig
    for mode, text in (("nan", "contain NaN/inf for ['elbow']"), ("missing", "lack joints ['elbow']")):
        since = probe.now()
        robot.mode = mode
        time.sleep(0.6)
        latest_diag(probe, "controller_node", since, lambda d, t=text: t in d["_message"]
                    and "joint states stale" in d["hold_reason"])
        cmds = commands_since(probe, since + 0.3)
        assert_within_limits(cmds)
        assert np.ptp(cmds, axis=0).max() == 0.0  # held still
        assert log_count(graph, "controller_node", text) == 1
        assert log_count(graph, "policy_node", text) == 1
        robot.mode = "ok"
        time.sleep(0.3)
    assert not graph.failed()


def chunk_msg(probe: Probe, names, times, rows, stamp: float | None = None) -> JointTrajectory:
    msg = JointTrajectory(joint_names=list(names))
    msg.header.stamp = to_time(probe.now() if stamp is None else stamp)
    for t, row in zip(times, rows):
        msg.points.append(JointTrajectoryPoint(positions=[float(v) for v in row], time_from_start=to_duration(t)))
    return msg


def test_bad_chunks_are_rejected_and_the_controller_keeps_streaming(rig):
    probe, _, graph = rig
    pub = probe.create_publisher(JointTrajectory, "/vla/action_chunk", 10)
    time.sleep(0.5)
    before = latest_diag(probe, "controller_node", probe.now() - 1.5, lambda d: True)
    since = probe.now()
    ok = [0.1, 0.2]
    bad = [
        (chunk_msg(probe, JOINTS, [], []), "chunk has no points"),
        (chunk_msg(probe, JOINTS, [0.2, 0.1], [HOME, HOME]), "not strictly increasing"),
        (chunk_msg(probe, JOINTS, ok, [HOME, [np.nan] * 7]), "NaN or infinite"),
        (chunk_msg(probe, ["elbow", "tail"], ok, [[0, 0], [0, 0]]), "unknown joints ['tail']"),
        (chunk_msg(probe, JOINTS, ok, [HOME, HOME], stamp=0.0), "stamp is zero"),
        (chunk_msg(probe, JOINTS, ok, [HOME, HOME], stamp=probe.now() - 30.0), "chunk is stale"),
    ]
    for msg, _ in bad:
        for _ in range(3):
            pub.publish(msg)
            time.sleep(0.03)
    d = latest_diag(probe, "controller_node", since,
                    lambda d: int(d["chunks_rejected"]) >= int(before["chunks_rejected"]) + 18)
    assert d["chunks_accepted"] == before["chunks_accepted"]
    for _, text in bad:
        assert log_count(graph, "controller_node", text) == 1, text
    cmds = commands_since(probe, since)
    assert_within_limits(cmds)
    assert len(cmds) > 0.8 * 200 * (probe.now() - since)  # still streaming at the control rate


def test_out_of_limit_targets_are_clamped(rig):
    probe, _, graph = rig
    pub = probe.create_publisher(JointTrajectory, "/vla/action_chunk", 10)
    target = list(HOME)
    target[1] = 3.0  # shoulder upper limit is 1.99 rad
    since = probe.now()
    for _ in range(14):
        pub.publish(chunk_msg(probe, JOINTS, 0.1 * np.arange(1, 11), [target] * 10))
        time.sleep(0.25)
    cmds = commands_since(probe, since)
    upper = ROBOT.limits_for(JOINTS[:6]).upper[1]
    assert_within_limits(cmds)
    assert cmds[-1, 1] == pytest.approx(upper, abs=1e-6)
    steps = np.abs(np.diff(cmds[:, 1]))
    assert steps.max() <= np.pi * 0.5 / 500 + 1e-9  # velocity limit x velocity_scale per 2 ms tick
    latest_diag(probe, "controller_node", since, lambda d: "outside position limits for ['shoulder']" in d["_message"])


def test_silent_joint_states_make_the_controller_hold(rig):
    probe, robot, graph = rig
    pub = probe.create_publisher(JointTrajectory, "/vla/action_chunk", 10)
    moving = list(HOME)
    moving[0] = 0.8
    pub.publish(chunk_msg(probe, JOINTS, 0.1 * np.arange(1, 11), [moving] * 10))
    time.sleep(0.2)
    robot.mode = "silent"
    since = probe.now()
    time.sleep(1.2)
    d = latest_diag(probe, "controller_node", since, lambda d: "joint states stale" in d["hold_reason"])
    cmds = commands_since(probe, since)
    waist = cmds[:, 0]
    assert np.ptp(commands_since(probe, since + 0.8), axis=0).max() < 1e-4  # at rest (< 0.25 mrad/s)
    assert waist[-1] < 0.8  # stopped short of the target, braking within the acceleration limit
    acc = np.diff(waist, 2) * 500**2
    assert np.abs(acc).max() <= ROBOT.limits_for(JOINTS).acceleration[0] + 1e-6
    assert d["_message"]
    robot.mode = "ok"
    time.sleep(0.3)
    assert not graph.failed()
