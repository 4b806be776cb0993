"""Watches the command topics: every command finite, within the position limits and one control period's
velocity limit of the previous one; the rate a subscriber sees, in bins, and its longest gap."""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ..core.limits import JointLimits
from ..drivers.streams import CommandStream

MAX_EXAMPLES = 20


class CommandMonitor:
    """Subscribes (on ``node``) to each command stream the driver receives (``streams`` with joint values; each
    checked against ``limits`` by stream name, else the stream's own command limits).

    The velocity check allows ``k`` periods between two received commands, ``k`` the difference of their
    publication sequence numbers (DDS), so that commands lost on the way (a loaded subscriber) are not
    read as a jump; where the middleware gives no sequence number, the arrival gap in periods.
    """

    def __init__(self, node: Node, streams: list[CommandStream], limits: dict[str, JointLimits], bin_s: float = 0.5,
                 tolerance: float = 0.02):
        streams = [s for s in streams if s.values is not None and (s.limits is not None or s.name in limits)]
        self.bin_s, self.tolerance = bin_s, tolerance
        self.limits = {s.name: s.limits if s.limits is not None else limits[s.name] for s in streams}
        self.periods = {s.name: s.period for s in streams}
        self.period = streams[0].period
        self.lock = threading.Lock()
        self.counts = {s.name: 0 for s in streams}
        self.violations: dict[str, int] = {"non_finite": 0, "position": 0, "velocity": 0, "size": 0}
        self.examples: list[str] = []
        self.bins: dict[int, int] = {}  # (arm) commands per time bin; bounded by the run's length
        self.max_gap = 0.0  # between arrivals
        self.max_publish_gap = 0.0  # between the publisher's source timestamps
        self.lost = 0  # commands missing from the sequence numbers
        self.t0 = time.monotonic()
        self._last: dict[str, tuple[float, int, int, np.ndarray]] = {}  # arrival, sequence, source ns, q
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.first = streams[0].name
        for st in streams:
            node.create_subscription(st.msg_type, st.topic,
                                     lambda msg, info, s=st: self._on_command(s.name, s.values(msg), info), qos)

    def _violation(self, kind: str, text: str) -> None:
        self.violations[kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(text)

    def _on_command(self, group: str, values: list[float], info: dict) -> None:
        now = time.monotonic()
        seq = int(info.get("publication_sequence_number", 0) or 0)
        source = int(info.get("source_timestamp", 0) or 0)
        q = np.asarray(values, dtype=float)
        lim = self.limits[group]
        with self.lock:
            self.counts[group] += 1
            last = self._last.get(group)
            if group == self.first:
                b = int((now - self.t0) / self.bin_s)
                self.bins[b] = self.bins.get(b, 0) + 1
                if last is not None:
                    self.max_gap = max(self.max_gap, now - last[0])
                    if source and last[2]:
                        self.max_publish_gap = max(self.max_publish_gap, (source - last[2]) * 1e-9)
            if q.shape != lim.lower.shape:
                self._violation("size", f"{group}: {q.size} values for {lim.lower.size} joints")
                return
            if not np.all(np.isfinite(q)):
                self._violation("non_finite", f"{group}: {q.tolist()}")
                return
            if np.any(q < lim.lower - 1e-6) or np.any(q > lim.upper + 1e-6):  # (float32 messages: xs_sdk's)
                self._violation("position", f"{group}: {np.round(q, 4).tolist()} outside "
                                f"[{lim.lower.tolist()}, {lim.upper.tolist()}]")
            if last is not None:
                if seq and last[1]:
                    k = max(1, seq - last[1])
                    self.lost += k - 1
                else:
                    k = max(1, round((now - last[0]) / self.periods[group]))
                allowed = lim.velocity * self.periods[group] * k * (1 + self.tolerance) + 1e-9
                step = np.abs(q - last[3])
                if np.any(step > allowed):
                    self._violation("velocity", f"{group}: step {np.round(step, 5).tolist()} over "
                                    f"{np.round(allowed, 5).tolist()} ({k} period(s))")
            self._last[group] = (now, seq, source, q)

    def reset_gap(self) -> None:
        with self.lock:
            self.max_gap = self.max_publish_gap = 0.0

    def now(self) -> float:
        return time.monotonic() - self.t0

    def rate(self, start: float, end: float) -> float:
        """Mean rate of the first group's commands over the whole bins within [start, end] (monitor time)."""
        lo, hi = int(np.ceil(start / self.bin_s)), int(np.floor(end / self.bin_s))
        if hi <= lo:
            return 0.0
        with self.lock:
            return sum(self.bins.get(b, 0) for b in range(lo, hi)) / ((hi - lo) * self.bin_s)

    def timeline(self) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            keys = sorted(self.bins)
            return np.array(keys) * self.bin_s, np.array([self.bins[k] for k in keys]) / self.bin_s
