"""One joint state from several sources (ROS-free): per-arm drivers publishing unprefixed joint names.

The Interbotix stack (ALOHA) publishes each follower's joints on its own topic with the same names
(waist, shoulder, ...); the preset names them left_waist, right_waist, ... A merger keeps the newest
message of each source and, once every source has one no older than ``max_age``, yields the joints of
all of them with the source's prefix, stamped with the oldest part's stamp (what the state is as old as).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Part:
    stamp: float
    names: list[str]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


@dataclass
class Merged:
    stamp: float
    names: list[str]
    position: list[float]
    velocity: list[float]
    effort: list[float]


class JointStateMerger:
    def __init__(self, prefixes: list[str], max_age: float):
        if not prefixes:
            raise ValueError("a joint state merger needs at least one source")
        self.prefixes = list(prefixes)
        self.max_age = max_age
        self.parts: list[Part | None] = [None] * len(prefixes)

    def update(self, source: int, stamp: float, names: list[str], position, velocity=(), effort=()) -> None:
        """A source's message (velocities and efforts optional, as in sensor_msgs/JointState). Raises
        ValueError on a malformed one (lengths, non-finite positions), which leaves the source's last part."""
        position = np.asarray(position, float)
        if len(names) != len(position) or not np.all(np.isfinite(position)):
            raise ValueError(f"{len(names)} names for {len(position)} positions, or a non-finite position")
        velocity, effort = np.asarray(velocity, float), np.asarray(effort, float)
        self.parts[source] = Part(stamp, [self.prefixes[source] + n for n in names], position,
                                  velocity if len(velocity) == len(names) else np.zeros(len(names)),
                                  effort if len(effort) == len(names) else np.zeros(len(names)))

    def missing(self, now: float) -> list[int]:
        """Sources without a part no older than max_age at ``now``."""
        return [i for i, p in enumerate(self.parts) if p is None or now - p.stamp > self.max_age]

    def merged(self, now: float) -> Merged | None:
        """Every source's joints, or None while a source is missing or stale."""
        if self.missing(now):
            return None
        parts = [p for p in self.parts if p is not None]
        return Merged(min(p.stamp for p in parts), [n for p in parts for n in p.names],
                      [float(v) for p in parts for v in p.position], [float(v) for p in parts for v in p.velocity],
                      [float(v) for p in parts for v in p.effort])
