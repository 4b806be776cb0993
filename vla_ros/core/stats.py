"""Rolling statistics for latency and control-period diagnostics."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class RollingStats:
    """The last ``window`` samples, with percentiles; one thread may add while others read."""

    def __init__(self, window: int = 1000):
        self._values: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()
        self.count = 0

    def add(self, value: float) -> None:
        with self._lock:
            self._values.append(float(value))
            self.count += 1

    def __len__(self) -> int:
        return len(self._values)

    def percentile(self, q: float) -> float:
        values = self.values()
        return float(np.percentile(values, q)) if values.size else float("nan")

    def mean(self) -> float:
        values = self.values()
        return float(np.mean(values)) if values.size else float("nan")

    def max(self) -> float:
        values = self.values()
        return float(np.max(values)) if values.size else float("nan")

    def values(self) -> np.ndarray:
        """A snapshot of the samples, oldest first."""
        with self._lock:
            return np.array(self._values, dtype=float)

    def summary(self, scale: float = 1.0) -> dict[str, float]:
        """p50, p95, p99, max and mean, multiplied by ``scale``."""
        return {
            "p50": self.percentile(50) * scale,
            "p95": self.percentile(95) * scale,
            "p99": self.percentile(99) * scale,
            "max": self.max() * scale,
            "mean": self.mean() * scale,
        }


class RateMeter:
    """Achieved rate and period error of a periodic loop from its tick times."""

    def __init__(self, nominal_period: float, window: int = 5000, rate_window: int = 1000):
        self.nominal = nominal_period
        self.periods = RollingStats(window)
        self.rate_window = rate_window
        self._last: float | None = None

    def tick(self, t: float) -> None:
        if self._last is not None:
            self.periods.add(t - self._last)
        self._last = t

    def reset(self) -> None:
        self._last = None

    @property
    def rate(self) -> float:
        """Ticks per second over the last ``rate_window`` periods (the current rate, not since start-up)."""
        recent = self.periods.values()[-self.rate_window:]
        mean = float(recent.mean()) if recent.size else 0.0
        return 1.0 / mean if mean > 0 else float("nan")

    def period_error(self) -> np.ndarray:
        """|period - nominal| of each recorded tick, seconds."""
        return np.abs(self.periods.values() - self.nominal)

    def jitter_percentile(self, q: float) -> float:
        err = self.period_error()
        return float(np.percentile(err, q)) if err.size else float("nan")
