"""When to start the next inference so the robot never waits for the model.

``fixed``: every ``period`` seconds. ``latency_aware``: so that the next chunk is expected to arrive
once ``execution_horizon`` steps of the current one have run, using a high percentile of the measured
latency; back to back when the model is slower than that, never before the previous inference ends.
"""

from __future__ import annotations

import numpy as np

from .stats import RollingStats

TRIGGERS = ("fixed", "latency_aware")


class InferenceScheduler:
    def __init__(self, mode: str, period: float, dt: float, horizon: int, execution_horizon: int,
                 quantile: float = 95.0, margin: float = 0.01, window: int = 50, initial_latency: float = 0.1,
                 min_interval: float = 0.01):
        if mode not in TRIGGERS:
            raise ValueError(f"trigger must be one of {TRIGGERS}, not {mode!r}")
        if not 1 <= execution_horizon <= horizon:
            raise ValueError(f"execution_horizon {execution_horizon} must be within 1..horizon ({horizon})")
        self.mode, self.period, self.dt, self.horizon = mode, period, dt, horizon
        self.execution_horizon = execution_horizon
        self.quantile, self.margin = quantile, margin
        self.latency = RollingStats(window)
        self.initial_latency = initial_latency
        self.min_interval = min_interval
        self.last_start: float | None = None
        self.last_stamp: float | None = None  # capture stamp of the newest published chunk

    def latency_estimate(self) -> float:
        """A high percentile of recent latencies (the initial guess until some are measured)."""
        if len(self.latency) < 3:
            return self.initial_latency if not len(self.latency) else max(self.latency.max(), 0.0)
        return self.latency.percentile(self.quantile)

    def delay_steps(self) -> int:
        """Expected inference delay in chunk steps, d = ceil(latency / dt)."""
        return int(np.ceil(self.latency_estimate() / self.dt))

    def next_start(self) -> float:
        """The time the next inference should start (``-inf``: now). Safe beside a concurrent :meth:`reset`."""
        last_start, last_stamp = self.last_start, self.last_stamp  # one read each: reset() may run meanwhile
        if last_start is None:
            return -np.inf
        if self.mode == "fixed" or last_stamp is None:
            return last_start + self.period
        due = last_stamp + self.execution_horizon * self.dt  # when the next chunk should take over
        return max(due - self.latency_estimate() - self.margin, last_start + self.min_interval)

    def should_start(self, now: float, busy: bool) -> bool:
        return not busy and now >= self.next_start()

    def started(self, now: float) -> None:
        self.last_start = now

    def finished(self, latency: float, stamp: float | None) -> None:
        """Record a finished inference (``stamp`` of the published chunk, None if none was published)."""
        self.latency.add(latency)
        if stamp is not None:
            self.last_stamp = stamp

    def reset(self) -> None:
        self.last_start = None
        self.last_stamp = None
