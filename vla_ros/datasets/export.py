"""``vla-ros export --format lerobot EPISODES... --out DIR``: recorded episode bags to a LeRobotDataset v3.0."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ..recording.bag import episode_info
from ..robots import RobotPreset, load_robot
from . import naming
from .episode_frames import BadEpisode, EpisodeFrames, read_episode
from .lerobot_v3 import Layout, LeRobotWriter


@dataclass
class ExportReport:
    out: Path | None = None
    episodes: int = 0
    frames: int = 0
    skipped: list[str] = field(default_factory=list)  # "path: reason"
    seconds: float = 0.0
    recorded_seconds: float = 0.0  # the exported episodes' length at the dataset's fps

    @property
    def speed(self) -> float:
        """Recorded time exported per second of export time."""
        return self.recorded_seconds / self.seconds if self.seconds > 0 else 0.0


def find_episodes(paths: list[str | Path], successful_only: bool = False) -> list[Path]:
    """Episode bag folders named directly or found under the given folders (sorted per folder)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if (p / "metadata.yaml").exists() or p.name.startswith("episode_"):
            found = [p]
        else:
            found = sorted(q for q in p.glob("episode_*") if q.is_dir())
            if not found:
                raise FileNotFoundError(f"{p}: no episode bags (episode_* folders)")
        out += [q for q in found if not successful_only or (episode_info(q) or {}).get("success")]
    return out


def dataset_frames(robot: RobotPreset, episode: EpisodeFrames) -> EpisodeFrames:
    """An episode's rows in the dataset's names and units (images keyed by dataset camera name)."""
    return EpisodeFrames(episode.source, episode.task, episode.fps,
                         naming.to_dataset(robot, robot.state_joints, episode.state),
                         naming.to_dataset(robot, robot.action_joints, episode.action),
                         {naming.camera_name(robot, k): v for k, v in episode.images.items()}, episode.info)


def export_lerobot(paths: list[str | Path], out: str | Path, robot: str | RobotPreset | None = None,
                   fps: int | None = None, image_size: tuple[int, int] | None = None,
                   successful_only: bool = False, progress: bool = True, log=None,
                   crf: int | None = None) -> ExportReport:
    """Every readable episode under ``paths`` into one dataset at ``out``; bad ones are reported and skipped.
    ``robot`` defaults to the one the first episode was recorded with."""
    from tqdm import tqdm

    start = time.monotonic()
    bags = find_episodes(paths, successful_only)
    if not bags:
        raise FileNotFoundError(f"no episodes under {[str(p) for p in paths]}")
    if robot is None:
        robot = (episode_info(bags[0]) or {}).get("robot") or "widowx"
    robot = load_robot(robot) if isinstance(robot, str) else robot
    fps = int(fps or robot.dataset.fps)
    cameras = {naming.camera_name(robot, c.key): (image_size[1], image_size[0]) if image_size else (c.height, c.width)
               for c in robot.cameras}
    layout = Layout(robot.dataset.robot_type or robot.name, fps, naming.names(robot, robot.state_joints),
                    naming.names(robot, robot.action_joints), cameras, robot.dataset.names_key)
    writer = LeRobotWriter(out, layout, crf=crf)
    report = ExportReport()
    try:
        bar = tqdm(bags, desc="exporting", unit="ep", disable=not progress)
        log = log or tqdm.write
        for bag in bar:
            try:
                episode = read_episode(bag, robot, fps, image_size=image_size)
                writer.add(dataset_frames(robot, episode))
            except (BadEpisode, ValueError) as exc:
                report.skipped.append(str(exc))
                log(f"skipped: {exc}")
                continue
            report.episodes += 1
            report.frames += len(episode)
            report.recorded_seconds += len(episode) / fps
            bar.set_postfix(frames=report.frames, skipped=len(report.skipped))
        if not report.episodes:
            raise ValueError(f"none of the {len(bags)} episodes could be exported")
        report.out = writer.close()
    except BaseException:
        writer.abort()
        raise
    report.seconds = time.monotonic() - start
    return report
