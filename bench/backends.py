"""Backend benchmark on this CPU: inference latency of the tiny models, our pre/post-processing overhead
per call, and the remote round trip over loopback versus in-process.

    python -m bench.backends [--out output/bench]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.policies import create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402


def timed(fn, n: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000.0)
    a = np.array(samples)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "n": n}


def aloha_observation(keys: list[str], seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    state = np.array([0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.05] * 2)
    return Observation(time.time(), state, {k: rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for k in keys},
                       "fold the towel")


def bench_pi0(folder: Path, n: int) -> dict:
    robot = load_robot("aloha")
    keys = ["cam_high"]
    ctx = policy_context(robot, {"backend": "pi0", "image_keys": keys, "image_topics": keys, "chunk_dt": 0.02,
                                 "horizon": 50, "pi0.model_path": str(folder), "pi0.num_steps": 10})
    policy = create_policy("pi0", ctx)
    obs = aloha_observation(keys)
    inputs = policy.preprocess(obs)
    raw = policy.sample(inputs)[0].float().numpy()
    return {
        "infer_ms": timed(lambda: policy.infer(obs), n),
        "preprocess_ms": timed(lambda: policy.preprocess(obs), 5 * n),
        "postprocess_ms": timed(lambda: policy.postprocess(raw, obs), 5 * n),
        "setup": "tiny pi0 (0.3M params), 1 x 224x224 camera, 14-D state, 50 x 14 chunk, 10 flow steps",
    }


def bench_openvla(folder: Path, n: int) -> dict:
    robot = load_robot("widowx")
    ctx = policy_context(robot, {"backend": "openvla", "chunk_dt": 0.2, "horizon": 1,
                                 "openvla.model_path": str(folder)})
    policy = create_policy("openvla", ctx)
    obs = Observation(time.time(), np.array([0.0, -0.5, 0.4, 0.0, 1.2, 0.0, 0.03]),
                      {"image_0": np.zeros((224, 224, 3), np.uint8)}, "pick up the red cube")
    tokens = policy.generate_tokens(obs)

    def post():
        action = policy.stats.unnormalize_bounds(policy.bins.decode(tokens))
        policy.action_space.to_targets(action[None, :], obs.state)

    return {
        "infer_ms": timed(lambda: policy.infer(obs), n),
        "preprocess_ms": timed(lambda: policy._inputs(obs), 5 * n),
        "postprocess_ms": timed(post, 5 * n),
        "setup": "tiny Llava-architecture model (32000-token vocab), 1 camera, 7 tokens greedy, ee_delta + IK",
    }


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_remote(folder: Path, n: int) -> dict:
    """`vla-ros serve` in its own process (as on a GPU workstation) versus the same work in-process."""
    import subprocess
    import sys
    import urllib.request

    from vla_ros.remote.client import PolicyClient
    from vla_ros.remote.layouts import get_layout
    from vla_ros.serving import BackendService

    robot = load_robot("aloha")
    keys = ["cam_high", "cam_left_wrist", "cam_right_wrist"]
    ctx = policy_context(robot, {"backend": "pi0", "image_keys": keys, "image_topics": keys, "chunk_dt": 0.02,
                                 "horizon": 50, "pi0.model_path": str(folder), "pi0.num_steps": 10,
                                 "pi0.camera_keys": keys})
    service = BackendService(create_policy("pi0", ctx), "aloha", robot.openpi.cameras)
    request = get_layout("aloha").observation(aloha_observation(keys), service.ctx)
    in_process = timed(lambda: service(request), n)
    port = _free_port()
    cmd = [sys.executable, "-m", "vla_ros", "serve", "robot:=aloha", "policy:=pi0", "--port", str(port),
           "--set", f"pi0.model_path={folder}", "--set", f"pi0.camera_keys=[{','.join(keys)}]",
           "--set", "pi0.num_steps=10", "--set", "horizon=50", "--set", "chunk_dt=0.02"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    overhead, rtts, server_ms = [], [], []
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"vla-ros serve did not start: {proc.stderr.read()}") from None
                time.sleep(0.2)
        client = PolicyClient("127.0.0.1", port, timeout=60.0)
        for _ in range(3):
            client.infer(request)
        for _ in range(n):
            t = time.perf_counter()
            reply = client.infer(request)
            rtt = (time.perf_counter() - t) * 1000.0
            rtts.append(rtt)
            server_ms.append(reply["server_timing"]["infer_ms"])
            overhead.append(rtt - reply["server_timing"]["infer_ms"])
        assert reply["actions"].shape == (50, 14)
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    def stats(values: list[float]) -> dict:
        return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)), "n": n}

    return {
        "in_process_ms": in_process,
        "server_infer_ms": stats(server_ms),
        "round_trip_ms": stats(rtts),
        "overhead_beyond_server_infer_ms": stats(overhead),
        "setup": "tiny pi0 behind `vla-ros serve` (separate process, loopback), ALOHA layout, 3 x 224x224 cameras, "
                 "50 x 14 chunk",
    }


def bench_scripted(n: int) -> dict:
    from vla_ros.sim.physics import ArmSim
    from vla_ros.sim.rollout import objects_input

    robot = load_robot("widowx")
    sim = ArmSim(robot)
    policy = create_policy("scripted", policy_context(robot, {"backend": "scripted"}))
    q = sim.positions()
    obs = Observation(1.0, q[[sim.joint_names.index(j) for j in robot.state_joints]], {}, "pick up the red cube",
                      {"objects": objects_input(sim)})
    out = {"infer_ms": timed(lambda: policy.infer(obs), n), "setup": "scripted expert, 10 waypoints of IK"}
    sim.close()
    return out


def bench_builtin(n: int, robot_name: str = "widowx") -> dict | None:
    """The built-in VLA shipped for ``robot_name``, on its cameras at the preset's resolution, as the policy node
    runs it (one thread)."""
    from vla_ros.policies.builtin import SHIPPED

    if not (SHIPPED / f"builtin_{robot_name}" / "config.json").exists():
        return None
    robot = load_robot(robot_name)
    policy = create_policy("builtin", policy_context(robot, {"backend": "builtin"}))
    rng = np.random.default_rng(0)
    cams = [c for c in robot.cameras if c.key in policy.cfg.cameras]
    home = dict(zip(robot.arm_joints, robot.sim.home or []))
    state = np.array([home.get(j, robot.sim.gripper_home or 0.0) for j in robot.state_joints])
    obs = Observation(time.time(), state, {c.key: rng.integers(0, 255, (c.height, c.width, 3), dtype=np.uint8)
                                           for c in cams}, "pick up the red cube")
    result = {"infer_ms": timed(lambda: policy.infer(obs), 10 * n),
              "preprocess_ms": timed(lambda: policy.preprocess(obs), 10 * n),
              "setup": f"{robot_name} built-in VLA ({sum(p.numel() for p in policy.model.parameters()) / 1e3:.0f}k "
                       f"parameters, {policy.cfg.head} head), "
                       + " + ".join(f"{c.width}x{c.height}" for c in cams) + " camera(s), "
                       + "".join(f"crop {k} of {v[0]}, " for k, v in policy.cfg.crops.items())
                       + f"{policy.cfg.horizon} x {len(policy.cfg.action_joints)} chunk, 1 thread"}
    result["chunks_per_s"] = 1000.0 / result["infer_ms"]["p50"]
    return result


BUILTIN_ROWS = {"builtin": "widowx", "builtin franka": "franka", "builtin aloha": "aloha"}  # row -> robot preset


def run(n: int, out: Path) -> dict:
    from tqdm import tqdm

    from vla_ros.policies.tiny_models import build_tiny_openvla, build_tiny_pi0

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="vla_bench_"))
    steps = [("scripted", lambda: bench_scripted(n)),
             *((row, lambda r=robot: bench_builtin(n, r)) for row, robot in BUILTIN_ROWS.items()),
             ("pi0", lambda: bench_pi0(build_tiny_pi0(tmp / "pi0", 14, 14, 50), n)),
             ("openvla", lambda: bench_openvla(build_tiny_openvla(tmp / "openvla"), n)),
             ("openpi remote", lambda: bench_remote(tmp / "pi0", n))]
    report = {}
    for name, fn in tqdm(steps, desc="backends"):
        report[name] = fn()
    return report


def table(r: dict) -> str:
    def f(s: dict) -> str:
        return f"{s['p50']:.2f} / {s['p95']:.2f}"

    lines = ["| backend | inference p50 / p95 [ms] | pre-processing [ms] | post-processing [ms] | setup |",
             "|---|---|---|---|---|"]
    for name in ("scripted", *BUILTIN_ROWS, "pi0", "openvla"):
        s = r.get(name)
        if s is None:
            continue
        pre = f(s["preprocess_ms"]) if "preprocess_ms" in s else "-"
        post = f(s["postprocess_ms"]) if "postprocess_ms" in s else "-"
        lines.append(f"| {name} | {f(s['infer_ms'])} | {pre} | {post} | {s['setup']} |")
    rem = r["openpi remote"]
    lines += ["", "| remote (openpi protocol, loopback) | p50 / p95 [ms] |", "|---|---|",
              f"| in-process (layout + backend + reply) | {f(rem['in_process_ms'])} |",
              f"| server's own inference (server_timing) | {f(rem['server_infer_ms'])} |",
              f"| round trip through vla-ros serve | {f(rem['round_trip_ms'])} |",
              f"| round trip beyond the server's inference | {f(rem['overhead_beyond_server_infer_ms'])} |",
              "", f"Remote setup: {rem['setup']}."]
    pre_post = r["pi0"]["preprocess_ms"]["p50"] + r["pi0"]["postprocess_ms"]["p50"]
    lines.append(f"pi0 pre- plus post-processing p50: {pre_post:.2f} ms (1 camera, 14-D state).")
    for name in BUILTIN_ROWS:
        if r.get(name):
            lines.append(f"{r[name]['setup'].split(' (')[0]}: {r[name]['chunks_per_s']:.0f} chunks/s (batch 1, "
                         "inference p50).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("output/bench"))
    ns = parser.parse_args(argv)
    report = run(ns.n, ns.out)
    text = table(report)
    print(text)
    (ns.out / "backends.json").write_text(json.dumps(report, indent=2))
    (ns.out / "backends.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
