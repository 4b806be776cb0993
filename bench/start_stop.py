"""Start/stop soak: start the graph, let chunks flow, stop it; every node must exit 0 within 2 s.

    python -m bench.start_stop [--cycles 200] [--out output/bench]

Each cycle starts sim, policy and controller as ``vla-ros launch`` does, waits until the policy node
has published its first chunk, runs ``--run`` seconds more, then stops the graph (SIGINT to each node)
and records every node's exit code and how long it took to exit. Logs of cycles with a failure are kept.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from vla_ros.graph import GraphArgs  # noqa: E402
from vla_ros.launcher import Graph  # noqa: E402

READY = "first chunk after start-up"
# A subscriber in another process, as the integration tests' probe is: it records the graph's busiest
# topics (reliable, depth 200) with Python callbacks for the whole soak.
PROBE = """
import rclpy, time
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory
from diagnostic_msgs.msg import DiagnosticArray
rclpy.init()
node = rclpy.create_node("soak_probe")
got = []
for topic, kind in (("/arm_controller/joint_trajectory", JointTrajectory), ("/arm_controller/commands",
                    Float64MultiArray), ("/joint_states", JointState), ("/camera/image_raw", Image),
                    ("/diagnostics", DiagnosticArray), ("/vla/action_chunk", JointTrajectory)):
    node.create_subscription(kind, topic, lambda m: got.append(m), QoSProfile(depth=200))
try:
    while rclpy.ok():
        rclpy.spin_once(node, timeout_sec=0.1)
        del got[:-1000]
except KeyboardInterrupt:
    pass
"""


def cycle(run: float, overrides: dict, timeout: float = 60.0) -> tuple[dict, str]:
    log = io.StringIO()
    graph = Graph(GraphArgs(), log=log, overrides=overrides).start()
    start = time.monotonic()
    up = False
    while time.monotonic() - start < timeout and not graph.failed():
        if READY in log.getvalue():
            up = True
            break
        time.sleep(0.05)
    time.sleep(run)
    code = graph.stop()
    result = {"up": up, "start_s": time.monotonic() - start - run, "code": code,
              "exit_codes": {n: p.returncode for n, p in graph.procs.items()}, "stop_s": graph.stop_seconds}
    return result, log.getvalue()


def run(cycles: int, run_s: float, out: Path, overrides: dict | None = None, probe: bool = False) -> dict:
    import subprocess
    import sys

    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    results = []
    watcher = subprocess.Popen([sys.executable, "-c", PROBE]) if probe else None
    try:
        for k in tqdm(range(cycles), desc="start/stop cycles", unit="cycle"):
            result, text = cycle(run_s, overrides or {})
            results.append(result)
            slow = max(result["stop_s"].values()) > 2.0
            if result["code"] or not result["up"] or slow:
                (out / f"start_stop_cycle{k}.log").write_text(text)
                tqdm.write(f"cycle {k}: {json.dumps(result)}")
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait(10)
    stops = np.array([t for r in results for t in r["stop_s"].values()])
    return {
        "cycles": cycles,
        "all_up": sum(r["up"] for r in results),
        "clean": sum(r["code"] == 0 and all(c == 0 for c in r["exit_codes"].values()) for r in results),
        "killed_or_failed": sum(r["code"] != 0 for r in results),
        "stop_s": {"p50": float(np.percentile(stops, 50)), "p99": float(np.percentile(stops, 99)),
                   "max": float(stops.max())},
        "stops_over_2s": int(np.sum(stops > 2.0)),
        "start_s_p50": float(np.median([r["start_s"] for r in results])),
    }


def table(report: dict) -> str:
    s = report["stop_s"]
    return (f"{report['cycles']} start/stop cycles of the full graph (sim, policy, controller): "
            f"{report['clean']} clean (every node exit 0), {report['killed_or_failed']} with a failed or killed "
            f"node, {report['stops_over_2s']} node stops over 2 s; node exit time after SIGINT p50 "
            f"{s['p50'] * 1000:.0f} ms, p99 {s['p99'] * 1000:.0f} ms, max {s['max'] * 1000:.0f} ms; start to first "
            f"chunk p50 {report['start_s_p50']:.2f} s.\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--run", type=float, default=0.5, help="seconds to run after the first chunk")
    parser.add_argument("--out", type=Path, default=Path("output/bench"))
    parser.add_argument("--output-interface", default="forward_position", choices=("forward_position",
                        "joint_trajectory"), help="the controller's output (JTC: 250 trajectories/s to the sim)")
    parser.add_argument("--probe", action="store_true", help="a subscriber process on the busiest topics, as in "
                        "the integration tests")
    ns = parser.parse_args(argv)
    overrides = {"controller_node": {"output_interface": ns.output_interface}}
    report = run(ns.cycles, ns.run, ns.out, overrides, ns.probe)
    (ns.out / "start_stop.json").write_text(json.dumps(report, indent=2))
    print(table(report))
    return 0 if report["clean"] == report["cycles"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
