"""Controller loop timing in the real graph: 500 Hz commands while the policy node infers next door.

Runs demo episodes through the ROS graph (sim, policy and controller as separate processes) and reads
the controller's own diagnostics: achieved rate and |period - nominal| percentiles.
"""

from __future__ import annotations

import json
from pathlib import Path

from vla_ros.demo import run_demo
from vla_ros.graph import GraphArgs


def run(episodes: int, out: Path) -> dict:
    summary = run_demo(GraphArgs(), episodes, seed=100, out=out, timeout=20.0)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def table(s: dict) -> str:
    pe, inf, o2c = s["period_error_ms"], s["inference_ms"], s["obs_to_command_ms"]
    return "\n".join([
        "| metric | value |", "|---|---|",
        f"| episodes succeeded | {s['successes']}/{len(s['episodes'])} |",
        f"| control rate | {s['control_rate_hz']:.1f} Hz (target {s['target_rate_hz']:.0f}) |",
        f"| period error p50 / p99 / max | {pe['p50']:.3f} / {pe['p99']:.3f} / {pe['max']:.3f} ms |",
        f"| inference latency p50 / p95 (scripted expert) | {inf['p50']:.1f} / {inf['p95']:.1f} ms |",
        f"| observation-to-command p50 / p95 | {o2c['p50']:.1f} / {o2c['p95']:.1f} ms |",
    ]) + "\n"


def run_with_model(seconds: float, out: Path) -> dict:
    """The same graph with the pi0 backend (a tiny model, CPU-bound, inferring back to back) instead of
    the scripted expert: the controller's timing with a heavier neighbour."""
    import time

    import yaml

    from vla_ros.demo import spinning_client
    from vla_ros.launcher import Graph
    from vla_ros.policies.tiny_models import build_tiny_pi0
    from vla_ros.robots import load_robot

    out.mkdir(parents=True, exist_ok=True)
    folder = build_tiny_pi0(out / "tiny_pi0", 7, 7, 10)
    params = out / "pi0_params.yaml"
    params.write_text(yaml.safe_dump({"policy_node": {"ros__parameters": {
        "pi0": {"model_path": str(folder), "num_steps": 10}}}}))
    log = open(out / "nodes.log", "w")
    graph = Graph(GraphArgs(policy="pi0", params_file=str(params)), log=log, workdir=out).start()
    with spinning_client(load_robot("widowx").action_joints, None, 0) as client:
        try:
            deadline = time.monotonic() + 90
            while not any(k.startswith("policy_node") and int(v.get("published", 0)) > 0
                          for k, v in client.diagnostics.items()):
                if time.monotonic() > deadline or graph.failed():
                    raise RuntimeError(f"pi0 graph did not come up; see {out / 'nodes.log'}")
                time.sleep(0.2)
            time.sleep(seconds)  # the controller's jitter window holds the last 10 s
            diags = dict(client.diagnostics)
        finally:
            graph.stop()
            log.close()
    ctrl = next(v for k, v in diags.items() if k.startswith("controller_node"))
    pol = next(v for k, v in diags.items() if k.startswith("policy_node"))
    return {"control_rate_hz": float(ctrl["rate_hz"]),
            "period_error_ms": {q: float(ctrl[f"period_error_ms_{q}"]) for q in ("p50", "p99", "max")},
            "inference_ms": {q: float(pol[f"inference_ms_{q}"]) for q in ("p50", "p95")},
            "chunks": int(pol["published"]), "seconds": seconds}


def table_with_model(s: dict) -> str:
    pe, inf = s["period_error_ms"], s["inference_ms"]
    return "\n".join([
        "| metric (policy: tiny pi0, back-to-back CPU inference) | value |", "|---|---|",
        f"| control rate | {s['control_rate_hz']:.1f} Hz |",
        f"| period error p50 / p99 / max | {pe['p50']:.3f} / {pe['p99']:.3f} / {pe['max']:.3f} ms |",
        f"| pi0 inference p50 / p95 | {inf['p50']:.1f} / {inf['p95']:.1f} ms ({s['chunks']} chunks) |",
    ]) + "\n"
