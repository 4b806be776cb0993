"""LeRobotDataset export speed: WidowX episodes (one 224x224 camera, 10 Hz) recorded through the graph with the
scripted expert, each exported alone (reading the bag, resampling, AV1 encoding, statistics, parquet) and timed
against the episode's length. Goal: >= 10x real time on this 2-core CPU."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np


def run(episodes: int, out: Path) -> dict:
    from vla_ros.datasets.export import export_lerobot, find_episodes
    from vla_ros.graph import GraphArgs
    from vla_ros.recording.collect import collect

    bags = out / "export_bags"
    shutil.rmtree(bags, ignore_errors=True)
    collect(GraphArgs.from_strings({"policy": "scripted", "robot": "widowx"}), episodes, 4000, bags, 15.0)
    export_lerobot(find_episodes([bags])[:1], out / "export_warmup", progress=False)  # imports, codec set-up
    rows = []
    for bag in find_episodes([bags]):
        start = time.perf_counter()
        report = export_lerobot([bag], out / "export_one", progress=False)
        seconds = time.perf_counter() - start
        rows.append({"episode": bag.name, "frames": report.frames, "recorded_s": report.recorded_seconds,
                     "export_s": seconds, "speed": report.recorded_seconds / seconds})
    start = time.perf_counter()
    together = export_lerobot([bags], out / "export_all", progress=False)
    total = time.perf_counter() - start
    sizes = sum(p.stat().st_size for p in (out / "export_all").rglob("*") if p.is_file())
    return {"episodes": rows, "median_speed": float(np.median([r["speed"] for r in rows])),
            "all": {"episodes": together.episodes, "frames": together.frames, "recorded_s": together.recorded_seconds,
                    "export_s": total, "speed": together.recorded_seconds / total, "bytes": sizes}}


def table(report: dict) -> str:
    lines = ["| episode | frames | recorded (s) | export (s) | x real time |", "|---|---|---|---|---|"]
    lines += [f"| {r['episode']} | {r['frames']} | {r['recorded_s']:.1f} | {r['export_s']:.2f} | {r['speed']:.1f} |"
              for r in report["episodes"]]
    a = report["all"]
    lines.append(f"| all {a['episodes']} in one dataset | {a['frames']} | {a['recorded_s']:.1f} | {a['export_s']:.2f} "
                 f"| {a['speed']:.1f} |")
    return ("\n".join(lines) + f"\n\nMedian {report['median_speed']:.1f}x real time per episode (goal >= 10x); the "
            f"dataset of all {a['episodes']} takes {a['bytes'] / 1e6:.2f} MB.\n")
