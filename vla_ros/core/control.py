"""The controller's ROS-free core: merge chunks into a plan, sample it, guard it, hold when stale."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .chunk import ActionChunk, ChunkError
from .interpolation import Interpolant
from .limits import JointLimits, SafetyFilter


@dataclass
class ControlConfig:
    rate: float = 200.0
    interpolation: str = "cubic"
    chunk_timeout: float = 1.0
    state_timeout: float = 0.1
    max_chunk_age: float = 1.0
    max_future_stamp: float = 0.5
    min_lead: float = 0.0


@dataclass
class TickResult:
    command: np.ndarray
    velocity: np.ndarray
    holding: bool
    reason: str = ""
    new_chunk_stamp: float | None = None  # set on the first tick that executes a new chunk
    clipped_position: list[str] = field(default_factory=list)
    clipped_velocity: list[str] = field(default_factory=list)


@dataclass
class ChunkAccepted:
    kept: int
    dropped_due: int
    outside_limits: list[str]


class ControlCore:
    """Latest-only chunk execution with stamp alignment, interpolation, limits and a watchdog."""

    def __init__(self, limits: JointLimits, config: ControlConfig | None = None):
        self.limits = limits
        self.names = list(limits.names)
        self.config = config or ControlConfig()
        self.filter = SafetyFilter(limits)
        self.command: np.ndarray | None = None
        self.velocity = np.zeros(len(self.names))
        self.plan: Interpolant | None = None
        self.last_chunk_time = -np.inf
        self.last_state_time = -np.inf
        self.measured: np.ndarray | None = None
        self._pending_stamp: float | None = None

    @property
    def period(self) -> float:
        return 1.0 / self.config.rate

    def update_state(self, positions: np.ndarray, now: float) -> None:
        """A finite measured position vector in ``names`` order, received at ``now``."""
        self.measured = np.asarray(positions, dtype=float).copy()
        self.last_state_time = now
        if self.command is None:
            self.command = self.limits.clip(self.measured)

    def reset(self) -> None:
        """Drop the plan and hold the measured position."""
        self.plan = None
        self._pending_stamp = None
        self.velocity[:] = 0.0
        if self.measured is not None:
            self.command = self.limits.clip(self.measured)

    def add_chunk(self, chunk: ActionChunk, now: float) -> ChunkAccepted:
        """Replace the plan with the chunk's targets still in the future (latest-only)."""
        chunk.validate()
        unknown = [n for n in chunk.names if n not in self.names]
        if unknown:
            raise ChunkError(f"chunk names unknown joints {unknown}; controller joints are {self.names}")
        if self.command is None:
            raise ChunkError("no joint state received yet; cannot start a chunk")
        age = now - chunk.stamp
        if age > self.config.max_chunk_age:
            raise ChunkError(f"chunk is stale: stamp is {age:.3f} s old (max_chunk_age {self.config.max_chunk_age} s)")
        if age < -self.config.max_future_stamp:
            raise ChunkError(f"chunk stamp is {-age:.3f} s in the future; check clocks / use_sim_time")
        due = chunk.absolute_times
        keep = due > now + self.config.min_lead
        if not np.any(keep):
            raise ChunkError(f"all {chunk.horizon} targets were already due when the chunk arrived ({age:.3f} s late)")
        targets = np.repeat(self.command[None, :], int(keep.sum()), axis=0)
        index = [self.names.index(n) for n in chunk.names]
        targets[:, index] = chunk.values[keep]
        outside = sorted({n for row in targets for n in self.limits.outside(row)})
        knots_t = np.concatenate([[now], due[keep]])
        knots_y = np.vstack([self.command[None, :], targets])
        self.plan = Interpolant(knots_t, knots_y, self.config.interpolation, start_velocity=self.velocity)
        self.last_chunk_time = now
        self._pending_stamp = chunk.stamp
        return ChunkAccepted(int(keep.sum()), int((~keep).sum()), outside)

    def _hold(self, reason: str) -> TickResult:
        self.velocity[:] = 0.0
        return TickResult(self.command.copy(), self.velocity.copy(), True, reason)

    def tick(self, now: float) -> TickResult | None:
        """The command for time ``now``; None until a joint state has arrived."""
        if self.command is None:
            return None
        if now - self.last_state_time > self.config.state_timeout:
            return self._hold(f"joint states stale ({now - self.last_state_time:.3f} s)")
        if self.plan is None:
            return self._hold("no chunk")
        if now - self.last_chunk_time > self.config.chunk_timeout and now < self.plan.end_time:
            self.plan = None
            return self._hold(f"chunks stale ({now - self.last_chunk_time:.3f} s since the last one)")
        desired, _ = self.plan.sample(now)
        result = self.filter.apply(desired, self.command, self.period)
        self.velocity = (result.command - self.command) / self.period
        self.command = result.command
        tick = TickResult(self.command.copy(), self.velocity.copy(), False,
                          "plan finished, holding last target" if now >= self.plan.end_time else "",
                          self._pending_stamp, result.clipped_position, result.clipped_velocity)
        self._pending_stamp = None
        return tick

    def lookahead(self, now: float, count: int, spacing: float) -> tuple[np.ndarray, np.ndarray]:
        """``count`` future (positions, velocities) every ``spacing`` s after ``now``, limit-filtered."""
        positions = np.zeros((count, len(self.names)))
        velocities = np.zeros_like(positions)
        previous = self.command.copy()
        for k in range(count):
            if self.plan is None:
                positions[k] = previous
                continue
            desired, _ = self.plan.sample(now + (k + 1) * spacing)
            positions[k] = self.filter.apply(desired, previous, spacing).command
            velocities[k] = (positions[k] - previous) / spacing
            previous = positions[k]
        if count:
            velocities[-1] = 0.0
        return positions, velocities
