"""Policy node: newest camera/joint inputs -> backend on a worker thread -> /vla/action_chunk."""

from __future__ import annotations

import threading
import traceback

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from .. import interfaces as io
from ..core.clock import ClockJumps
from ..core.image import ImageError, fit_image, parse_size
from ..core.inference import InferenceLoop
from ..core.observation import MissingInput, Observation, ObservationBuffer
from ..core.planned_path import tool_paths
from ..core.problems import ProblemTracker
from ..core.scheduling import InferenceScheduler
from ..params import POLICY_PARAMS
from ..policies import backend_class
from ..policies.context import camera_inputs, policy_context
from ..robots import load_robot
from . import diagnostics as diag
from .conversions import chunk_to_msg, compressed_to_array, image_to_array, markers_to_objects, to_sec, to_time
from .inputs import checked_joint_state, sized_subscription
from .node_main import QuietLogger, run
from .param_util import choice_guard, declare


class PolicyNode(Node):
    POLL = 0.005  # s between checks for a (new) observation

    def __init__(self) -> None:
        super().__init__("policy_node")
        p = self.p = declare(self, POLICY_PARAMS)
        self.robot = load_robot(p["robot"])
        backend_cls = backend_class(p["backend"])
        keys, topics, sizes = camera_inputs(self.robot, p, backend_cls.uses_images)
        options = declare(self, backend_cls.PARAMS, prefix=f"{p['backend']}.")
        self._param_guards = [choice_guard(POLICY_PARAMS), choice_guard(backend_cls.PARAMS, prefix=f"{p['backend']}.")]
        context = policy_context(self.robot, {**p, **{f"{p['backend']}.{k}": v for k, v in options.items()}})
        self.state_joints, self.action_joints = context.state_joints, context.action_joints
        self.image_keys, self.image_size = keys, context.image_size
        self.declared_sizes = {k: parse_size(s) for k, s in zip(keys, sizes)}
        self.get_logger().info(f"loading backend {p['backend']!r} ({backend_cls.description})")
        self.policy = backend_cls(context)
        if self.policy.diagnostics():
            self.get_logger().info(f"backend loaded: {self.policy.diagnostics()}")
        self.uses_images = backend_cls.uses_images
        self.extra_inputs = backend_cls.extra_inputs

        self.log = QuietLogger(self)  # for lines from the node's own threads
        self.problems = ProblemTracker(self.log.error, self.log.info)
        self.buffer = ObservationBuffer(keys, p["max_input_age"])
        self.lock = threading.Lock()  # the input buffer and the instruction
        self.instruction = p["instruction"]
        scheduler = InferenceScheduler(p["trigger"], p["inference_period"], p["chunk_dt"], p["horizon"],
                                       min(p["execution_horizon"], p["horizon"]), p["latency_quantile"],
                                       p["trigger_margin"])
        self.loop = InferenceLoop(self.policy, scheduler, self.action_joints, p["chunk_dt"], p["horizon"],
                                  paused=p["start_paused"])
        self.counts = {"no_observation": 0, "worker_errors": 0}
        self._waiting_since = self.now()  # inputs are awaited (INFO) until input_timeout, then missed (ERROR)
        self._announced_wait = False

        self.chunk_pub = self.create_publisher(JointTrajectory, io.ACTION_CHUNK, QoSProfile(depth=10))
        self.path_chains, self.path_pubs = {}, {}
        if p["publish_path"]:
            robot = context.robot
            self.path_chains = robot.arm_chains() if len(robot.arms) > 1 else {"arm": robot.chain()}
            self.path_pubs = {arm: self.create_publisher(Path, io.PLANNED_PATH if len(self.path_chains) == 1 else
                                                         f"{io.PLANNED_PATH}/{arm}", QoSProfile(depth=5))
                              for arm in self.path_chains}
        self.diag_pub = self.create_publisher(DiagnosticArray, io.DIAGNOSTICS, QoSProfile(depth=10))
        sized_subscription(self, JointState, p["joint_states_topic"], self._on_joint_state, qos_profile_sensor_data,
                           io.MAX_JOINT_STATE_BYTES, self.problems, "joint_states:size")
        compressed = p["image_transport"] == "compressed"
        self._to_array = compressed_to_array if compressed else image_to_array
        for key, topic in zip(keys, topics):
            sized_subscription(self, CompressedImage if compressed else Image, f"{topic}/compressed" if compressed
                               else topic, lambda msg, k=key: self._on_image(k, msg), qos_profile_sensor_data,
                               io.MAX_IMAGE_BYTES, self.problems, f"image:{key}:size")
        sized_subscription(self, String, io.INSTRUCTION, self._on_instruction, QoSProfile(depth=10),
                           io.MAX_INSTRUCTION_BYTES, self.problems, "instruction")
        if "objects" in self.extra_inputs:
            self.create_subscription(MarkerArray, io.SIM_OBJECTS, self._on_objects, QoSProfile(depth=5))
        self.create_service(Trigger, io.POLICY_PAUSE, self._on_pause)
        self.create_service(Trigger, io.POLICY_RESUME, self._on_resume)
        self.create_service(Trigger, io.POLICY_RESET, self._on_reset)
        self.add_on_set_parameters_callback(self._on_params)

        self._wake = threading.Event()  # set to make the worker re-evaluate its schedule now
        # back only: the worker reads the clock between inferences, which may take seconds (forward jumps make the
        # inputs stale anyway)
        self.clock = ClockJumps(forward=float("inf"))
        self._stop = False
        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self._worker.start()
        self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        try:
            from .task_server import TaskServer

            self.task = TaskServer(self)
        except ImportError:  # (a ROS install without vla_ros_interfaces: make venv or colcon builds it)
            self.task = None
            self.get_logger().info("vla_ros_interfaces is not installed: no RunTask action server")
        self.get_logger().info(
            f"policy ready: backend={p['backend']} robot={self.robot.name} cameras={dict(zip(keys, topics))} "
            f"chunk {p['horizon']}x{len(self.action_joints)} @ {p['chunk_dt']} s, trigger {p['trigger']}"
            + (" (paused)" if self.loop.paused else ""))

    # -- inputs ------------------------------------------------------------------------------
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        checked = checked_joint_state(msg, self.state_joints, self.problems, self.now(), zero_stamp_is_now=False)
        if checked is not None:
            with self.lock:
                self.buffer.set_state(*checked)

    def _on_image(self, key: str, msg: Image | CompressedImage) -> None:
        now = self.now()
        try:
            image = self._to_array(msg)
        except ImageError as exc:
            self.problems.report(f"image:{key}:{exc.kind}", f"image {key!r}: {exc}; frame dropped", now)
            return
        stamp = to_sec(msg.header.stamp)
        if stamp <= 0:
            self.problems.report(f"image:{key}", f"image {key!r} has a zero stamp; frame dropped", now)
            return
        image, problem = fit_image(image, self.image_size, self.declared_sizes[key], self.policy.resize)
        if problem:
            self.problems.report(f"image_size:{key}", f"image {key!r} {problem}", now)
        with self.lock:
            self.buffer.set_image(key, image, stamp)

    def _on_objects(self, msg: MarkerArray) -> None:
        if not msg.markers:
            return
        stamp = to_sec(msg.markers[0].header.stamp)
        with self.lock:
            self.buffer.set_extra("objects", markers_to_objects(msg), stamp)

    def _on_instruction(self, msg: String) -> None:
        if len(msg.data) > io.MAX_INSTRUCTION_CHARS:
            self.problems.report("instruction", f"instruction of {len(msg.data)} characters rejected (max "
                                 f"{io.MAX_INSTRUCTION_CHARS}); keeping {self.instruction[:60]!r}", self.now())
            return
        if msg.data != self.instruction:  # (a latched or repeated instruction is not news)
            self.set_parameters([Parameter("instruction", value=msg.data)])

    def _on_params(self, params: list[Parameter]) -> SetParametersResult:
        for guard in self._param_guards:
            verdict = guard(params)
            if not verdict.successful:
                return verdict
        for param in params:
            if param.name == "instruction" and len(param.value) > io.MAX_INSTRUCTION_CHARS:
                return SetParametersResult(successful=False, reason=f"instruction longer than "
                                           f"{io.MAX_INSTRUCTION_CHARS} characters")
        for param in params:
            if param.name == "instruction":
                with self.lock:
                    changed, self.instruction = param.value != self.instruction, param.value
                suffix = self.problems.budget.take("instruction_change") if changed else None
                if suffix is not None:
                    text = param.value if len(param.value) <= 120 else param.value[:120] + "..."
                    self.get_logger().info(f"instruction: {text!r}{suffix}")
            elif param.name == "max_input_age":
                with self.lock:
                    self.buffer.max_age = param.value
            elif param.name == "inference_period":
                self.loop.scheduler.period = param.value
                self._wake.set()
        return SetParametersResult(successful=True)

    # -- services ----------------------------------------------------------------------------
    def pause(self) -> None:
        """Start no inference (the services' and the RunTask server's)."""
        self.loop.pause()
        self._wake.set()

    def resume(self) -> None:
        self.loop.resume()
        self._wake.set()

    def reset(self) -> None:
        """Forget inputs and the backend's episode state; wait for fresh inputs."""
        with self.lock:
            self.buffer.clear()
            self._waiting_since = self.now()
        self.loop.reset()
        self._wake.set()

    def _on_pause(self, _req, resp):
        self.pause()
        resp.success, resp.message = True, "paused"
        return resp

    def _on_resume(self, _req, resp):
        self.resume()
        resp.success, resp.message = True, "resumed"
        return resp

    def _on_reset(self, _req, resp):
        self.reset()
        resp.success, resp.message = True, "backend reset; waiting for fresh inputs"
        return resp

    # -- inference ---------------------------------------------------------------------------
    def _work(self) -> None:
        """The inference thread: sleep until the loop says start, run the backend, publish."""
        while not self._stop:
            try:
                self._work_step()
            except Exception as exc:  # never let the inference thread die: report, back off, go on
                if not self.context.ok():
                    return  # the context goes away at shutdown, before close() stops this thread
                self.counts["worker_errors"] += 1
                if self.problems.report("worker", f"inference loop error {type(exc).__name__}: {exc}", self.now()):
                    self.log.error(traceback.format_exc())
                self._wake.wait(0.1)

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _work_step(self) -> None:
        now = self.now()
        jump = self.clock.check(now)
        if jump:  # inputs and the schedule are stamped in the old time (back: they would block for |jump| s)
            with self.lock:
                self.buffer.clear()
            self.loop.reset()
            self.problems.report("clock", f"clock jumped {jump:+.3f} s: inputs dropped, inference restarts on "
                                 "fresh ones", now)
        delay = self.loop.delay(now)
        if delay > 0:
            self._sleep(min(delay, 0.1))
            return
        obs = self._observe(now)
        request = self.loop.begin(obs, now) if obs is not None else None
        if request is None:  # nothing (new) to infer from: poll again shortly
            self._sleep(self.POLL)
            return
        outcome = self.loop.run(request)
        if self._stop:  # stopping: no logging or publishing while ROS tears down
            return
        if outcome.error:
            self.problems.report("backend", f"no chunk published: {outcome.error}", self.now())
            return
        self.problems.resolve("backend")
        if outcome.chunk is not None:
            if self.loop.counts["published"] == 1:
                self.log.info(f"first chunk after start-up: {outcome.latency * 1e3:.1f} ms")
            self.chunk_pub.publish(chunk_to_msg(outcome.chunk))
            if self.path_pubs:
                self._publish_paths(outcome.chunk, obs.state)

    def _publish_paths(self, chunk, state) -> None:
        for arm, path in tool_paths(self.path_chains, chunk, self.state_joints, state).items():
            msg = Path()
            msg.header.stamp, msg.header.frame_id = to_time(chunk.stamp), path.frame
            for t, xyz, q in zip(path.times, path.positions, path.quats_wxyz):
                pose = PoseStamped()
                pose.header.stamp, pose.header.frame_id = to_time(float(t)), path.frame
                pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in xyz)
                pose.pose.orientation.w, pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z = (
                    float(v) for v in q)
                msg.poses.append(pose)
            self.path_pubs[arm].publish(msg)

    def _observe(self, now: float) -> Observation | None:
        """The newest observation, or None while an input is missing or stale.

        Until ``input_timeout`` after start-up (or a reset) a missing input is being waited for (INFO);
        after that, or once inputs had arrived, it is a problem (ERROR, once per kind)."""
        with self.lock:
            try:
                obs = self.buffer.build(now, self.instruction, self.uses_images, self.extra_inputs)
            except MissingInput as exc:
                waiting = self._waiting_since is not None and now - self._waiting_since < self.p["input_timeout"]
                self.counts["no_observation"] += 1
                if waiting:
                    if not self._announced_wait:
                        self._announced_wait = True
                        self.log.info(f"waiting for inputs: {exc}")
                else:
                    self.problems.report("observation", f"no inference: {exc}", now)
                return None
            self._waiting_since = None
            self._announced_wait = False
        self.problems.resolve("observation")
        return obs

    # -- diagnostics -------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        lat = self.loop.latency.summary(1000.0)
        paused = self.loop.paused
        values = {"backend": self.p["backend"], "paused": paused, "instruction": self.instruction,
                  "inference_ms_p50": lat["p50"], "inference_ms_p95": lat["p95"], "inference_ms_p99": lat["p99"],
                  "inference_ms_max": lat["max"], **self.loop.summary(), **self.counts,
                  "clock_jumps": self.clock.count}
        phase = getattr(self.policy, "phase", None)
        if phase is not None:
            values["backend_phase"] = phase
        values.update(self.policy.diagnostics())
        self.diag_pub.publish(diag.node_report(
            self.get_clock().now().to_msg(), f"{self.get_name()}: inference", self.robot.name, self.problems,
            self.now(), "paused" if paused else "running", values))

    def close(self) -> None:
        """Stop the inference thread (also on a node whose __init__ did not finish)."""
        self._stop = True
        if hasattr(self, "_worker"):
            self._wake.set()
            self._worker.join(timeout=2.0)


def main(args: list[str] | None = None) -> int:
    return run(PolicyNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
