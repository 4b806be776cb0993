"""How a new chunk's targets combine with what the controller is already executing.

All functions take the new chunk's remaining targets (``times`` absolute, ``values`` (N, D)) and
return the targets to execute at the same times.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .interpolation import Interpolant, interp_rows

MERGE_MODES = ("latest", "ensemble", "rtc")
RTC_SCHEDULES = ("linear", "exp")


def rtc_weights(horizon: int, delay: int, execution_horizon: int, schedule: str = "linear") -> np.ndarray:
    """Real-Time Chunking prefix weights W (Black et al. 2025) for a chunk of ``horizon`` steps.

    W = 1 for the ``delay`` steps that run before the chunk can act, decays to 0 over the overlap with
    the previous chunk, and is 0 from ``horizon - execution_horizon`` on.
    """
    if schedule not in RTC_SCHEDULES:
        raise ValueError(f"rtc schedule must be one of {RTC_SCHEDULES}, not {schedule!r}")
    i = np.arange(horizon, dtype=float)
    end = horizon - execution_horizon  # first index the previous chunk no longer covers
    span = max(end - delay + 1, 1)
    c = np.clip((end - i) / span, 0.0, 1.0)
    c[i < delay] = 1.0
    c[i >= end] = 0.0
    if schedule == "exp":
        return c * np.expm1(c) / np.expm1(1.0)
    return c


def blend_prefix(previous: Interpolant | None, times: np.ndarray, values: np.ndarray,
                 weights: np.ndarray) -> np.ndarray:
    """``W * previous(t) + (1 - W) * new`` where the previous plan still has targets (t <= its end)."""
    if previous is None:
        return values.copy()
    out = values.copy()
    for k, t in enumerate(times):
        if weights[k] > 0.0 and t <= previous.end_time:
            out[k] = weights[k] * previous.sample(t)[0] + (1.0 - weights[k]) * values[k]
    return out


@dataclass
class TimedTargets:
    """One received chunk's targets at absolute times (controller joint order)."""

    times: np.ndarray
    values: np.ndarray

    def covers(self, t: float) -> bool:
        return self.times[0] <= t <= self.times[-1]

    def at(self, t: float) -> np.ndarray:
        return interp_rows(t, self.times, self.values)


def temporal_ensemble(history: list[TimedTargets], times: np.ndarray, values: np.ndarray, k: float) -> np.ndarray:
    """ACT temporal ensembling: every chunk that predicts time t votes, weight exp(-k i), i = 0 the oldest.

    ``history`` holds earlier chunks, oldest first; the new chunk (``values``) is the newest.
    """
    out = np.empty_like(values)
    for n, t in enumerate(times):
        preds = [c.at(t) for c in history if c.covers(t)] + [values[n]]
        w = np.exp(-k * np.arange(len(preds)))
        out[n] = (w[:, None] * np.array(preds)).sum(axis=0) / w.sum()
    return out


def prefix_for(previous, stamp: float, times: np.ndarray, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The previous chunk's targets at ``stamp + times`` (linear in time), and where it still has them.

    ``previous`` is an ActionChunk; its values are reordered to ``names``.
    """
    values = previous.select(names)
    due = previous.absolute_times
    at = stamp + np.asarray(times, float)
    return interp_rows(at, due, values), (at >= due[0]) & (at <= due[-1])
