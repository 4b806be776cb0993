"""Inputs for tools/lerobot_check.py, made with the project's venv.

  synthetic OUT.npz                 deterministic frames (2 episodes, cameras 64x48 and 320x240) for
                                    test/fixtures/lerobot_v3: LeRobot writes them (`lerobot_check.py reference`),
                                    the tests write them with vla_ros and compare.
  export EPISODES... --out DIR      `vla-ros export` of recorded episodes, plus DIR.truth.npz: the rows and raw
                                    images as read from the bags (dataset units), for `lerobot_check.py load`.
"""

from __future__ import annotations

import argparse

import numpy as np


def synthetic_frames() -> dict[str, np.ndarray]:
    """Two short episodes of smooth, moving pictures and random joint values (seeded)."""
    rng = np.random.default_rng(20261203)
    out: dict[str, np.ndarray] = {"fps": np.array(10), "robot_type": np.array("synthetic"),
                                  "state_names": np.array(["j0", "j1", "gripper"]),
                                  "action_names": np.array(["j0", "j1", "gripper"]), "names_key": np.array("motors")}
    for e, n in enumerate((12, 9)):
        out[f"e{e}_state"] = rng.normal(size=(n, 3)).astype(np.float32)
        out[f"e{e}_action"] = rng.normal(size=(n, 3)).astype(np.float32)
        out[f"e{e}_task"] = np.array(["pick up the red cube", "lift the blue block"][e])
        for cam, (h, w) in {"front": (48, 64), "high": (240, 320)}.items():
            coarse = rng.integers(0, 256, (h // 16, w // 16, 3))
            frames = []
            for i in range(n):
                picture = np.kron(np.roll(coarse, i, axis=1), np.ones((16, 16, 1)))
                frames.append(np.clip(picture + 4 * i, 0, 255).astype(np.uint8))
            out[f"e{e}_img_{cam}"] = np.stack(frames)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p_syn = sub.add_parser("synthetic")
    p_syn.add_argument("out")
    p_exp = sub.add_parser("export")
    p_exp.add_argument("episodes", nargs="+")
    p_exp.add_argument("--out", required=True)
    p_exp.add_argument("--robot", default=None)
    p_exp.add_argument("--fps", type=int, default=None)
    ns = parser.parse_args()
    if ns.command == "synthetic":
        np.savez_compressed(ns.out, **synthetic_frames())
        return
    from vla_ros.datasets.episode_frames import BadEpisode, read_episode
    from vla_ros.datasets.export import dataset_frames, export_lerobot, find_episodes
    from vla_ros.recording.bag import episode_info
    from vla_ros.robots import load_robot

    report = export_lerobot(ns.episodes, ns.out, ns.robot, ns.fps)
    robot = load_robot(ns.robot or (episode_info(find_episodes(ns.episodes)[0]) or {}).get("robot", "widowx"))
    truth: dict[str, np.ndarray] = {}
    e = 0
    for bag in find_episodes(ns.episodes):
        try:
            frames = dataset_frames(robot, read_episode(bag, robot, ns.fps or robot.dataset.fps))
        except BadEpisode:
            continue
        truth.update({f"e{e}_state": frames.state, f"e{e}_action": frames.action, f"e{e}_task": np.array(frames.task)})
        truth.update({f"e{e}_img_{k}": v for k, v in frames.images.items()})
        e += 1
    np.savez(ns.out.rstrip("/") + ".truth.npz", **truth)
    print(f"{report.episodes} episodes, {report.frames} frames, {report.speed:.1f}x real time; "
          f"truth in {ns.out.rstrip('/')}.truth.npz")


if __name__ == "__main__":
    main()
