"""``vla-ros eval``: seeded episodes per instruction through the full graph (sim, policy, controller).

Prints success per instruction with a 95% Wilson interval, mean time to success, inference latency
p50/p95 and a last line ``success: K/N``; writes eval.json, success.png and a video of the first
episodes. Instruction i's episode j uses seed ``seed + j``: every instruction meets the same scenes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .core.instructions import instruction_colours, phrase, phrasings
from .demo import write_video
from .episodes import run_episode, session
from .graph import GraphArgs
from .robots import TASK_STAGES, load_robot

COLOURS = ("red", "green", "blue")


def default_instructions(held_out: bool, robot: str = "widowx") -> list[str]:
    """One training phrasing per colour of the preset's task objects, and with ``held_out`` every held-out
    phrasing."""
    colours = instruction_colours(load_robot(robot).task, COLOURS)
    out = [phrase(c, "pick up", "cube") for c in colours]
    if held_out:
        out += [p for c in colours for p in phrasings(c, held_out=True)]
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # (rounding can leave 0/n or n/n a hair outside its own interval: a negative error bar that matplotlib refuses)
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def plot(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 2), 4))
    rates = [r["success_rate"] for r in rows]
    low = [r["success_rate"] - r["ci95"][0] for r in rows]
    high = [r["ci95"][1] - r["success_rate"] for r in rows]
    colours = ["tab:orange" if r["held_out"] else "tab:blue" for r in rows]
    ax.bar(range(len(rows)), rates, yerr=[low, high], color=colours, capsize=4)
    ax.set_xticks(range(len(rows)), [r["instruction"] for r in rows], rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate (95% CI)")
    ax.set_title("Closed-loop success per instruction (orange: held-out phrasings)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _run(args: GraphArgs, per_instruction: int, seed: int, out: Path, timeout: float, instructions: list[str],
         video_episodes: int, log, overrides: dict, bar) -> tuple[list, dict, list, int]:
    """One graph: every instruction on scenes seed .. seed + per_instruction - 1; (episodes, the policy's
    diagnostics, video frames, graph exit code)."""
    episodes = []
    with session(args, out, log, max_frames=int(video_episodes * (timeout + 1) * 10), overrides=overrides) as run:
        client = run.client
        for j in range(per_instruction):  # scene j for every instruction before scene j + 1
            for instruction in instructions:
                client.keep_frames = len(episodes) < video_episodes
                ep = run_episode(client, len(episodes), seed + j, timeout, instruction)
                episodes.append(ep)
                bar.update()
                bar.set_postfix(success=f"{sum(e.success for e in episodes)}/{len(episodes)}")
                if run.graph.failed():
                    raise RuntimeError(f"nodes exited: {run.graph.failed()}")
        time.sleep(1.2)  # the policy's latency figures of the last diagnostics period
        policy = next((v for k, v in client.diagnostics.items() if k.startswith("policy_node")), {})
    return episodes, policy, client.rec.frames, run.exit_code


SQUARE_TOLERANCE = 0.002  # m: a grasp is square when the jaws span the cube within this of its width
YAW_BINS = (0.0, 20.0, 30.0, 35.0, 40.0, 45.0)  # deg of the cube's |yaw| (folded): where views turn ambiguous


def grasps(episodes: list, cube_size: float | None) -> dict:
    """How square the successful grasps were: the held cube's width along the jaws (the sim's
    /sim/grasp_width) against the cube's, over the successes it was measured for."""
    widths = np.array([e.grasp_width for e in episodes if e.success and np.isfinite(e.grasp_width)])
    if cube_size is None or not len(widths):
        return {"measured": 0, "square": 0, "square_rate": float("nan"), "excess_mm_median": float("nan")}
    excess = widths - cube_size
    square = int((excess <= SQUARE_TOLERANCE).sum())
    measured = [e for e in episodes if e.success and np.isfinite(e.grasp_width) and np.isfinite(e.target_yaw)]
    by_yaw = {f"{lo:.0f}-{hi:.0f}": [0, 0] for lo, hi in zip(YAW_BINS[:-1], YAW_BINS[1:])}
    cells = list(by_yaw.values())
    for e in measured:
        cell = cells[min(int(np.searchsorted(YAW_BINS, abs(e.target_yaw), "right")) - 1, len(cells) - 1)]
        cell[0] += int(e.grasp_width - cube_size <= SQUARE_TOLERANCE)
        cell[1] += 1
    return {"measured": len(widths), "square": square, "square_rate": square / len(widths),
            "excess_mm_median": float(np.median(excess) * 1000.0), "by_yaw_deg": by_yaw}


def _rows(episodes: list, instructions: list[str], held: set) -> list[dict]:
    rows = []
    for instruction in instructions:
        mine = [e for e in episodes if e.instruction == instruction]
        k = sum(e.success for e in mine)
        times = [e.duration for e in mine if e.success]
        rows.append({"instruction": instruction, "held_out": instruction in held, "successes": k,
                     "episodes": len(mine), "success_rate": k / max(len(mine), 1), "ci95": wilson(k, len(mine)),
                     "mean_time_to_success_s": float(np.mean(times)) if times else float("nan")})
    return rows


def evaluate(args: GraphArgs, per_instruction: int, seed: int, out: Path, timeout: float,
             instructions: list[str], video_episodes: int = 3, quiet: bool = True,
             conditions: list[str] | None = None) -> dict:
    """``conditions`` (vla_ros.sim.perturb): one graph per condition, the same scenes in each; a table of
    condition x instruction."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "nodes.log", "w") if quiet else None
    held = {p for c in COLOURS for p in phrasings(c, held_out=True)}
    names = conditions or ["nominal"]
    bar = tqdm(total=per_instruction * len(instructions) * len(names), desc="evaluating", unit="ep")
    results = {}
    try:
        for cond in names:
            overrides = {"sim_node": {"perturb": cond}} if conditions else {}
            episodes, policy, frames, code = _run(args, per_instruction, seed, out, timeout, instructions,
                                                  video_episodes, log, overrides, bar)
            results[cond] = (episodes, policy, code)
            write_video(frames, out / ("episodes.mp4" if not conditions else f"episodes_{cond}.mp4"), 10.0)
    finally:
        bar.close()
        if log:
            log.close()

    def number(policy: dict, key: str) -> float:
        try:
            return float(policy.get(key, "nan"))
        except ValueError:
            return float("nan")

    task = load_robot(args.robot).task
    cube = task.cube_size if task is not None and task.kind == "pick_cube" else None
    stages = TASK_STAGES.get(task.kind, ()) if task is not None else ()
    per_condition = {}
    for cond, (episodes, policy, code) in results.items():
        rows = _rows(episodes, instructions, held)
        per_condition[cond] = {
            "rows": rows, "successes": sum(r["successes"] for r in rows), "episodes": len(episodes),
            "grasps": grasps(episodes, cube),
            "stages": {name: sum(e.progress > k or e.success for e in episodes) for k, name in enumerate(stages)},
            "inference_ms": {"p50": number(policy, "inference_ms_p50"), "p95": number(policy, "inference_ms_p95")},
            "graph_exit_code": code, "episode_log": [e.__dict__ for e in episodes]}
    first = per_condition[names[0]]
    summary = {"policy": args.policy, "robot": args.robot, "seed": seed, "per_instruction": per_instruction,
               **first, "successes": sum(c["successes"] for c in per_condition.values()),
               "episodes": sum(c["episodes"] for c in per_condition.values()),
               "graph_exit_code": max(c["graph_exit_code"] or 0 for c in per_condition.values())}
    if conditions:
        summary["conditions"] = per_condition
    (out / "eval.json").write_text(json.dumps(summary, indent=1))
    plot(first["rows"], out / "success.png")
    if conditions:
        print(f"\n{'condition':14s}" + "".join(f"{i[:22]:>24s}" for i in instructions) + f"{'total':>10s}")
        for cond, c in per_condition.items():
            cells = "".join(f"{r['successes']:>3}/{r['episodes']:<3} [{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]"
                            .rjust(24) for r in c["rows"])
            print(f"{cond:14s}{cells}{c['successes']:>6}/{c['episodes']}")
    else:
        print("\ninstruction                          success    95% CI        time to success")
        for r in first["rows"]:
            tag = " (held out)" if r["held_out"] else ""
            print(f"{r['instruction'] + tag:36s} {r['successes']:>3}/{r['episodes']:<4} "
                  f"[{r['ci95'][0]:.2f}, {r['ci95'][1]:.2f}]  {r['mean_time_to_success_s']:.2f} s")
    for cond, c in per_condition.items():
        g = c["grasps"]
        if g["measured"]:
            where = f" ({cond})" if conditions else ""
            print(f"square grasps{where}: {g['square']}/{g['measured']} successes span the cube within "
                  f"{SQUARE_TOLERANCE * 1000:.0f} mm (median excess {g['excess_mm_median']:.1f} mm)")
            if any(n for _, n in g["by_yaw_deg"].values()):
                cells = ", ".join(f"{b} {k}/{n}" for b, (k, n) in g["by_yaw_deg"].items())
                print(f"  by the cube's |yaw| (deg): {cells}")
    for cond, c in per_condition.items():
        if c["stages"]:
            where = f" ({cond})" if conditions else ""
            print(f"stages reached{where}: " + ", ".join(f"{k} {n}/{c['episodes']}" for k, n in c["stages"].items()))
    print(f"inference latency p50 {first['inference_ms']['p50']:.1f} ms, p95 {first['inference_ms']['p95']:.1f} ms")
    print(f"wrote {out / 'eval.json'}, {out / 'success.png'}, {out / 'episodes*.mp4'}")
    print(f"success: {summary['successes']}/{summary['episodes']}")
    return summary
