"""Other ways to run the graph: JTC output, simulated time, compressed camera frames, and the pip launcher
command."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from std_msgs.msg import Float64MultiArray
from support import FakeRobot, Probe, preset_without_model, record_diagnostics, start_graph, wait_for_nodes
from trajectory_msgs.msg import JointTrajectory

from bench.ctrl_c import in_new_group, try_once
from vla_ros.paths import share_dir
from vla_ros.ros.conversions import to_sec

pytestmark = pytest.mark.integration
NODES = ["sim_node", "policy_node", "controller_node"]


def test_joint_trajectory_output_drives_the_sim(ros, tmp_path):
    probe = Probe("jtc_probe")
    record_diagnostics(probe)
    probe.record("/arm_controller/joint_trajectory", JointTrajectory, 200)
    graph = start_graph(tmp_path, params={"controller_node": {"output_interface": "joint_trajectory"}})
    try:
        wait_for_nodes(probe, graph, NODES)
        probe.wait_for(lambda: len(probe.messages("/arm_controller/joint_trajectory")) > 50, 20, "trajectories")
        msg = probe.messages("/arm_controller/joint_trajectory")[-1].msg
        assert to_sec(msg.header.stamp) == 0.0  # JTC: start on arrival
        times = [to_sec(p.time_from_start) for p in msg.points]
        np.testing.assert_allclose(times, 0.004 * np.arange(1, 6), atol=1e-9)  # 5 points, 2 ticks (500 Hz) apart
        assert all(len(p.velocities) == 6 for p in msg.points) and not any(msg.points[-1].velocities)
        sim = probe.diagnostics("sim_node")[-1]
        assert "rejected" not in sim["_message"]
        start = probe.now()
        probe.wait_for(lambda: float(probe.diagnostics("policy_node", start)[-1:][0]["published"]) > 8
                       if probe.diagnostics("policy_node", start) else False, 10, "chunks")
        # the publisher's rate over 3 s of its own send times and sequence numbers: neither the probe's backlog
        # on a loaded machine nor a message it lost changes it
        window = probe.now()
        time.sleep(3.0)
        got = [r for r in probe.messages("/arm_controller/joint_trajectory", window - 1.0) if r.source >= window]
        rate = (got[-1].seq - got[0].seq) / (got[-1].source - got[0].source)
        assert 200 < rate < 300, f"{rate:.1f} Hz"  # every second 500 Hz tick
        assert len(got) > 20 and got[-1].source - got[0].source > 2.0  # (however many a loaded probe missed)
    finally:
        code = graph.stop()
        probe.close()
    assert code == 0


def test_compressed_camera_frames_feed_the_policy(ros, tmp_path):
    """image_transport compressed: JPEG frames on <topic>/compressed, as a RealSense driver publishes them."""
    import io

    from PIL import Image

    from vla_ros.robots import load_robot

    robot = load_robot("widowx")
    probe = Probe("compressed_probe")
    record_diagnostics(probe)
    probe.record("/vla/action_chunk", JointTrajectory)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)).save(buf, "JPEG")
    fake = FakeRobot(probe, robot.action_joints, [0.0, -0.55, 0.45, 0.0, 1.3, 0.0, 0.03], camera_every=10,
                     jpeg=buf.getvalue())
    graph = start_graph(tmp_path, sim="none", policy="builtin",
                        params={"policy_node": {"image_transport": "compressed", "image_sizes": ["640x480"]}})
    try:
        wait_for_nodes(probe, graph, ["policy_node", "controller_node"])
        probe.wait_for(lambda: len(probe.messages("/vla/action_chunk")) >= 3, 30, "chunks from compressed frames")
        diag = probe.diagnostics("policy_node")[-1]
        assert "image" not in diag["_message"], diag["_message"]
    finally:
        fake.stop()
        code = graph.stop()
        probe.close()
    assert code == 0


def test_sim_time_stamps_and_clock(ros, tmp_path):
    probe = Probe("clock_probe")
    record_diagnostics(probe)
    probe.record("/clock", Clock, 200)
    probe.record("/vla/action_chunk", JointTrajectory)
    graph = start_graph(tmp_path, use_sim_time="true")
    try:
        wait_for_nodes(probe, graph, NODES)
        probe.wait_for(lambda: len(probe.messages("/vla/action_chunk")) >= 4, 20, "chunks in sim time")
        clock = [to_sec(r.msg.clock) for r in probe.messages("/clock")]
        assert clock[-1] < 600.0 and np.all(np.diff(clock) >= 0)  # simulated time starts at zero
        stamp = to_sec(probe.messages("/vla/action_chunk")[-1].msg.header.stamp)
        assert stamp < 600.0
        # (diagnostics come about once a second: the last one may predate the chunks counted above)
        probe.wait_for(lambda: int(probe.diagnostics("controller_node")[-1].get("chunks_accepted", 0)) >= 2, 10,
                       "the controller accepting sim-time chunks")
        log = graph.log_path.read_text()  # (a chunk that beats the first joint state is rightly rejected)
        assert "chunk is stale" not in log and "in the future" not in log, "sim-time stamps misread"
    finally:
        code = graph.stop()
        probe.close()
    assert code == 0


def _cli(*args, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "vla_ros", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, **kw)


def test_ctrl_c_of_the_launch_command_stops_every_node_cleanly(tmp_path):
    """As a terminal does it: SIGINT to the launcher's whole process group, twice (an impatient user)."""
    result = try_once("vla-ros launch", repeat=True)
    assert result["up"], result["output"]
    assert result["code"] == 0 and result["tracebacks"] == 0 and result["errors"] == 0, result["output"]
    out = result["output"]
    assert "[sim_node]" in out and "[policy_node]" in out and "[controller_node]" in out


@pytest.mark.parametrize("robot, policy", [("widowx", ""), ("franka", "scripted"), ("aloha", "scripted")])
def test_a_normal_start_of_each_presets_graph_logs_no_error(robot, policy):
    """15 s of each preset's graph (its default policy, or the scripted expert where no model is shipped): inputs
    and drivers that are still starting are awaited quietly."""
    proc = _cli("launch", f"robot:={robot}", *([f"policy:={policy}"] if policy else []), start_new_session=True)
    try:
        time.sleep(15.0)
        assert proc.poll() is None, proc.communicate()[0]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    errors = [line for line in out.splitlines() if "ERROR" in line or "Traceback" in line]
    assert errors == [], out
    assert "driver set-up" in out or robot == "franka", out  # (franka_ros2 takes no set-up)


def test_a_second_stop_signal_during_teardown_is_harmless():
    """Under ros2 launch a node gets Ctrl-C from the terminal and again from launch."""
    for _ in range(3):
        proc = in_new_group(["-m", "vla_ros.ros.entry", "controller_node"], dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            line = ""
            while "controller ready" not in line:
                line = proc.stdout.readline()
                assert line, "the node exited before it was ready"
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.02)
            os.killpg(proc.pid, signal.SIGINT)
            out, _ = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        assert proc.returncode == 0 and "Traceback" not in out, out


def test_a_killed_node_makes_the_launch_command_report_it_and_fail(ros):
    probe = Probe("crash_probe")
    record_diagnostics(probe)
    proc = _cli("launch", "robot:=widowx", "sim:=mujoco")
    try:
        probe.wait_for(lambda: all(probe.diagnostics(n) for n in NODES), 60, "diagnostics from the three nodes")
        pids = _our_node_pids()
        victim = next(pid for pid in pids if b"controller_node" in Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(victim, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        probe.close()
    assert proc.returncode == 1, out
    assert "[launcher] ERROR: controller_node exited with code -9; stopping the graph" in out, out


def test_launch_command_reports_bad_arguments_and_failing_nodes(tmp_path):
    proc = _cli("launch", "robot:=widowx", "sim:=bogus")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "sim must be one of ['mujoco', 'gazebo', 'none']" in out
    proc = _cli("launch", "robot:=widowx", "sim:=gazebo", "policy:=pi0")  # launch files, not vla-ros launch
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "use 'ros2 launch vla_ros policy.launch.py sim:=gazebo'" in out, out
    preset = yaml.safe_load((share_dir() / "config" / "robots" / "widowx.yaml").read_text())
    del preset["sim"], preset["task"]  # a robot nobody has simulated yet
    (tmp_path / "nosim.yaml").write_text(yaml.safe_dump({**preset, "name": "nosim"}))
    proc = _cli("launch", f"robot:={tmp_path / 'nosim.yaml'}", "sim:=mujoco")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "has no MuJoCo sim yet" in out and "use sim:=none" in out
    proc = _cli("launch", "robot:=widowx", "sim:=none", "policy:=scripted")  # it needs the sim's object poses
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "nothing publishes with sim:=none" in out and "policy:=pi0" in out
    # a robot/policy pair without what it needs: refused before any node starts, without a traceback
    proc = _cli("launch", f"robot:={preset_without_model(tmp_path)}")  # the default built-in policy, no model
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "no model is shipped for robot 'nomodel'" in out and "Traceback" not in out, out
    assert "[launcher]" not in out  # (no node was started)
    proc = _cli("launch", "sim:=none", "policy:=pi0")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2 and "set pi0.model_path" in out and "Traceback" not in out, out
    proc = _cli("launch", "robot:=nonexistent")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "unknown robot 'nonexistent'" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("controller_node:\n  ros__parameters:\n    interpolation: spline9\n")
    start = time.monotonic()
    proc = _cli("launch", f"params_file:={bad}")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0, out
    assert "interpolation='spline9' must be one of ['linear', 'cubic', 'quintic']" in out
    assert "ERROR: controller_node exited with code 1" in out and time.monotonic() - start < 60


def _our_node_pids() -> list[int]:
    """Node processes of this test run (same ROS_DOMAIN_ID), found through /proc."""
    mine = f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes()
            if b"vla_ros.ros." in cmd or b"vla_ros.sim." in cmd:
                if mine in (proc / "environ").read_bytes().split(b"\0"):
                    pids.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return pids


def test_launch_command_stops_its_nodes_on_sigterm(ros):
    probe = Probe("sigterm_probe")
    record_diagnostics(probe)
    proc = _cli("launch", "sim:=none", "policy:=openpi")  # no server: the policy node reports and waits
    try:
        probe.wait_for(lambda: all(probe.diagnostics(n) for n in ("policy_node", "controller_node")), 60,
                       "the nodes")
        assert len(_our_node_pids()) == 2
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        probe.close()
    deadline = time.monotonic() + 10
    while _our_node_pids() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _our_node_pids() == []


def test_nodes_bring_the_arm_to_rest_and_stop_when_the_launcher_is_killed(ros):
    """SIGKILL (the OOM killer, a closed terminal) leaves the launcher no chance to stop its nodes: they
    notice it is gone, the controller brakes the moving arm to rest, and every node exits."""
    probe = Probe("orphan_probe")
    probe.record("/arm_controller/commands", Float64MultiArray, QoSProfile(depth=2000))
    # (listening on every command topic: when the sim goes, the controller still has a driver to hold for, so its
    # stream ends with the hold, not with the last braking commands that a dying process may not deliver)
    probe.record("/gripper_controller/commands", Float64MultiArray, QoSProfile(depth=2000))
    proc = _cli("launch", "robot:=widowx", "sim:=mujoco", "driver:=ros2_control", start_new_session=True)
    try:
        def moving() -> bool:
            cmds = probe.messages("/arm_controller/commands")[-2:]
            return len(cmds) == 2 and np.abs(np.subtract(cmds[1].msg.data, cmds[0].msg.data)).max() > 2e-4
        probe.wait_for(moving, 90, "the arm moving under the built-in policy")
        assert len(_our_node_pids()) == 3
        os.kill(proc.pid, signal.SIGKILL)
        killed = probe.now()
        deadline = time.monotonic() + 5.0
        while _our_node_pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _our_node_pids()
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _our_node_pids():
            os.kill(pid, signal.SIGKILL)
        probe.close()
    assert left == [], "nodes still running 5 s after the launcher was killed"
    got = probe.messages("/arm_controller/commands", since=killed)
    after = np.array([r.msg.data for r in got])
    assert len(after) > 20, "the controller stopped streaming without bringing the arm to rest"
    # per 2 ms tick: a step across commands the probe missed is divided by the ticks between them (DDS sequence
    # numbers: a probe that misses messages reads several ticks' motion as one step)
    step = np.abs(np.diff(after, axis=0)).max(axis=1) / np.maximum(np.diff([r.seq for r in got]), 1)
    peak = int(np.argmax(step))  # (the nodes look for the launcher every 0.2 s; until then the plan runs)
    assert step[:3].max() > 1e-4 and peak < 250  # moving when the launcher died, braking within 0.5 s,
    assert np.all(step[peak:] <= 1.05 * step[peak])  # never speeding up again,
    assert step[-1] < 1e-5  # and at rest (< 5 mrad/s) when the stream ends


HANGING_TEARDOWN = """
import time
from rclpy.node import Node
from vla_ros.ros import node_main

class HangingTeardown(Node):
    def __init__(self):
        super().__init__("hanging_teardown")
        self.create_timer(0.05, lambda: print("spinning", flush=True))

    def destroy_node(self):  # stands in for the rclpy/DDS teardown hang seen about once in 40 stops
        time.sleep(60)

raise SystemExit(node_main.run(HangingTeardown))
"""


GIL_HOLDING_TEARDOWN = HANGING_TEARDOWN.replace(
    "time.sleep(60)", "import ctypes; ctypes.PyDLL(None).sleep(60)  # native, holding the GIL")


def test_a_teardown_hung_in_native_code_holding_the_gil_is_still_bounded():
    """No Python thread can run then: faulthandler's C watchdog dumps the stacks and a native timer ends the
    process with the node's own code (faulthandler alone would exit 1)."""
    from vla_ros.ros.node_main import TEARDOWN_TIMEOUT

    proc = subprocess.Popen([sys.executable, "-c", GIL_HOLDING_TEARDOWN], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "spinning"
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "Timeout" in err and "in destroy_node" in err, err
    assert 2 * TEARDOWN_TIMEOUT - 0.5 < took < 2 * TEARDOWN_TIMEOUT + 3.0


def test_a_hung_ros_teardown_does_not_keep_the_node_alive():
    from vla_ros.ros.node_main import TEARDOWN_TIMEOUT

    proc = subprocess.Popen([sys.executable, "-c", HANGING_TEARDOWN], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "spinning"
        start = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert TEARDOWN_TIMEOUT - 0.5 < took < TEARDOWN_TIMEOUT + 3.0
    assert "ROS teardown did not finish within 3 s" in err and "in destroy_node" in err


def test_ctrl_c_of_a_recording_stops_the_graph_keeps_finished_episodes_and_says_how_to_resume(tmp_path):
    out_dir = tmp_path / "demos"
    proc = _cli("record", "--episodes", "20", "--out", str(out_dir), start_new_session=True)
    deadline = time.monotonic() + 90
    while not (out_dir / "episode_000001").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)  # episode 0 is finished once episode 1 starts
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in out, out[-3000:]
    assert "interrupted; the graph was stopped" in out and "the same command resumes" in out
    assert "Traceback" not in (out_dir / "nodes.log").read_text()
    from vla_ros.learning.dataset import episode_dirs

    assert len(episode_dirs(out_dir)) >= 1  # the finished, successful episode is kept
