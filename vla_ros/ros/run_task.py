"""``vla-ros run "pick up the red cube"``: a RunTask goal from the command line; feedback as it changes, the
outcome at the end (exit 0 when it succeeded); Ctrl-C cancels the goal (the arm brakes to a hold)."""

from __future__ import annotations

import sys
import time

OUTCOMES = {0: "unknown", 1: "succeeded", 2: "timed out", 3: "cancelled", 4: "aborted"}
STATES = {0: "waiting", 1: "running", 2: "holding"}


def run_task(instruction: str, time_limit: float = 0.0, parameters: list[str] | None = None,
             wait: float = 10.0, out=sys.stdout) -> int:
    """Send the goal, print feedback and the result; the exit code (0 succeeded, 1 other outcomes, 2 no server
    or rejected, 130 cancelled by Ctrl-C)."""
    import rclpy
    from rclpy.action import ActionClient
    from rclpy.signals import SignalHandlerOptions

    from .. import interfaces as io

    try:
        from vla_ros_interfaces.action import RunTask
    except ImportError:
        print("vla-ros run: vla_ros_interfaces is not installed (make venv builds it)", file=sys.stderr)
        return 2
    names, values = [], []
    for item in parameters or []:
        name, sep, value = item.partition("=")
        if not sep:
            print(f"vla-ros run: --set {item!r}: expected NAME=VALUE", file=sys.stderr)
            return 2
        names.append(name)
        values.append(value)
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)  # Ctrl-C: KeyboardInterrupt, cancel
    node = rclpy.create_node("vla_ros_run")
    client = ActionClient(node, RunTask, io.RUN_TASK)
    last = [None, 0.0]

    def on_feedback(msg) -> None:
        f = msg.feedback
        key = (f.state, f.detail)
        if key != last[0] or time.monotonic() - last[1] > 1.0:
            last[0], last[1] = key, time.monotonic()
            print(f"{f.elapsed:6.1f} s  {STATES.get(f.state, f.state):8s} chunks {f.chunks_executed:4d}  "
                  f"inference {f.inference_latency_ms:5.1f} ms  {f.detail}", file=out, flush=True)

    def spin_until(future, timeout: float | None = None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        while not future.done() and (end is None or time.monotonic() < end):
            rclpy.spin_once(node, timeout_sec=0.05)
        return future.done()

    handle = None
    try:
        if not client.wait_for_server(timeout_sec=wait):
            print(f"vla-ros run: no RunTask server on {io.RUN_TASK} within {wait:g} s: is the graph running "
                  "(vla-ros launch / ros2 launch vla_ros policy.launch.py)?", file=sys.stderr)
            return 2
        settle = time.monotonic() + 0.5  # (discovery both ways: a request sent at once can lose its response)
        while time.monotonic() < settle:
            rclpy.spin_once(node, timeout_sec=0.05)
        goal = RunTask.Goal(instruction=instruction, time_limit=float(time_limit), parameter_names=names,
                            parameter_values=values)
        sent = client.send_goal_async(goal, feedback_callback=on_feedback)
        spin_until(sent, wait)
        handle = sent.result() if sent.done() else None
        if handle is None or not handle.accepted:
            print("vla-ros run: the goal was rejected (a task is running; task_preempt:=true pre-empts)",
                  file=sys.stderr)
            return 2
        result_future = handle.get_result_async()
        try:
            spin_until(result_future)
        except KeyboardInterrupt:
            print("cancelling: the arm brakes to a hold", file=out, flush=True)
            spin_until(handle.cancel_goal_async(), 5.0)
            spin_until(result_future, 10.0)
            if not result_future.done():
                return 130
        result = result_future.result().result
        print(f"{OUTCOMES.get(result.outcome, result.outcome)} in {result.duration:.2f} s "
              f"({result.chunks_executed} chunks): {result.reason}", file=out, flush=True)
        return 0 if result.outcome == RunTask.Result.SUCCEEDED else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
