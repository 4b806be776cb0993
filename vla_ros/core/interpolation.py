"""Interpolants through timed knots: piecewise linear and C1 cubic Hermite."""

from __future__ import annotations

import numpy as np

MODES = ("linear", "cubic")


class Interpolant:
    """Positions ``knots_y`` (N, D) at increasing times ``knots_t`` (N,), held constant after the end.

    ``cubic`` uses Hermite segments with finite-difference velocities (Catmull-Rom on uneven spacing),
    the given start velocity and zero end velocity, so position and velocity are continuous.
    """

    def __init__(self, knots_t: np.ndarray, knots_y: np.ndarray, mode: str = "cubic",
                 start_velocity: np.ndarray | None = None):
        if mode not in MODES:
            raise ValueError(f"interpolation must be one of {MODES}, not {mode!r}")
        self.t = np.asarray(knots_t, dtype=float)
        self.y = np.asarray(knots_y, dtype=float)
        if self.y.ndim != 2 or self.t.shape[0] != self.y.shape[0] or self.t.shape[0] < 1:
            raise ValueError("knots must be (N,) times and (N, D) positions with N >= 1")
        if np.any(np.diff(self.t) <= 0):
            raise ValueError("knot times must be strictly increasing")
        self.mode = mode
        n, d = self.y.shape
        self.v = np.zeros((n, d))
        if mode == "cubic" and n > 1:
            slopes = np.diff(self.y, axis=0) / np.diff(self.t)[:, None]
            # Spacing-weighted average of neighbouring slopes (Catmull-Rom on uneven spacing).
            h = np.diff(self.t)
            self.v[1:-1] = (slopes[:-1] * h[1:, None] + slopes[1:] * h[:-1, None]) / (h[:-1] + h[1:])[:, None]
            self.v[-1] = 0.0
        if start_velocity is not None:
            self.v[0] = start_velocity

    @property
    def end_time(self) -> float:
        return float(self.t[-1])

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Position and velocity at time ``t``."""
        if t <= self.t[0]:
            return self.y[0].copy(), (self.v[0].copy() if self.t.shape[0] > 1 else np.zeros_like(self.y[0]))
        if t >= self.t[-1]:
            return self.y[-1].copy(), np.zeros_like(self.y[-1])
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        t0, t1 = self.t[i], self.t[i + 1]
        h = t1 - t0
        y0, y1 = self.y[i], self.y[i + 1]
        if self.mode == "linear":
            s = (t - t0) / h
            return y0 + s * (y1 - y0), (y1 - y0) / h
        s = (t - t0) / h
        v0, v1 = self.v[i] * h, self.v[i + 1] * h
        s2, s3 = s * s, s * s * s
        pos = (2 * s3 - 3 * s2 + 1) * y0 + (s3 - 2 * s2 + s) * v0 + (-2 * s3 + 3 * s2) * y1 + (s3 - s2) * v1
        vel = ((6 * s2 - 6 * s) * y0 + (3 * s2 - 4 * s + 1) * v0 + (-6 * s2 + 6 * s) * y1 + (3 * s2 - 2 * s) * v1) / h
        return pos, vel
