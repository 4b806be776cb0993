"""``vla-ros record``: seeded demonstrations through the graph, one rosbag2/MCAP folder per episode.

Episode k uses sim seed ``seed + k`` and an instruction drawn from the training phrasings
(colours in turn, verb and noun at random from ``seed + k``); held-out phrasings are never recorded. With a
target region, only the k whose named object lands there are recorded (numbered 0, 1, ... in the folder).
Resumable: finished episodes in the folder are kept and the count continues from them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..core.instructions import instruction_colours, phrasings, target_object
from ..episodes import run_episode, session
from ..graph import GraphArgs
from ..robots import TaskSpec, load_robot
from ..sim.tasks import draw_placements
from .bag import episode_info

COLOURS = ("red", "green", "blue")


def instruction_for(k: int, seed: int, colours: tuple[str, ...] = COLOURS) -> str:
    """The instruction of episode ``k``: colour k mod len(colours) (the task's objects), a training phrasing
    drawn from (seed, k)."""
    options = phrasings(colours[k % len(colours)])
    return options[int(np.random.default_rng((seed, k)).integers(len(options)))]


def parse_region(text: str) -> tuple[float, float, float, float] | None:
    """``'X0,X1,Y0,Y1'`` (m, the robot's base frame) -> the box; '' -> None (ValueError saying the form)."""
    if not text.strip():
        return None
    try:
        x0, x1, y0, y1 = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{text!r}: expected X0,X1,Y0,Y1 in metres") from None
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"{text!r}: expected X0 < X1 and Y0 < Y1")
    return x0, x1, y0, y1


MAX_SKIPPED = 200  # candidate episodes looked at per one kept before a target region counts as unreachable


def episode_indices(task: TaskSpec, seed: int, count: int, colours: tuple[str, ...],
                    region: tuple[float, float, float, float] | None = None) -> list[int]:
    """The first ``count`` episode indices k (sim seed ``seed + k``, instruction ``instruction_for(k, seed)``)
    whose named object the reset places inside ``region`` (x0, x1, y0, y1): demonstrations where a model is
    weak. Without a region: 0 .. count - 1."""
    if region is None:
        return list(range(count))
    x0, x1, y0, y1 = region
    kept: list[int] = []
    for k in range(MAX_SKIPPED * max(count, 1)):
        if len(kept) == count:
            break
        target = target_object(instruction_for(k, seed, colours), task.objects) or task.target
        x, y, _ = draw_placements(task, np.random.default_rng(seed + k))[target]
        if x0 <= x <= x1 and y0 <= y <= y1:
            kept.append(k)
    else:
        raise ValueError(f"region {region}: only {len(kept)} of {count} episodes place the target there "
                         f"(the task's region is x {task.region.x}, y {task.region.y})")
    return kept


def finished(out: Path) -> list[Path]:
    """Episode folders with a closed bag; unfinished ones (a crash mid-episode) are removed."""
    done = []
    for path in sorted(out.glob("episode_*")):
        if episode_info(path) is None:
            shutil.rmtree(path)
        else:
            done.append(path)
    return done


def collect(args: GraphArgs, episodes: int, seed: int, out: Path, timeout: float, quiet: bool = True,
            start_spread: float = 0.0, command_noise: float = 0.0, perturb: str = "nominal",
            start_spread_joints: str = "", target_region: str = "") -> dict:
    """Record episodes ``start .. episodes - 1`` into ``out``; ``start_spread`` (rad) varies each episode's start
    pose (the sim's parameter: the demonstrations then show the way to the cube from many arm poses),
    ``start_spread_joints`` ('JOINT=RAD,...') per joint;
    ``command_noise`` (rad) makes the arm stray from the expert's commands, which it corrects (the recorded
    actions stay the expert's); ``target_region`` ('X0,X1,Y0,Y1', m) keeps only the seeds that place the
    named object there (``episode_indices``)."""
    from tqdm import tqdm

    from ..sim.physics import ArmSim

    robot = load_robot(args.robot)
    ArmSim.parse_joint_spread(start_spread_joints, robot.arm_joints)  # refused before the graph
    colours = instruction_colours(robot.task, COLOURS)
    indices = episode_indices(robot.task, seed, episodes, colours, parse_region(target_region))

    out = out.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = len(finished(out))
    args.record, args.record_dir = True, str(out)
    log = open(out / "nodes.log", "a") if quiet else None
    results = []
    bar = tqdm(total=episodes, initial=min(start, episodes), desc="recording", unit="ep")
    try:
        if start < episodes:
            with session(args, out, log, overrides={"sim_node": {"perturb": perturb}}) as run:
                run.client.keep_frames = False
                run.client.set_parameter("sim", "start_spread", float(start_spread))
                run.client.set_parameter("sim", "start_spread_joints", start_spread_joints)
                run.client.set_parameter("sim", "command_noise", float(command_noise))
                for n, k in enumerate(indices[start:], start):
                    ep = run_episode(run.client, n, seed + k, timeout, instruction_for(k, seed, colours), record=True)
                    results.append(ep.__dict__)
                    bar.update()
                    bar.set_postfix(success=f"{sum(r['success'] for r in results)}/{len(results)}")
                    failed = run.graph.failed()
                    if failed:
                        raise RuntimeError(f"nodes exited: {failed}")
    finally:
        bar.close()
        if log:
            log.close()
    infos = [episode_info(p) or {} for p in finished(out)]
    summary = {"folder": str(out), "episodes": len(infos), "successful": sum(bool(i.get("success")) for i in infos),
               "this_run": len(results),
               "start_spread": start_spread, "start_spread_joints": start_spread_joints,
               "command_noise": command_noise, "perturb": perturb, "target_region": target_region}
    (out / "collection.json").write_text(json.dumps(summary, indent=1))
    print(f"{summary['episodes']} episodes in {out} ({summary['successful']} successful; {len(results)} recorded now)")
    return summary
