"""Test helpers: a probe node that records topics and calls services, and graph start-up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile

from vla_ros.drivers.streams import command_streams
from vla_ros.episodes import spinning
from vla_ros.fuzzing.monitor import CommandMonitor
from vla_ros.graph import GraphArgs
from vla_ros.launcher import Graph
from vla_ros.ros.diagnostics import level_of, values_of

JOINT_STATES = "/wx250s/joint_states"  # the WidowX preset's (xs_sdk's) joint-state topic


@dataclass
class Received:
    t: float  # receive time (node clock, s)
    msg: Any
    source: float = 0.0  # the publisher's send time (DDS source timestamp, s)
    seq: int = 0  # the publisher's sequence number (DDS): gaps are messages this probe lost


class Probe(Node):
    """Records messages per topic (with receive times) and offers blocking service calls."""

    def __init__(self, name: str = "test_probe"):
        super().__init__(name)
        self.received: dict[str, list[Received]] = {}
        self._lock = threading.Lock()
        self.executor_ = SingleThreadedExecutor()
        self.executor_.add_node(self)
        self.spin_errors: list[str] = []
        self._closing = False  # what the spin thread survived (the first few)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        """Spin until shut down; an exception in one callback is recorded, and does not end the recording
        of every topic (a dead spin thread reads as every later message and service reply going missing)."""
        while self.context.ok() and not self._closing:
            try:
                self.executor_.spin_once(timeout_sec=0.1)
            except Exception as exc:  # noqa: BLE001 - recorded, shown by wait_for and call
                if self._closing or not self.context.ok():
                    return  # (shut down while waiting)
                if len(self.spin_errors) < 10:
                    self.spin_errors.append(repr(exc))

    def guest(self, node: Node):
        """Spin ``node`` on its own executor for a block (never on the probe's: destroying a node under the
        probe's waiting executor can end its thread), destroyed after."""
        return spinning(node)

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def record(self, topic: str, msg_type, qos: QoSProfile | int = 50) -> None:
        self.received.setdefault(topic, [])

        def cb(msg, info, topic=topic):
            with self._lock:
                self.received[topic].append(Received(self.now(), msg, info.get("source_timestamp", 0) * 1e-9,
                                                     info.get("publication_sequence_number", 0)))

        self.create_subscription(msg_type, topic, cb, qos if not isinstance(qos, int) else QoSProfile(depth=qos))

    def messages(self, topic: str, since: float = 0.0, sent: bool = False) -> list[Received]:
        """Messages received at or after ``since``; with ``sent``, those the publisher sent at or after it
        (its DDS source stamp: a loaded machine can deliver a message sent before ``since`` well after)."""
        with self._lock:
            return [r for r in self.received.get(topic, []) if (r.source if sent else r.t) >= since]

    def clear(self, topic: str | None = None) -> None:
        with self._lock:
            for key in [topic] if topic else list(self.received):
                self.received[key] = []

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.02)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}{self._spin_note()}")

    def _spin_note(self) -> str:
        alive = "" if self._thread.is_alive() else "; the probe's spin thread has ended"
        return alive + (f"; callbacks raised {self.spin_errors}" if self.spin_errors else "")

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        client = self.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            assert time.monotonic() < deadline, f"{name} call timed out{self._spin_note()}"
            time.sleep(0.005)
        self.destroy_client(client)
        return future.result()

    def diagnostics(self, node: str, since: float = 0.0) -> list[dict[str, str]]:
        """Diagnostic statuses (level, message and values) from ``node`` received since ``since``."""
        out = []
        for r in self.messages("/diagnostics", since):
            for st in r.msg.status:
                if st.name.startswith(node + ":"):
                    values = values_of(st)
                    values["_level"], values["_message"] = level_of(st), st.message
                    out.append(values)
        return out

    def close(self) -> None:
        self._closing = True
        self.executor_.shutdown()
        self._thread.join(timeout=5.0)
        self.destroy_node()


def record_diagnostics(probe: Probe) -> None:
    probe.record("/diagnostics", DiagnosticArray, 100)


def start_graph(tmp_path: Path, overrides: dict | None = None, params: dict | None = None, **args) -> Graph:
    """Start the graph (args as launch arguments); ``params`` is written as a user params_file. The policy is
    the fast, deterministic scripted expert unless a test names another (the built-in model has its own)."""
    args.setdefault("policy", "scripted")
    # The controller's behaviour tests speak ros2_control (forward position commands the probe can read); a test
    # of the real drivers' interfaces passes driver="preset" (the preset's driver, emulated by the sim).
    if args.get("driver", "ros2_control") == "preset":
        args.pop("driver")
    else:
        args.setdefault("driver", "ros2_control")
    if args.get("sim") == "none":  # the probe or a FakeRobot is the robot: stream at once, no deviation stop
        args.setdefault("enable", "true")
        args.setdefault("operator_heartbeat", "false")
        ctrl = (overrides := dict(overrides or {})).setdefault("controller_node", {})
        overrides["controller_node"] = {"max_deviation": 0.0, **ctrl}
    if params:
        path = tmp_path / "user_params.yaml"
        # (rcl's parser takes no YAML aliases, which a dict shared by two nodes would become)
        path.write_text(yaml.safe_dump({node: {"ros__parameters": dict(p)} for node, p in params.items()}))
        args["params_file"] = str(path)
    log = open(tmp_path / "nodes.log", "w")
    # check=False: with sim:=none a test's probe stands in for the robot (and any sim topics it needs)
    graph = Graph(GraphArgs.from_strings({k: str(v) for k, v in args.items()}), log=log, workdir=tmp_path,
                  overrides=overrides, check=False)
    graph.log_path = tmp_path / "nodes.log"
    stop = graph.stop

    def stop_and_show(timeout: float = 10.0) -> int:  # a failed stop shows why in the test's output
        code = stop(timeout)
        if code:
            print("".join(graph.log_path.read_text().splitlines(keepends=True)[-80:]))
        return code

    graph.stop = stop_and_show
    return graph.start()


def wait_for_nodes(probe: Probe, graph: Graph, nodes: list[str], timeout: float = 60.0) -> None:
    def up() -> bool:
        failed = graph.failed()
        assert not failed, f"nodes exited: {failed}\n{graph.log_path.read_text()}"
        return all(probe.diagnostics(n) for n in nodes)

    probe.wait_for(up, timeout, f"diagnostics from {nodes}")


def limit_monitor(probe: Probe, robot, rate: float = 500.0, driver: str = "ros2_control",
                  interface: str = "") -> CommandMonitor:
    """Checks every command the probe receives on the driver's streams (default: ros2_control, as start_graph;
    "" for the preset's driver) (subscribed as the driver does): finite,
    within the URDF position limits (grippers: in the driver's units) and one command period's URDF velocity
    limit of the previous one (sequence numbers tell lost messages from jumps)."""
    streams = command_streams(robot, driver, interface, rate)
    return CommandMonitor(probe, streams, {s.name: robot.limits_for(s.joints, velocity_scale=1.0)
                                           for s in streams if s.joints})


def assert_no_violation(monitor: CommandMonitor, at_least: int) -> None:
    assert sum(monitor.violations.values()) == 0, monitor.examples
    first = next(iter(monitor.counts))
    assert monitor.counts[first] > at_least, monitor.counts


class FakeRobot:
    """A robot's drivers, from the test's process: every ``period`` s a tick; every ``state_every`` ticks
    the WidowX's joint states at ``home``, every ``camera_every`` ticks (0: none) a camera frame on
    /camera/image_raw (raw RGB, or with ``jpeg`` the bytes as a CompressedImage on
    /camera/image_raw/compressed). With ``sim_time`` it also publishes /clock every tick and stamps in its own
    time, from 1000 s (``jump`` steps it). It subscribes to the ros2_control command topics, as the driver.

    ``mode`` changes the joint states: ok, nan (elbow NaN), missing (no elbow), silent (none); ``camera``
    False stalls the frames."""

    def __init__(self, probe: Probe, joints: list[str], home: list[float], period: float = 0.01,
                 state_every: int = 1, camera_every: int = 0, jpeg: bytes | None = None, sim_time: bool = False):
        import numpy as np
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CompressedImage, Image, JointState

        self.probe, self.joints, self.home = probe, list(joints), list(home)
        self.period, self.state_every, self.camera_every, self.jpeg = period, state_every, camera_every, jpeg
        self.js = probe.create_publisher(JointState, JOINT_STATES, 10)
        from std_msgs.msg import Float64MultiArray

        for topic in ("/arm_controller/commands", "/gripper_controller/commands"):  # it is the robot's driver
            if topic not in probe.received:
                probe.record(topic, Float64MultiArray, 500)
        self.cam = probe.create_publisher(CompressedImage, "/camera/image_raw/compressed", 2) if jpeg else \
            probe.create_publisher(Image, "/camera/image_raw", 2) if camera_every else None
        self.clock = probe.create_publisher(Clock, "/clock", 10) if sim_time else None
        self.image = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
        self.offset = 1000.0 - time.monotonic()  # sim time starts at 1000 s
        self.mode = "ok"
        self.camera = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> float:
        return time.monotonic() + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += seconds

    def _run(self) -> None:
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import CompressedImage, JointState

        from vla_ros.ros.conversions import array_to_image, to_time

        k = 0
        while not self._stop.is_set():
            stamp = to_time(self.now()) if self.clock else self.probe.get_clock().now().to_msg()
            if self.clock:
                self.clock.publish(Clock(clock=stamp))
            if self.mode != "silent" and k % self.state_every == 0:
                names, pos = list(self.joints), list(self.home)
                if self.mode == "nan":
                    pos[2] = float("nan")
                elif self.mode == "missing":
                    names, pos = names[:2] + names[3:], pos[:2] + pos[3:]
                msg = JointState(name=names, position=pos)
                msg.header.stamp = stamp
                self.js.publish(msg)
            if self.cam and self.camera and k % self.camera_every == 0:
                if self.jpeg:
                    frame = CompressedImage(format="rgb8; jpeg compressed bgr8", data=self.jpeg)
                    frame.header.stamp = stamp
                else:
                    frame = array_to_image(self.image, stamp, "camera_optical_frame")
                self.cam.publish(frame)
            k += 1
            time.sleep(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def preset_without_model(folder: Path) -> Path:
    """The WidowX preset saved as robot 'nomodel': a robot no built-in model is shipped for."""
    from vla_ros.paths import share_dir

    preset = yaml.safe_load((share_dir() / "config" / "robots" / "widowx.yaml").read_text())
    path = folder / "nomodel.yaml"
    path.write_text(yaml.safe_dump({**preset, "name": "nomodel"}))
    return path
