"""Training samples from recorded episodes: what the robot saw and what it was commanded to do next.

For every camera frame of an episode (the first image key's frames; other cameras contribute their
newest frame at that time) a sample holds the images resized as the backend will resize them, the
newest joint state at the frame's capture stamp, the episode's instruction and the **commanded joint
positions** (``/vla/controller/state``) at ``t + k * chunk_dt`` for k = 1 .. horizon: the actions the
robot executed, held at the last command past the episode's end; whether a teleoperator had the arm at
the frame (the bag's ``interventions_ns`` spans), for training to weight or leave out those corrections; and
optionally the frames at a second size (a glimpse model's).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from .. import interfaces as io
from ..core.image import crop_fraction, decode_image, resize_with_pad
from ..recording.bag import EPISODE_TOPIC, episode_info, episode_instruction, header_stamp, joint_rows, read_topics


@dataclass
class Samples:
    images: np.ndarray  # (N, cams, 3, S, S) uint8
    state: np.ndarray  # (N, state_dim) float32
    targets: np.ndarray  # (N, horizon, action_dim) float32, absolute commanded positions
    instructions: list[str]  # per sample
    episode: np.ndarray  # (N,) episode index
    intervention: np.ndarray | None = None  # (N,) bool: a teleoperator had the arm (None: all False)
    glimpses: np.ndarray | None = None  # (N, cams, 3, G, G) uint8: the frames at the glimpse's source size

    def __post_init__(self) -> None:
        if self.intervention is None:
            self.intervention = np.zeros(len(self.state), bool)

    def __len__(self) -> int:
        return len(self.state)

    @staticmethod
    def concat(parts: list[Samples]) -> Samples:
        """One set from several (episode indices renumbered so that they stay distinct). Empties ``parts``: each
        part is copied into the result and released, so the peak memory is the result and one part (the 224x224
        glimpse frames of ~60k samples are 9 GB; twice that did not fit a 24 GB machine)."""
        if len(parts) == 1:
            return parts.pop()
        first = parts[0]
        n = sum(len(p) for p in parts)
        with_glimpses = all(p.glimpses is not None for p in parts)

        def empty(a: np.ndarray) -> np.ndarray:
            return np.empty((n, *a.shape[1:]), a.dtype)

        out = Samples(empty(first.images), empty(first.state), empty(first.targets), [], np.empty(n, np.int64),
                      np.empty(n, bool), empty(first.glimpses) if with_glimpses else None)
        row = episodes = 0
        while parts:
            p = parts.pop(0)
            rows = slice(row, row + len(p))
            out.images[rows], out.state[rows], out.targets[rows] = p.images, p.state, p.targets
            out.episode[rows], out.intervention[rows] = p.episode + episodes, p.intervention
            if with_glimpses:
                out.glimpses[rows] = p.glimpses
            out.instructions.extend(p.instructions)
            row, episodes = row + len(p), episodes + (int(p.episode.max()) + 1 if len(p) else 0)
            del p
        return out

    def subset(self, mask: np.ndarray) -> Samples:
        idx = np.nonzero(mask)[0]
        return Samples(self.images[idx], self.state[idx], self.targets[idx], [self.instructions[i] for i in idx],
                       self.episode[idx], self.intervention[idx],
                       None if self.glimpses is None else self.glimpses[idx])


def episode_samples(path: str | Path, image_topics: dict[str, str], state_joints: list[str],
                    action_joints: list[str], horizon: int, dt: float, size: int,
                    joint_states_topic: str = io.JOINT_STATES, glimpse_size: int = 0,
                    glimpse_keys: list[str] | None = None, crops: dict | None = None) -> tuple[dict, list]:
    """The samples of one episode bag as arrays, and the instruction (joint states on ``joint_states_topic``, or
    on /joint_states in recordings made before the preset named its driver's topic); ``glimpse_size`` > 0: the
    frames of the cameras ``glimpse_keys`` (None: every one) at that size as well ("glimpses"); ``crops``
    {key: [camera, x0, y0, x1, y1]}: the image of that key is the box of its topic's frame (ModelConfig.crops)."""
    crops = crops or {}
    topics = [*image_topics.values(), joint_states_topic, io.JOINT_STATES, io.CONTROLLER_STATE, EPISODE_TOPIC]
    msgs = read_topics(path, topics)
    if not msgs[joint_states_topic]:
        joint_states_topic = io.JOINT_STATES
    info = episode_info(path) or {}
    instruction = episode_instruction(info, msgs[EPISODE_TOPIC])
    state_t, state_q = joint_rows(msgs[joint_states_topic], state_joints)
    cmd_t, cmd_q = joint_rows(msgs[io.CONTROLLER_STATE], action_joints)
    keys = list(image_topics)
    big_keys = keys if glimpse_keys is None else [k for k in keys if k in glimpse_keys]
    frames = {k: [(header_stamp(m), m) for _, m in msgs[image_topics[k]]] for k in keys}
    base = frames[keys[0]]
    if not base or not len(state_t) or not len(cmd_t):
        return {"images": np.zeros((0, len(keys), 3, size, size), np.uint8)}, []
    spans = np.array(info.get("interventions_ns") or [], dtype=np.float64).reshape(-1, 2) * 1e-9
    images, state, targets, taken, glimpses = [], [], [], [], []
    for t, _ in base:
        if t < max(state_t[0], cmd_t[0]):
            continue  # before the first joint state or command
        row, big = [], []
        for k in keys:
            older = [m for s, m in frames[k] if s <= t + 1e-6]
            m = older[-1] if older else frames[k][0][1]
            img = decode_image(m.encoding, m.height, m.width, m.step, m.data)
            if k in crops:
                img = crop_fraction(img, crops[k][1:])
            row.append(resize_with_pad(img, size, size).transpose(2, 0, 1))
            if glimpse_size and k in big_keys:
                big.append(resize_with_pad(img, glimpse_size, glimpse_size).transpose(2, 0, 1))
        images.append(np.stack(row))
        if glimpse_size:
            glimpses.append(np.stack(big))
        state.append(state_q[np.searchsorted(state_t, t, side="right") - 1])
        future = t + dt * np.arange(1, horizon + 1)
        targets.append(np.stack([np.interp(future, cmd_t, cmd_q[:, j]) for j in range(len(action_joints))], 1))
        taken.append(bool(np.any((spans[:, 0] <= t) & (t < spans[:, 1]))))
    arrays = {"images": np.array(images, np.uint8), "state": np.array(state, np.float32),
              "targets": np.array(targets, np.float32), "intervention": np.array(taken, bool)}
    if glimpse_size:
        arrays["glimpses"] = np.array(glimpses, np.uint8).reshape(-1, len(big_keys), 3, glimpse_size, glimpse_size)
    return arrays, [instruction] * len(images)


def episode_dirs(folder: str | Path, successful_only: bool = True) -> list[Path]:
    """Finished episode bags under ``folder`` (sorted), optionally only the successful ones."""
    out = []
    for path in sorted(Path(folder).glob("episode_*")):
        info = episode_info(path)
        if info is not None and (info.get("success") or not successful_only):
            out.append(path)
    return out


def load_folders(folders: list[str | Path], *args, robot=None, workers: int = 0, **kwargs) -> Samples:
    """``load_samples`` of each folder (each cached beside its bags, read by ``workers`` threads), as one set; a
    folder holding a LeRobotDataset (meta/info.json) is read with ``robot``'s dataset naming instead."""
    from ..datasets.lerobot_read import is_lerobot_dataset

    parts = []
    for folder in folders:
        if is_lerobot_dataset(folder):
            if robot is None:
                raise ValueError(f"{folder} is a LeRobotDataset: reading it needs the robot preset")
            parts.append(load_lerobot(folder, robot, *args, **kwargs))
        else:
            parts.append(load_samples(folder, *args, workers=workers, **kwargs))
    return Samples.concat(parts)


def load_lerobot(root: str | Path, robot, image_topics: dict[str, str], state_joints: list[str],
                 action_joints: list[str], horizon: int, dt: float, size: int, progress: bool = True,
                 glimpse_size: int = 0, glimpse_keys: list[str] | None = None, crops: dict | None = None,
                 **_ignored) -> Samples:
    """The samples of a LeRobotDataset folder (see vla_ros.datasets.lerobot_read)."""
    from ..datasets.lerobot_read import lerobot_samples

    arrays = lerobot_samples(root, robot, list(image_topics), state_joints, action_joints, horizon, dt, size, progress,
                             glimpse_size, glimpse_keys, crops)
    return Samples(arrays["images"], arrays["state"], arrays["targets"], arrays["instructions"], arrays["episode"],
                   glimpses=arrays.get("glimpses"))


READ_WORKERS_MIN_EPISODES = 8  # fewer episodes are read on the calling thread


def read_workers(episodes: int, workers: int = 0) -> int:
    """Threads that read episode bags at once: ``workers`` if > 0 (1: the calling thread); 0: one per core (at
    most 4, each holds an episode's frames), or the calling thread alone for a few episodes."""
    if workers < 0:
        raise ValueError(f"read workers: {workers} (a number of threads, or 0 for one per core)")
    if workers:
        return workers
    if episodes < READ_WORKERS_MIN_EPISODES:
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _read_episodes(paths: list[Path], read, workers: int) -> Iterator[tuple[dict, list]]:
    """``read(path)`` of each path, in order; with ``workers`` > 1 on that many threads: the MCAP chunks' zstd
    decompression and the frames' resizing (PIL) run without the GIL, so they use every core, and threads need
    no guarded ``__main__`` as spawned processes would."""
    if workers <= 1:
        yield from map(read, paths)
        return
    with ThreadPoolExecutor(workers) as pool:
        yield from pool.map(read, paths)


def load_samples(folder: str | Path, image_topics: dict[str, str], state_joints: list[str],
                 action_joints: list[str], horizon: int, dt: float, size: int, cache: bool = True,
                 progress: bool = True, joint_states_topic: str = io.JOINT_STATES, glimpse_size: int = 0,
                 glimpse_keys: list[str] | None = None, crops: dict | None = None, workers: int = 0) -> Samples:
    """Every sample of the successful episodes under ``folder`` (cached beside them as .npz); ``glimpse_size``
    > 0: with the frames of the cameras ``glimpse_keys`` (None: every one) at that size too; ``crops``: views cut
    from a camera's frame (see episode_samples); ``workers``: threads reading the bags (see read_workers)."""
    paths = episode_dirs(folder)
    if not paths:
        raise FileNotFoundError(f"no finished successful episode bags under {folder}")
    readers = read_workers(len(paths), workers)  # (checked before the cache: a bad count is refused either way)
    key = json.dumps([[p.name for p in paths], image_topics, state_joints, action_joints, horizon, dt, size]
                     + ([glimpse_size] if glimpse_size else [])
                     + ([glimpse_keys] if glimpse_size and glimpse_keys is not None and
                        list(glimpse_keys) != list(image_topics) else [])
                     + ([crops] if crops else []))
    cache_file = Path(folder) / f"samples_{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if cache and cache_file.exists():
        data = np.load(cache_file, allow_pickle=False)
        return Samples(data["images"], data["state"], data["targets"], list(data["instructions"]), data["episode"],
                       data["intervention"] if "intervention" in data.files else None,
                       data["glimpses"] if "glimpses" in data.files else None)
    from tqdm import tqdm

    parts, instructions, episode = [], [], []
    read = partial(episode_samples, image_topics=image_topics, state_joints=state_joints,
                   action_joints=action_joints, horizon=horizon, dt=dt, size=size,
                   joint_states_topic=joint_states_topic, glimpse_size=glimpse_size, glimpse_keys=glimpse_keys,
                   crops=crops)
    episodes = _read_episodes(paths, read, readers)
    for i, (arrays, texts) in enumerate(tqdm(episodes, total=len(paths), desc="reading episodes", unit="ep",
                                             disable=not progress)):
        if texts:
            parts.append(arrays)
            instructions += texts
            episode += [i] * len(texts)
    samples = Samples(np.concatenate([p["images"] for p in parts]), np.concatenate([p["state"] for p in parts]),
                      np.concatenate([p["targets"] for p in parts]), instructions, np.array(episode),
                      np.concatenate([p["intervention"] for p in parts]),
                      np.concatenate([p["glimpses"] for p in parts]) if glimpse_size else None)
    if cache:
        extra = {"glimpses": samples.glimpses} if glimpse_size else {}
        np.savez(cache_file, images=samples.images, state=samples.state, targets=samples.targets,
                 instructions=np.array(instructions), episode=samples.episode, intervention=samples.intervention,
                 **extra)
    return samples
