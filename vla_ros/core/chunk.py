"""Action chunks: H timestamped absolute targets over named dimensions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class ChunkError(ValueError):
    """A chunk that must not be executed (empty, non-monotonic, non-finite, wrong shape)."""


class NotStartedError(ChunkError):
    """A chunk that arrived before the first joint state (normal for the first chunk after start-up)."""


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
        if not np.all(np.isfinite(self.values)):
            raise ChunkError("chunk contains NaN or infinite targets")
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
