"""LeRobotDataset v3.0 on disk, written without LeRobot (pyarrow + PyAV), read back for training.

Layout and columns as LeRobot 0.4.4 writes them (``LeRobotDataset.create`` / ``save_episode`` /
``finalize``): meta/info.json, meta/tasks.parquet (pandas-indexed by the task string), meta/stats.json,
meta/episodes/chunk-000/file-000.parquet (one row per episode with its file indices, video time span and
``stats/<feature>/<stat>``), data/chunk-000/file-NNN.parquet (one row group per episode; ``index`` global
and contiguous), videos/<key>/chunk-000/file-NNN.mp4 (episodes one after another, each from
``from_timestamp``). A new data or video file starts when the current one reaches the size limit.
The dataset is built in ``<out>.partial`` and renamed into place when complete: an interrupted export leaves
no half-written dataset at ``<out>``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import lerobot_stats as st
from .episode_frames import EpisodeFrames
from .video import VideoStream
from .video import info as video_info

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILE_MB = 100
VIDEO_FILE_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
INDEX_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
                  "task_index": "int64"}


@dataclass
class Layout:
    """What a dataset's rows hold: LeRobot feature names and the names of each dimension."""

    robot_type: str
    fps: int
    state_names: list[str]
    action_names: list[str]
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)  # camera name -> (height, width)
    names_key: str = ""  # names as {names_key: [...]} (LeRobot's ALOHA and DROID datasets), else a flat list

    def _names(self, names: list[str]) -> list[str] | dict[str, list[str]]:
        return {self.names_key: list(names)} if self.names_key else list(names)

    def features(self) -> dict:
        out = {"observation.state": {"dtype": "float32", "shape": [len(self.state_names)],
                                     "names": self._names(self.state_names)},
               "action": {"dtype": "float32", "shape": [len(self.action_names)],
                          "names": self._names(self.action_names)}}
        for key, (h, w) in self.cameras.items():
            out[f"observation.images.{key}"] = {"dtype": "video", "shape": [h, w, 3],
                                                "names": ["height", "width", "channels"]}
        out.update({k: {"dtype": d, "shape": [1], "names": None} for k, d in INDEX_FEATURES.items()})
        return out


def _chunk_file(index: int) -> tuple[int, int]:
    return index // CHUNKS_SIZE, index % CHUNKS_SIZE


def _hf_features(features: dict) -> str:
    """The ``huggingface`` schema metadata LeRobot's parquet files carry (datasets' Features as JSON)."""
    out = {}
    for key, ft in features.items():
        if ft["dtype"] == "video":
            continue
        value = {"dtype": ft["dtype"], "_type": "Value"}
        out[key] = value if ft["shape"] == [1] else {"feature": value, "length": ft["shape"][0], "_type": "List"}
    return json.dumps({"info": {"features": out}})


def _stat_array(values: np.ndarray):
    import pyarrow as pa

    values = np.asarray(values)
    kind = pa.int64() if values.dtype.kind in "iu" and values.dtype != np.uint8 else pa.float64()
    for _ in range(values.ndim):
        kind = pa.list_(kind)
    return kind


class LeRobotWriter:
    """Episodes in, a LeRobotDataset v3.0 out: ``add`` each episode, then ``close``."""

    def __init__(self, out: str | Path, layout: Layout, codec: str = "libsvtav1", crf: int | None = None):
        self.out = Path(out)
        self.root = self.out.with_name(self.out.name + ".partial")
        if self.root.exists():
            shutil.rmtree(self.root)
        self.layout = layout
        self.codec = codec
        self.crf = crf
        self.features = layout.features()
        self.tasks: dict[str, int] = {}
        self.episodes: list[dict] = []
        self.stats: list[dict[str, dict]] = []
        self.frames = 0
        self._data_file = 0
        self._data_writer = None
        self._data_bytes = 0
        self._videos: dict[str, VideoStream] = {}
        self._video_files: dict[str, int] = {}
        self._video_info: dict[str, dict] = {}

    # ---- data ----
    def _data_schema(self):
        import pyarrow as pa

        fields = [pa.field("observation.state", pa.list_(pa.float32(), len(self.layout.state_names))),
                  pa.field("action", pa.list_(pa.float32(), len(self.layout.action_names)))]
        fields += [pa.field(k, pa.float32() if d == "float32" else pa.int64()) for k, d in INDEX_FEATURES.items()]
        return pa.schema(fields, metadata={"huggingface": _hf_features(self.features)})

    def _data_path(self) -> Path:
        return self.root / DATA_PATH.format(chunk_index=_chunk_file(self._data_file)[0],
                                            file_index=_chunk_file(self._data_file)[1])

    def _write_rows(self, table) -> tuple[int, int]:
        import pyarrow.parquet as pq

        if self._data_writer is not None and self._data_bytes >= DATA_FILE_MB * 1e6:
            self._data_writer.close()
            self._data_writer = None
            self._data_file += 1
            self._data_bytes = 0
        if self._data_writer is None:
            self._data_path().parent.mkdir(parents=True, exist_ok=True)
            self._data_writer = pq.ParquetWriter(self._data_path(), table.schema, compression="snappy")
        self._data_writer.write_table(table)
        self._data_bytes += table.nbytes  # (uncompressed: the file stays under the limit)
        return _chunk_file(self._data_file)

    # ---- videos ----
    def _video(self, key: str, height: int, width: int) -> VideoStream:
        stream = self._videos.get(key)
        if stream is not None and stream.bytes >= VIDEO_FILE_MB * 1e6:
            stream.close()
            stream = None
            self._video_files[key] += 1
        if stream is None:
            index = self._video_files.setdefault(key, 0)
            chunk, file = _chunk_file(index)
            path = self.root / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
            stream = self._videos[key] = VideoStream(path, self.layout.fps, width, height, self.codec,
                                                         crf=self.crf)
            self._video_info.setdefault(key, video_info(stream))
        return stream

    # ---- episodes ----
    def add(self, episode: EpisodeFrames) -> None:
        """Append one complete episode (checked first: nothing is written for one that does not fit)."""
        import pyarrow as pa

        n = len(episode)
        if abs(episode.fps - self.layout.fps) > 1e-9:
            raise ValueError(f"episode at {episode.fps} fps in a {self.layout.fps} fps dataset")
        if episode.state.shape != (n, len(self.layout.state_names)) or \
                episode.action.shape != (n, len(self.layout.action_names)):
            raise ValueError(f"episode state {episode.state.shape} / action {episode.action.shape} do not match "
                             f"the dataset's {len(self.layout.state_names)} / {len(self.layout.action_names)} names")
        if set(episode.images) != set(self.layout.cameras):
            raise ValueError(f"episode cameras {sorted(episode.images)} != {sorted(self.layout.cameras)}")
        for key, frames in episode.images.items():
            if frames.shape != (n, *self.layout.cameras[key], 3):
                raise ValueError(f"camera {key}: frames {frames.shape[1:]} in a {self.layout.cameras[key]} video")
        index = len(self.episodes)
        task = self.tasks.setdefault(episode.task, len(self.tasks))
        columns = {"timestamp": episode.timestamps, "frame_index": np.arange(n, dtype=np.int64),
                   "episode_index": np.full(n, index, np.int64),
                   "index": np.arange(self.frames, self.frames + n, dtype=np.int64),
                   "task_index": np.full(n, task, np.int64)}
        schema = self._data_schema()
        table = pa.table([pa.FixedSizeListArray.from_arrays(pa.array(episode.state.reshape(-1), pa.float32()),
                                                            len(self.layout.state_names)),
                          pa.FixedSizeListArray.from_arrays(pa.array(episode.action.reshape(-1), pa.float32()),
                                                            len(self.layout.action_names)),
                          *[pa.array(columns[k]) for k in INDEX_FEATURES]], schema=schema)
        chunk, file = self._write_rows(table)
        row = {"episode_index": index, "tasks": [episode.task], "length": n, "data/chunk_index": chunk,
               "data/file_index": file, "dataset_from_index": self.frames, "dataset_to_index": self.frames + n}
        stats = {"observation.state": st.vector_stats(episode.state), "action": st.vector_stats(episode.action)}
        for key, frames in episode.images.items():
            feature = f"observation.images.{key}"
            video = self._video(feature, *self.layout.cameras[key])
            start = video.seconds
            video.add(frames)
            chunk, file = _chunk_file(self._video_files[feature])
            row.update({f"videos/{feature}/chunk_index": chunk, f"videos/{feature}/file_index": file,
                        f"videos/{feature}/from_timestamp": start, f"videos/{feature}/to_timestamp": video.seconds})
            stats[feature] = st.image_stats(frames)
        stats.update({k: st.scalar_stats(v) for k, v in columns.items()})
        row.update({"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0})
        self.episodes.append(row)
        self.stats.append(stats)
        self.frames += n

    def close(self) -> Path:
        """Write the metadata and move the finished dataset to ``out`` (replacing what was there)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not self.episodes:
            shutil.rmtree(self.root, ignore_errors=True)
            raise ValueError("no episodes to write")
        if self._data_writer is not None:
            self._data_writer.close()
        for stream in self._videos.values():
            stream.close()
        meta = self.root / "meta"
        meta.mkdir(parents=True, exist_ok=True)
        order = list(self.stats[0])
        stat_keys = ["min", "max", "mean", "std", "count", *st.QUANTILE_KEYS]
        rows = [dict(r) for r in self.episodes]
        fields = [pa.field("episode_index", pa.int64()), pa.field("tasks", pa.list_(pa.string())),
                  *[pa.field(k, pa.int64()) for k in ("length", "data/chunk_index", "data/file_index",
                                                       "dataset_from_index", "dataset_to_index")]]
        for key in self.layout.cameras:
            feature = f"videos/observation.images.{key}"
            fields += [pa.field(f"{feature}/chunk_index", pa.int64()), pa.field(f"{feature}/file_index", pa.int64()),
                       pa.field(f"{feature}/from_timestamp", pa.float64()),
                       pa.field(f"{feature}/to_timestamp", pa.float64())]
        for feature in order:
            for key in stat_keys:
                fields.append(pa.field(f"stats/{feature}/{key}", _stat_array(self.stats[0][feature][key])))
                for r, s in zip(rows, self.stats):
                    r[f"stats/{feature}/{key}"] = np.asarray(s[feature][key]).tolist()
        fields += [pa.field("meta/episodes/chunk_index", pa.int64()), pa.field("meta/episodes/file_index", pa.int64())]
        schema = pa.schema(fields)
        (self.root / EPISODES_PATH).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), self.root / EPISODES_PATH)
        self._write_tasks(meta / "tasks.parquet")
        totals = {feature: st.aggregate([s[feature] for s in self.stats]) for feature in order}
        (meta / "stats.json").write_text(json.dumps({f: {k: np.asarray(v).tolist() for k, v in s.items()}
                                                     for f, s in totals.items()}, indent=4))
        features = self.layout.features()
        for key, info in self._video_info.items():
            features[key]["info"] = info
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": self.layout.robot_type,
                "total_episodes": len(self.episodes), "total_frames": self.frames, "total_tasks": len(self.tasks),
                "chunks_size": CHUNKS_SIZE, "data_files_size_in_mb": DATA_FILE_MB,
                "video_files_size_in_mb": VIDEO_FILE_MB, "fps": self.layout.fps,
                "splits": {"train": f"0:{len(self.episodes)}"}, "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if self.layout.cameras else None, "features": features}
        (meta / "info.json").write_text(json.dumps(info, indent=4))
        if self.out.exists():
            shutil.rmtree(self.out)
        self.root.rename(self.out)
        return self.out

    def abort(self) -> None:
        """Drop everything written so far."""
        for stream in self._videos.values():
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - already failing; the folder goes anyway
                pass
        if self._data_writer is not None:
            self._data_writer.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def _write_tasks(self, path: Path) -> None:
        """A pandas DataFrame indexed by the task string with a ``task_index`` column, as pandas stores it."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        tasks = sorted(self.tasks, key=self.tasks.get)
        pandas_meta = {"index_columns": ["__index_level_0__"],
                       "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                                           "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
                       "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                    "numpy_type": "int64", "metadata": None},
                                   {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                                    "numpy_type": "object", "metadata": None}],
                       "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__}}
        schema = pa.schema([pa.field("task_index", pa.int64()), pa.field("__index_level_0__", pa.large_string())],
                           metadata={"pandas": json.dumps(pandas_meta)})
        pq.write_table(pa.table([pa.array([self.tasks[t] for t in tasks], pa.int64()),
                                 pa.array(tasks, pa.large_string())], schema=schema), path)
