"""A LeRobotDataset v3.0 folder (recorded with LeRobot, or exported by us) as the built-in model's training samples.

Rows are matched to the preset by name (the preset's ``dataset`` section: ``observation.state`` / ``action``
names, gripper units, camera names), never by position alone. Actions follow the export's rule: ``action[j]``
is the commanded position for frame j + 1, so the target k chunk steps after frame i is the actions
interpolated at t_i + k * chunk_dt, with action[j] at t_j + 1/fps (held at the last past the episode's end).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.image import crop_camera, crop_fraction, resize_with_pad
from ..robots import RobotPreset
from . import naming
from .video import decode


class DatasetError(ValueError):
    """A dataset that does not fit the preset (the message says what to change)."""


def is_lerobot_dataset(path: str | Path) -> bool:
    return (Path(path) / "meta" / "info.json").exists()


def flat_names(names) -> list[str] | None:
    """A feature's ``names`` as a list: a flat list, ``{"motors"|"axes"|...: [...]}``, or ``[[...]]``."""
    if isinstance(names, dict) and len(names) == 1:
        names = next(iter(names.values()))
    if isinstance(names, list) and len(names) == 1 and isinstance(names[0], list):
        names = names[0]
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        return names
    return None


def _columns(info: dict, feature: str, wanted: list[str]) -> list[int]:
    ft = info["features"].get(feature)
    if ft is None:
        raise DatasetError(f"the dataset has no {feature!r} (features: {sorted(info['features'])})")
    names = flat_names(ft.get("names"))
    if names is None:
        raise DatasetError(f"{feature}: the dataset does not name its dimensions; expected {wanted}")
    missing = [n for n in wanted if n not in names]
    if missing:
        raise DatasetError(f"{feature}: the dataset has no {missing} (it has {names}); the preset's dataset.joints "
                           "section says which joint each name is")
    return [names.index(n) for n in wanted]


def _read_rows(root: Path, info: dict):
    import pyarrow.parquet as pq

    files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    if not files:
        raise DatasetError(f"{root}: no data/chunk-*/file-*.parquet files")
    cols = ["observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index"]
    tables = [pq.read_table(f, columns=cols) for f in files]
    import pyarrow as pa

    table = pa.concat_tables(tables)
    order = np.argsort(table.column("index").to_numpy(), kind="stable")
    rows = {c: table.column(c).to_numpy(zero_copy_only=False) for c in cols}
    for c in ("observation.state", "action"):
        rows[c] = np.stack(rows[c]).astype(np.float64)
    return {c: v[order] for c, v in rows.items()}


def _tasks(root: Path) -> dict[int, str]:
    import pyarrow.parquet as pq

    table = pq.read_table(root / "meta" / "tasks.parquet")
    names = [c for c in table.column_names if c != "task_index"]
    column = "task" if "task" in names else (names[0] if names else None)
    if column is None:
        raise DatasetError(f"{root}/meta/tasks.parquet holds no task strings")
    return dict(zip(table.column("task_index").to_pylist(), table.column(column).to_pylist()))


def _episodes(root: Path) -> list[dict]:
    import pyarrow.parquet as pq

    rows = []
    for f in sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet")):
        rows += pq.read_table(f).to_pylist()
    return sorted(rows, key=lambda r: r["episode_index"])


def lerobot_samples(root: str | Path, robot: RobotPreset, camera_keys: list[str], state_joints: list[str],
                    action_joints: list[str], horizon: int, dt: float, size: int, progress: bool = True,
                    glimpse_size: int = 0, glimpse_keys: list[str] | None = None, crops: dict | None = None) -> dict:
    """Arrays (images, state, targets, instructions, episode) of every frame of the dataset at ``root``; with
    ``glimpse_size`` > 0 also "glimpses", the frames of the cameras ``glimpse_keys`` (None: every one) at that
    size (from the same decoding); ``crops`` {key: [camera, x0, y0, x1, y1]}: a key's images are that box of
    its camera's frames."""
    from tqdm import tqdm

    root = Path(root)
    info = json.loads((root / "meta" / "info.json").read_text())
    if info.get("codebase_version") != "v3.0":
        raise DatasetError(f"{root}: LeRobotDataset {info.get('codebase_version')!r}; this reader takes v3.0 "
                           "(LeRobot's convert_dataset_v21_to_v30 converts older ones)")
    fps = float(info["fps"])
    state_cols = _columns(info, "observation.state", naming.names(robot, state_joints))
    action_cols = _columns(info, "action", naming.names(robot, action_joints))
    crops = crops or {}
    videos = []
    for key in camera_keys:
        feature = f"observation.images.{naming.camera_name(robot, crop_camera(key, crops))}"
        if info["features"].get(feature, {}).get("dtype") != "video":
            cams = [k for k, f in info["features"].items() if f.get("dtype") in ("video", "image")]
            raise DatasetError(f"the dataset has no video {feature!r} for camera {key} (it has {cams}); the preset's "
                               "dataset.cameras section maps camera keys to dataset names")
        videos.append(feature)
    rows = _read_rows(root, info)
    tasks = _tasks(root)
    state = naming.from_dataset(robot, state_joints, rows["observation.state"][:, state_cols])
    action = naming.from_dataset(robot, action_joints, rows["action"][:, action_cols])
    if not (np.isfinite(state).all() and np.isfinite(action).all()):
        raise DatasetError(f"{root}: non-finite state or action values")
    out_images, out_glimpses, out_state, out_targets, texts, episode_ids = [], [], [], [], [], []
    decoded: dict[str, tuple[Path, np.ndarray, np.ndarray]] = {}
    for ep in tqdm(_episodes(root), desc="reading dataset", unit="ep", disable=not progress):
        lo, hi = ep["dataset_from_index"], ep["dataset_to_index"]
        t = rows["timestamp"][lo:hi].astype(np.float64)
        if hi - lo < 1:
            continue
        per_camera, per_camera_big = [], []
        for key, feature in zip(camera_keys, videos):
            path = root / info["video_path"].format(video_key=feature, chunk_index=ep[f"videos/{feature}/chunk_index"],
                                                    file_index=ep[f"videos/{feature}/file_index"])
            if decoded.get(feature, (None,))[0] != path:  # one decoded file per camera at a time
                decoded[feature] = (path, *decode(path))
            _, times, frames = decoded[feature]
            wanted = ep[f"videos/{feature}/from_timestamp"] + t
            k = np.clip(np.searchsorted(times, wanted - 0.5 / fps), 0, len(times) - 1)
            off = np.abs(times[k] - wanted)
            if off.max() > 1e-3:
                raise DatasetError(f"{path}: no frame within 1 ms of {float(wanted[np.argmax(off)]):.4f} s (the video "
                                   "does not match the data's timestamps)")
            picked = [crop_fraction(frames[j], crops[key][1:]) if key in crops else frames[j] for j in k]
            per_camera.append(np.stack([resize_with_pad(f, size, size).transpose(2, 0, 1) for f in picked]))
            if glimpse_size and (glimpse_keys is None or key in glimpse_keys):
                per_camera_big.append(np.stack([resize_with_pad(f, glimpse_size, glimpse_size).transpose(2, 0, 1)
                                                for f in picked]))
        out_images.append(np.stack(per_camera, 1))
        if glimpse_size:
            out_glimpses.append(np.stack(per_camera_big, 1))
        out_state.append(state[lo:hi])
        act_t = t + 1.0 / fps
        future = t[:, None] + dt * np.arange(1, horizon + 1)[None, :]
        out_targets.append(np.stack([np.interp(future, act_t, action[lo:hi, j]) for j in range(action.shape[1])], -1))
        texts += [tasks[int(i)] for i in rows["task_index"][lo:hi]]
        episode_ids.append(np.full(hi - lo, ep["episode_index"]))
    if not out_state:
        raise DatasetError(f"{root}: no frames")
    out = {"images": np.concatenate(out_images).astype(np.uint8),
           "state": np.concatenate(out_state).astype(np.float32),
           "targets": np.concatenate(out_targets).astype(np.float32), "instructions": texts,
           "episode": np.concatenate(episode_ids)}
    if glimpse_size:
        out["glimpses"] = np.concatenate(out_glimpses).astype(np.uint8)
    return out
