"""Controller node: merges chunks, interpolates at a fixed rate, limits, and streams commands."""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Header
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from .. import interfaces as io
from ..core.chunk import ChunkError, HaltedError, NotStartedError
from ..core.control import ControlCore
from ..core.deadman import Deadman
from ..core.problems import ProblemTracker
from ..core.stats import RateMeter, RollingStats
from ..core.workspace import WorkspaceBox
from ..drivers.base import DriverSetup
from ..drivers.outputs import build_outputs
from ..params import CONTROLLER_PARAMS, config_change, control_config
from ..robots import load_robot
from . import diagnostics as diag
from .conversions import msg_to_chunk, to_sec, to_time
from .inputs import checked_joint_state, sized_subscription
from .node_main import QuietLogger, run
from .param_util import choice_guard, declare


class ControllerNode(Node):
    def __init__(self) -> None:
        super().__init__("controller_node")
        p = self.p = declare(self, CONTROLLER_PARAMS)
        self._guard = choice_guard(CONTROLLER_PARAMS)
        self.robot = load_robot(p["robot"])
        self.joints = p["joints"] or self.robot.action_joints
        limits = self.robot.limits_for(self.joints, velocity_scale=p["velocity_scale"])
        self.core = ControlCore(limits, control_config(p, [g.joint for g in self.robot.grippers]),
                                self._workspace(p["workspace_min"], p["workspace_max"]))
        self.log = QuietLogger(self)  # for lines from the node's own threads
        self.problems = ProblemTracker(self.log.error, self.log.info)
        self.outputs = build_outputs(self, self.robot, self.joints, p,
                                     lambda key, text: self.problems.report(key, text, self.now()), self.log.info)
        self.adapters = self.outputs.adapters
        self.lock = threading.Lock()
        self.enabled = p["start_enabled"]
        self.dry_run = p["dry_run"]
        self.rate = RateMeter(1.0 / p["control_rate"])
        self.obs_to_cmd = RollingStats(500)
        self.halts: set[str] = set()  # active reasons to hold the arm at rest: "e-stop", "paused", ...
        self.counts = {"chunks_accepted": 0, "chunks_rejected": 0, "chunks_before_state": 0,
                       "chunks_while_halted": 0, "ticks": 0,
                       "hold_ticks": 0, "stale_ticks": 0,
                       "overruns": 0, "clipped_position": 0, "clipped_velocity": 0, "loop_errors": 0,
                       "takeovers": 0, "handbacks": 0}
        self.hold_reason = ""
        self.scheduling = "starting"
        # the driver: set up first (its services), then commands only while every output has a listener
        self.setup = DriverSetup(self, self.outputs.setup, self.log.info, timeout=p["driver_timeout"])
        self.driver_error = ""  # why the driver cannot be commanded (ERROR on /diagnostics), '' when fine
        self._missing_since: float | None = None
        self.halts.add("driver")
        # the operator's deadman: held until a heartbeat and an explicit enable
        self.deadman = Deadman(p["heartbeat_timeout"]) if p["operator_heartbeat"] else None
        if self.deadman is not None:
            self.halts.add("operator")
            self.create_subscription(Bool, p["heartbeat_topic"],
                                     lambda msg: self.deadman.beat(bool(msg.data), time.monotonic()),
                                     qos_profile_sensor_data)
        self.core.halt(" + ".join(sorted(self.halts)))
        # a teleoperator's takeover: engage/release on a Bool topic, follow a JointState target meanwhile
        self.core.teleop_timeout = p["teleop_timeout"]
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        try:
            from vla_ros_interfaces.msg import Intervention

            self._intervention = Intervention
            self.intervention_pub = self.create_publisher(Intervention, io.INTERVENTION, latched)
        except ImportError:  # (a ROS install without vla_ros_interfaces: make venv or colcon builds it)
            self._intervention = self.intervention_pub = None
            self.get_logger().info(f"vla_ros_interfaces is not installed: takeovers are not published on "
                                   f"{io.INTERVENTION}")
        self.create_subscription(Bool, p["teleop_engage_topic"], self._on_engage, QoSProfile(depth=10))
        sized_subscription(self, JointState, p["teleop_topic"], self._on_teleop, qos_profile_sensor_data,
                           io.MAX_JOINT_STATE_BYTES, self.problems, "teleop:size")

        self.diag_pub = self.create_publisher(DiagnosticArray, io.DIAGNOSTICS, QoSProfile(depth=10))
        self.state_pub = self.create_publisher(JointState, io.CONTROLLER_STATE, QoSProfile(depth=10))
        self.state_divider = max(1, int(round(p["control_rate"] / p["state_publish_rate"])))
        sized_subscription(self, JointState, p["joint_states_topic"], self._on_joint_state, qos_profile_sensor_data,
                           io.MAX_JOINT_STATE_BYTES, self.problems, "joint_states:size")
        sized_subscription(self, JointTrajectory, io.ACTION_CHUNK, self._on_chunk, QoSProfile(depth=10),
                           io.MAX_CHUNK_BYTES, self.problems, "chunk:size")
        self.create_service(SetBool, io.CONTROLLER_ENABLE, self._on_enable)
        self.create_service(Trigger, io.CONTROLLER_RESET, self._on_reset)
        self.create_service(SetBool, io.CONTROLLER_PAUSE, lambda req, resp: self._halt_service("paused", req, resp))
        self.create_service(SetBool, io.CONTROLLER_ESTOP, lambda req, resp: self._halt_service("e-stop", req, resp))
        self.create_subscription(Bool, io.ESTOP, lambda msg: self._set_halt("e-stop", msg.data), latched)
        self.add_on_set_parameters_callback(self._on_params)
        self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        self.create_timer(0.1, self._watch_driver)

        # The executor thread shares the GIL with the control thread: it runs real-time too (one level
        # lower) so that it is never preempted by other processes while holding the GIL.
        if p["thread_priority"] > 1:
            self._set_realtime(p["thread_priority"] - 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="control", daemon=True)
        self._thread.start()
        self.get_logger().info(f"controller ready: {len(self.joints)} joints at {p['control_rate']:.0f} Hz, "
                               f"merge {p['merge']}, {p['interpolation']} interpolation, motion limits "
                               f"{'on' if self.core.limiter else 'off'}, {self.outputs.description}"
                               + ("" if self.enabled else " (disabled: call /vla/controller/enable to stream)")
                               + (" - DRY RUN: no command is sent" if self.dry_run else ""))

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _workspace(self, lower: list[float], upper: list[float]) -> WorkspaceBox | None:
        if not lower and not upper:
            return None
        box = WorkspaceBox(self.robot.chain(), self.joints, lower, upper)
        self.get_logger().info(f"end-effector workspace box {list(lower)} .. {list(upper)} m ({self.robot.base_link})")
        return box

    # -- inputs ------------------------------------------------------------------------------
    def _on_joint_state(self, msg: JointState) -> None:
        checked = checked_joint_state(msg, self.joints, self.problems, self.now(), zero_stamp_is_now=True)
        if checked is not None:
            with self.lock:
                self.core.update_state(*checked)

    def _on_chunk(self, msg: JointTrajectory) -> None:
        now = self.now()
        try:
            chunk = msg_to_chunk(msg)
            with self.lock:
                accepted = self.core.add_chunk(chunk, now)
        except NotStartedError:  # the first chunk can beat the first joint state: not an error
            self.counts["chunks_before_state"] += 1
            return
        except HaltedError:
            self.counts["chunks_while_halted"] += 1
            return
        except ChunkError as exc:
            self.counts["chunks_rejected"] += 1
            self.problems.report("chunk", f"chunk rejected: {exc}", now)
            return
        self.counts["chunks_accepted"] += 1
        if accepted.outside_limits:
            self.problems.report("chunk_limits", f"chunk targets outside position limits for "
                                 f"{accepted.outside_limits}; commands are clamped", now)

    def _on_engage(self, msg: Bool) -> None:
        now = self.now()
        with self.lock:
            changed = self.core.set_takeover(bool(msg.data), now)
        if changed:
            self.counts["takeovers" if msg.data else "handbacks"] += 1
            if self.intervention_pub is not None:
                self.intervention_pub.publish(self._intervention(
                    header=Header(stamp=to_time(now)), active=bool(msg.data),
                    source=self.p["teleop_topic"] if msg.data else io.ACTION_CHUNK))
            self.log.info(f"teleop took the arm: following {self.p['teleop_topic']}" if msg.data else
                          "teleop handed the arm back to the policy")

    def _on_teleop(self, msg: JointState) -> None:
        now = self.now()
        names = list(msg.name)
        values = np.asarray(msg.position, float)
        known = [n for n in names if n in self.joints]
        if len(values) != len(names) or not known or not np.all(np.isfinite(values)):
            finite = bool(np.all(np.isfinite(values)))
            self.problems.report("teleop", f"teleop target ignored: {len(names)} names, {len(values)} positions, "
                                 f"{len(known)} of the controller's joints, finite: {finite}", now)
            return
        with self.lock:
            try:
                self.core.teleop(names, values, now, to_sec(msg.header.stamp))
            except NotStartedError:
                return

    def _on_enable(self, req, resp):
        if req.data and self.deadman is not None:  # the explicit resume after a lost heartbeat
            if not self.deadman.present(time.monotonic()):
                resp.success = False
                resp.message = f"no fresh operator heartbeat on {self.p['heartbeat_topic']}: not enabled"
                return resp
            self._set_halt("operator", False)
            self.problems.resolve("operator")
        with self.lock:
            if req.data and not self.enabled:
                self.core.reset()  # re-sync to the measured state before streaming again
            self.enabled = bool(req.data)
        resp.success, resp.message = True, "enabled" if req.data else "disabled"
        return resp

    def _set_halt(self, reason: str, on: bool, log=None) -> None:
        """Engage or release one halt reason; the arm runs again (from the measured state) when none is left."""
        with self.lock:
            before = set(self.halts)
            (self.halts.add if on else self.halts.discard)(reason)
            if self.halts:
                self.core.halt(" + ".join(sorted(self.halts)))
            elif before:
                self.core.resume()
        if self.halts != before:
            (log or self.log.warning)(f"{reason} {'engaged: bringing the arm to rest' if on else 'released'}"
                             + (f" (still held: {sorted(self.halts)})" if self.halts and not on else ""))

    def _halt_service(self, reason: str, req, resp):
        self._set_halt(reason, bool(req.data))
        resp.success, resp.message = True, f"{reason} {'engaged' if req.data else 'released'}; held: " \
            f"{sorted(self.halts) or 'none'}"
        return resp

    def _on_reset(self, _req, resp):
        with self.lock:
            self.core.reset()
        resp.success, resp.message = True, "plan dropped; holding the measured position"
        return resp

    def _on_params(self, params: list[Parameter]) -> SetParametersResult:
        verdict = self._guard(params)
        if verdict.successful:
            with self.lock:  # the control thread reads the config every tick
                for param in params:
                    config_change(self.core.config, param.name, param.value)
                    if param.name == "dry_run":
                        self.dry_run = bool(param.value)
        return verdict

    def _watch_driver(self) -> None:
        """Hold while the driver is being set up or nobody listens; an ERROR after driver_timeout (or a failed
        set-up) names what is missing. The arm runs again from the measured state once the driver is there."""
        now = self.now()
        missing = [] if not self.setup.done else [m for a in self.adapters for m in a.missing()]
        waiting = not self.setup.done or bool(missing)
        if missing and self._missing_since is None:
            self.log.info(f"waiting for the driver: {', '.join(missing)}")
        if self.setup.failed:
            self.driver_error = self.setup.failed
        elif missing:
            self._missing_since = self._missing_since if self._missing_since is not None else now
            if now - self._missing_since >= self.p["driver_timeout"]:
                self.driver_error = (f"no driver: {', '.join(missing)}; holding, nothing is commanded "
                                     f"({self.robot.driver.bringup or 'start the robot driver'})")
        else:
            self._missing_since, self.driver_error = None, ""
        if self.driver_error:
            self.problems.report("driver", self.driver_error, now)
        elif "driver" in self.problems.active:
            self.problems.resolve("driver")
        if waiting != ("driver" in self.halts):
            self._set_halt("driver", waiting, self.log.info)

    def come_to_rest(self, reason: str, timeout: float = 3.0) -> bool:
        """Halt (brake within the acceleration limits, then hold) and wait until the arm is at rest or
        ``timeout`` s; True when it came to rest. Commands keep streaming meanwhile."""
        self._set_halt(reason, True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._thread.is_alive():
            with self.lock:
                if self.core.at_rest:
                    return True
            time.sleep(0.01)
        return False

    # -- control loop ------------------------------------------------------------------------
    def _set_realtime(self, priority: int) -> str:
        """Give the calling thread SCHED_FIFO ``priority`` if asked and permitted."""
        if priority <= 0:
            return "normal"
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))  # Linux: the calling thread
            return f"SCHED_FIFO {priority}"
        except (OSError, AttributeError) as exc:
            self.get_logger().warning(f"could not enable SCHED_FIFO {priority} for the control loop ({exc}); "
                                      "running with normal scheduling, expect more period jitter")
            return "normal (SCHED_FIFO refused)"

    def _loop(self) -> None:
        self.scheduling = self._set_realtime(self.p["thread_priority"])
        period = self.core.period
        next_t = time.monotonic()
        tick = 0
        while not self._stop.is_set():
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self.counts["overruns"] += 1
                if delay < -period:  # more than a whole period late: do not try to catch up
                    next_t = time.monotonic()
            self.rate.tick(time.monotonic())
            now = self.now()
            if self.deadman is not None and "operator" not in self.halts \
                    and not self.deadman.present(time.monotonic()):
                self._set_halt("operator", True)  # (brakes from this tick on)
                self.problems.report("operator", f"operator heartbeat lost (no True on {self.p['heartbeat_topic']} "
                                     f"for {self.p['heartbeat_timeout']:g} s): braking to a hold; resume with a fresh "
                                     "heartbeat and /vla/controller/enable", now)
            try:
                with self.lock:
                    result = self.core.tick(now)
                    enabled = self.enabled
            except Exception as exc:  # a bug must not end the loop: send nothing this tick (drivers hold)
                self.counts["loop_errors"] += 1
                if self.problems.report("loop", f"control tick failed, no command sent: {type(exc).__name__}: "
                                        f"{exc}", now):
                    self.log.error(traceback.format_exc())
                continue
            if result is None or not enabled:
                continue
            tick += 1
            self.counts["ticks"] += 1
            if result.holding:
                self.counts["hold_ticks"] += 1
            if not result.fresh:
                self.counts["stale_ticks"] += 1
            self.hold_reason = result.reason
            if "driver" in self.halts and self.core.at_rest:
                continue  # nothing to brake: no command until the driver is set up and listening
            if result.holding and result.reason.startswith(("deviation", "clock jumped", "workspace")):
                kind = result.reason.split()[0].rstrip(":")
                self.problems.report(kind, result.reason, now)  # (logged once per kind, then counted)
            try:
                for adapter in [] if self.dry_run else self.adapters:
                    adapter.publish(result, self.core, now, tick)
                if tick % self.state_divider == 0:
                    state = JointState(name=self.joints, position=result.command.tolist(),
                                       velocity=result.velocity.tolist())
                    state.header.stamp = to_time(now)
                    self.state_pub.publish(state)
            except Exception:  # the context goes away at shutdown, before close() stops this thread
                if not self.context.ok():
                    return
                raise
            if result.new_chunk_stamp is not None:
                self.obs_to_cmd.add(now - result.new_chunk_stamp)
            if result.clipped_position:
                self.counts["clipped_position"] += 1
            if result.clipped_velocity:
                self.counts["clipped_velocity"] += 1

    # -- diagnostics -------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        jitter = self.rate.period_error() * 1000.0
        lat = self.obs_to_cmd.summary(1000.0)
        values = {
            "enabled": self.enabled, "dry_run": self.dry_run, "scheduling": self.scheduling,
            "rate_hz": self.rate.rate, "target_rate_hz": self.p["control_rate"],
            "period_error_ms_p50": float(np.percentile(jitter, 50)) if jitter.size else float("nan"),
            "period_error_ms_p99": float(np.percentile(jitter, 99)) if jitter.size else float("nan"),
            "period_error_ms_max": float(jitter.max()) if jitter.size else float("nan"),
            "obs_to_command_ms_p50": lat["p50"], "obs_to_command_ms_p95": lat["p95"],
            "hold_reason": self.hold_reason or "-", "halts": ",".join(sorted(self.halts)) or "-", **self.counts,
            "clock_jumps": self.core.clock.count,
        }
        values["driver_setup"] = ("failed" if self.setup.failed else "running" if self.setup.running else
                                  f"done ({self.setup.index} steps)")
        for adapter in self.adapters:
            for key, count in getattr(adapter, "goals", {}).items():
                values[f"gripper_goals_{key}"] = count
        healthy = ("disabled" if not self.enabled else "waiting for the driver" if "driver" in self.halts else
                   self.hold_reason or "tracking")
        self.diag_pub.publish(diag.node_report(
            self.get_clock().now().to_msg(), f"{self.get_name()}: control", self.robot.name, self.problems,
            self.now(), healthy, values, error=bool(self.driver_error)))

    def close(self) -> None:
        """Stop the control thread (also on a node whose __init__ did not finish), then return the calling
        (executor) thread to normal scheduling: the ROS/DDS teardown that follows waits on DDS threads of
        normal priority, which a real-time waiter must not crowd out."""
        if hasattr(self, "_thread"):
            self._stop.set()
            self._thread.join(timeout=1.0)
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except (OSError, AttributeError):
            pass


def main(args: list[str] | None = None) -> int:
    sys.setswitchinterval(0.0005)  # the control thread must get the GIL back promptly
    return run(ControllerNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
