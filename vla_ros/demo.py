"""Seeded episodes through the full graph: success, latency and control-timing figures, video, plot."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger

from . import interfaces as io
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


@dataclass
class Recording:
    frames: list[np.ndarray] = field(default_factory=list)
    state_t: list[float] = field(default_factory=list)
    state_q: list[np.ndarray] = field(default_factory=list)
    cmd_t: list[float] = field(default_factory=list)
    cmd_q: list[np.ndarray] = field(default_factory=list)


class DemoClient(Node):
    """Drives episodes through services and records what the graph does."""

    def __init__(self, joints: list[str], camera_topic: str | None, max_frames: int):
        super().__init__("vla_demo")
        self.joints = joints
        self.rec = Recording()
        self.success = False
        self.diagnostics: dict[str, dict[str, str]] = {}
        self.max_frames = max_frames
        self._lock = threading.Lock()
        self.create_subscription(JointState, io.JOINT_STATES, self._on_state, qos_profile_sensor_data)
        self.create_subscription(JointState, io.CONTROLLER_STATE, self._on_cmd, QoSProfile(depth=20))
        if camera_topic:
            self.create_subscription(Image, camera_topic, self._on_image, qos_profile_sensor_data)
        self.create_subscription(Bool, io.SIM_TASK_SUCCESS, self._on_success, QoSProfile(depth=5))
        self.create_subscription(DiagnosticArray, io.DIAGNOSTICS, self._on_diag, QoSProfile(depth=20))
        self.clients_ = {
            "sim_reset": self.create_client(Trigger, io.SIM_RESET),
            "sim_params": self.create_client(SetParameters, "/sim_node/set_parameters"),
            "pause": self.create_client(Trigger, io.POLICY_PAUSE),
            "resume": self.create_client(Trigger, io.POLICY_RESUME),
            "reset": self.create_client(Trigger, io.POLICY_RESET),
            "enable": self.create_client(SetBool, io.CONTROLLER_ENABLE),
        }

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _positions(self, msg: JointState) -> np.ndarray | None:
        index = {n: i for i, n in enumerate(msg.name)}
        if not all(j in index for j in self.joints):
            return None
        return np.array([msg.position[index[j]] for j in self.joints])

    def _on_state(self, msg: JointState) -> None:
        q = self._positions(msg)
        if q is not None:
            with self._lock:
                self.rec.state_t.append(to_sec(msg.header.stamp))
                self.rec.state_q.append(q)

    def _on_cmd(self, msg: JointState) -> None:
        q = self._positions(msg)
        if q is not None:
            with self._lock:
                self.rec.cmd_t.append(to_sec(msg.header.stamp))
                self.rec.cmd_q.append(q)

    def _on_image(self, msg: Image) -> None:
        if len(self.rec.frames) < self.max_frames:
            self.rec.frames.append(image_to_array(msg))

    def _on_success(self, msg: Bool) -> None:
        self.success = msg.data

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for st in msg.status:
            self.diagnostics[st.name] = values_of(st)

    def call(self, name: str, request, timeout: float = 10.0):
        client = self.clients_[name]
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service for {name} not available")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} call timed out")
            time.sleep(0.005)
        return future.result()

    def set_seed(self, seed: int) -> None:
        value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=seed)
        result = self.call("sim_params", SetParameters.Request(parameters=[ParameterMsg(name="seed", value=value)]))
        if not result.results[0].successful:
            raise RuntimeError(f"could not set the sim seed: {result.results[0].reason}")


def run_episode(client: DemoClient, index: int, seed: int, timeout: float) -> Episode:
    client.call("pause", Trigger.Request())
    client.call("enable", SetBool.Request(data=False))
    client.set_seed(seed)
    client.call("sim_reset", Trigger.Request())
    client.success = False
    time.sleep(0.3)  # fresh joint states and object poses after the reset
    client.call("enable", SetBool.Request(data=True))
    client.call("reset", Trigger.Request())
    client.call("resume", Trigger.Request())
    start = client.now()
    while client.now() - start < timeout and not client.success:
        time.sleep(0.02)
    return Episode(index, seed, client.success, client.now() - start, start)


def _wait_for_graph(client: DemoClient, graph: Graph, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    names = {"sim_node: ", "policy_node: ", "controller_node: "}
    while time.monotonic() < deadline:
        failed = graph.failed()
        if failed:
            raise RuntimeError(f"nodes exited during start-up: {failed} (see the log)")
        have = {n.split(":")[0] + ": " for n in client.diagnostics}
        if names <= have and client.rec.state_t:
            return
        time.sleep(0.1)
    raise TimeoutError("the graph did not come up (no diagnostics from every node)")


def _num(values: dict[str, str], key: str) -> float:
    try:
        return float(values.get(key, "nan"))
    except ValueError:
        return float("nan")


def summarize(episodes: list[Episode], diagnostics: dict[str, dict[str, str]]) -> dict:
    policy = next((v for k, v in diagnostics.items() if k.startswith("policy_node")), {})
    ctrl = next((v for k, v in diagnostics.items() if k.startswith("controller_node")), {})
    return {
        "episodes": [e.__dict__ for e in episodes],
        "successes": sum(e.success for e in episodes),
        "inference_ms": {"p50": _num(policy, "inference_ms_p50"), "p95": _num(policy, "inference_ms_p95")},
        "obs_to_command_ms": {"p50": _num(ctrl, "obs_to_command_ms_p50"), "p95": _num(ctrl, "obs_to_command_ms_p95")},
        "control_rate_hz": _num(ctrl, "rate_hz"),
        "target_rate_hz": _num(ctrl, "target_rate_hz"),
        "period_error_ms": {"p50": _num(ctrl, "period_error_ms_p50"), "p99": _num(ctrl, "period_error_ms_p99"),
                            "max": _num(ctrl, "period_error_ms_max")},
        "chunks_accepted": _num(ctrl, "chunks_accepted"),
        "chunks_rejected": _num(ctrl, "chunks_rejected"),
    }


def write_video(frames: list[np.ndarray], path: Path, fps: float) -> Path | None:
    if not frames:
        return None
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def _with_gaps(t: np.ndarray, y: np.ndarray, gap: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN rows where samples are more than ``gap`` s apart, so lines do not bridge pauses."""
    breaks = np.nonzero(np.diff(t) > gap)[0] + 1
    return np.insert(t, breaks, np.nan), np.insert(y.astype(float), breaks, np.nan, axis=0)


def write_plot(rec: Recording, joints: list[str], episodes: list[Episode], path: Path) -> Path | None:
    if not rec.state_t or not rec.cmd_t:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = episodes[0].start if episodes else min(rec.state_t[0], rec.cmd_t[0])
    st, sq = _with_gaps(np.array(rec.state_t) - t0, np.array(rec.state_q))
    ct, cq = _with_gaps(np.array(rec.cmd_t) - t0, np.array(rec.cmd_q))
    fig, axes = plt.subplots(len(joints), 1, figsize=(11, 1.7 * len(joints)), sharex=True)
    for k, (ax, name) in enumerate(zip(np.atleast_1d(axes), joints)):
        ax.plot(ct, cq[:, k], lw=1.2, label="commanded")
        ax.plot(st, sq[:, k], lw=1.0, ls="--", label="measured")
        ax.set_ylabel(name, rotation=0, ha="right", fontsize=8)
        for ep in episodes:
            ax.axvline(ep.start - t0, color="grey", lw=0.6, alpha=0.6)
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=8)
    np.atleast_1d(axes)[0].set_title("Commanded vs measured joint positions (grey: episode starts)")
    np.atleast_1d(axes)[-1].set_xlabel("time [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_summary(summary: dict, files: list[Path | None]) -> None:
    print("\nepisode  seed  success  time [s]")
    for e in summary["episodes"]:
        print(f"{e['index']:>7}  {e['seed']:>4}  {'yes' if e['success'] else 'NO':>7}  {e['duration']:8.2f}")
    n = len(summary["episodes"])
    print(f"\nsuccess: {summary['successes']}/{n}")
    inf, o2c, pe = summary["inference_ms"], summary["obs_to_command_ms"], summary["period_error_ms"]
    print(f"inference latency            p50 {inf['p50']:.1f} ms   p95 {inf['p95']:.1f} ms")
    print(f"observation-to-command       p50 {o2c['p50']:.1f} ms   p95 {o2c['p95']:.1f} ms")
    print(f"control rate                 {summary['control_rate_hz']:.1f} Hz (target {summary['target_rate_hz']:.0f})")
    print(f"control period error         p50 {pe['p50']:.3f} ms   p99 {pe['p99']:.3f} ms   max {pe['max']:.3f} ms")
    for f in files:
        if f:
            print(f"wrote {f}")


@contextmanager
def spinning_client(joints: list[str], camera_topic: str | None, max_frames: int) -> Iterator[DemoClient]:
    """rclpy in this process, a DemoClient spun on a background thread, all torn down on exit."""
    rclpy.init()
    client = DemoClient(joints, camera_topic, max_frames)
    executor = SingleThreadedExecutor()
    executor.add_node(client)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        yield client
    finally:
        executor.shutdown()
        client.destroy_node()
        rclpy.try_shutdown()


def run_demo(args: GraphArgs, episodes: int, seed: int, out: Path, timeout: float, quiet: bool = True) -> dict:
    """Start the graph, run ``episodes`` seeded episodes, write outputs into ``out``; returns the summary."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    robot = load_robot(args.robot)
    joints = robot.action_joints
    cam = robot.cameras[0] if robot.cameras else None
    log = open(out / "nodes.log", "w") if quiet else None
    graph = Graph(args, log=log, workdir=out, overrides={"policy_node": {"start_paused": True}}).start()
    results: list[Episode] = []
    max_frames = int((timeout + 2) * episodes * (cam.rate if cam else 1))
    with spinning_client(joints, cam.image_topic if cam else None, max_frames) as client:
        try:
            _wait_for_graph(client, graph)
            for i in tqdm(range(episodes), desc="episodes", unit="ep"):
                ep = run_episode(client, i, seed + i, timeout)
                results.append(ep)
                tqdm.write(f"episode {i} (seed {ep.seed}): {'success' if ep.success else 'FAILED'} "
                           f"in {ep.duration:.2f} s")
                failed = graph.failed()
                if failed:
                    raise RuntimeError(f"nodes exited: {failed}")
            client.call("pause", Trigger.Request())
            time.sleep(1.2)  # one more diagnostics period with everything measured
            summary = summarize(results, client.diagnostics)
        finally:
            code = graph.stop()
            if log:
                log.close()
    summary["graph_exit_code"] = code
    files = [
        write_video(client.rec.frames, out / "camera.mp4", cam.rate if cam else 10.0),
        write_plot(client.rec, joints, results, out / "joints.png"),
    ]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    files.append(out / "summary.json")
    if quiet:
        files.append(out / "nodes.log")
    print_summary(summary, files)
    return summary
