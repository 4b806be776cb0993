"""Episodes through the running graph: one client node drives them (demo, recording, evaluation).

An episode: pause the policy, stop the controller, seed and reset the sim, publish the instruction
(the policy and the sim's success check both follow /vla/instruction), optionally start the recorder,
then stream again and wait for task success or the timeout.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Path as PathMsg
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float64, Int32, String
from std_srvs.srv import SetBool, Trigger
from visualization_msgs.msg import MarkerArray

from . import interfaces as io
from .core.instructions import target_object
from .core.path_overlay import PinholeCamera, draw_path
from .core.transforms import square_yaw_deg
from .graph import GraphArgs
from .launcher import Graph
from .robots import load_robot
from .ros.conversions import image_to_array, to_sec
from .ros.diagnostics import values_of


@dataclass
class Episode:
    index: int
    seed: int
    success: bool
    duration: float
    start: float
    instruction: str = ""
    bag: str = ""
    grasp_width: float = float("nan")  # m: the held cube's width along the jaws at success (sim; NaN: unknown)
    progress: int = 0  # how many of the task's stages (vla_ros.robots.TASK_STAGES) it reached (sim)
    target_yaw: float = float("nan")  # deg: the named object's yaw at the start, folded into [-45, 45) (sim)


@dataclass
class Recording:
    frames: list[np.ndarray] = field(default_factory=list)
    state_t: list[float] = field(default_factory=list)
    state_q: list[np.ndarray] = field(default_factory=list)
    cmd_t: list[float] = field(default_factory=list)
    cmd_q: list[np.ndarray] = field(default_factory=list)


def _parameter(name: str, value) -> ParameterMsg:
    if isinstance(value, int) and not isinstance(value, bool):
        v = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    elif isinstance(value, float):
        v = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    else:
        v = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=str(value))
    return ParameterMsg(name=name, value=v)


class EpisodeClient(Node):
    """Drives episodes through services and records what the graph does (frames only while ``keep_frames``)."""

    def __init__(self, joints: list[str], camera_topic: str | None, max_frames: int, listen: bool = True,
                 joint_states_topic: str = io.JOINT_STATES, overlay: tuple | None = None):
        """``listen=False``: no joint-state or camera subscription (services, diagnostics and the
        controller's state only), for a client that must not receive a flood of those inputs. ``overlay``:
        (PinholeCamera of the recorded camera, planned-path topics) to draw the policy's latest planned tool
        paths over the recorded frames."""
        super().__init__("vla_episodes")
        self.listen = listen
        self.joints = joints
        self.rec = Recording()
        self.success = False
        self.grasp_width = float("nan")
        self.progress = 0
        self.object_quats: dict[str, list[float]] = {}  # wxyz of each object, from the sim's /sim/objects
        self.keep_frames = True
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.max_frames = max_frames
        self._lock = threading.Lock()
        if listen:
            self.create_subscription(JointState, joint_states_topic, self._on_state, qos_profile_sensor_data)
        self.create_subscription(JointState, io.CONTROLLER_STATE, self._on_cmd, QoSProfile(depth=20))
        if camera_topic and listen:
            self.create_subscription(Image, camera_topic, self._on_image, qos_profile_sensor_data)
        self.overlay, self.paths = (overlay[0], {}) if overlay and listen else (None, {})
        for topic in overlay[1] if self.overlay else ():
            self.create_subscription(PathMsg, topic, lambda msg, t=topic: self._on_path(t, msg), QoSProfile(depth=5))
        self.create_subscription(Bool, io.SIM_TASK_SUCCESS, self._on_success, QoSProfile(depth=5))
        self.create_subscription(Float64, io.SIM_GRASP_WIDTH, self._on_grasp, QoSProfile(depth=5))
        self.create_subscription(Int32, io.SIM_TASK_PROGRESS, self._on_progress, QoSProfile(depth=5))
        self.create_subscription(MarkerArray, io.SIM_OBJECTS, self._on_objects, QoSProfile(depth=2))
        self.create_subscription(DiagnosticArray, io.DIAGNOSTICS, self._on_diag, QoSProfile(depth=20))
        self.instruction_pub = self.create_publisher(String, io.INSTRUCTION, QoSProfile(depth=10))
        self.clients_ = {
            "sim_reset": self.create_client(Trigger, io.SIM_RESET),
            "sim_params": self.create_client(SetParameters, "/sim_node/set_parameters"),
            "policy_params": self.create_client(SetParameters, "/policy_node/set_parameters"),
            "recorder_params": self.create_client(SetParameters, "/recorder_node/set_parameters"),
            "record_start": self.create_client(Trigger, io.RECORDER_START),
            "record_stop": self.create_client(SetBool, io.RECORDER_STOP),
            "pause": self.create_client(Trigger, io.POLICY_PAUSE),
            "resume": self.create_client(Trigger, io.POLICY_RESUME),
            "reset": self.create_client(Trigger, io.POLICY_RESET),
            "enable": self.create_client(SetBool, io.CONTROLLER_ENABLE),
        }

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _positions(self, msg: JointState) -> np.ndarray | None:
        """The joints' positions, or None for a message without them (or with fewer positions than names)."""
        index = {n: i for i, n in enumerate(msg.name)}
        if len(msg.position) != len(msg.name) or not all(j in index for j in self.joints):
            return None
        return np.array([msg.position[index[j]] for j in self.joints])

    def _on_state(self, msg: JointState) -> None:
        q = self._positions(msg)
        if q is not None and self.keep_frames:
            with self._lock:
                self.rec.state_t.append(to_sec(msg.header.stamp))
                self.rec.state_q.append(q)

    def _on_cmd(self, msg: JointState) -> None:
        q = self._positions(msg)
        if q is not None and self.keep_frames:
            with self._lock:
                self.rec.cmd_t.append(to_sec(msg.header.stamp))
                self.rec.cmd_q.append(q)

    def _on_image(self, msg: Image) -> None:
        if self.keep_frames and len(self.rec.frames) < self.max_frames:
            frame = image_to_array(msg)
            for points in list(self.paths.values()) if self.overlay else ():
                frame = draw_path(frame, self.overlay, points)
            self.rec.frames.append(frame)

    def _on_path(self, topic: str, msg: PathMsg) -> None:
        p = [(s.pose.position.x, s.pose.position.y, s.pose.position.z) for s in msg.poses[:256]]
        self.paths[topic] = np.array(p, float).reshape(-1, 3)

    def _on_success(self, msg: Bool) -> None:
        self.success = msg.data

    def _on_grasp(self, msg: Float64) -> None:
        self.grasp_width = msg.data

    def _on_objects(self, msg: MarkerArray) -> None:
        o = [(m.ns, m.pose.orientation) for m in msg.markers[:32]]
        self.object_quats = {ns: [q.w, q.x, q.y, q.z] for ns, q in o}

    def target_yaw(self, instruction: str | None) -> float:
        """The named object's current yaw (deg, folded: square_yaw_deg), NaN without an instruction or poses."""
        quats = self.object_quats
        name = target_object(instruction, quats) if instruction and quats else None
        return square_yaw_deg(quats[name]) if name else float("nan")

    def _on_progress(self, msg: Int32) -> None:
        self.progress = max(self.progress, int(msg.data))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            self.diagnostics[st.name] = values_of(st)

    def check(self) -> None:
        """Raise Interrupted once rclpy's signal handler shut the context down (Ctrl-C, SIGTERM)."""
        if not self.context.ok():
            raise Interrupted("interrupted")

    def call(self, name: str, request, timeout: float = 10.0):
        self.check()
        client = self.clients_[name]
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service for {name} not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} call timed out")
            time.sleep(0.005)
        return future.result()

    def set_parameter(self, node: str, name: str, value) -> None:
        result = self.call(f"{node}_params", SetParameters.Request(parameters=[_parameter(name, value)]))
        if not result.results[0].successful:
            raise RuntimeError(f"could not set {node}.{name}: {result.results[0].reason}")

    def set_seed(self, seed: int) -> None:
        self.set_parameter("sim", "seed", seed)

    def set_instruction(self, instruction: str) -> None:
        """The policy's parameter (confirmed), and the topic the sim's success check follows."""
        self.set_parameter("policy", "instruction", instruction)
        self.instruction_pub.publish(String(data=instruction))


def run_episode(client: EpisodeClient, index: int, seed: int, timeout: float, instruction: str | None = None,
                record: bool = False, hold_after: float = 0.3) -> Episode:
    """One seeded episode; with ``record`` the recorder writes it to a bag (success marked at the end)."""
    client.call("pause", Trigger.Request())
    client.call("enable", SetBool.Request(data=False))
    client.set_seed(seed)
    if instruction is not None:
        client.set_instruction(instruction)
    client.call("sim_reset", Trigger.Request())
    time.sleep(0.3)
    client.success, client.grasp_width = False, float("nan")  # fresh joint states and object poses after the reset
    client.progress = 0
    yaw = client.target_yaw(instruction)
    bag = ""
    if record:
        info = {"seed": seed, "index": index, **({"instruction": instruction} if instruction else {})}
        # (by parameter: the recorder may not yet receive /vla/instruction when the first episode starts)
        client.set_parameter("recorder", "episode_info", json.dumps(info))
        bag = client.call("record_start", Trigger.Request()).message
    client.call("enable", SetBool.Request(data=True))
    client.call("reset", Trigger.Request())
    client.call("resume", Trigger.Request())
    start = client.now()
    while client.now() - start < timeout and not client.success:
        client.check()
        time.sleep(0.02)
    duration = client.now() - start
    settle = client.now()
    while client.success and not np.isfinite(client.grasp_width) and client.now() - settle < 0.3:
        time.sleep(0.01)  # (another topic: it may land a moment after the success)
    if record:
        if client.success:
            time.sleep(hold_after)  # the held cube at the end of the demonstration
        client.call("record_stop", SetBool.Request(data=client.success))
    return Episode(index, seed, client.success, duration, start, instruction or "", bag,
                   client.grasp_width if client.success else float("nan"), client.progress, yaw)


def wait_for_graph(client: EpisodeClient, graph: Graph, nodes: list[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    names = {f"{n}: " for n in nodes}
    while time.monotonic() < deadline:
        failed = graph.failed()
        if failed:
            raise RuntimeError(f"nodes exited during start-up: {failed} (see the log)")
        have = {n.split(":")[0] + ": " for n in client.diagnostics}
        if names <= have and (client.rec.state_t or not client.listen):
            return
        time.sleep(0.1)
    raise TimeoutError(f"the graph did not come up (no diagnostics from every node of {nodes})")


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (rclpy's handler shut the context down); the graph is still stopped."""


@contextmanager
def spinning(node: Node) -> Iterator[Node]:
    """Spin ``node`` on its own executor and thread for a block, then stop that executor and join its thread
    before destroying the node (destroying a node that another thread's executor is waiting on can end that
    thread; a spin thread still inside rcl at interpreter exit aborted the process)."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin() -> None:
        try:
            executor.spin()
        except (ExternalShutdownException, RuntimeError):  # (RCLError is a RuntimeError)
            if node.context.ok():
                raise  # a real failure; a signal that shut the context down is the main thread's to report

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield node
    finally:
        executor.shutdown(timeout_sec=5.0)
        thread.join(timeout=5.0)
        node.destroy_node()


@contextmanager
def spinning_client(joints: list[str], camera_topic: str | None, max_frames: int,
                    listen: bool = True, joint_states_topic: str = io.JOINT_STATES,
                    overlay: tuple | None = None) -> Iterator[EpisodeClient]:
    """rclpy in this process, an EpisodeClient spun on a background thread, all torn down on exit."""
    rclpy.init(args=[])  # not sys.argv: rcl would read the CLI's name:=value launch arguments as remap rules
    client = EpisodeClient(joints, camera_topic, max_frames, listen, joint_states_topic, overlay)
    try:
        with spinning(client):
            try:
                yield client
            except Exception as exc:
                if not client.context.ok():  # whatever failed, failed because a signal shut rclpy down
                    raise Interrupted("interrupted") from exc
                raise
    finally:
        rclpy.try_shutdown()


@dataclass
class Session:
    graph: Graph
    client: EpisodeClient
    robot: object
    exit_code: int = 0


def path_overlay(robot, cam) -> tuple | None:
    """(camera model, planned-path topics) for drawing the policy's planned paths on ``cam``'s frames; None for a
    camera that moves with a link (a wrist camera) or has no simulated pose."""
    camera = PinholeCamera.of(cam) if cam is not None else None
    if camera is None:
        return None
    topics = [f"{io.PLANNED_PATH}/{a.name}" for a in robot.arms] if len(robot.arms) > 1 else [io.PLANNED_PATH]
    return camera, topics


@contextmanager
def session(args: GraphArgs, out: Path, log: TextIO | None, max_frames: int = 0,
            overrides: dict | None = None, listen: bool = True) -> Iterator[Session]:
    """The graph (policy paused) and a client, up and reporting; stopped on exit (``exit_code`` set)."""
    robot = load_robot(args.robot)
    cam = robot.cameras[0] if robot.cameras else None
    overrides = {"policy_node": {"start_paused": True}, **(overrides or {})}
    graph = Graph(args, log=log, workdir=out, overrides=overrides).start()
    nodes = [spec.name for spec in graph.specs]
    result = Session(graph, None, robot)  # type: ignore[arg-type]
    try:
        with spinning_client(robot.action_joints, cam.image_topic if cam else None, max_frames, listen,
                             robot.joint_states_topic, path_overlay(robot, cam)) as client:
            result.client = client
            wait_for_graph(client, graph, nodes)
            yield result
            if client.context.ok():
                client.call("pause", Trigger.Request())
    finally:
        result.exit_code = graph.stop()
