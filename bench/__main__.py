"""``python -m bench``: every benchmark, results printed and written to --out (markdown + JSON + PNG)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def gpu_snapshot() -> str:
    """The committed GPU figures, one section per device (``make bench-gpu`` on a lent GPU writes the source of
    bench/results_gpu*.json)."""
    from .gpu import markdown

    paths = sorted(Path(__file__).parent.glob("results_gpu*.json"))
    if not paths:
        return "## GPU\n\nNo GPU snapshot: run `make bench-gpu` on a CUDA machine.\n"
    return "\n".join(f"## Full-size models on a GPU (`make bench-gpu`, snapshot of bench/{p.name})\n\n"
                     + markdown(json.loads(p.read_text())) for p in paths)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("output/bench"))
    parser.add_argument("--quick", action="store_true", help="fewer seeds and episodes")
    ns = parser.parse_args()
    ns.out.mkdir(parents=True, exist_ok=True)
    from . import (
        backends,
        chunk_execution,
        controller_timing,
        dataset_export,
        image_decoding,
        kinematics,
        remote_frames,
    )

    sections = []
    report = chunk_execution.run(2 if ns.quick else 5, [0.1, 0.3], 0.2, 0.01, ns.out)
    (ns.out / "chunk_execution.json").write_text(json.dumps(report, indent=2))
    sections.append("## Chunk execution strategies (closed loop, MuJoCo)\n\n" + chunk_execution.table(report))
    timing = controller_timing.run(2 if ns.quick else 4, ns.out / "controller_timing")
    with_model = controller_timing.run_with_model(10 if ns.quick else 20, ns.out / "controller_timing_pi0")
    sections.append("## Controller timing while inference runs (ROS graph, separate processes)\n\n"
                    + controller_timing.table(timing) + "\n" + controller_timing.table_with_model(with_model))
    backend_report = backends.run(15 if ns.quick else 30, ns.out)
    (ns.out / "backends.json").write_text(json.dumps(backend_report, indent=2))
    sections.append("## Policy backends on this CPU (tiny models)\n\n" + backends.table(backend_report))
    jpeg = remote_frames.run(20 if ns.quick else 100)
    (ns.out / "remote_frames.json").write_text(json.dumps(jpeg, indent=2))
    sections.append("## JPEG frames to a remote policy server (this CPU, loopback)\n\n" + remote_frames.table(jpeg))
    decoding = image_decoding.run(20 if ns.quick else 100)
    (ns.out / "image_decoding.json").write_text(json.dumps(decoding, indent=2))
    sections.append("## Camera frame decoding in the policy node (this CPU)\n\n" + image_decoding.table(decoding))
    ik = kinematics.run(200 if ns.quick else 1000)
    (ns.out / "kinematics.json").write_text(json.dumps(ik, indent=2))
    sections.append("## Inverse kinematics per arm (random reachable poses, this CPU)\n\n" + kinematics.table(ik))
    export = dataset_export.run(2 if ns.quick else 5, ns.out)
    (ns.out / "dataset_export.json").write_text(json.dumps(export, indent=2))
    sections.append("## LeRobotDataset export (WidowX, one 224x224 camera, this CPU)\n\n"
                    + dataset_export.table(export))
    sections.append(gpu_snapshot())
    text = "# vla_ros benchmarks\n\n" + "\n".join(sections)
    (ns.out / "RESULTS.md").write_text(text)
    print("\n" + text)
    print(f"wrote {ns.out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
