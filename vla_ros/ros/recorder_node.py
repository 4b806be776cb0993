"""Recorder node: episodes of the graph's topics as rosbag2/MCAP folders, on a real robot as in sim.

``/vla/recorder/start`` (Trigger) opens ``<output_dir>/episode_NNNNNN`` and ``/vla/recorder/stop``
(SetBool: data = success) closes it. Messages are recorded serialized as they arrive (no decoding),
stamped with their receive time like ``ros2 bag record``; the episode's instruction, success and the
``episode_info`` parameter (JSON) go into the bag as /vla/episode events and its custom_data, with the spans
(``interventions_ns``: [start, end] stamps) in which a teleoperator had the arm.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from .. import interfaces as io
from ..core.problems import ProblemTracker
from ..drivers.streams import command_streams
from ..params import RECORDER_PARAMS
from ..recording.bag import EpisodeWriter, ros_type
from ..robots import load_robot
from . import diagnostics as diag
from .node_main import QuietLogger, run
from .param_util import choice_guard, declare

SENSORS = (Image, JointState)  # best effort: matches camera drivers (best effort) and reliable publishers
QUEUE = 200  # messages per topic held while the recorder is busy


def graph_topics(robot, driver: str, output_interface: str, commands: bool) -> dict[str, type]:
    """What an episode needs: cameras, joint states, instruction, chunks, the controller's commanded positions
    (/vla/controller/state, 100 Hz) and task success; ``commands``: also every command the driver receives."""
    topics: dict[str, type] = {c.image_topic: Image for c in robot.cameras}
    topics.update({robot.joint_states_topic: JointState, io.INSTRUCTION: String, io.ACTION_CHUNK: JointTrajectory,
                   io.CONTROLLER_STATE: JointState, io.SIM_TASK_SUCCESS: Bool})
    topics.update({io.TELEOP_ENGAGE: Bool, io.TELEOP_COMMAND: JointState})
    intervention = intervention_type()
    if intervention is not None:
        topics[io.INTERVENTION] = intervention
    if commands:
        topics.update({s.topic: s.msg_type for s in command_streams(robot, driver, output_interface)})
    return topics


def intervention_type():
    """vla_ros_interfaces/msg/Intervention, or None where that package is not built."""
    try:
        from vla_ros_interfaces.msg import Intervention
    except ImportError:
        return None
    return Intervention


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder_node")
        p = self.p = declare(self, RECORDER_PARAMS)
        self.add_on_set_parameters_callback(choice_guard(RECORDER_PARAMS))
        self.robot = load_robot(p["robot"])
        self.output = Path(p["output_dir"]).expanduser()
        self.output.mkdir(parents=True, exist_ok=True)
        self.topics = graph_topics(self.robot, p["driver"], p["output_interface"], p["record_commands"])
        self.log = QuietLogger(self)
        self.problems = ProblemTracker(self.log.error, self.log.info)
        self.lock = threading.Lock()
        self.writer: EpisodeWriter | None = None
        self.instruction = ""
        self.episodes = 0
        for topic, kind in self.topics.items():
            qos = QoSProfile(depth=QUEUE, reliability=ReliabilityPolicy.BEST_EFFORT if kind in SENSORS
                             else ReliabilityPolicy.RELIABLE)
            self.create_subscription(kind, topic, lambda raw, t=topic: self._on_message(t, raw), qos, raw=True)
        self.create_subscription(String, io.INSTRUCTION, self._on_instruction, QoSProfile(depth=10))
        # teleop takeovers (the controller's Intervention messages): each episode's spans in its info
        self.takeover_ns: int | None = None  # when the running takeover began (None: the policy has the arm)
        self.spans: list[list[int]] = []
        if intervention_type() is not None:
            latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                                 reliability=ReliabilityPolicy.RELIABLE)
            self.create_subscription(intervention_type(), io.INTERVENTION, self._on_intervention, latched)
        self.create_service(Trigger, io.RECORDER_START, self._on_start)
        self.create_service(SetBool, io.RECORDER_STOP, self._on_stop)
        self.diag_pub = self.create_publisher(DiagnosticArray, io.DIAGNOSTICS, QoSProfile(depth=10))
        self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        self.get_logger().info(f"recorder ready: {len(self.topics)} topics into {self.output}/episode_*")

    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_message(self, topic: str, raw: bytes) -> None:
        writer = self.writer
        if writer is not None:
            writer.write(topic, self.now_ns(), raw)

    def _on_instruction(self, msg: String) -> None:
        self.instruction = msg.data

    def _on_intervention(self, msg) -> None:
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        with self.lock:
            if msg.active and self.takeover_ns is None:
                self.takeover_ns = stamp
            elif not msg.active and self.takeover_ns is not None:
                if self.writer is not None:
                    self.spans.append([max(self.takeover_ns, self.writer.info["start_ns"]), stamp])
                self.takeover_ns = None
            else:
                return
            if self.writer is not None:
                self.writer.event(self.now_ns(), event="intervention", active=bool(msg.active), effective_ns=stamp)

    def _next_path(self) -> Path:
        numbers = [int(m.group(1)) for p in self.output.glob("episode_*")
                   if (m := re.fullmatch(r"episode_(\d+)", p.name))]
        return self.output / f"episode_{max(numbers, default=-1) + 1:06d}"

    def _on_start(self, _req, resp):
        with self.lock:
            self._close(success=None)
            try:
                info = json.loads(self.get_parameter("episode_info").value or "{}")
            except json.JSONDecodeError as exc:
                resp.success, resp.message = False, f"episode_info is not JSON: {exc}"
                return resp
            info.setdefault("instruction", info.get("instruction") or self.instruction
                            or self.get_parameter("instruction").value)
            info.update(robot=self.robot.name, start_ns=self.now_ns())
            path = self._next_path()
            self.writer = EpisodeWriter(path, {t: ros_type(k) for t, k in self.topics.items()}, info)
            self.writer.event(self.now_ns(), event="start", **info)
            self.spans = []
            self.episodes += 1
        resp.success, resp.message = True, str(path)
        self.get_logger().info(f"recording {path.name}: {info['instruction']!r}")
        return resp

    def _on_stop(self, req, resp):
        with self.lock:
            if self.writer is None:
                resp.success, resp.message = False, "no episode is being recorded"
                return resp
            path = self._close(success=bool(req.data))
        resp.success, resp.message = True, str(path)
        self.get_logger().info(f"closed {path.name}: success={bool(req.data)}")
        return resp

    def _close(self, success: bool | None) -> Path | None:
        writer, self.writer = self.writer, None
        if writer is None:
            return None
        end = self.now_ns()
        writer.event(end, event="end", success=success)
        if self.takeover_ns is not None:  # a takeover still running when the episode ended
            self.spans.append([max(self.takeover_ns, writer.info["start_ns"]), end])
        return writer.close(success=success, end_ns=end, duration_s=(end - writer.info["start_ns"]) * 1e-9,
                            interventions_ns=self.spans)

    def _publish_diagnostics(self) -> None:
        writer = self.writer
        values = {"recording": writer is not None, "episodes": self.episodes,
                  "episode": writer.path.name if writer else "-", "output_dir": str(self.output)}
        if writer is not None:
            values.update({f"messages{t.replace('/', '_')}": n for t, n in writer.counts.items()})
        self.diag_pub.publish(diag.node_report(
            self.get_clock().now().to_msg(), f"{self.get_name()}: recording", self.robot.name, self.problems,
            self.now_ns() * 1e-9, "recording" if writer else "idle", values))

    def close(self) -> None:
        """Close an open episode (success unknown) so the bag is readable."""
        if hasattr(self, "lock"):
            with self.lock:
                self._close(success=None)


def main(args: list[str] | None = None) -> int:
    return run(RecorderNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
