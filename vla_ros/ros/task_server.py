"""The RunTask action (vla_ros_interfaces/action/RunTask), served by the policy node on /vla/run_task.

A goal runs an instruction: the policy pauses, takes the instruction (and any parameters of the goal),
the sim resets where ``task_reset_sim`` says so, the controller resumes from the measured state and the
policy starts. It ends when the success source says so (``task_success_topic``: a std_msgs/Bool that must
read False, then True, during the run), the time limit passes, the caller cancels, or something stops the
arm (e-stop, a lost operator heartbeat, a missing driver, a disabled controller, a deviation stop):
then the policy pauses and the controller brakes to a hold within its limits. One goal at a time; a new
goal is rejected, or pre-empts the running one with ``task_preempt``.

Everything here is a coroutine on the node's executor (no thread blocks): it waits on a 10 Hz tick and on
service futures.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.task import Future
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool, Trigger

from .. import interfaces as io
from .diagnostics import values_of

if TYPE_CHECKING:
    from .policy_node import PolicyNode

TICK = 0.1  # s between checks of a running goal
ABORT_HALTS = {"e-stop": "the e-stop is engaged", "operator": "the operator heartbeat was lost",
               "driver": "the robot's driver is missing"}
DRIVER_GRACE = 2.0  # s the driver may be missing before a run aborts
SILENCE = 3.0  # s without the controller's diagnostics before a run aborts
STOPPED = "stopped while starting"  # _start's answer for a goal cancelled or pre-empted before it ran


class TaskServer:
    def __init__(self, node: PolicyNode):
        from vla_ros_interfaces.action import RunTask

        self.node, self.RunTask = node, RunTask
        p = node.p
        self.reset_sim, self.preempt = p["task_reset_sim"], p["task_preempt"]
        self.success_topic = p["task_success_topic"]
        self.pause = node.create_client(SetBool, io.CONTROLLER_PAUSE)
        self.controller_reset = node.create_client(Trigger, io.CONTROLLER_RESET)
        self.sim_reset = node.create_client(Trigger, io.SIM_RESET)
        self.instruction_pub = node.create_publisher(String, io.INSTRUCTION, QoSProfile(depth=10))
        self.success: bool | None = None  # the success source's last value
        if self.success_topic:
            node.create_subscription(Bool, self.success_topic, self._on_success, QoSProfile(depth=10))
        self.controller: dict[str, str] = {}
        self.controller_seen = -1e9
        node.create_subscription(DiagnosticArray, io.DIAGNOSTICS, self._on_diagnostics, QoSProfile(depth=20))
        self._waiters: list[Future] = []
        node.create_timer(TICK, self._tick)
        self.active = None  # the goal handle being run
        self.done: Future | None = None  # resolved when the active goal's run has stopped the arm
        self.server = ActionServer(node, RunTask, io.RUN_TASK, execute_callback=self._execute,
                                   goal_callback=self._on_goal, cancel_callback=self._on_cancel)

    # -- inputs ------------------------------------------------------------------------------
    def _on_success(self, msg: Bool) -> None:
        self.success = bool(msg.data)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("controller_node:"):
                self.controller = {**values_of(status), "_message": status.message}
                self.controller_seen = time.monotonic()

    def _tick(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(True)

    def _next_tick(self) -> Future:
        fut = Future()
        self._waiters.append(fut)
        return fut

    async def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await self._next_tick()

    async def _call(self, client, request, what: str) -> str:
        """'' when the service answered success, else why not (a missing service is waited for 2 s)."""
        end = time.monotonic() + 2.0
        while not client.service_is_ready():
            if time.monotonic() > end:
                return f"{client.srv_name} is not available ({what})"
            await self._next_tick()
        response = await client.call_async(request)
        return "" if response is not None and response.success else f"{client.srv_name} refused to {what}"

    # -- goals -------------------------------------------------------------------------------
    def _on_goal(self, goal) -> GoalResponse:
        if self.active is not None and not self.preempt:
            self.node.get_logger().warning(f"RunTask {goal.instruction[:60]!r} rejected: a task is running "
                                           "(task_preempt:=true pre-empts)")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_cancel(self, handle) -> CancelResponse:
        """Brake at once (the run's next tick reports the cancel): policy paused, the controller paused."""
        if handle is self.active:
            self.node.pause()
            if self.pause.service_is_ready():
                self.pause.call_async(SetBool.Request(data=True))
        return CancelResponse.ACCEPT

    def _counts(self) -> tuple[int, str, str]:
        c = self.controller
        return int(float(c.get("chunks_accepted", 0) or 0)), c.get("halts", "-"), c.get("hold_reason", "-")

    async def _execute(self, handle):
        RunTask = self.RunTask
        goal = handle.request
        if self.active is not None:  # pre-empting: the running goal sees it and stops the arm first
            self.active, previous_done = handle, self.done
            if previous_done is not None:
                await previous_done
        self.active, self.done = handle, Future()
        log = self.node.get_logger()
        log.info(f"RunTask: {goal.instruction!r} (time limit {goal.time_limit:g} s)")
        try:
            result = await self._run(handle, goal)
        except Exception as exc:  # noqa: BLE001 (a bug here must end the run safely, never as a success)
            log.error(f"RunTask failed: {type(exc).__name__}: {exc}")
            result = self.RunTask.Result(outcome=RunTask.Result.ABORTED, reason=f"{type(exc).__name__}: {exc}")
        finally:
            await self._stop()
            if self.active is handle:
                self.active = None
            self.done.set_result(True)
        outcome = result.outcome
        {RunTask.Result.SUCCEEDED: handle.succeed, RunTask.Result.CANCELLED: handle.canceled}.get(
            outcome, handle.abort)()
        names = {RunTask.Result.SUCCEEDED: "succeeded", RunTask.Result.TIMED_OUT: "timed out",
                 RunTask.Result.CANCELLED: "cancelled", RunTask.Result.ABORTED: "aborted"}
        log.info(f"RunTask {goal.instruction!r} {names[outcome]} after {result.duration:.2f} s: {result.reason}")
        return result

    def _result(self, outcome: int, reason: str, start: float, chunks0: int):
        return self.RunTask.Result(outcome=outcome, reason=reason, duration=time.monotonic() - start,
                                   chunks_executed=max(0, self._counts()[0] - chunks0))

    async def _stop(self) -> None:
        """Policy paused, the controller braking to a hold (within its limits)."""
        self.node.pause()
        await self._call(self.pause, SetBool.Request(data=True), "pause the controller")

    async def _start(self, handle, goal) -> str:
        """Prepare and start a run; '' or why it cannot start (``STOPPED`` when the goal was cancelled or
        pre-empted meanwhile: the controller and the policy are then never resumed for it)."""
        node = self.node
        node.pause()
        params = [Parameter("instruction", value=goal.instruction)]
        if len(goal.parameter_names) != len(goal.parameter_values):
            return "parameter_names and parameter_values differ in length"
        try:
            params += [Parameter(n, value=yaml.safe_load(v)) for n, v in zip(goal.parameter_names,
                                                                            goal.parameter_values)]
        except (yaml.YAMLError, TypeError) as exc:
            return f"a parameter value is not YAML: {exc}"
        undeclared = [q.name for q in params if not node.has_parameter(q.name)]
        if undeclared:
            return f"policy_node has no parameters {undeclared}"
        try:
            verdicts = node.set_parameters(params)
        except Exception as exc:  # noqa: BLE001 (rclpy: a wrong type, a read-only parameter)
            return f"parameters refused: {type(exc).__name__}: {exc}"
        for param, verdict in zip(params, verdicts):
            if not verdict.successful:
                return f"parameter {param.name} refused: {verdict.reason}"
        self.instruction_pub.publish(String(data=goal.instruction))  # (the sim judges success for it)
        if self.reset_sim:
            why = await self._call(self.sim_reset, Trigger.Request(), "reset the sim")
            if why:
                return why
            await self._sleep(0.3)  # fresh joint states after the reset
        self.success = None
        for client, request, what in ((self.controller_reset, Trigger.Request(), "reset the controller"),
                                      (self.pause, SetBool.Request(data=False), "resume the controller")):
            if self._stopped(handle):  # (the cancel paused the controller: resuming it would move the arm)
                return STOPPED
            why = await self._call(client, request, what)
            if why:
                return why
        if self._stopped(handle):  # (the controller holds the measured pose until _stop pauses it again)
            return STOPPED
        node.reset()
        node.resume()
        return ""

    def _stopped(self, handle) -> bool:
        return handle.is_cancel_requested or self.active is not handle

    async def _run(self, handle, goal):
        RunTask = self.RunTask
        start = time.monotonic()
        chunks0 = self._counts()[0]
        why = await self._start(handle, goal)
        if why and why != STOPPED:
            return self._result(RunTask.Result.ABORTED, why, start, chunks0)
        start, chunks0 = time.monotonic(), self._counts()[0]
        seen_false = self.success is False
        driver_missing_since = None
        feedback = RunTask.Feedback()
        while True:
            await self._next_tick()
            now = time.monotonic()
            elapsed = now - start
            if handle.is_cancel_requested:
                return self._result(RunTask.Result.CANCELLED, "cancelled by the caller", start, chunks0)
            if self.active is not handle:
                return self._result(RunTask.Result.ABORTED, "pre-empted by a new goal", start, chunks0)
            seen_false = seen_false or self.success is False
            if seen_false and self.success:
                return self._result(RunTask.Result.SUCCEEDED, f"{self.success_topic} reported success", start,
                                    chunks0)
            if goal.time_limit > 0.0 and elapsed > goal.time_limit:
                return self._result(RunTask.Result.TIMED_OUT, f"no success within {goal.time_limit:g} s", start,
                                    chunks0)
            if now - self.controller_seen > SILENCE and elapsed > SILENCE:
                return self._result(RunTask.Result.ABORTED, "controller_node is not reporting", start, chunks0)
            chunks, halts, hold = self._counts()
            if self.controller_seen < start:  # (a report from before this run: its halts may be gone)
                halts, hold = "-", "-"
            held = [h for h in halts.split(",") if h in ABORT_HALTS]
            driver_missing_since = (driver_missing_since or now) if "driver" in held else None
            lost = [h for h in held if h != "driver"] or (
                ["driver"] if driver_missing_since and now - driver_missing_since > DRIVER_GRACE else [])
            if lost:
                return self._result(RunTask.Result.ABORTED, ABORT_HALTS[lost[0]], start, chunks0)
            if self.controller_seen > start and self.controller.get("enabled") == "False":
                return self._result(RunTask.Result.ABORTED, "the controller is disabled (/vla/controller/enable)",
                                    start, chunks0)
            if hold.startswith("deviation"):
                return self._result(RunTask.Result.ABORTED, hold, start, chunks0)
            feedback.chunks_executed = max(0, chunks - chunks0)
            if feedback.chunks_executed == 0:
                feedback.state, feedback.detail = RunTask.Feedback.WAITING, "waiting for the first chunk"
            elif halts not in ("-", "paused") or hold not in ("-", "", "tracking"):
                feedback.state, feedback.detail = RunTask.Feedback.HOLDING, hold if hold != "-" else halts
            else:
                feedback.state, feedback.detail = RunTask.Feedback.RUNNING, ""
            feedback.inference_latency_ms = float(self.node.loop.latency.summary(1000.0)["p50"])
            feedback.elapsed = elapsed
            handle.publish_feedback(feedback)
