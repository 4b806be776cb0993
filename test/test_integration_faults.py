"""Faults while the arm runs (real node processes over DDS): the policy node killed and started again,
camera and joint states stalling, the clock jumping under use_sim_time. In each the controller holds or
brings the arm to rest, runs again once the input is back, and a monitor of the command topics finds no
command outside the position or velocity limits."""

import re
import time

import numpy as np
import pytest
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
from trajectory_msgs.msg import JointTrajectory

from vla_ros.robots import load_robot

pytestmark = pytest.mark.integration
ROBOT = load_robot("widowx")
HOME = [0.0, -0.55, 0.45, 0.0, 1.3, 0.0, 0.03]
RATE = 500.0


def recent(probe: Probe, window: float) -> list:
    """The arm commands the controller sent (by its DDS source stamps) in the last ``window`` s it reached:
    a probe lagging on a loaded machine reads them late, not wrongly."""
    got = probe.messages("/arm_controller/commands", probe.now() - window - 2.0)
    return [r for r in got if r.source >= got[-1].source - window] if got else []


def at_rest(probe: Probe, window: float = 0.3) -> bool:
    """``window`` s of arm commands, no step over 1e-4 rad per 2 ms tick (0.05 rad/s; a moving arm takes
    ~5e-4) and no joint further than 1e-3 rad from where the window began. (A held command dithers by
    ~1e-5 when late joint states on a loaded machine switch the hold between braking and the last target.)
    Steps across commands the probe missed are divided by the ticks between them (sequence numbers)."""
    got = recent(probe, window)
    if len(got) < 10 or got[-1].source - got[0].source < 0.8 * window:
        return False
    ticks = np.maximum(np.diff([r.seq for r in got]), 1)
    q = np.array([r.msg.data for r in got])
    return (np.abs(np.diff(q, axis=0)).max(axis=1) / ticks).max() < 1e-4 and np.abs(q - q[0]).max() < 1e-3


def moving(probe: Probe, window: float = 0.2) -> bool:
    got = recent(probe, window)
    return len(got) > 10 and np.abs(np.asarray(got[-1].msg.data) - got[0].msg.data).max() > 0.01


def controller_state(probe: Probe, since: float) -> dict:
    found = probe.diagnostics("controller_node", since)
    return found[-1] if found else {}


def test_a_killed_policy_node_leaves_the_arm_at_rest_and_a_new_one_drives_it_again(ros, tmp_path):
    probe = Probe("fault_kill_probe")
    record_diagnostics(probe)
    probe.record("/arm_controller/commands", Float64MultiArray, 500)
    probe.record("/vla/action_chunk", JointTrajectory)
    monitor = limit_monitor(probe, ROBOT)
    graph = start_graph(tmp_path, params={"controller_node": {"diagnostics_period": 0.2}})
    try:
        wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node"])
        probe.wait_for(lambda: moving(probe), 30, "the arm moving under the policy")
        graph.procs["policy_node"].kill()  # SIGKILL mid-motion: no goodbye, chunks just stop
        killed = probe.now()
        # the chunk in flight runs out (1 s at most: it may pause and move on, as a grasp does), then the arm is
        # brought to rest and held
        probe.wait_for(lambda: controller_state(probe, probe.now() - 0.3).get("hold_reason", "-") != "-", 3.0,
                       "the controller holding once the last chunk ran out")
        try:
            probe.wait_for(lambda: at_rest(probe), 6.0, "the arm at rest after its policy died")
        except AssertionError:
            print("hold reasons since the kill:", [d["hold_reason"] for d in probe.diagnostics("controller_node",
                                                                                                 killed)])
            raise
        rested = probe.now()
        time.sleep(1.0)
        # held: never tracking a plan again, and at rest (a joint state late on a loaded machine brakes the arm
        # short of the last chunk's final target; it goes on to it once states are fresh, never further)
        assert all(d["hold_reason"] != "-" for d in probe.diagnostics("controller_node", rested))
        probe.wait_for(lambda: at_rest(probe, 0.5), 3.0, "the arm at rest on the last target")
        state = controller_state(probe, rested)
        assert state["hold_reason"] != "-" and state["enabled"] == "True", state
        accepted = int(state["chunks_accepted"])

        graph.procs["policy_node"].wait()
        graph.restart("policy_node")  # as a respawn would: the controller was never restarted
        back = probe.now()
        probe.wait_for(lambda: int(controller_state(probe, back).get("chunks_accepted", 0)) > accepted + 3, 40,
                       "chunks from the new policy node accepted")
        probe.wait_for(lambda: controller_state(probe, probe.now() - 0.5).get("hold_reason") == "-", 10,
                       "the controller tracking again")
        assert not [n for n in graph.failed() if n != "policy_node"]
    finally:
        code = graph.stop()
        probe.close()
    print(f"policy killed: arm at rest {rested - killed:.2f} s later; {monitor.counts} commands checked")
    assert_no_violation(monitor, 1000)
    assert code == 0


@pytest.fixture(scope="module")
def rig(ros, tmp_path_factory):
    """The shipped built-in model and the controller under use_sim_time, fed by a fake robot with its own clock:
    /clock every 2 ms tick, joint states every 5th, camera frames every 25th."""
    tmp = tmp_path_factory.mktemp("faults")
    probe = Probe("fault_probe")
    record_diagnostics(probe)
    probe.record("/arm_controller/commands", Float64MultiArray, 500)
    probe.record("/vla/action_chunk", JointTrajectory)
    monitor = limit_monitor(probe, ROBOT)
    robot = FakeRobot(probe, ROBOT.action_joints, HOME, 0.002, state_every=5, camera_every=25, sim_time=True)
    fast = {"diagnostics_period": 0.2}
    graph = start_graph(tmp, sim="none", policy="builtin", use_sim_time="true",
                        params={"controller_node": fast, "policy_node": fast})
    try:
        wait_for_nodes(probe, graph, ["policy_node", "controller_node"])
        tracking(probe, 30.0)
        yield probe, robot, graph, monitor
    finally:
        robot.stop()
        code = graph.stop()
        probe.close()
    assert_no_violation(monitor, 3000)
    assert code == 0, graph.log_path.read_text()[-3000:]


def tracking(probe: Probe, timeout: float) -> None:
    """Wait for chunks to flow again and the controller to follow them."""
    since = probe.now()
    probe.wait_for(lambda: len(probe.messages("/vla/action_chunk", since)) >= 3, timeout, "chunks")
    probe.wait_for(lambda: controller_state(probe, probe.now() - 0.3).get("hold_reason") == "-", timeout,
                   "the controller tracking chunks")


def test_a_stalled_camera_stops_inference_the_arm_rests_and_it_runs_again(rig):
    probe, robot, graph, _ = rig
    robot.camera = False
    stalled = probe.now()
    # no inference on a frame older than max_input_age (0.5 s): chunks stop, the last one runs out
    probe.wait_for(lambda: any("image 'image_0': stale" in d["_message"]
                               for d in probe.diagnostics("policy_node", stalled)), 3.0, "the stale camera reported")
    probe.wait_for(lambda: at_rest(probe) and controller_state(probe, probe.now() - 0.3).get("hold_reason", "-")
                   != "-", 4.0, "the arm held at rest")
    quiet = probe.now()
    time.sleep(0.5)
    assert not probe.messages("/vla/action_chunk", quiet, sent=True), "a chunk was published from a stale frame"
    robot.camera = True
    tracking(probe, 10.0)


def test_stalled_joint_states_hold_the_arm_and_it_runs_again(rig):
    probe, robot, graph, _ = rig
    robot.mode = "silent"
    stalled = probe.now()
    probe.wait_for(lambda: "joint states stale" in controller_state(probe, stalled).get("hold_reason", ""), 3.0,
                   "the controller holding on stale joint states")
    probe.wait_for(lambda: at_rest(probe), 3.0, "the arm at rest")
    robot.mode = "ok"
    tracking(probe, 10.0)


@pytest.mark.parametrize("jump", [-50.0, 30.0])
def test_a_clock_jump_under_sim_time_holds_the_arm_and_it_runs_again(rig, jump):
    """A simulator reset (time back) or a leap: the controller drops its plan and brakes; the policy drops its
    inputs and schedule on a jump back (forward, its inputs are stale anyway); both run again on inputs
    stamped in the new time (before, a jump back stalled the policy for as long as the jump)."""
    probe, robot, graph, _ = rig
    ctrl = int(controller_state(probe, probe.now() - 0.5)["clock_jumps"])
    policy = int(probe.diagnostics("policy_node", probe.now() - 0.5)[-1]["clock_jumps"])
    robot.jump(jump)
    since = probe.now()
    probe.wait_for(lambda: int(controller_state(probe, since).get("clock_jumps", 0)) > ctrl, 5.0,
                   "the controller counting the jump")
    if jump < 0:
        probe.wait_for(lambda: any(int(d["clock_jumps"]) > policy for d in probe.diagnostics("policy_node", since)),
                       5.0, "the policy node's count")
    tracking(probe, 10.0)
    # logged with its size at most once (never per tick; a jump while the last is still reported is counted
    # only); the first jump (back) is logged by both nodes
    logged = len(logged_jumps(graph, "controller_node", jump))
    assert logged == 1 if jump < 0 else logged <= 1
    assert len(logged_jumps(graph, "policy_node", jump)) == (1 if jump < 0 else 0)


def logged_jumps(graph, node: str, size: float) -> list[float]:
    """The clock jumps ``node`` logged within 0.5 s of ``size`` (a loaded machine may add a small leap of its
    own: the test's /clock publisher stalling for over a second)."""
    found = [float(m) for line in graph.log_path.read_text().splitlines() if line.startswith(f"[{node}]")
             for m in re.findall(r"clock jumped ([+-][0-9.]+) s", line)]
    return [v for v in found if abs(v - size) < 0.5]
