"""Seeded episodes through the full graph: success, latency and control-timing figures, video, plot."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .core.instructions import phrase
from .episodes import Episode, EpisodeClient, Recording, run_episode, session, spinning_client  # noqa: F401
from .graph import GraphArgs

DemoClient = EpisodeClient  # the name earlier code and tests use
DEMO_COLOURS = ("red", "green", "blue")


def _num(values: dict[str, str], key: str) -> float:
    try:
        return float(values.get(key, "nan"))
    except ValueError:
        return float("nan")


def summarize(episodes: list[Episode], diagnostics: dict[str, dict[str, str]]) -> dict:
    policy = next((v for k, v in diagnostics.items() if k.startswith("policy_node")), {})
    ctrl = next((v for k, v in diagnostics.items() if k.startswith("controller_node")), {})
    return {
        "episodes": [e.__dict__ for e in episodes],
        "successes": sum(e.success for e in episodes),
        "inference_ms": {"p50": _num(policy, "inference_ms_p50"), "p95": _num(policy, "inference_ms_p95")},
        "obs_to_command_ms": {"p50": _num(ctrl, "obs_to_command_ms_p50"), "p95": _num(ctrl, "obs_to_command_ms_p95")},
        "control_rate_hz": _num(ctrl, "rate_hz"),
        "target_rate_hz": _num(ctrl, "target_rate_hz"),
        "period_error_ms": {"p50": _num(ctrl, "period_error_ms_p50"), "p99": _num(ctrl, "period_error_ms_p99"),
                            "max": _num(ctrl, "period_error_ms_max")},
        "chunks_accepted": _num(ctrl, "chunks_accepted"),
        "chunks_rejected": _num(ctrl, "chunks_rejected"),
    }


def write_video(frames: list[np.ndarray], path: Path, fps: float) -> Path | None:
    if not frames:
        return None
    import imageio.v2 as imageio

    with imageio.get_writer(path, fps=fps, codec="libx264", quality=7, macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)
    return path


def _with_gaps(t: np.ndarray, y: np.ndarray, gap: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Insert NaN rows where samples are more than ``gap`` s apart, so lines do not bridge pauses."""
    breaks = np.nonzero(np.diff(t) > gap)[0] + 1
    return np.insert(t, breaks, np.nan), np.insert(y.astype(float), breaks, np.nan, axis=0)


def write_plot(rec: Recording, joints: list[str], episodes: list[Episode], path: Path) -> Path | None:
    if not rec.state_t or not rec.cmd_t:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = episodes[0].start if episodes else min(rec.state_t[0], rec.cmd_t[0])
    st, sq = _with_gaps(np.array(rec.state_t) - t0, np.array(rec.state_q))
    ct, cq = _with_gaps(np.array(rec.cmd_t) - t0, np.array(rec.cmd_q))
    fig, axes = plt.subplots(len(joints), 1, figsize=(11, 1.7 * len(joints)), sharex=True)
    for k, (ax, name) in enumerate(zip(np.atleast_1d(axes), joints)):
        ax.plot(ct, cq[:, k], lw=1.2, label="commanded")
        ax.plot(st, sq[:, k], lw=1.0, ls="--", label="measured")
        ax.set_ylabel(name, rotation=0, ha="right", fontsize=8)
        for ep in episodes:
            ax.axvline(ep.start - t0, color="grey", lw=0.6, alpha=0.6)
    np.atleast_1d(axes)[0].legend(loc="upper right", fontsize=8)
    np.atleast_1d(axes)[0].set_title("Commanded vs measured joint positions (grey: episode starts)")
    np.atleast_1d(axes)[-1].set_xlabel("time [s]")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_summary(summary: dict, files: list[Path | None]) -> None:
    print("\nepisode  seed  success  time [s]")
    for e in summary["episodes"]:
        print(f"{e['index']:>7}  {e['seed']:>4}  {'yes' if e['success'] else 'NO':>7}  {e['duration']:8.2f}")
    n = len(summary["episodes"])
    print(f"\nsuccess: {summary['successes']}/{n}")
    inf, o2c, pe = summary["inference_ms"], summary["obs_to_command_ms"], summary["period_error_ms"]
    print(f"inference latency            p50 {inf['p50']:.1f} ms   p95 {inf['p95']:.1f} ms")
    print(f"observation-to-command       p50 {o2c['p50']:.1f} ms   p95 {o2c['p95']:.1f} ms")
    print(f"control rate                 {summary['control_rate_hz']:.1f} Hz (target {summary['target_rate_hz']:.0f})")
    print(f"control period error         p50 {pe['p50']:.3f} ms   p99 {pe['p99']:.3f} ms   max {pe['max']:.3f} ms")
    for f in files:
        if f:
            print(f"wrote {f}")


def demo_instruction(robot, index: int) -> str:
    """Episode ``index``'s instruction: the task's verb and its cubes' colours in turn ('pick up the red cube';
    'transfer the red cube' for a hand-over)."""
    task = robot.task
    colours = [c for c in DEMO_COLOURS if task is None or f"{c}_cube" in task.objects] or list(DEMO_COLOURS)
    verb = "transfer" if task is not None and task.kind == "transfer_cube" else "pick up"
    return phrase(colours[index % len(colours)], verb, "cube")


def run_demo(args: GraphArgs, episodes: int, seed: int, out: Path, timeout: float, quiet: bool = True) -> dict:
    """Start the graph, run ``episodes`` seeded episodes (instructions cycling through the cube colours),
    write outputs into ``out``; returns the summary."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "nodes.log", "w") if quiet else None
    results: list[Episode] = []
    max_frames = int((timeout + 2) * episodes * 10)
    try:
        with session(args, out, log, max_frames) as run:
            client, robot = run.client, run.robot
            for i in tqdm(range(episodes), desc="episodes", unit="ep"):
                instruction = demo_instruction(robot, i)
                ep = run_episode(client, i, seed + i, timeout, instruction)
                results.append(ep)
                tqdm.write(f"episode {i} (seed {ep.seed}, {instruction!r}): {'success' if ep.success else 'FAILED'} "
                           f"in {ep.duration:.2f} s")
                failed = run.graph.failed()
                if failed:
                    raise RuntimeError(f"nodes exited: {failed}")
            time.sleep(1.2)  # one more diagnostics period with everything measured
            summary = summarize(results, client.diagnostics)
    finally:
        if log:
            log.close()
    summary["graph_exit_code"] = run.exit_code
    cam = robot.cameras[0] if robot.cameras else None
    files = [
        write_video(client.rec.frames, out / "camera.mp4", cam.rate if cam else 10.0),
        write_plot(client.rec, robot.action_joints, results, out / "joints.png"),
    ]
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    files.append(out / "summary.json")
    if quiet:
        files.append(out / "nodes.log")
    print_summary(summary, files)
    return summary
