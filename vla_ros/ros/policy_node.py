"""Policy node: newest camera/joint inputs -> backend on a worker thread -> /vla/action_chunk."""

from __future__ import annotations

import threading
import time
import traceback

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from .. import interfaces as io
from ..core.chunk import ChunkError
from ..core.image import ImageError, fit_image, parse_size
from ..core.merge import prefix_for
from ..core.observation import MissingInput, Observation, ObservationBuffer
from ..core.problems import ProblemTracker
from ..core.scheduling import InferenceScheduler
from ..core.stats import RollingStats
from ..params import POLICY_PARAMS
from ..policies import PolicyContext, PolicyError, backend_class
from ..robots import load_robot
from . import diagnostics as diag
from .conversions import chunk_to_msg, image_to_array, markers_to_objects, to_sec
from .inputs import checked_joint_state
from .node_main import run
from .param_util import choice_guard, declare


class PolicyNode(Node):
    POLL = 0.005  # s between checks for a (new) observation

    def __init__(self) -> None:
        super().__init__("policy_node")
        p = self.p = declare(self, POLICY_PARAMS)
        self.robot = load_robot(p["robot"])
        self.state_joints = p["state_joints"] or self.robot.state_joints
        self.action_joints = p["action_joints"] or self.robot.action_joints
        keys, topics = p["image_keys"], p["image_topics"]
        if not keys and not topics:
            keys = [c.key for c in self.robot.cameras]
            topics = [c.image_topic for c in self.robot.cameras]
        if len(keys) != len(topics):
            raise ValueError(f"image_keys ({len(keys)}) and image_topics ({len(topics)}) differ in length")
        self.image_keys = keys
        self.image_size = (p["image_height"], p["image_width"])
        sizes = p["image_sizes"] or [""] * len(keys)
        if len(sizes) != len(keys):
            raise ValueError(f"image_sizes ({len(sizes)}) and image_keys ({len(keys)}) differ in length")
        self.declared_sizes = {k: parse_size(s) for k, s in zip(keys, sizes)}
        backend_cls = backend_class(p["backend"])
        options = declare(self, backend_cls.PARAMS, prefix=f"{p['backend']}.")
        self._param_guards = [choice_guard(POLICY_PARAMS), choice_guard(backend_cls.PARAMS, prefix=f"{p['backend']}.")]
        context = PolicyContext(self.robot, self.state_joints, self.action_joints, keys, self.image_size,
                                p["chunk_dt"], p["horizon"], options)
        self.get_logger().info(f"loading backend {p['backend']!r} ({backend_cls.description})")
        self.policy = backend_cls(context)
        if self.policy.diagnostics():
            self.get_logger().info(f"backend loaded: {self.policy.diagnostics()}")
        self.uses_images = backend_cls.uses_images
        self.extra_inputs = backend_cls.extra_inputs

        self.problems = ProblemTracker(self.get_logger().error, self.get_logger().info)
        self.buffer = ObservationBuffer(keys, p["max_input_age"])
        self.lock = threading.Lock()
        self.instruction = p["instruction"]
        self.paused = p["start_paused"]
        self.epoch = 0  # bumped by reset/pause so in-flight results are discarded
        self.latency = RollingStats(500)
        self.scheduler = InferenceScheduler(p["trigger"], p["inference_period"], p["chunk_dt"], p["horizon"],
                                            min(p["execution_horizon"], p["horizon"]), p["latency_quantile"],
                                            p["trigger_margin"])
        self.supports_prefix = backend_cls.supports_prefix
        self.last_chunk = None  # the newest published chunk (prefix for guided RTC backends)
        self.counts = {"published": 0, "skipped_busy": 0, "no_observation": 0, "waited_for_new_input": 0,
                       "backend_errors": 0, "worker_errors": 0}
        self.last_obs_stamp: float | None = None  # capture stamp of the last observation inferred from

        self.chunk_pub = self.create_publisher(JointTrajectory, io.ACTION_CHUNK, QoSProfile(depth=10))
        self.diag_pub = self.create_publisher(DiagnosticArray, io.DIAGNOSTICS, QoSProfile(depth=10))
        self.create_subscription(JointState, p["joint_states_topic"], self._on_joint_state, qos_profile_sensor_data)
        for key, topic in zip(keys, topics):
            self.create_subscription(Image, topic, lambda msg, k=key: self._on_image(k, msg), qos_profile_sensor_data)
        self.create_subscription(String, io.INSTRUCTION, self._on_instruction, QoSProfile(depth=10))
        if "objects" in self.extra_inputs:
            self.create_subscription(MarkerArray, io.SIM_OBJECTS, self._on_objects, QoSProfile(depth=5))
        self.create_service(Trigger, io.POLICY_PAUSE, self._on_pause)
        self.create_service(Trigger, io.POLICY_RESUME, self._on_resume)
        self.create_service(Trigger, io.POLICY_RESET, self._on_reset)
        self.add_on_set_parameters_callback(self._on_params)

        self._wake = threading.Event()  # set to make the worker re-evaluate its schedule now
        self._stop = False
        self._worker = threading.Thread(target=self._work, name="inference", daemon=True)
        self._worker.start()
        self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        self.get_logger().info(
            f"policy ready: backend={p['backend']} robot={self.robot.name} cameras={dict(zip(keys, topics))} "
            f"chunk {p['horizon']}x{len(self.action_joints)} @ {p['chunk_dt']} s, trigger {p['trigger']}"
            + (" (paused)" if self.paused else ""))

    # -- inputs ------------------------------------------------------------------------------
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_joint_state(self, msg: JointState) -> None:
        checked = checked_joint_state(msg, self.state_joints, self.problems, self.now(), zero_stamp_is_now=False)
        if checked is not None:
            with self.lock:
                self.buffer.set_state(*checked)

    def _on_image(self, key: str, msg: Image) -> None:
        now = self.now()
        try:
            image = image_to_array(msg)
        except ImageError as exc:
            self.problems.report(f"image:{key}:{exc.kind}", f"image {key!r}: {exc}; frame dropped", now)
            return
        stamp = to_sec(msg.header.stamp)
        if stamp <= 0:
            self.problems.report(f"image:{key}", f"image {key!r} has a zero stamp; frame dropped", now)
            return
        image, problem = fit_image(image, self.image_size, self.declared_sizes[key])
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
        self.set_parameters([Parameter("instruction", value=msg.data)])

    def _on_params(self, params: list[Parameter]) -> SetParametersResult:
        for guard in self._param_guards:
            verdict = guard(params)
            if not verdict.successful:
                return verdict
        for param in params:
            if param.name == "instruction":
                self.instruction = param.value
                self.get_logger().info(f"instruction: {param.value!r}")
            elif param.name == "max_input_age":
                self.buffer.max_age = param.value
            elif param.name == "inference_period":
                self.scheduler.period = param.value
                self._wake.set()
        return SetParametersResult(successful=True)

    # -- services ----------------------------------------------------------------------------
    def _on_pause(self, _req, resp):
        self.paused = True
        self.epoch += 1
        self.scheduler.reset()
        self._wake.set()
        resp.success, resp.message = True, "paused"
        return resp

    def _on_resume(self, _req, resp):
        self.paused = False
        self._wake.set()
        resp.success, resp.message = True, "resumed"
        return resp

    def _on_reset(self, _req, resp):
        with self.lock:
            self.epoch += 1
            self.policy.reset()
            self.buffer.clear()
            self.scheduler.reset()
            self.last_chunk = None
            self.last_obs_stamp = None
        self._wake.set()
        resp.success, resp.message = True, "backend reset; waiting for fresh inputs"
        return resp

    # -- inference ---------------------------------------------------------------------------
    def _work(self) -> None:
        """The inference thread: sleep until the scheduler says start, run the backend, publish."""
        while not self._stop:
            try:
                self._work_step()
            except Exception as exc:  # never let the inference thread die: report, back off, go on
                if not self.context.ok():
                    return  # the context goes away at shutdown, before close() stops this thread
                self.counts["worker_errors"] += 1
                if self.problems.report("worker", f"inference loop error {type(exc).__name__}: {exc}", self.now()):
                    self.get_logger().error(traceback.format_exc())
                self._wake.wait(0.1)

    def _work_step(self) -> None:
        next_start = self.scheduler.next_start()
        delay = 0.1 if self.paused else next_start - self.now()
        if delay > 0:
            self._wake.wait(min(delay, 0.1))
            self._wake.clear()
            return
        now = self.now()
        obs, epoch = self._observe(now)
        if obs is None:  # nothing (new) to infer from: poll again shortly
            self._wake.wait(self.POLL)
            self._wake.clear()
            return
        if self.scheduler.mode == "fixed" and np.isfinite(next_start):
            missed = int((now - next_start) / self.scheduler.period)
            self.counts["skipped_busy"] += max(missed, 0)  # periods that passed while the backend ran
        self.scheduler.started(now)
        self._infer_once(obs, epoch)

    def _observe(self, now: float) -> tuple[Observation | None, int]:
        """The newest observation, or None while an input is missing/stale or nothing changed since the last."""
        with self.lock:
            epoch = self.epoch
            try:
                obs = self.buffer.build(now, self.instruction, self.uses_images, self.extra_inputs)
            except MissingInput as exc:
                self.counts["no_observation"] += 1
                self.problems.report("observation", f"no inference: {exc}", now)
                return None, epoch
            self.problems.resolve("observation")
            if self.last_obs_stamp is not None and obs.stamp <= self.last_obs_stamp:
                self.counts["waited_for_new_input"] += 1  # a second chunk from the same inputs adds nothing
                return None, epoch
            self.last_obs_stamp = obs.stamp
        return obs, epoch

    def _infer_once(self, obs: Observation, epoch: int) -> None:
        if self.supports_prefix and self.last_chunk is not None:
            times = self.p["chunk_dt"] * np.arange(1, self.p["horizon"] + 1)
            values, valid = prefix_for(self.last_chunk, obs.stamp, times, self.action_joints)
            obs.extras["prefix"] = {"values": values, "valid": valid, "delay": self.scheduler.delay_steps(),
                                    "execution_horizon": self.scheduler.execution_horizon}
        start = time.perf_counter()
        try:
            chunk = self.policy.infer(obs)
            chunk.validate()
            if chunk.stamp != obs.stamp:
                raise ChunkError(f"backend stamped its chunk {chunk.stamp} instead of the observation's {obs.stamp}")
            if list(chunk.names) != self.action_joints:
                raise ChunkError(f"backend chunk names {list(chunk.names)} != action_joints {self.action_joints}")
        except (PolicyError, ChunkError) as exc:
            self.counts["backend_errors"] += 1
            self.scheduler.finished(time.perf_counter() - start, None)
            self.problems.report("backend", f"no chunk published: {exc}", self.now())
            return
        except Exception as exc:  # a backend bug must not kill the node; nothing is published
            self.counts["backend_errors"] += 1
            self.scheduler.finished(time.perf_counter() - start, None)
            self.problems.report("backend", f"backend raised {type(exc).__name__}: {exc}", self.now())
            return
        latency = time.perf_counter() - start
        self.latency.add(latency)
        if self.counts["published"] == 0 and len(self.latency) == 1:
            self.get_logger().info(f"first chunk after start-up: {latency * 1e3:.1f} ms")
        self.problems.resolve("backend")
        if self.paused or epoch != self.epoch:
            return
        self.scheduler.finished(latency, chunk.stamp)
        self.last_chunk = chunk
        self.chunk_pub.publish(chunk_to_msg(chunk))
        self.counts["published"] += 1

    # -- diagnostics -------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        lat = self.latency.summary(1000.0)
        values = {"backend": self.p["backend"], "paused": self.paused, "instruction": self.instruction,
                  "inference_ms_p50": lat["p50"], "inference_ms_p95": lat["p95"], "inference_ms_p99": lat["p99"],
                  "inference_ms_max": lat["max"], "trigger": self.scheduler.mode,
                  "latency_estimate_ms": self.scheduler.latency_estimate() * 1000.0,
                  "delay_steps": self.scheduler.delay_steps(), **self.counts}
        phase = getattr(self.policy, "phase", None)
        if phase is not None:
            values["backend_phase"] = phase
        values.update(self.policy.diagnostics())
        self.diag_pub.publish(diag.node_report(
            self.get_clock().now().to_msg(), f"{self.get_name()}: inference", self.robot.name, self.problems,
            self.now(), "paused" if self.paused else "running", values))

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        self._worker.join(timeout=2.0)


def main(args: list[str] | None = None) -> int:
    return run(PolicyNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
