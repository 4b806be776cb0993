"""Seeded malformed messages for every topic the nodes subscribe to (``vla-ros fuzz``).

Each generator returns (kind, message): a random encoding, size or layout of image; joint states with
NaN/inf/huge values, missing, extra or repeated joints, mismatched lengths, zero, old or future stamps;
chunks with no, unordered, negative, extreme or very many points, non-finite or out-of-range targets,
unknown or repeated joints; instructions that are empty, long, binary or over the size limit. Sizes are
bounded (at most ``MAX_BYTES`` per message) so that the flood tests the nodes, not the loopback.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration, Time
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from .. import interfaces as io

MAX_BYTES = 4 * 2**20
ENCODINGS = ["rgb8", "bgr8", "mono8", "rgba8", "bgra8", "mono16", "16UC1", "32FC1", "yuv422", "bayer_rggb8",
             "jpeg", "", "RGB8", "rgb8\x00", "8UC3"]
BAD_FLOATS = [float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 1e9, 5e-324]
INT32_MAX = 2**31 - 1
STAMP_OFFSETS = {"now": 0.0, "old": -3600.0, "future": 5.0}  # s from now; renewed each time a message is sent


@dataclass
class Fuzzer:
    """Malformed inputs for a robot's topics; ``next()`` picks a topic and a kind of damage."""

    joints: list[str]
    lower: np.ndarray
    upper: np.ndarray
    image_topics: list[str]
    joint_states_topic: str
    now: Callable[[], float]
    rng: np.random.Generator

    def topics(self) -> dict[str, type]:
        out: dict[str, type] = {t: Image for t in self.image_topics}
        out[self.joint_states_topic] = JointState
        out[io.ACTION_CHUNK] = JointTrajectory
        out[io.INSTRUCTION] = String
        return out

    def next(self) -> tuple[str, str, object]:
        """(topic, kind, message): images 40%, joint states 30%, chunks 20%, instructions 10%."""
        r = self.rng.random()
        if r < 0.4 and self.image_topics:
            kind, msg = self.image()
            return self.image_topics[int(self.rng.integers(len(self.image_topics)))], kind, msg
        if r < 0.7:
            return self.joint_states_topic, *self.joint_state()
        if r < 0.9:
            return io.ACTION_CHUNK, *self.chunk()
        return io.INSTRUCTION, *self.instruction()

    # --- pieces -------------------------------------------------------------------------------------------
    def stamp(self) -> tuple[str, Time]:
        """Now (most often), zero, old, far future, or with nanoseconds out of range."""
        now = self.now()
        choice = self.rng.choice(["now", "now", "now", "zero", "old", "future", "far", "nanosec"])
        t = now + STAMP_OFFSETS[choice] if choice in STAMP_OFFSETS else \
            {"zero": 0.0, "far": float(INT32_MAX - 1), "nanosec": now}[choice]
        msg = Time(sec=int(t), nanosec=int((t - int(t)) * 1e9))
        if choice == "nanosec":
            msg.nanosec = 2**32 - 1
        return f"stamp={choice}", msg

    def values(self, n: int) -> tuple[str, list[float]]:
        """``n`` joint positions: in range with one bad value, all bad, or out of range."""
        lo = self.lower[:n] if n <= len(self.lower) else np.full(n, -1.0)
        hi = self.upper[:n] if n <= len(self.upper) else np.full(n, 1.0)
        q = self.rng.uniform(lo, hi) if n else np.zeros(0)
        choice = self.rng.choice(["one_bad", "all_bad", "out_of_range", "in_range"])
        if n and choice == "one_bad":
            q[int(self.rng.integers(n))] = self.rng.choice(BAD_FLOATS)
        elif n and choice == "all_bad":
            q[:] = self.rng.choice(BAD_FLOATS, size=n)
        elif n and choice == "out_of_range":
            q = q + self.rng.choice([-1, 1], size=n) * self.rng.uniform(1.0, 100.0, size=n)
        return choice, [float(v) for v in q]

    def names(self) -> tuple[str, list[str]]:
        names = list(self.joints)
        choice = self.rng.choice(["missing", "extra", "repeated", "unknown", "empty", "shuffled", "huge"])
        if choice == "missing":
            del names[int(self.rng.integers(len(names)))]
        elif choice == "extra":
            names.append(f"joint_{int(self.rng.integers(1000))}")
        elif choice == "repeated":
            names.append(names[int(self.rng.integers(len(names)))])
        elif choice == "unknown":
            names = [f"x{i}" for i in range(len(names))]
        elif choice == "empty":
            names = []
        elif choice == "shuffled":
            names = [names[i] for i in self.rng.permutation(len(names))]
        else:
            names = names + [f"j{i}" for i in range(int(self.rng.integers(1000, 5000)))]
        return choice, names

    def image(self) -> tuple[str, Image]:
        encoding = str(self.rng.choice(ENCODINGS))
        width, height = (int(v) for v in self.rng.choice([0, 1, 3, 224, 225, 640, 4097, 70000, INT32_MAX], size=2))
        step = int(self.rng.choice([0, width, 3 * width, 3 * width + 1, 4 * width, INT32_MAX]))
        step = min(step, 2**32 - 1)
        size = int(self.rng.choice([0, 1, 100, min(step * height, 300_000), 224 * 224 * 3, MAX_BYTES],
                                   p=[0.15, 0.15, 0.15, 0.3, 0.24, 0.01]))
        kind, stamp = self.stamp()
        msg = Image(encoding=encoding, width=width, height=height, step=step,
                    is_bigendian=int(self.rng.integers(0, 256)), data=bytes(size))
        msg.header.stamp = stamp
        return f"image:{encoding or 'empty'}:{kind}", msg

    def joint_state(self) -> tuple[str, JointState]:
        name_kind, names = self.names()
        value_kind, positions = self.values(len(names))
        layout = self.rng.choice(["same", "short", "long", "no_positions"])
        if layout == "short":
            positions = positions[:-1]
        elif layout == "long":
            positions = positions + [0.0] * int(self.rng.integers(1, 5000))
        elif layout == "no_positions":
            positions = []
        msg = JointState(name=names, position=positions,
                         velocity=[float(v) for v in self.rng.choice(BAD_FLOATS, size=int(self.rng.integers(3)))])
        stamp_kind, msg.header.stamp = self.stamp()
        return f"joint_state:{name_kind}:{value_kind}:{layout}:{stamp_kind}", msg

    def chunk(self) -> tuple[str, JointTrajectory]:
        name_kind, names = self.names() if self.rng.random() < 0.5 else ("ok", list(self.joints))
        n = int(self.rng.choice([0, 1, 2, 10, 50, 10001]))
        n = min(n, MAX_BYTES // 8 // max(len(names), 1))  # (many names and many points: not both)
        timing = self.rng.choice(["increasing", "decreasing", "repeated", "negative", "extreme", "tiny"])
        base = {"increasing": 0.1 * np.arange(1, n + 1), "decreasing": 0.1 * np.arange(n, 0, -1),
                "repeated": np.full(n, 0.1), "negative": -0.1 * np.arange(1, n + 1),
                "extreme": np.full(n, float(INT32_MAX)) + np.arange(n), "tiny": 1e-9 * np.arange(1, n + 1)}[timing]
        msg = JointTrajectory(joint_names=names)
        stamp_kind, msg.header.stamp = self.stamp()
        value_kind = "none"
        points = []
        for t in base[:50]:  # (a long chunk repeats its first 50 points: the generator stays fast)
            value_kind, q = self.values(len(names))
            sec = int(np.clip(np.floor(t), -(2**31), INT32_MAX))
            nsec = int(np.clip((t - np.floor(t)) * 1e9, 0, 999_999_999))
            points.append(JointTrajectoryPoint(positions=q, time_from_start=Duration(sec=sec, nanosec=nsec)))
        msg.points = (points * (n // 50 + 1))[:n] if n > 50 else points
        return f"chunk:{name_kind}:{n}:{timing}:{value_kind}:{stamp_kind}", msg

    def instruction(self) -> tuple[str, String]:
        choice = self.rng.choice(["empty", "long", "over_limit", "binary", "unicode", "whitespace", "huge"])
        n = {"empty": 0, "long": io.MAX_INSTRUCTION_CHARS, "over_limit": io.MAX_INSTRUCTION_CHARS + 1,
             "binary": 64, "unicode": 200, "whitespace": 50, "huge": 2**20}[choice]
        if choice == "binary":
            text = "".join(chr(int(c)) for c in self.rng.integers(1, 32, size=n))
        elif choice == "unicode":
            text = "".join(chr(int(c)) for c in self.rng.integers(0x80, 0xD7FF, size=n))
        elif choice == "whitespace":
            text = " \t\n" * (n // 3)
        else:
            text = "pick up the red cube " * (n // 21) + "x" * (n % 21)
        return f"instruction:{choice}", String(data=text)


@dataclass
class Serialized:
    """A fuzz message serialized once (CDR), sent many times with its stamp rewritten at send time."""

    topic: str
    kind: str
    data: bytearray

    @property
    def stamp_kind(self) -> str:
        return self.kind.rsplit("stamp=", 1)[1] if "stamp=" in self.kind else ""

    def restamped(self, now: float) -> bytes:
        """The bytes with header.stamp (every stamped input type starts with a Header: CDR offset 4) set to
        now, an hour ago or 5 s ahead as its kind says; zero, far-future and bad-nanosecond stamps stay."""
        offset = STAMP_OFFSETS.get(self.stamp_kind)
        if offset is not None:
            t = now + offset
            struct.pack_into("<iI", self.data, 4, int(t), int((t - int(t)) * 1e9))
        return bytes(self.data)


def serialized_pool(fuzzer: Fuzzer, size: int) -> list[Serialized]:
    """``size`` distinct fuzz messages, serialized (generating a chunk takes ~6 ms: a flood re-sends these)."""
    pool = []
    for _ in range(size):
        topic, kind, msg = fuzzer.next()
        pool.append(Serialized(topic, kind, bytearray(serialize_message(msg))))
    return pool
