"""JPEG camera frames for a remote policy server (openpi protocol, `vla-ros serve`): bytes per request and the
latency added (client encode + server decode, and the loopback round trip) for ALOHA's three 224x224 cameras
rendered by the sim; and how far the shipped WidowX model's actions move when its frames went through JPEG,
next to how far they move under Gaussian pixel noise of the same mean squared error."""

from __future__ import annotations

import time

import numpy as np


def _p50(values: list[float]) -> float:
    return float(np.percentile(values, 50))


def sim_frames(robot_name: str, cameras: list[str], seeds: range) -> list[dict[str, np.ndarray]]:
    from vla_ros.robots import load_robot
    from vla_ros.sim.physics import ArmSim

    robot = load_robot(robot_name)
    sim = ArmSim(robot)
    names = {c.key: c.name for c in robot.cameras}
    out = []
    for seed in seeds:
        sim.reset(seed)
        sim.step(50)
        out.append({k: sim.render(names[k], 224, 224) for k in cameras})
    sim.close()
    return out


def transport(n: int, quality: int) -> dict:
    from vla_ros.core.observation import Observation
    from vla_ros.remote import frames as wire
    from vla_ros.remote.client import PolicyClient
    from vla_ros.remote.layouts import LayoutContext, get_layout
    from vla_ros.remote.server import PolicyServer
    from vla_ros.robots import load_robot

    robot = load_robot("aloha")
    keys = ["cam_high", "cam_left_wrist", "cam_right_wrist"]
    scenes = sim_frames("aloha", keys, range(5))
    layout = get_layout("aloha")
    ctx = LayoutContext(robot, robot.state_joints, robot.action_joints, 0.02, dict(robot.openpi.cameras))
    requests = [layout.observation(Observation(0.0, np.zeros(14), s, "transfer the cube"), ctx) for s in scenes]
    reply = {"actions": np.zeros((50, 14), np.float32)}
    server = PolicyServer(lambda _obs: dict(reply), {"name": "bench"}, "127.0.0.1", 0).start()
    result: dict = {"cameras": "ALOHA cam_high + 2 wrists, 224x224, sim renders", "quality": quality}
    try:
        for name, q in (("raw", 0), ("jpeg", quality)):
            client = PolicyClient("127.0.0.1", server.port, timeout=10.0, jpeg_quality=q)
            rtt, sizes = [], []
            for i in range(n + 3):
                start = time.perf_counter()
                client.infer(requests[i % len(requests)])
                if i >= 3:
                    rtt.append((time.perf_counter() - start) * 1000.0)
                    sizes.append(client.request_bytes)
            client.close()
            result[name] = {"bytes": int(np.median(sizes)), "round_trip_p50_ms": _p50(rtt)}
        enc, dec, psnr = [], [], []
        for i in range(n):
            request = requests[i % len(requests)]
            start = time.perf_counter()
            packed = wire.encode(request, quality)
            enc.append((time.perf_counter() - start) * 1000.0)
            start = time.perf_counter()
            back = wire.decode(packed)
            dec.append((time.perf_counter() - start) * 1000.0)
            for cam, img in request["images"].items():
                mse = np.mean((back["images"][cam].astype(float) - img) ** 2)
                psnr.append(10 * np.log10(255.0**2 / mse))
        result.update(encode_p50_ms=_p50(enc), decode_p50_ms=_p50(dec), psnr_db_min=float(min(psnr)),
                      psnr_db_mean=float(np.mean(psnr)))
    finally:
        server.stop()
    result["bytes_ratio"] = result["jpeg"]["bytes"] / result["raw"]["bytes"]
    result["added_p50_ms"] = result["encode_p50_ms"] + result["decode_p50_ms"]
    return result


def actions(quality: int, scenes: int) -> dict | None:
    from vla_ros.core.observation import Observation
    from vla_ros.policies import create_policy
    from vla_ros.policies.builtin import SHIPPED
    from vla_ros.policies.context import policy_context
    from vla_ros.remote import frames as wire
    from vla_ros.robots import load_robot

    if not (SHIPPED / "builtin_widowx" / "config.json").exists():
        return None
    robot = load_robot("widowx")
    policy = create_policy("builtin", policy_context(robot, {"backend": "builtin"}))
    state = np.array([0.0, -0.55, 0.45, 0.0, 1.3, 0.0, 0.037])
    rng = np.random.default_rng(0)
    jpeg_diff, noise_diff = [], []
    for frame in sim_frames("widowx", ["image_0"], range(100, 100 + scenes)):
        img = frame["image_0"]
        back = wire.decode(wire.encode({"i": img}, quality))["i"]
        sigma = float(np.sqrt(np.mean((back.astype(float) - img) ** 2)))
        noisy = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).round().astype(np.uint8)
        for colour in ("red", "green", "blue"):
            def act(image, text=f"pick up the {colour} cube"):
                return policy.infer(Observation(0.0, state, {"image_0": image}, text)).values
            base = act(img)
            jpeg_diff.append(float(np.abs(act(back) - base).max()))
            noise_diff.append(float(np.abs(act(noisy) - base).max()))
    return {"scenes": scenes, "instructions": 3, "jpeg_max_rad": max(jpeg_diff), "jpeg_p50_rad": _p50(jpeg_diff),
            "same_mse_noise_max_rad": max(noise_diff), "same_mse_noise_p50_rad": _p50(noise_diff)}


def run(n: int, quality: int = 90) -> dict:
    return {"transport": transport(n, quality), "actions": actions(quality, 10)}


def table(report: dict) -> str:
    t = report["transport"]
    lines = [f"| JPEG quality {t['quality']}, {t['cameras']} | raw | JPEG |", "|---|---|---|",
             f"| bytes per request | {t['raw']['bytes']:,} | {t['jpeg']['bytes']:,} ({100 * t['bytes_ratio']:.1f}%) |",
             f"| loopback round trip p50 (ms) | {t['raw']['round_trip_p50_ms']:.2f} | "
             f"{t['jpeg']['round_trip_p50_ms']:.2f} |",
             f"| encode (client) + decode (server) p50 (ms) | - | {t['encode_p50_ms']:.2f} + "
             f"{t['decode_p50_ms']:.2f} |",
             f"| decoded frames PSNR (dB), min / mean | - | {t['psnr_db_min']:.1f} / {t['psnr_db_mean']:.1f} |"]
    text = "\n".join(lines) + "\n"
    a = report.get("actions")
    if a:
        text += (f"\nThe shipped WidowX model on {a['scenes']} sim scenes x {a['instructions']} instructions: its "
                 f"actions move by at most {a['jpeg_max_rad']:.4f} rad (p50 {a['jpeg_p50_rad']:.4f}) when the frame "
                 f"went through JPEG, and by at most {a['same_mse_noise_max_rad']:.4f} rad (p50 "
                 f"{a['same_mse_noise_p50_rad']:.4f}) under Gaussian pixel noise of the same mean squared error.\n")
    return text
