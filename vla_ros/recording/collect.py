"""``vla-ros record``: seeded demonstrations through the graph, one rosbag2/MCAP folder per episode.

Episode k uses sim seed ``seed + k`` and an instruction drawn from the training phrasings
(colours in turn, verb and noun at random from ``seed + k``); held-out phrasings are never recorded.
Resumable: finished episodes in the folder are kept and the count continues from them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..core.instructions import instruction_colours, phrasings
from ..episodes import run_episode, session
from ..graph import GraphArgs
from ..robots import load_robot
from .bag import episode_info

COLOURS = ("red", "green", "blue")


def instruction_for(k: int, seed: int, colours: tuple[str, ...] = COLOURS) -> str:
    """The instruction of episode ``k``: colour k mod len(colours) (the task's objects), a training phrasing
    drawn from (seed, k)."""
    options = phrasings(colours[k % len(colours)])
    return options[int(np.random.default_rng((seed, k)).integers(len(options)))]


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
            start_spread_joints: str = "") -> dict:
    """Record episodes ``start .. episodes - 1`` into ``out``; ``start_spread`` (rad) varies each episode's start
    pose (the sim's parameter: the demonstrations then show the way to the cube from many arm poses),
    ``start_spread_joints`` ('JOINT=RAD,...') per joint;
    ``command_noise`` (rad) makes the arm stray from the expert's commands, which it corrects (the recorded
    actions stay the expert's)."""
    from tqdm import tqdm

    from ..sim.physics import ArmSim

    ArmSim.parse_joint_spread(start_spread_joints, load_robot(args.robot).arm_joints)  # refused before the graph

    out = out.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = len(finished(out))
    args.record, args.record_dir = True, str(out)
    log = open(out / "nodes.log", "a") if quiet else None
    results = []
    colours = instruction_colours(load_robot(args.robot).task, COLOURS)
    bar = tqdm(total=episodes, initial=min(start, episodes), desc="recording", unit="ep")
    try:
        if start < episodes:
            with session(args, out, log, overrides={"sim_node": {"perturb": perturb}}) as run:
                run.client.keep_frames = False
                run.client.set_parameter("sim", "start_spread", float(start_spread))
                run.client.set_parameter("sim", "start_spread_joints", start_spread_joints)
                run.client.set_parameter("sim", "command_noise", float(command_noise))
                for k in range(start, episodes):
                    ep = run_episode(run.client, k, seed + k, timeout, instruction_for(k, seed, colours), record=True)
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
               "command_noise": command_noise, "perturb": perturb}
    (out / "collection.json").write_text(json.dumps(summary, indent=1))
    print(f"{summary['episodes']} episodes in {out} ({summary['successful']} successful; {len(results)} recorded now)")
    return summary
