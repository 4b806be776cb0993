"""The full graph as separate processes over DDS: sim, policy and controller nodes."""

import subprocess
import sys
import time

import numpy as np
import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import SetBool, Trigger
from support import Probe, record_diagnostics, start_graph, wait_for_nodes
from trajectory_msgs.msg import JointTrajectory

from vla_ros.demo import DemoClient, run_episode
from vla_ros.robots import load_robot
from vla_ros.ros.conversions import to_sec

pytestmark = pytest.mark.integration
ARM = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"]


@pytest.fixture(scope="module")
def graph(ros, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("graph")
    probe = Probe()
    record_diagnostics(probe)
    probe.record("/vla/action_chunk", JointTrajectory)
    probe.record("/arm_controller/commands", Float64MultiArray, 500)
    probe.record("/gripper_controller/commands", Float64MultiArray, 500)
    probe.record("/wx250s/joint_states", JointState, 200)
    probe.record("/camera/image_raw", Image, 10)
    probe.record("/vla/controller/state", JointState, 500)
    g = start_graph(tmp)
    try:
        wait_for_nodes(probe, g, ["sim_node", "policy_node", "controller_node"])
        probe.wait_for(lambda: len(probe.messages("/vla/action_chunk")) >= 3, 20, "three chunks")
        # Steady state: inferences slowed by the start-up load (up to 0.8 s seen on 2 cores) leave the
        # latency-aware trigger's estimate (p95 of the last 50) high, and it then rightly infers back to back.
        since = probe.now()
        probe.wait_for(lambda: any(float(d["latency_estimate_ms"]) < 100.0
                                   for d in probe.diagnostics("policy_node", since)), 30, "a steady inference latency")
        yield g, probe
    finally:
        code = g.stop()
        probe.close()
        assert code == 0, g.log_path.read_text()


def test_chunks_have_the_right_shape_and_capture_stamps(graph):
    _, probe = graph
    robot = load_robot("widowx")
    start = probe.now()
    probe.wait_for(lambda: len(probe.messages("/vla/action_chunk", start)) >= 5, 10.0, "five more chunks")
    every = [to_sec(r.msg.header.stamp) for r in probe.messages("/vla/action_chunk")]
    assert np.all(np.diff(every) > 0), "two chunks were inferred from the same inputs"
    chunks = probe.messages("/vla/action_chunk", start)[:5]
    for r in chunks:
        msg = r.msg
        assert list(msg.joint_names) == robot.action_joints
        assert len(msg.points) == 10
        times = [to_sec(p.time_from_start) for p in msg.points]
        np.testing.assert_allclose(times, 0.1 * np.arange(1, 11), atol=1e-6)
        assert all(len(p.positions) == 7 and np.all(np.isfinite(p.positions)) for p in msg.points)
        age = r.t - to_sec(msg.header.stamp)
        assert 0.0 < age < 0.5, f"stamp is the observation capture time: {age:.3f} s before arrival"
    stamps = [to_sec(r.msg.header.stamp) for r in chunks]
    # latency-aware: about one inference per execution horizon (0.3 s) less the latency estimate, which a loaded
    # machine raises (0.2 s seen in a full run: 0.08-0.1 s apart; back to back, the scripted policy's would be
    # ~0.01-0.02 s apart)
    assert np.median(np.diff(stamps)) > 0.06 and np.all(np.diff(stamps) > 0.04), np.diff(stamps)


def test_controller_publishes_at_its_rate(graph):
    g, probe = graph
    start = probe.now()
    time.sleep(3.0)
    # a 3 s window of the publisher's own send times (DDS source timestamps) once the probe has drained its
    # backlog (it takes several topics at 500 Hz in Python and lags on a loaded machine): its rate from the
    # sequence numbers is what the controller published; a message the probe lost does not change it
    end = start + 3.0
    probe.wait_for(lambda: any(r.source > end for r in probe.messages("/gripper_controller/commands", start)), 10,
                   "commands sent after the window")
    arm = [r for r in probe.messages("/arm_controller/commands", since=start - 1.0) if start <= r.source < end]
    grip = [r for r in probe.messages("/gripper_controller/commands", since=start - 1.0) if start <= r.source < end]
    sent = arm[-1].seq - arm[0].seq + 1
    rate = (arm[-1].seq - arm[0].seq) / (arm[-1].source - arm[0].source)
    assert 450.0 < rate < 550.0 and sent > 0.9 * 500 * 3.0, f"{rate:.1f} Hz, {sent} sent in 3 s"
    grip_rate = (grip[-1].seq - grip[0].seq) / (grip[-1].source - grip[0].source)
    assert abs(grip_rate - rate) < 0.02 * rate, f"gripper {grip_rate:.1f} Hz vs arm {rate:.1f} Hz"  # same ticks
    assert all(len(r.msg.data) == 6 for r in arm) and all(len(r.msg.data) == 1 for r in grip)
    diag = probe.diagnostics("controller_node", since=start)[-1]
    assert 490.0 < float(diag["rate_hz"]) < 510.0, {k: diag[k] for k in diag if "rate" in k or "period" in k
                                                     or k == "overruns"}
    assert float(diag["chunks_accepted"]) > 0
    # a chunk that beat the controller's first joint state is counted, not reported as an error (how many
    # depends on DDS discovery: 12 when the controller found the sim ~2.4 s after the policy did)
    assert diag["chunks_rejected"] == "0" and int(diag["chunks_before_state"]) >= 0
    # no errors, except a stale observation: a 2-core machine under load can stall the sim's publishing for
    # ~0.6 s (seen in CI), which the policy must report and skip (tested in test_integration_faults)
    errors = [line for line in g.log_path.read_text().splitlines() if "[ERROR]" in line and "stale (" not in line]
    assert not errors, errors


def test_simulated_arm_tracks_the_commands(graph):
    _, probe = graph
    start = probe.now()
    time.sleep(2.0)
    cmds = probe.messages("/arm_controller/commands", since=start)
    states = probe.messages("/wx250s/joint_states", since=start)
    assert len(states) > 150  # >= 100 Hz joint states
    stamps = np.array([to_sec(s.msg.header.stamp) for s in states])
    assert 90.0 < (len(stamps) - 1) / (stamps[-1] - stamps[0]) < 110.0  # 100 Hz, a loaded CI machine lags
    cmd_t = np.array([c.t for c in cmds])
    cmd_q = np.array([c.msg.data for c in cmds])
    errors = []
    for s in states:
        i = np.searchsorted(cmd_t, s.t) - 1
        if i < 0:
            continue
        index = {n: k for k, n in enumerate(s.msg.name)}
        measured = np.array([s.msg.position[index[n]] for n in ARM])
        errors.append(measured - cmd_q[i])
    rms = np.sqrt(np.mean(np.square(errors), axis=0))
    assert np.all(rms < 0.03), f"tracking RMS per joint {rms}"


def test_camera_frames(graph):
    _, probe = graph
    frames = probe.messages("/camera/image_raw")
    assert len(frames) >= 3
    msg = frames[-1].msg
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("rgb8", 224, 224, 672)
    assert msg.header.frame_id == "camera_optical_frame"
    stamps = [to_sec(f.msg.header.stamp) for f in frames[-3:]]
    assert np.all(np.diff(stamps) > 0.05)


def test_an_episode_succeeds_through_the_graph(graph):
    g, probe = graph
    robot = load_robot("widowx")
    with probe.guest(DemoClient(robot.action_joints, None, max_frames=0)) as client:
        episode = run_episode(client, 0, seed=11, timeout=20.0)
    assert episode.success, g.log_path.read_text()[-3000:]
    assert episode.duration < 15.0
    # the expert takes the cube across its faces: the jaws span its width (/sim/grasp_width, for eval)
    assert abs(episode.grasp_width - robot.task.cube_size) < 0.002, episode.grasp_width
    diag = probe.diagnostics("sim_node")[-1]
    assert diag["seed"] == "11"


def test_instruction_topic_and_parameter_change_at_run_time(graph):
    _, probe = graph
    pub = probe.create_publisher(String, "/vla/instruction", 10)
    probe.wait_for(lambda: pub.get_subscription_count() > 0, 10, "the instruction subscriber")
    pub.publish(String(data="pick up the blue cube"))
    since = probe.now()
    probe.wait_for(lambda: any(d["instruction"] == "pick up the blue cube"
                               for d in probe.diagnostics("policy_node", since)), 5, "the new instruction")
    value = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="pick up the red cube")
    result = probe.call(SetParameters, "/policy_node/set_parameters",
                        SetParameters.Request(parameters=[Parameter(name="instruction", value=value)]))
    assert result.results[0].successful
    bad = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=-1.0)
    result = probe.call(SetParameters, "/policy_node/set_parameters",
                        SetParameters.Request(parameters=[Parameter(name="inference_period", value=bad)]))
    assert not result.results[0].successful  # out of range
    since = probe.now()
    probe.wait_for(lambda: any(d["instruction"] == "pick up the red cube"
                               for d in probe.diagnostics("policy_node", since)), 5, "the parameter value")


def test_pause_stops_chunks_and_resume_restarts_them(graph):
    _, probe = graph
    assert probe.call(Trigger, "/vla/pause", Trigger.Request()).success
    paused_at = probe.now() + 0.3  # (an inference under way may still publish its chunk)
    time.sleep(1.3)
    assert probe.messages("/vla/action_chunk", paused_at, sent=True) == []
    assert probe.call(Trigger, "/vla/resume", Trigger.Request()).success
    resumed_at = probe.now()
    probe.wait_for(lambda: len(probe.messages("/vla/action_chunk", resumed_at)) >= 2, 5, "chunks after resume")


def _arm_steps(probe, since: float) -> np.ndarray:
    """Largest joint change between consecutive arm commands received since ``since``."""
    cmds = np.array([r.msg.data for r in probe.messages("/arm_controller/commands", since)]).reshape(-1, len(ARM))
    return np.abs(np.diff(cmds, axis=0)).max(axis=1) if len(cmds) > 1 else np.zeros(0)


def _wait_for_motion(probe, since: float, timeout: float, what: str) -> None:
    """Until the commanded arm speed (/vla/controller/state) exceeds 0.05 rad/s: the arm is moving now (a
    command stream can change by a reset's re-sync step, and the expert pauses while its gripper closes)."""
    def moving() -> bool:
        states = probe.messages("/vla/controller/state", since)
        return bool(states) and np.abs(states[-1].msg.velocity[:len(ARM)]).max() > 0.05
    probe.wait_for(moving, timeout, what)


def test_estop_and_pause_brake_to_rest_hold_and_resume_from_the_measured_state(graph):
    _, probe = graph
    latched = probe.create_publisher(Bool, "/vla/estop", QoSProfile(
        depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE))

    def start_moving() -> None:
        for service in ("/sim/reset", "/vla/controller/reset", "/vla/reset"):
            assert probe.call(Trigger, service, Trigger.Request()).success
            time.sleep(0.3 if service == "/sim/reset" else 0.0)
        _wait_for_motion(probe, probe.now(), 10, "motion")

    status_checked = False
    for engage, release in [
        (lambda: probe.call(SetBool, "/vla/controller/estop", SetBool.Request(data=True)),
         lambda: probe.call(SetBool, "/vla/controller/estop", SetBool.Request(data=False))),
        (lambda: probe.call(SetBool, "/vla/controller/pause", SetBool.Request(data=True)),
         lambda: probe.call(SetBool, "/vla/controller/pause", SetBool.Request(data=False))),
        (lambda: latched.publish(Bool(data=True)), lambda: latched.publish(Bool(data=False))),
    ]:
        start_moving()
        before = probe.now()
        engage()
        engaged = probe.now()  # (a service has answered: the halt is on; the topic lands within milliseconds)
        time.sleep(1.5)
        assert len(_arm_steps(probe, engaged)) > 300  # commands keep streaming (500 Hz): held, not abandoned
        assert _arm_steps(probe, engaged)[-100:].max() < 1e-9  # and, at the end, still
        # the commanded velocity (100 Hz on /vla/controller/state): moving, then braking, never speeding up
        # (by the controller's send times: a loaded machine can deliver a burst late, all after the window)
        states = probe.messages("/vla/controller/state", before, sent=True)
        speed = np.array([np.abs(r.msg.velocity[:len(ARM)]) for r in states])  # (N, joints)
        t = np.array([r.source for r in states])
        # each joint brakes on its own; its acceleration first ramps down within the jerk limit (8/400 s)
        braking = t > engaged + 0.15
        assert speed[~braking].max() > 0.02 and np.all(np.diff(speed[braking], axis=0) <= 1e-3)
        assert speed[-10:].max() < 1e-6
        probe.wait_for(lambda since=engaged + 1.0: probe.diagnostics("controller_node", since), 3,
                       "diagnostics while held")
        held = probe.diagnostics("controller_node", engaged + 1.0)[-1]
        assert held["hold_reason"] in ("e-stop", "paused") and int(held["chunks_while_halted"]) > 0
        if not status_checked:  # what a person sees: vla-ros status names the hold and its reason
            out = subprocess.run([sys.executable, "-m", "vla_ros", "status", "--wait", "5"], capture_output=True,
                                 text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            for text in ("controller_node: control: e-stop", "halts=e-stop", "policy_node", "sim_node", "rate_hz="):
                assert text in out.stdout, out.stdout
            status_checked = True
        released = probe.now()
        release()
        _wait_for_motion(probe, released, 5, "motion after the release")
    probe.destroy_publisher(latched)


def test_dry_run_plans_and_reports_but_sends_no_command(graph):
    _, probe = graph

    def set_dry_run(on: bool) -> None:
        value = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=on)
        result = probe.call(SetParameters, "/controller_node/set_parameters",
                            SetParameters.Request(parameters=[Parameter(name="dry_run", value=value)]))
        assert result.results[0].successful

    set_dry_run(True)
    try:
        since = probe.now() + 0.05  # (a tick under way may still send; later ones arrive late on a loaded
        time.sleep(1.25)            # machine: judged by their send time)
        assert probe.messages("/arm_controller/commands", since, sent=True) == []
        assert probe.messages("/gripper_controller/commands", since, sent=True) == []
        assert len(probe.messages("/vla/controller/state", since)) > 50  # still planning and reporting (100 Hz)
        assert probe.messages("/vla/action_chunk", since)
    finally:
        set_dry_run(False)
    since = probe.now()
    probe.wait_for(lambda: len(probe.messages("/arm_controller/commands", since)) > 100, 5, "commands again")
