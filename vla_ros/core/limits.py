"""Per-joint limits and the safety filter every command passes through."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class JointLimits:
    """Position bounds and velocity, acceleration and jerk limits (same order as ``names``; inf = none)."""

    names: list[str]
    lower: np.ndarray
    upper: np.ndarray
    velocity: np.ndarray
    acceleration: np.ndarray | None = None
    jerk: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        self.lower = np.asarray(self.lower, dtype=float)
        self.upper = np.asarray(self.upper, dtype=float)
        self.velocity = np.asarray(self.velocity, dtype=float)
        self.acceleration = np.full(n, np.inf) if self.acceleration is None else np.asarray(self.acceleration, float)
        self.jerk = np.full(n, np.inf) if self.jerk is None else np.asarray(self.jerk, float)
        shapes = {a.shape for a in (self.lower, self.upper, self.velocity, self.acceleration, self.jerk)}
        if shapes != {(n,)}:
            raise ValueError(f"limits need {n} values each for {self.names}")
        if np.any(~(self.acceleration > 0)) or np.any(~(self.jerk > 0)):
            raise ValueError("acceleration and jerk limits must be positive (inf for none)")
        if np.any(self.lower > self.upper):
            bad = [nm for nm, lo, hi in zip(self.names, self.lower, self.upper) if lo > hi]
            raise ValueError(f"lower limit above upper limit for {bad}")
        if np.any(~(self.velocity > 0)):
            raise ValueError("velocity limits must be positive")

    @property
    def has_acceleration(self) -> bool:
        return bool(np.all(np.isfinite(self.acceleration)))

    def clip(self, q: np.ndarray) -> np.ndarray:
        return np.clip(q, self.lower, self.upper)

    def outside(self, q: np.ndarray, tolerance: float = 1e-9) -> list[str]:
        """Names of joints outside their position limits."""
        bad = (q < self.lower - tolerance) | (q > self.upper + tolerance)
        return [n for n, b in zip(self.names, bad) if b]


@dataclass
class FilterResult:
    command: np.ndarray
    clipped_position: list[str] = field(default_factory=list)
    clipped_velocity: list[str] = field(default_factory=list)
    rejected_nonfinite: bool = False


class SafetyFilter:
    """Clamp a desired position to the position limits and to a per-tick velocity step.

    A non-finite desired position is replaced by the previous command (hold).
    """

    def __init__(self, limits: JointLimits, margin: float = 0.0):
        self.limits = limits
        self.lower = limits.lower + margin
        self.upper = limits.upper - margin

    def apply(self, desired: np.ndarray, previous: np.ndarray, dt: float) -> FilterResult:
        names = self.limits.names
        if not np.all(np.isfinite(desired)):
            return FilterResult(previous.copy(), rejected_nonfinite=True)
        clipped = np.clip(desired, self.lower, self.upper)
        pos_hit = [n for n, a, b in zip(names, clipped, desired) if a != b]
        step = self.limits.velocity * dt
        limited = np.clip(clipped, previous - step, previous + step)
        vel_hit = [n for n, a, b in zip(names, limited, clipped) if a != b]
        # The previous command may itself be outside a tightened band; never step further out.
        limited = np.clip(limited, np.minimum(self.lower, previous), np.maximum(self.upper, previous))
        return FilterResult(limited, pos_hit, vel_hit)
