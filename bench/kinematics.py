"""Inverse kinematics on every preset's arm: error and time per solve over random reachable poses.

Targets are the forward kinematics of configurations drawn uniformly within the joint limits (continuous
joints within +-pi), so each is reachable. Two seedings: ``tracking``, as the package solves (each step
seeded with the previous solution: here the target configuration moved by up to 0.2 rad per joint), and
``cold`` (seeded at the preset's home, up to 20 restarts from seeds within the limits).
"""

from __future__ import annotations

import time

import numpy as np

from vla_ros.core.action_space import home_posture
from vla_ros.robots import load_robot

ROBOTS = ("widowx", "franka", "aloha")
POSITION_GOAL, ROTATION_GOAL, TIME_GOAL_MS = 1e-3, 1e-2, 1.0


def run(poses: int = 1000, seed: int = 0) -> dict:
    from tqdm import tqdm

    report = {}
    for name in ROBOTS:
        robot = load_robot(name)
        chain = robot.chain()
        home = home_posture(robot)[:chain.dof]  # (the first arm of a pair)
        rng = np.random.default_rng(seed)
        lo, hi = np.maximum(chain.lower, -np.pi), np.minimum(chain.upper, np.pi)
        configs = rng.uniform(lo, hi, (poses, chain.dof))
        nearby = np.clip(configs + rng.uniform(-0.2, 0.2, configs.shape), chain.lower, chain.upper)
        for mode in ("tracking", "cold"):
            times, pos, rot, iters = [], [], [], []
            for k in tqdm(range(poses), desc=f"IK {name} {mode}", unit="pose", leave=False):
                target = chain.fk(configs[k])
                start = time.perf_counter()
                if mode == "tracking":
                    result = chain.ik(target, nearby[k])
                else:
                    result = chain.ik(target, home, restarts=20)
                times.append((time.perf_counter() - start) * 1e3)
                pos.append(result.position_error)
                rot.append(result.rotation_error)
                iters.append(result.iterations)
            pos_a, rot_a, t = np.array(pos), np.array(rot), np.array(times)
            report[f"{name} {mode}"] = {
                "joints": chain.dof, "poses": poses,
                "within_goal": int(np.sum((pos_a <= POSITION_GOAL) & (rot_a <= ROTATION_GOAL))),
                "position_error_max_mm": float(pos_a.max() * 1e3),
                "rotation_error_max_rad": float(rot_a.max()),
                "ms_p50": float(np.percentile(t, 50)), "ms_p95": float(np.percentile(t, 95)),
                "ms_p99": float(np.percentile(t, 99)), "iterations_p50": float(np.median(iters)),
            }
    return report


def table(report: dict) -> str:
    lines = [f"Goal: <= {POSITION_GOAL * 1e3:.0f} mm and <= {ROTATION_GOAL} rad, <= {TIME_GOAL_MS:.0f} ms per solve.\n",
             "| arm, seeding | joints | within goal | max error | ms p50 | p95 | p99 | iterations p50 |",
             "|---|---|---|---|---|---|---|---|"]
    for key, r in report.items():
        lines.append(f"| {key} | {r['joints']} | {r['within_goal']}/{r['poses']} | "
                     f"{r['position_error_max_mm']:.3f} mm, "
                     f"{r['rotation_error_max_rad']:.4f} rad | {r['ms_p50']:.2f} | {r['ms_p95']:.2f} | "
                     f"{r['ms_p99']:.2f} | {r['iterations_p50']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(table(run()))
