"""Chunk-execution benchmark: stalls, boundary jumps, jerk and task time per execution strategy.

One run, in the ROS-free closed loop (MuJoCo physics, 500 Hz commands): every strategy gets the same
seeds, the same latency sequence (k-th request, log-normal around the median) and the same chunk
errors (k-th chunk offset) on top of the same policy (the scripted expert).

    python -m bench.chunk_execution [--seeds 5] [--latencies 0.1 0.3] [--out output/bench]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from vla_ros.core.chunk import ActionChunk  # noqa: E402
from vla_ros.params import control_config  # noqa: E402
from vla_ros.policies import create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402
from vla_ros.sim.physics import ArmSim  # noqa: E402
from vla_ros.sim.rollout import ControllerExecutor, PerturbedPolicy, controller_executor, run_closed_loop  # noqa: E402

from .baselines import DelayedPolicy, LerobotQueueExecutor, OpenpiBrokerExecutor  # noqa: E402

RATE = 500.0
DT, HORIZON, EXEC_HORIZON = 0.1, 10, 3
ARM = slice(0, 6)
INSTRUCTION = "pick up the red cube"


@dataclass
class Setting:
    latency: float
    jitter: float  # log-normal sigma
    chunk_error: float  # rad, per-chunk offset (model inconsistency between chunks)
    seed: int

    def latency_of(self, k: int) -> float:
        rng = np.random.default_rng((self.seed, 1, k))
        return float(self.latency * np.exp(self.jitter * rng.standard_normal()))

    def perturb(self, k: int, chunk: ActionChunk) -> ActionChunk:
        rng = np.random.default_rng((self.seed, 2, k))
        offset = np.zeros(chunk.values.shape[1])
        offset[ARM] = rng.normal(0.0, self.chunk_error, 6)
        return ActionChunk(chunk.stamp, chunk.names, chunk.times, chunk.values + offset)


def make_executors(robot, policy, setting: Setting) -> list:
    limits = robot.limits_for(robot.action_joints)

    def delayed() -> DelayedPolicy:
        return DelayedPolicy(policy, setting.latency_of, setting.perturb)

    def ours(name: str, **params) -> ControllerExecutor:
        """The node's inference loop and controller, configured through the controller's parameters."""
        config = control_config({"control_rate": RATE, **params}, [g.joint for g in robot.grippers])
        return controller_executor(robot, PerturbedPolicy(policy, setting.perturb), setting.latency_of, config,
                                   "latency_aware", EXEC_HORIZON, DT, HORIZON, name)

    def naive(name: str) -> ControllerExecutor:
        """Latest-only switching: each chunk replaces the plan, linear between targets, velocity clamp only."""
        executor = ours(name, merge="latest", interpolation="linear", use_motion_limits=False)
        executor.config = dataclasses.replace(executor.config, skip_close_targets=False)
        return executor

    return [
        OpenpiBrokerExecutor(delayed(), EXEC_HORIZON, DT, limits),
        LerobotQueueExecutor(delayed(), DT, HORIZON, limits),
        naive("latest-only switching (linear, no OTG)"),
        ours("vla_ros latest (quintic + OTG)", merge="latest"),
        ours("vla_ros ensemble k=0.01", merge="ensemble"),
        ours("vla_ros rtc linear", merge="rtc", rtc_schedule="linear"),
        ours("vla_ros rtc exp", merge="rtc", rtc_schedule="exp"),
    ]


def metrics(rollout, period: float) -> dict:
    """Stalls count from the first chunk on (every strategy waits for that one); a boundary's jump is the
    largest per-tick command change within one policy step after a new chunk takes effect."""
    cmd = np.array(rollout.commands)[:, ARM]
    fresh = np.array(rollout.fresh)
    first = int(np.argmax(fresh))
    switched = np.nonzero(rollout.switched)[0]
    step = np.abs(np.diff(cmd, axis=0)).max(axis=1)  # step[k] = |cmd[k+1] - cmd[k]|
    window = int(round(DT / period))
    jumps = [step[max(k - 1, 0): k - 1 + window].max() for k in switched if k > 0]
    jerk = np.diff(cmd, n=3, axis=0) / period**3
    return {
        "success": rollout.success,
        "duration": rollout.duration,
        "stall_fraction": 1.0 - float(np.mean(fresh[first:])),
        "max_boundary_jump": float(max(jumps)) if jumps else 0.0,
        "rms_jerk": float(np.sqrt(np.mean(jerk**2))),
        "chunks": int(len(switched)),
    }


def summarize(runs: list[dict]) -> dict:
    ok = [r for r in runs if r["success"]]
    return {
        "successes": len(ok),
        "episodes": len(runs),
        "completion_s": float(np.mean([r["duration"] for r in ok])) if ok else float("nan"),
        "stall_fraction": float(np.mean([r["stall_fraction"] for r in runs])),
        "max_boundary_jump": float(np.max([r["max_boundary_jump"] for r in runs])),
        "rms_jerk": float(np.mean([r["rms_jerk"] for r in runs])),
    }


def plot(traces: dict[str, object], path: Path, window: tuple[float, float], joint: int, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(traces), 1, figsize=(10, 1.9 * len(traces)), sharex=True)
    for ax, (label, r) in zip(axes, traces.items()):
        t = np.array(r.times)
        sel = (t >= window[0]) & (t <= window[1])
        cmd = np.array(r.commands)[sel, joint]
        ax.plot(t[sel], cmd, lw=1.2, label="command")
        ax.plot(t[sel], np.array(r.measured)[sel, joint], lw=0.8, ls="--", label="measured")
        stalled = ~np.array(r.fresh)[sel]
        if stalled.any():
            ax.fill_between(t[sel], cmd.min(), cmd.max(), where=stalled, color="red", alpha=0.15, label="stall")
        for k in np.nonzero(np.array(r.switched)[sel])[0]:
            ax.axvline(t[sel][k], color="grey", lw=0.6, alpha=0.7)
        ax.set_title(label, fontsize=9, loc="left")
        ax.set_ylabel(f"{name} [rad]", fontsize=8)
    axes[0].legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time [s] (grey: a new chunk takes effect)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(seeds: int, latencies: list[float], jitter: float, chunk_error: float, out: Path) -> dict:
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    robot = load_robot("widowx")
    sim = ArmSim(robot)
    ctx = policy_context(robot, {"backend": "scripted", "chunk_dt": DT, "horizon": HORIZON})
    policy = create_policy("scripted", ctx)
    results: dict[str, dict[str, dict]] = {}
    total = len(latencies) * seeds * len(make_executors(robot, policy, Setting(0.1, 0, 0, 0)))
    bar = tqdm(total=total, desc="episodes", unit="ep")
    for latency in latencies:
        key = f"{latency * 1000:.0f} ms"
        runs: dict[str, list[dict]] = {}
        traces = {}
        for seed in range(seeds):
            setting = Setting(latency, jitter, chunk_error, seed)
            for ex in make_executors(robot, policy, setting):
                r = run_closed_loop(sim, ex, seed, INSTRUCTION, control_rate=RATE, timeout=20.0, record=True)
                runs.setdefault(ex.name, []).append(metrics(r, 1.0 / RATE))
                if seed == 0:
                    traces[ex.name] = r
                bar.update()
        results[key] = {name: summarize(rs) for name, rs in runs.items()}
        plot(traces, out / f"chunk_boundaries_{latency * 1000:.0f}ms.png", (1.0, 3.0), 1, "shoulder")
    bar.close()
    sim.close()
    vmax_step = float(np.max(robot.limits_for(robot.action_joints).velocity[ARM]) / RATE)
    return {"results": results, "velocity_limit_x_period": vmax_step,
            "setup": {"seeds": seeds, "latency_jitter_sigma": jitter, "chunk_error_rad": chunk_error,
                      "chunk": f"{HORIZON} x {DT} s", "execution_horizon": EXEC_HORIZON, "control_rate": RATE}}


def table(report: dict) -> str:
    lines = []
    bound = report["velocity_limit_x_period"]
    for latency, rows in report["results"].items():
        lines += [f"#### median inference latency {latency}", "",
                  "| strategy | success | completion [s] | stall fraction | max boundary jump [mrad] "
                  "| RMS jerk [rad/s^3] |",
                  "|---|---|---|---|---|---|"]
        for name, s in rows.items():
            lines.append(f"| {name} | {s['successes']}/{s['episodes']} | {s['completion_s']:.2f} | "
                         f"{s['stall_fraction']:.3f} | {s['max_boundary_jump'] * 1000:.1f} | {s['rms_jerk']:.0f} |")
        lines.append("")
    lines.append(f"Velocity limit x control period = {bound * 1000:.2f} mrad per tick.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.1, 0.3])
    parser.add_argument("--jitter", type=float, default=0.2, help="log-normal sigma of the latency")
    parser.add_argument("--chunk-error", type=float, default=0.01, help="per-chunk offset std (rad)")
    parser.add_argument("--out", type=Path, default=Path("output/bench"))
    ns = parser.parse_args(argv)
    report = run(ns.seeds, ns.latencies, ns.jitter, ns.chunk_error, ns.out)
    text = table(report)
    print(text)
    (ns.out / "chunk_execution.json").write_text(json.dumps(report, indent=2))
    (ns.out / "chunk_execution.md").write_text(text)
    print(f"wrote {ns.out / 'chunk_execution.md'}, .json and chunk_boundaries_*.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
