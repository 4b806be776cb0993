"""Interpolants through timed knots: piecewise linear, C1 cubic and C2 quintic Hermite."""

from __future__ import annotations

import numpy as np

MODES = ("linear", "cubic", "quintic")


def hermite(s: float, h: float, p0, v0, a0, p1, v1, a1, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Position and velocity at fraction ``s`` of a segment of duration ``h`` (order 1, 3 or 5)."""
    if order == 1:
        return p0 + s * (p1 - p0), (p1 - p0) / h
    if order == 3:
        s2, s3 = s * s, s * s * s
        pos = (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * h * v0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * h * v1
        vel = ((6 * s2 - 6 * s) * (p0 - p1)) / h + (3 * s2 - 4 * s + 1) * v0 + (3 * s2 - 2 * s) * v1
        return pos, vel
    s2, s3, s4, s5 = s * s, s**3, s**4, s**5
    hh = h * h
    pos = ((1 - 10 * s3 + 15 * s4 - 6 * s5) * p0 + (s - 6 * s3 + 8 * s4 - 3 * s5) * h * v0
           + (0.5 * s2 - 1.5 * s3 + 1.5 * s4 - 0.5 * s5) * hh * a0 + (10 * s3 - 15 * s4 + 6 * s5) * p1
           + (-4 * s3 + 7 * s4 - 3 * s5) * h * v1 + (0.5 * s3 - s4 + 0.5 * s5) * hh * a1)
    vel = ((-30 * s2 + 60 * s3 - 30 * s4) * (p0 - p1) / h + (1 - 18 * s2 + 32 * s3 - 15 * s4) * v0
           + (s - 4.5 * s2 + 6 * s3 - 2.5 * s4) * h * a0 + (-12 * s2 + 28 * s3 - 15 * s4) * v1
           + (1.5 * s2 - 4 * s3 + 2.5 * s4) * h * a1)
    return pos, vel


def interp_rows(t: float | np.ndarray, times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Piecewise-linear ``values`` (N, D) at ``t`` (scalar -> (D,), array -> (M, D)), held beyond the ends."""
    return np.stack([np.interp(t, times, values[:, j]) for j in range(values.shape[1])], axis=-1)


class Interpolant:
    """Positions ``knots_y`` (N, D) at increasing times ``knots_t`` (N,), held constant after the end.

    ``cubic`` and ``quintic`` use Hermite segments with finite-difference knot velocities (Catmull-Rom on
    uneven spacing; quintic adds finite-difference accelerations). The first knot takes the given start
    velocity (and acceleration), the last comes to rest, so a new plan joins the running one without a
    jump in position, velocity (cubic) or acceleration (quintic).
    """

    def __init__(self, knots_t: np.ndarray, knots_y: np.ndarray, mode: str = "cubic",
                 start_velocity: np.ndarray | None = None, start_acceleration: np.ndarray | None = None):
        if mode not in MODES:
            raise ValueError(f"interpolation must be one of {MODES}, not {mode!r}")
        self.t = np.asarray(knots_t, dtype=float)
        self.y = np.asarray(knots_y, dtype=float)
        if self.y.ndim != 2 or self.t.shape[0] != self.y.shape[0] or self.t.shape[0] < 1:
            raise ValueError("knots must be (N,) times and (N, D) positions with N >= 1")
        if np.any(np.diff(self.t) <= 0):
            raise ValueError("knot times must be strictly increasing")
        self.mode = mode
        self.order = {"linear": 1, "cubic": 3, "quintic": 5}[mode]
        n, d = self.y.shape
        self.v = np.zeros((n, d))
        self.a = np.zeros((n, d))
        if self.order > 1 and n > 1:
            h = np.diff(self.t)
            slopes = np.diff(self.y, axis=0) / h[:, None]
            # Spacing-weighted average of neighbouring slopes (Catmull-Rom on uneven spacing).
            self.v[1:-1] = (slopes[:-1] * h[1:, None] + slopes[1:] * h[:-1, None]) / (h[:-1] + h[1:])[:, None]
            if start_velocity is not None:
                self.v[0] = start_velocity
            if self.order == 5:
                self.a[1:-1] = (self.v[2:] - self.v[:-2]) / (self.t[2:] - self.t[:-2])[:, None]
                if start_acceleration is not None:
                    self.a[0] = start_acceleration

    @property
    def end_time(self) -> float:
        return float(self.t[-1])

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Position and velocity at time ``t``."""
        if t <= self.t[0]:
            return self.y[0].copy(), self.v[0].copy()
        if t >= self.t[-1]:
            return self.y[-1].copy(), np.zeros_like(self.y[-1])
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        h = self.t[i + 1] - self.t[i]
        return hermite((t - self.t[i]) / h, h, self.y[i], self.v[i], self.a[i], self.y[i + 1], self.v[i + 1],
                       self.a[i + 1], self.order)
