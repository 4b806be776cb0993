"""A recorded episode bag as fixed-rate frames: what a dataset row holds at frame i.

The rule (times are the messages' header stamps, i.e. capture / sample times):
- frame i is at t_i = t_0 + i / fps, t_0 = the first time every stream (each camera, the joint states,
  the controller's commanded positions) has a message; the last frame is the last t_i at which every camera
  and the joint states still have one;
- ``observation.state[i]`` = the newest joint state stamped at or before t_i;
- ``observation.images.<camera>[i]`` = that camera's newest frame stamped at or before t_i;
- ``action[i]`` = the commanded joint positions (/vla/controller/state, linearly interpolated) at t_i + 1/fps:
  the position the robot was told to be at by the next frame (held at the last command past the recording's
  end). A chunk of actions [i, i + H) is then what the controller commanded over the next H frames, the
  targets our own training reads at chunk_dt = 1/fps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import interfaces as io
from ..core.image import ImageError, decode_image
from ..recording.bag import EPISODE_TOPIC, episode_info, episode_instruction, header_stamp, joint_rows, read_topics
from ..robots import RobotPreset


class BadEpisode(ValueError):
    """A recording that cannot become a dataset episode (the reason says why)."""


@dataclass
class EpisodeFrames:
    """One episode at a fixed rate: ``n`` frames, each stream an array with ``n`` rows."""

    source: str
    task: str
    fps: float
    state: np.ndarray  # (n, S) float32
    action: np.ndarray  # (n, A) float32
    images: dict[str, np.ndarray] = field(default_factory=dict)  # camera key -> (n, H, W, 3) uint8
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.state)

    @property
    def timestamps(self) -> np.ndarray:
        """Seconds from the episode's first frame, exactly i / fps (float32 as LeRobot stores them)."""
        return (np.arange(len(self)) / self.fps).astype(np.float32)


def _newest(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Index of the newest of ``times`` (sorted) at or before each of ``at`` (1 us of slack for float stamps)."""
    return np.searchsorted(times, at + 1e-6, side="right") - 1


def read_episode(path: str | Path, robot: RobotPreset, fps: float, cameras: list[str] | None = None,
                 image_size: tuple[int, int] | None = None) -> EpisodeFrames:
    """The frames of one finished episode bag; ``BadEpisode`` for one that is unfinished, truncated or missing
    a stream. ``image_size`` (width, height) resizes the camera images (default: as recorded)."""
    path = Path(path)
    if not fps > 0 or not math.isfinite(fps):
        raise ValueError(f"fps must be a positive number, got {fps}")
    info = episode_info(path)
    if info is None:
        raise BadEpisode(f"{path}: not a finished episode bag (no metadata.yaml: the recording was cut short)")
    if info.get("robot", robot.name) != robot.name:
        raise BadEpisode(f"{path}: recorded with robot {info['robot']!r}, not {robot.name!r}")
    specs = [c for c in robot.cameras if cameras is None or c.key in cameras]
    state_topic = robot.joint_states_topic
    topics = [c.image_topic for c in specs] + [state_topic, io.JOINT_STATES, io.CONTROLLER_STATE, EPISODE_TOPIC]
    try:
        msgs = read_topics(path, list(dict.fromkeys(topics)))
    except Exception as exc:  # rosbags raises its own error types for damaged files
        raise BadEpisode(f"{path}: unreadable bag ({type(exc).__name__}: {exc})") from None
    if not msgs[state_topic]:
        state_topic = io.JOINT_STATES  # recordings made before the preset named its driver's topic
    task = episode_instruction(info, msgs[EPISODE_TOPIC])
    state_t, state_q = joint_rows(msgs[state_topic], robot.state_joints)
    cmd_t, cmd_q = joint_rows(msgs[io.CONTROLLER_STATE], robot.action_joints)
    missing = [name for name, n in [(f"joint states with {robot.state_joints} on {state_topic}", len(state_t)),
                                    (f"commanded positions on {io.CONTROLLER_STATE}", len(cmd_t))] if n == 0]
    frames = {c.key: sorted(((header_stamp(m), m) for _, m in msgs[c.image_topic]), key=lambda x: x[0]) for c in specs}
    missing += [f"camera {k} ({c.image_topic})" for c in specs for k in [c.key] if not frames[k]]
    if missing:
        raise BadEpisode(f"{path}: no {', no '.join(missing)}")
    if not task:
        raise BadEpisode(f"{path}: no instruction recorded")
    for name, values in (("joint states", state_q), ("commands", cmd_q)):
        if not np.isfinite(values).all():
            raise BadEpisode(f"{path}: non-finite values in the {name}")
    start = max([state_t[0], cmd_t[0]] + [f[0][0] for f in frames.values()])
    end = min([state_t[-1]] + [f[-1][0] for f in frames.values()])
    n = int(math.floor((end - start) * fps + 1e-6)) + 1 if end >= start else 0
    if n < 2:
        raise BadEpisode(f"{path}: the streams overlap for {max(end - start, 0.0):.3f} s, under two frames at "
                         f"{fps:g} fps")
    t = start + np.arange(n) / fps
    state = state_q[_newest(state_t, t)].astype(np.float32)
    action = np.stack([np.interp(t + 1.0 / fps, cmd_t, cmd_q[:, j]) for j in range(cmd_q.shape[1])], 1)
    images = {}
    for key, stream in frames.items():
        stamps = np.array([s for s, _ in stream])
        decoded: dict[int, np.ndarray] = {}
        rows = []
        for k in _newest(stamps, t):
            if k not in decoded:
                m = stream[k][1]
                try:
                    img = decode_image(m.encoding, m.height, m.width, m.step, m.data)
                except ImageError as exc:
                    raise BadEpisode(f"{path}: camera {key}: {exc}") from None
                if image_size is not None and img.shape[1::-1] != tuple(image_size):
                    from PIL import Image as PILImage

                    img = np.asarray(PILImage.fromarray(img).resize(tuple(image_size), PILImage.BILINEAR))
                decoded[k] = img
            rows.append(decoded[k])
        shapes = {r.shape for r in rows}
        if len(shapes) != 1:
            raise BadEpisode(f"{path}: camera {key} changed its image size during the episode ({sorted(shapes)})")
        images[key] = np.stack(rows)
    return EpisodeFrames(str(path), task, float(fps), state, action.astype(np.float32), images,
                         {**info, "start_stamp": float(start)})
