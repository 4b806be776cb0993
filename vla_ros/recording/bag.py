"""Episodes as rosbag2 folders with MCAP storage (zstd chunks): ``ros2 bag info/play`` read them.

Written from serialized (CDR) ROS messages, so the writer needs no ROS install; message definitions
come from rosbags' Jazzy type store. Episode facts (instruction, seed, success, robot) are messages
on ``/vla/episode`` (JSON in std_msgs/String, a start and an end event) and the bag's custom_data.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import yaml

from ..interfaces import EPISODE as EPISODE_TOPIC

CUSTOM_KEY = "vla_ros.episode"
STRING = "std_msgs/msg/String"


def typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_JAZZY)


def register(store, msgtypes) -> None:
    """Add message types the Jazzy store lacks (a driver's own, e.g. interbotix_xs_msgs/msg/JointGroupCommand)
    from their definitions in the installed package's share folder (a ROS install, or the ones ``make`` built)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
    from rosbags.typesys import get_types_from_msg

    for msgtype in msgtypes:
        if msgtype in store.types:
            continue
        package, kind, name = msgtype.split("/")
        try:
            definition = Path(get_package_share_directory(package)) / kind / f"{name}.msg"
            store.register(get_types_from_msg(definition.read_text(), msgtype))
        except (PackageNotFoundError, OSError) as exc:
            raise ValueError(f"cannot record {msgtype}: its definition is not installed ({exc})") from None


def ros_type(msg_class) -> str:
    """'sensor_msgs/msg/Image' for a generated rclpy message class."""
    module = msg_class.__module__.split(".")
    return f"{module[0]}/msg/{msg_class.__name__}"


class EpisodeWriter:
    """One bag folder; ``write`` is thread-safe (subscription callbacks of several topics)."""

    def __init__(self, path: str | Path, topics: dict[str, str], info: dict[str, Any]):
        from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer

        self.path = Path(path)
        self.info = dict(info)
        self._store = typestore()
        register(self._store, topics.values())
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        self._writer.open()
        self._connections = {topic: self._writer.add_connection(topic, msgtype, typestore=self._store)
                             for topic, msgtype in {**topics, EPISODE_TOPIC: STRING}.items()}
        self._lock = threading.Lock()
        self.counts = {topic: 0 for topic in self._connections}
        self.closed = False

    def write(self, topic: str, stamp_ns: int, cdr: bytes) -> None:
        with self._lock:
            if self.closed:
                return
            self._writer.write(self._connections[topic], int(stamp_ns), cdr)
            self.counts[topic] += 1

    def event(self, stamp_ns: int, **fields: Any) -> None:
        """An episode event on /vla/episode (JSON), e.g. event="start" or event="end", success=True."""
        msg = self._store.types[STRING](data=json.dumps({**fields}, sort_keys=True))
        self.write(EPISODE_TOPIC, stamp_ns, bytes(self._store.serialize_cdr(msg, STRING)))

    def close(self, **info: Any) -> Path:
        with self._lock:
            if not self.closed:
                self.info.update(info)
                self._writer.set_custom_data(CUSTOM_KEY, json.dumps(self.info, sort_keys=True))
                self._writer.close()
                self.closed = True
        return self.path


def episode_info(path: str | Path) -> dict[str, Any] | None:
    """The episode facts of a finished bag (None if the folder holds no finished bag)."""
    meta = Path(path) / "metadata.yaml"
    if not meta.exists():
        return None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 0.3 s less per episode than pure Python
    data = yaml.load(meta.read_text(), Loader=loader)["rosbag2_bagfile_information"]
    custom = (data.get("custom_data") or {}).get(CUSTOM_KEY)
    return json.loads(custom) if custom else {}


def read_topics(path: str | Path, topics: list[str]) -> dict[str, list[tuple[int, Any]]]:
    """Deserialized messages of ``topics`` as (log time ns, message), in time order per topic."""
    from rosbags.rosbag2 import Reader

    store = typestore()
    out: dict[str, list[tuple[int, Any]]] = {t: [] for t in topics}
    with Reader(Path(path)) as reader:
        wanted = [c for c in reader.connections if c.topic in out]
        for c in wanted:  # a driver's own types (the bag holds their definitions)
            if c.msgtype not in store.types:
                from rosbags.typesys import get_types_from_msg

                store.register(get_types_from_msg(c.msgdef.data, c.msgtype))
        for connection, stamp, raw in reader.messages(connections=wanted):
            out[connection.topic].append((stamp, store.deserialize_cdr(raw, connection.msgtype)))
    return out


def header_stamp(msg) -> float:
    """A recorded message's header stamp (s)."""
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def joint_rows(msgs, joints: list[str]):
    """(times, (T, len(joints)) positions) of the recorded JointState messages that carry every one of ``joints``
    (with a position per name), sorted by header stamp."""
    import numpy as np

    times, rows = [], []
    for _, m in msgs:
        index = {n: i for i, n in enumerate(m.name)}
        if len(m.position) == len(m.name) and all(j in index for j in joints):
            times.append(header_stamp(m))
            rows.append([m.position[index[j]] for j in joints])
    order = np.argsort(times, kind="stable")
    return np.asarray(times, np.float64)[order], np.asarray(rows, np.float64).reshape(len(rows), len(joints))[order]


def episode_instruction(info: dict, events) -> str:
    """The episode's instruction: its info's, or the last non-empty one its /vla/episode events name."""
    text = str(info.get("instruction", ""))
    for _, m in events:
        text = json.loads(m.data).get("instruction", text) or text
    return text
