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
