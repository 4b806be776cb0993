"""The RunTask action through the graph (sim, policy, controller): success from the sim's task checker, a
time-out, a cancel that brakes the arm to a hold within its limits, an abort by the e-stop, a rejected second
goal and a goal with a parameter the policy node does not have."""

import re
import time

import numpy as np
import pytest
from rclpy.action import ActionClient
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool
from support import Probe, record_diagnostics, start_graph, wait_for_nodes

from vla_ros.robots import load_robot

pytestmark = pytest.mark.integration
ROBOT = load_robot("widowx")


def _run_task():
    from vla_ros_interfaces.action import RunTask

    return RunTask


class Task:
    """A RunTask client on the probe: send, wait for acceptance and the result, collect feedback."""

    def __init__(self, probe: Probe):
        self.probe, self.RunTask = probe, _run_task()
        self.client = ActionClient(probe, self.RunTask, "/vla/run_task")
        assert self.client.wait_for_server(timeout_sec=30.0), "no RunTask server"
        time.sleep(1.0)  # (discovery in both directions: a request sent at once can lose its response)
        self.feedback: list = []

    def send(self, instruction: str, time_limit: float = 0.0, **params: str):
        goal = self.RunTask.Goal(instruction=instruction, time_limit=time_limit, parameter_names=list(params),
                                 parameter_values=list(params.values()))
        future = self.client.send_goal_async(goal, feedback_callback=lambda m: self.feedback.append(m.feedback))
        self.probe.wait_for(future.done, 10.0, "the goal response")
        return future.result()

    def result(self, handle, timeout: float = 30.0):
        future = handle.get_result_async()
        self.probe.wait_for(future.done, timeout, "the result")
        return future.result().result


@pytest.fixture(scope="module")
def graph(ros, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("task")
    probe = Probe("task_probe")
    record_diagnostics(probe)
    probe.record("/vla/controller/state", JointState, 2000)
    g = start_graph(tmp, driver="preset", params={"sim_node": {"seed": 2}})
    try:
        wait_for_nodes(probe, g, ["sim_node", "policy_node", "controller_node"])
        yield g, probe, Task(probe)
    finally:
        code = g.stop()
        probe.close()
        assert code == 0, g.log_path.read_text()[-3000:]


def test_a_task_succeeds_with_feedback(graph):
    g, probe, task = graph
    RunTask = task.RunTask
    handle = task.send("pick up the blue cube", time_limit=20.0)
    assert handle.accepted
    result = task.result(handle)
    assert result.outcome == RunTask.Result.SUCCEEDED, (result.reason, g.log_path.read_text()[-2000:])
    assert "/sim/task_success" in result.reason and 1.0 < result.duration < 15.0 and result.chunks_executed > 5
    states = {f.state for f in task.feedback}
    assert RunTask.Feedback.RUNNING in states and task.feedback[-1].elapsed > 1.0


def test_a_time_limit_ends_a_task_and_a_second_goal_is_rejected(graph):
    g, probe, task = graph
    RunTask = task.RunTask
    handle = task.send("pick up the red cube", time_limit=1.5)
    second = task.send("pick up the green cube")
    assert handle.accepted and not second.accepted  # one goal at a time (task_preempt false)
    result = task.result(handle)
    assert result.outcome == RunTask.Result.TIMED_OUT and "1.5 s" in result.reason
    assert 1.5 <= result.duration < 2.5


def test_a_cancel_brakes_to_a_hold_within_the_limits(graph):
    g, probe, task = graph
    RunTask = task.RunTask
    task.feedback.clear()
    handle = task.send("pick up the green cube")
    running = RunTask.Feedback.RUNNING  # (not the motion of an earlier test's brake: this run's chunks moving it)
    probe.wait_for(lambda: any(f.state == running for f in task.feedback) and any(
        np.abs(s.msg.velocity).max() > 0.2 for s in probe.messages("/vla/controller/state", probe.now() - 0.1)),
        15.0, "the arm moving fast")
    moving = probe.messages("/vla/controller/state")[-1].msg
    cancel = handle.cancel_goal_async()
    cancelled_at = probe.now()
    probe.wait_for(cancel.done, 5.0, "the cancel response")
    result = task.result(handle)
    assert result.outcome == RunTask.Result.CANCELLED and result.reason == "cancelled by the caller"
    probe.wait_for(lambda: any(s.t > cancelled_at and np.abs(s.msg.velocity).max() < 1e-3
                               for s in probe.messages("/vla/controller/state", cancelled_at)), 5.0, "at rest")
    rest = next(s.t for s in probe.messages("/vla/controller/state", cancelled_at)
                if np.abs(s.msg.velocity).max() < 1e-3)
    stamps = [float(re.search(r"\[(\d{9,}\.\d+)\]", line).group(1)) for line in g.log_path.read_text().splitlines()
              if "paused engaged" in line]  # the controller's own log: when it started braking
    paused = min(t for t in stamps if t > cancelled_at - 0.05)
    before = [s for s in probe.messages("/vla/controller/state", cancelled_at - 0.5) if s.t <= paused]
    v = np.abs(np.array(before[-1].msg.velocity))
    # the braking time the limits allow from that velocity: v/a plus the jerk-limited ramps per joint
    # (worst case: full acceleration the other way first, 2 a/j to reverse it)
    lim = ROBOT.limits_for(ROBOT.action_joints)
    allowed = float(np.max(v / lim.acceleration + 3.0 * lim.acceleration / lim.jerk))
    print(f"cancel at |v| {np.abs(moving.velocity).max():.2f} rad/s: braking {paused - cancelled_at:.3f} s later, "
          f"at rest {rest - paused:.3f} s after that (the limits allow {allowed:.3f} s)")
    assert paused - cancelled_at < 0.3 and rest - paused <= allowed + 0.02  # (+ the state's 10 ms sampling, x2)
    time.sleep(0.5)
    still = probe.messages("/vla/controller/state", probe.now() - 0.4)
    assert max(np.abs(s.msg.velocity).max() for s in still) < 1e-3  # held (the at-rest threshold)


def test_a_cancel_while_the_goal_starts_never_moves_the_arm(graph):
    """Cancelled before it ran (while the sim resets): the controller and the policy are never resumed for it
    (they were: the arm ran the first chunk for ~0.1 s, measured at up to 0.48 rad/s, then braked)."""
    g, probe, task = graph
    RunTask = task.RunTask
    probe.wait_for(lambda: all(np.abs(s.msg.velocity).max() < 1e-3 for s in probe.messages(
        "/vla/controller/state", probe.now() - 0.3)), 10.0, "the arm at rest")
    sent = probe.now()
    handle = task.send("pick up the red cube")
    cancel = handle.cancel_goal_async()
    probe.wait_for(cancel.done, 5.0, "the cancel response")
    result = task.result(handle)
    assert result.outcome == RunTask.Result.CANCELLED and result.chunks_executed == 0
    time.sleep(1.0)
    states = probe.messages("/vla/controller/state", sent)
    assert len(states) > 50 and max(np.abs(s.msg.velocity).max() for s in states) < 1e-3


def test_the_estop_aborts_a_task_and_a_bad_parameter_is_refused(graph):
    g, probe, task = graph
    RunTask = task.RunTask
    handle = task.send("pick up the red cube", time_limit=20.0)
    time.sleep(1.0)
    assert probe.call(SetBool, "/vla/controller/estop", SetBool.Request(data=True)).success
    result = task.result(handle)
    assert result.outcome == RunTask.Result.ABORTED and "e-stop" in result.reason
    assert probe.call(SetBool, "/vla/controller/estop", SetBool.Request(data=False)).success
    bad = task.result(task.send("pick up the red cube", **{"no_such.parameter": "3"}))
    assert bad.outcome == RunTask.Result.ABORTED and "no_such.parameter" in bad.reason
    again = task.result(task.send("pick up the red cube", time_limit=20.0))  # and the graph still runs tasks
    assert again.outcome == RunTask.Result.SUCCEEDED, again.reason
