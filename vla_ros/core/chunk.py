"""Action chunks: H timestamped absolute targets over named dimensions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Numeric guards: a chunk beyond these is rejected before any arithmetic that could overflow on it.
MAX_POINTS = 10_000
MAX_SECONDS = 60.0  # last time_from_start
MIN_SPACING = 1e-4  # s between consecutive points
MAX_TARGET = 1e3  # |value| (rad or m)


class ChunkError(ValueError):
    """A chunk that must not be executed (empty, non-monotonic, non-finite, wrong shape)."""


class NotStartedError(ChunkError):
    """A chunk that arrived before the first joint state (normal for the first chunk after start-up)."""


class HaltedError(ChunkError):
    """A chunk that arrived while the controller is halted (e-stop, pause): dropped, not a fault."""


@dataclass(frozen=True)
class ActionChunk:
    """Targets ``values[i]`` over ``names`` due at ``stamp + times[i]`` (seconds).

    ``stamp`` is the capture time of the observation the chunk was computed from.
    """

    stamp: float
    names: tuple[str, ...]
    times: np.ndarray  # (H,) seconds after stamp, strictly increasing
    values: np.ndarray  # (H, D)

    @classmethod
    def uniform(cls, stamp: float, names: list[str] | tuple[str, ...], values: np.ndarray, dt: float,
                offset: float | None = None) -> ActionChunk:
        """Targets every ``dt`` seconds; the first is due at ``offset`` (default ``dt``)."""
        values = np.asarray(values, dtype=float)
        first = dt if offset is None else offset
        times = first + dt * np.arange(values.shape[0]) if values.ndim == 2 else np.zeros(0)
        return cls(float(stamp), tuple(names), times, values)

    @property
    def horizon(self) -> int:
        return int(self.values.shape[0])

    @property
    def absolute_times(self) -> np.ndarray:
        return self.stamp + self.times

    def validate(self) -> ActionChunk:
        """Raise :class:`ChunkError` with a human-readable reason if the chunk is unusable."""
        if not self.names:
            raise ChunkError("chunk has no joint names")
        if len(set(self.names)) != len(self.names):
            raise ChunkError(f"chunk repeats joint names: {list(self.names)}")
        if self.values.ndim != 2 or self.values.shape[0] == 0:
            raise ChunkError("chunk has no points")
        if self.values.shape[1] != len(self.names):
            raise ChunkError(f"chunk points have {self.values.shape[1]} values for {len(self.names)} joints")
        if self.times.shape != (self.values.shape[0],):
            raise ChunkError("chunk times and points differ in length")
        if not np.all(np.isfinite(self.times)) or np.any(self.times < 0):
            raise ChunkError("chunk time_from_start must be finite and non-negative")
        if np.any(np.diff(self.times) <= 0):
            raise ChunkError("chunk time_from_start is not strictly increasing")
        if self.times.size > MAX_POINTS or self.times[-1] > MAX_SECONDS:
            raise ChunkError(f"chunk of {self.times.size} points over {self.times[-1]:.3g} s exceeds "
                             f"{MAX_POINTS} points or {MAX_SECONDS:.0f} s")
        if self.times.size > 1 and np.diff(self.times).min() < MIN_SPACING:
            raise ChunkError(f"chunk points closer than {MIN_SPACING * 1e3:.1f} ms apart")
        if not np.all(np.isfinite(self.values)):
            raise ChunkError("chunk contains NaN or infinite targets")
        if np.abs(self.values).max() > MAX_TARGET:
            raise ChunkError(f"chunk targets beyond +-{MAX_TARGET:.0f} (no joint or gripper is that large)")
        if not np.isfinite(self.stamp) or self.stamp <= 0:
            raise ChunkError("chunk stamp is zero or invalid (must be the observation capture time)")
        return self

    def select(self, names: list[str] | tuple[str, ...]) -> np.ndarray:
        """Values reordered to ``names`` (every name must be present)."""
        index = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise ChunkError(f"chunk lacks joints {missing}")
        return self.values[:, [index[n] for n in names]]
