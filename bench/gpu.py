"""GPU benchmark: full-size pi0, pi0.5 and an OpenVLA-size model, randomly initialised, timed through ``infer``.

pi0 is built from ``PI0Config()`` (3.5B parameters: the released pi0's architecture and cost), saved to
a temporary directory and loaded with the backend's own ``from_pretrained`` path, ALOHA preset (14-D
state, 50 x 14 chunk at 50 Hz). Every row times ``Pi0Policy.infer`` end to end (pre-processing, model,
post-processing, action space) over ``--calls`` calls after warm-up. The fast path's actions are checked
against the eager path's and against a float32 reference for the same noise. The OpenVLA-size model is
a Llava-architecture 7B (Llama-2 7B over 256 SigLIP-So400m patches) generating 7 greedy tokens. The built-in
VLA's training steps (ALOHA's three views) are timed too: what a GPU changes for ``vla-ros train``.

    python -m bench.gpu [--out output/bench-gpu] [--calls 40] [--tiny] [--skip-openvla] [--skip-pi0] [--skip-pi05]

``--tiny`` runs the same script on the tiny configs (CPU smoke test; no CUDA graphs there).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from vla_ros.core.observation import Observation
from vla_ros.policies import PolicyContext, create_policy
from vla_ros.policies.paligemma_sizes import sizes_of
from vla_ros.policies.tiny_models import (
    OPENVLA_7B_LLAVA,
    TINY_LLAVA,
    TINY_PALIGEMMA,
    build_openvla,
    build_pi0,
    build_pi05,
    build_smolvla,
    tiny_pi0_config,
)
from vla_ros.robots import load_robot

ALOHA_CAMERAS = ["cam_high", "cam_left_wrist", "cam_right_wrist"]  # openpi's ALOHA set (3 cameras)


def summary(samples_ms: list[float]) -> dict[str, float]:
    a = np.asarray(samples_ms)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "min": float(a.min()),
            "n": int(a.size)}


def timed(fn, calls: int, warmup: int = 5) -> dict[str, float]:
    """Wall-clock ms per call; ``fn`` returns host data, so every call ends synchronised with the device."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1e3)
    return summary(samples)


def device_timed(fn, calls: int, torch) -> dict[str, float]:
    """ms per call of device work from CUDA events (no host round trip)."""
    fn()
    samples = []
    for _ in range(calls):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    return summary(samples)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def aloha_observation(cameras: list[str], seed: int = 0, prefix: bool = False, horizon: int = 50) -> Observation:
    rng = np.random.default_rng(seed)
    state = np.array([0.0, -0.96, 1.16, 0.0, -0.3, 0.0, 0.05] * 2)
    images = {k: rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for k in cameras}
    obs = Observation(time.time(), state, images, "transfer the cube to the other arm")
    if prefix:  # what the policy node passes: the previous chunk's remaining targets, d and s
        values = state + 0.02 * rng.standard_normal((horizon, state.size))
        values[:, [6, 13]] = 0.05
        obs.extras["prefix"] = {"values": values, "valid": np.ones(horizon, bool), "delay": 2,
                                "execution_horizon": 25}
    return obs


def pi0_context(robot, folder: Path, cameras: int, steps: int, **options) -> PolicyContext:
    keys = ALOHA_CAMERAS[:cameras]
    return PolicyContext(robot, robot.state_joints, robot.action_joints, keys, (224, 224), 0.02, 50,
                         {"model_path": str(folder), "num_steps": steps, "seed": 0, **options})


def free(torch) -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def bench_pi0(args, device: str, torch) -> dict:
    robot = load_robot("aloha")
    folder = Path(tempfile.mkdtemp(prefix="pi0_full_"))
    t = time.perf_counter()
    build_pi0(folder, tiny_pi0_config() if args.tiny else None, state_dim=14, action_dim=14, device=device,
              dtype="bfloat16" if device == "cuda" else "float32")
    out: dict = {"build_s": time.perf_counter() - t, "rows": [], "checks": {},
                 "dtype": "bfloat16" if device == "cuda" else "float32"}
    print(f"pi0 built and saved in {out['build_s']:.1f} s", flush=True)
    reference_obs = {3: aloha_observation(ALOHA_CAMERAS, 1), "rtc": aloha_observation(ALOHA_CAMERAS, 1, True)}
    actions: dict[str, np.ndarray] = {}
    try:
        for cameras in (3, 1):
            for steps in (10, 5):
                t = time.perf_counter()
                policy = create_policy("pi0", pi0_context(robot, folder, cameras, steps, compile=args.compile))
                load_s = time.perf_counter() - t
                params = sum(p.numel() for p in policy.model.parameters())
                keys = ALOHA_CAMERAS[:cameras]
                for rtc in (False, True):
                    obs = aloha_observation(keys, 0, rtc)
                    row = {"path": "fast" if policy.fast is not None else "eager", "cameras": cameras,
                           "steps": steps, "rtc_prefix": rtc, "infer_ms": timed(lambda o=obs, p=policy: p.infer(o),
                                                                               args.calls)}
                    out["rows"].append(row)
                    print(json.dumps(row), flush=True)
                if cameras == 3 and steps == 10:
                    out.update(params=params, load_s=load_s, timing=dict(policy.timing))
                    fast = policy.fast
                    if fast is not None and fast.graphs:  # device time of each captured part
                        out["parts_ms"] = {"prefix": device_timed(fast._graph["prefix"].replay, args.calls, torch),
                                           "denoise_10": device_timed(fast._graph["plain"].replay, args.calls, torch)}
                        if "guided" in fast._graph:
                            out["parts_ms"]["denoise_10_guided"] = device_timed(fast._graph["guided"].replay,
                                                                                args.calls, torch)
                    actions["fast"] = policy.infer(reference_obs[3]).values
                    actions["fast_rtc"] = policy.infer(reference_obs["rtc"]).values
                if cameras == 3:  # the eager path of the same loaded model, for comparison
                    fast, policy.fast = policy.fast, None
                    for rtc in (False, True):
                        obs = aloha_observation(keys, 0, rtc)
                        row = {"path": "eager", "cameras": cameras, "steps": steps, "rtc_prefix": rtc,
                               "infer_ms": timed(lambda o=obs, p=policy: p.infer(o), max(10, args.calls // 2), 2)}
                        out["rows"].append(row)
                        print(json.dumps(row), flush=True)
                    if steps == 10:
                        actions["eager"] = policy.infer(reference_obs[3]).values
                        actions["eager_rtc"] = policy.infer(reference_obs["rtc"]).values
                    policy.fast = fast
                del policy
                free(torch)
        # float32 eager reference for the same inputs and noise
        policy = create_policy("pi0", pi0_context(robot, folder, 3, 10, dtype="float32", compile="off"))
        ref, ref_rtc = policy.infer(reference_obs[3]).values, policy.infer(reference_obs["rtc"]).values
        del policy
        free(torch)
        # relative errors of the model's joint targets (differences from the state, the part the model sets)
        state = reference_obs[3].state
        d = {k: v - state for k, v in actions.items()}
        out["checks"] = {
            "fast_vs_eager": rel_error(d["fast"], d["eager"]),
            "fast_vs_eager_rtc": rel_error(d["fast_rtc"], d["eager_rtc"]),
            "fast_vs_float32": rel_error(d["fast"], ref - state),
            "eager_vs_float32": rel_error(d["eager"], ref - state),
            "fast_rtc_vs_float32": rel_error(d["fast_rtc"], ref_rtc - state),
            "eager_rtc_vs_float32": rel_error(d["eager_rtc"], ref_rtc - state),
        }
        print("checks", json.dumps(out["checks"]), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def bench_pi05(args, device: str, torch) -> dict:
    """pi0.5 (3.6B, openpi's converted layout), ALOHA preset, 3 cameras, 50 x 14 chunk: the static path (CUDA
    graphs) and the eager path of the same loaded model, plain and RTC-guided, 10 and 5 steps."""
    import contextlib

    robot = load_robot("aloha")
    folder = Path(tempfile.mkdtemp(prefix="pi05_full_"))
    dtype = "bfloat16" if device == "cuda" else "float32"
    sizes = sizes_of(TINY_PALIGEMMA) if args.tiny else contextlib.nullcontext()
    t = time.perf_counter()
    build_pi05(folder, tiny=args.tiny, device=device, dtype=dtype)
    out: dict = {"build_s": time.perf_counter() - t, "rows": [], "dtype": dtype}
    print(f"pi0.5 built and saved in {out['build_s']:.1f} s", flush=True)
    try:
        with sizes:
            for steps in (10, 5):
                ctx = pi0_context(robot, folder, 3, steps, compile=args.compile, tokenizer_path=str(folder))
                t = time.perf_counter()
                policy = create_policy("pi05", ctx)
                load_s = time.perf_counter() - t
                for path in ("fast", "eager"):
                    fast = policy.fast
                    if path == "eager":
                        policy.fast = None
                    for rtc in (False, True):
                        obs = aloha_observation(ALOHA_CAMERAS, 0, rtc)
                        calls = args.calls if path == "fast" else max(10, args.calls // 2)
                        row = {"path": "fast" if policy.fast is not None else "eager", "steps": steps,
                               "rtc_prefix": rtc, "infer_ms": timed(lambda o=obs, p=policy: p.infer(o), calls)}
                        out["rows"].append(row)
                        print("pi05", json.dumps(row), flush=True)
                    if steps == 10:
                        out.setdefault("actions", {})[path] = policy.infer(aloha_observation(ALOHA_CAMERAS, 1)).values
                    policy.fast = fast
                if steps == 10:
                    out.update(params=sum(p.numel() for p in policy.model.parameters()), load_s=load_s,
                               timing=dict(policy.timing))
                del policy
                free(torch)
        acts = out.pop("actions", {})
        if "fast" in acts and "eager" in acts:
            state = aloha_observation(ALOHA_CAMERAS, 1).state
            out["checks"] = {"fast_vs_eager": rel_error(acts["fast"] - state, acts["eager"] - state)}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def bench_smolvla(args, device: str, torch) -> dict:
    """SmolVLA (LeRobot's defaults on the VLM in --smolvla-vlm: SmolVLM2-500M-Video-Instruct's config.json and
    tokenizer, which the checkpoints name but do not hold), ALOHA preset, 3 cameras, 50 x 14 chunk, 10 steps."""
    robot = load_robot("aloha")
    folder = Path(tempfile.mkdtemp(prefix="smolvla_full_"))
    dtype = "bfloat16" if device == "cuda" else "float32"
    layers, size = (4, 64) if args.tiny else (16, 512)
    t = time.perf_counter()
    build_smolvla(folder, args.smolvla_vlm, ALOHA_CAMERAS, num_vlm_layers=layers, image_size=size, device=device,
                  dtype=dtype)
    out: dict = {"build_s": time.perf_counter() - t, "rows": [], "dtype": dtype, "vlm": str(args.smolvla_vlm)}
    try:
        ctx = pi0_context(robot, folder, 3, 10, vlm_path=str(args.smolvla_vlm))
        policy = create_policy("smolvla", ctx)
        out["params"] = sum(p.numel() for p in policy.model.parameters())
        for rtc in (False, True):
            obs = aloha_observation(ALOHA_CAMERAS, 0, rtc)
            row = {"path": "eager", "steps": 10, "rtc_prefix": rtc,
                   "infer_ms": timed(lambda o=obs, p=policy: p.infer(o), args.calls)}
            out["rows"].append(row)
            print("smolvla", json.dumps(row), flush=True)
        del policy
        free(torch)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def bench_openvla(args, device: str, torch) -> dict:
    robot = load_robot("widowx")
    folder = Path(tempfile.mkdtemp(prefix="openvla_7b_"))
    t = time.perf_counter()
    build_openvla(folder, TINY_LLAVA if args.tiny else OPENVLA_7B_LLAVA, device=device,
                  dtype="bfloat16" if device == "cuda" else "float32")
    out: dict = {"build_s": time.perf_counter() - t}
    print(f"openvla-size model built and saved in {out['build_s']:.1f} s", flush=True)
    try:
        t = time.perf_counter()
        ctx = PolicyContext(robot, robot.state_joints, robot.action_joints, ["image_0"], (224, 224), 0.2, 1,
                            {"model_path": str(folder)})
        policy = create_policy("openvla", ctx)
        out["load_s"] = time.perf_counter() - t
        out["params"] = sum(p.numel() for p in policy.model.parameters())
        rng = np.random.default_rng(0)
        obs = Observation(time.time(), np.array([0.0, -0.5, 0.4, 0.0, 1.2, 0.0, 0.03]),
                          {"image_0": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)}, "pick up the red cube")
        out["prompt_tokens"] = int(policy._inputs(obs)["input_ids"].shape[1])
        out["infer_ms"] = timed(lambda p=policy: p.infer(obs), args.calls)
        print("openvla", json.dumps(out), flush=True)
        del policy
        free(torch)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def bench_builtin_training(args, device: str, torch) -> dict:
    """Training steps of the built-in VLA as ``vla-ros train --robot aloha`` builds it (three 96x96 views, 14-D,
    4 attention heads, AdamW): samples per second at batch 64 (what ``train`` uses) and 256, random inputs."""
    from vla_ros.learning.model import TinyVLA
    from vla_ros.learning.train import model_config

    cfg = model_config(load_robot("aloha"), ALOHA_CAMERAS)
    cfg.vocab_size = 32
    model = TinyVLA(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    rows = []
    for batch in (64, 256):
        g = torch.Generator(device="cpu").manual_seed(0)
        inputs = (torch.randint(0, 256, (batch, 3, 3, 96, 96), dtype=torch.uint8, generator=g).to(device),
                  torch.randn(batch, len(cfg.state_joints), generator=g).to(device),
                  torch.randint(1, 32, (batch, 8), generator=g).to(device),
                  torch.randn(batch, cfg.horizon, len(cfg.action_joints), generator=g).to(device),
                  torch.randn(batch, len(cfg.action_joints), generator=g).to(device),
                  torch.ones(batch, device=device))

        def step(inputs=inputs):
            loss = model.loss(*inputs)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss.item()

        ms = timed(step, 5 if args.tiny else args.calls * 5)
        rows.append({"batch": batch, "step_ms": ms, "samples_per_s": batch * 1000.0 / ms["p50"]})
        print("builtin training", json.dumps(rows[-1]), flush=True)
    return {"parameters": int(sum(p.numel() for p in model.parameters())), "threads": torch.get_num_threads(),
            "rows": rows}


def markdown(result: dict) -> str:
    lines = [f"Device: {result['device']} (torch {result['torch']}, transformers {result['transformers']}).", ""]
    if result.get("note"):
        lines += [result["note"], ""]
    pi0 = result.get("pi0")
    if pi0:
        size = f"{pi0.get('params', 0) / 1e9:.2f}B parameters, {pi0['dtype']}"
        lines += [f"pi0 from `PI0Config()` ({size}), ALOHA preset, 50 x 14 chunk, `Pi0Policy.infer` end to end:", "",
                  "| path | cameras | flow steps | RTC prefix | p50 ms | p95 ms | min ms | calls |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in pi0["rows"]:
            m = r["infer_ms"]
            lines.append(f"| {r['path']} | {r['cameras']} | {r['steps']} | {'yes' if r['rtc_prefix'] else 'no'} | "
                         f"{m['p50']:.1f} | {m['p95']:.1f} | {m['min']:.1f} | {m['n']} |")
        if pi0.get("parts_ms"):
            parts = ", ".join(f"{k} {v['p50']:.2f} ms" for k, v in pi0["parts_ms"].items())
            lines += ["", f"Captured graphs alone (CUDA events, p50, 3 cameras): {parts}."]
        timing = pi0.get("timing", {})
        if timing:
            lines += ["", f"Start-up: load {pi0.get('load_s', 0):.1f} s, capture {timing.get('capture_s', 0):.2f} s, "
                      f"warm chunk at load {timing.get('warm_chunk_ms', 0):.1f} ms, first chunk after start-up "
                      f"{timing.get('first_chunk_ms', 0):.1f} ms."]
        if pi0.get("checks"):
            errors = ", ".join(f"{k} {v:.2e}" for k, v in pi0["checks"].items())
            lines += ["", f"Actions (targets minus state), relative L2 error for the same inputs and noise: {errors}."]
    pi05 = result.get("pi05")
    if pi05:
        size = f"{pi05.get('params', 0) / 1e9:.2f}B parameters, {pi05['dtype']}"
        lines += ["", f"pi0.5 ({size}, openpi's converted layout), ALOHA preset, 3 cameras, 50 x 14 chunk, "
                  "`Pi05Policy.infer` end to end:", "",
                  "| path | steps | RTC prefix | p50 ms | p95 ms |", "|---|---|---|---|---|"]
        for r in pi05["rows"]:
            lines.append(f"| {r['path']} | {r['steps']} | {r['rtc_prefix']} | {r['infer_ms']['p50']:.1f} | "
                         f"{r['infer_ms']['p95']:.1f} |")
        if pi05.get("checks"):
            lines += ["", f"pi0.5 fast vs eager (relative, joint targets): {pi05['checks']['fast_vs_eager']:.2e}"]
    smol = result.get("smolvla")
    if smol:
        lines += ["", f"SmolVLA ({smol.get('params', 0) / 1e9:.2f}B parameters, {smol['dtype']}, VLM config from "
                  f"{smol['vlm']}), ALOHA preset, 3 cameras, 50 x 14 chunk, `SmolVlaPolicy.infer`:", "",
                  "| steps | RTC prefix | p50 ms | p95 ms |", "|---|---|---|---|"]
        for r in smol["rows"]:
            ms = r["infer_ms"]
            lines.append(f"| {r['steps']} | {r['rtc_prefix']} | {ms['p50']:.1f} | {ms['p95']:.1f} |")
    train = result.get("builtin_training")
    if train:
        rates = ", ".join(f"batch {r['batch']}: {r['step_ms']['p50']:.1f} ms per step, "
                          f"{r['samples_per_s']:.0f} samples/s" for r in train["rows"])
        lines += ["", f"Built-in VLA training steps, ALOHA as `vla-ros train --robot aloha` builds it "
                  f"({train['parameters'] / 1e3:.0f}k parameters, three 96x96 views, AdamW, random inputs): {rates}."]
    vla = result.get("openvla")
    if vla:
        m = vla["infer_ms"]
        lines += ["", f"OpenVLA-size Llava ({vla['params'] / 1e9:.2f}B parameters, bfloat16, {vla['prompt_tokens']} "
                  f"prompt tokens, 7 greedy tokens) through `OpenVlaPolicy.infer`: p50 {m['p50']:.1f} ms, "
                  f"p95 {m['p95']:.1f} ms, min {m['min']:.1f} ms ({m['n']} calls; {1000 / m['p50']:.1f} Hz)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="output/bench-gpu")
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--tiny", action="store_true", help="tiny configs (a CPU smoke test of this script)")
    ap.add_argument("--skip-openvla", action="store_true")
    ap.add_argument("--skip-pi05", action="store_true")
    ap.add_argument("--skip-pi0", action="store_true")
    ap.add_argument("--smolvla-vlm", default="", help="folder with SmolVLM2-500M-Video-Instruct's config.json and "
                    "tokenizer: times a full-size SmolVLA on it (random weights)")
    ap.add_argument("--compile", default="on", choices=("auto", "on", "off"), help="pi0.compile for the fast rows")
    args = ap.parse_args()
    import torch
    import transformers

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not args.tiny:
        raise SystemExit("bench.gpu needs a CUDA device (or --tiny for a CPU smoke test)")
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "CPU"
    result = {"device": name, "torch": torch.__version__, "transformers": transformers.__version__,
              "tiny": args.tiny}
    result["builtin_training"] = bench_builtin_training(args, device, torch)
    if not args.skip_pi0:
        result["pi0"] = bench_pi0(args, device, torch)
    if not args.skip_pi05:
        result["pi05"] = bench_pi05(args, device, torch)
    if args.smolvla_vlm:
        result["smolvla"] = bench_smolvla(args, device, torch)
    else:
        print("SmolVLA skipped: --smolvla-vlm names the folder with SmolVLM2-500M-Video-Instruct's config.json and "
              "tokenizer (no hub here)", flush=True)
    if not args.skip_openvla:
        result["openvla"] = bench_openvla(args, device, torch)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (out / "gpu.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
