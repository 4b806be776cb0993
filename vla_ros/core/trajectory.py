"""joint_trajectory_controller semantics (ros2_controllers, Jazzy) for simulated robots.

A new trajectory replaces the active one. It starts at its stamp (0 = on arrival), from the measured
state, and reaches ``points[0]`` at ``start + points[0].time_from_start``. Segments are linear with
positions only, cubic with velocities and quintic with accelerations; the last point is held.
"""

from __future__ import annotations

import numpy as np


class TrajectoryRejected(ValueError):
    """A trajectory the joint_trajectory_controller would refuse."""


def _hermite(t: float, t0: float, t1: float, p0, v0, a0, p1, v1, a1, order: int) -> np.ndarray:
    h = t1 - t0
    s = (t - t0) / h
    if order == 1:
        return p0 + s * (p1 - p0)
    if order == 3:
        s2, s3 = s * s, s * s * s
        return (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * h * v0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * h * v1
    s2, s3, s4, s5 = s**2, s**3, s**4, s**5
    return (
        (1 - 10 * s3 + 15 * s4 - 6 * s5) * p0
        + (s - 6 * s3 + 8 * s4 - 3 * s5) * h * v0
        + (0.5 * s2 - 1.5 * s3 + 1.5 * s4 - 0.5 * s5) * h * h * a0
        + (10 * s3 - 15 * s4 + 6 * s5) * p1
        + (-4 * s3 + 7 * s4 - 3 * s5) * h * v1
        + (0.5 * s3 - s4 + 0.5 * s5) * h * h * a1
    )


class JtcTrajectory:
    """One accepted trajectory over all controller joints, sampled at absolute times."""

    def __init__(self, start_time: float, start_pos: np.ndarray, start_vel: np.ndarray, times: np.ndarray,
                 positions: np.ndarray, velocities: np.ndarray | None = None,
                 accelerations: np.ndarray | None = None):
        self.order = 5 if accelerations is not None and velocities is not None else 3 if velocities is not None else 1
        n = positions.shape[1]
        self.t = np.concatenate([[start_time], start_time + np.asarray(times, float)])
        self.p = np.vstack([start_pos[None, :], positions])
        self.v = np.vstack([start_vel[None, :], velocities]) if velocities is not None else np.zeros_like(self.p)
        self.a = np.vstack([np.zeros((1, n)), accelerations]) if accelerations is not None else np.zeros_like(self.p)

    @property
    def end_time(self) -> float:
        return float(self.t[-1])

    def sample(self, now: float) -> np.ndarray:
        if now <= self.t[0]:
            return self.p[0].copy()
        if now >= self.t[-1]:
            return self.p[-1].copy()
        i = int(np.searchsorted(self.t, now, side="right")) - 1
        if self.t[i + 1] - self.t[i] <= 0:  # points[0] at time 0: jump
            return self.p[i + 1].copy()
        return _hermite(now, self.t[i], self.t[i + 1], self.p[i], self.v[i], self.a[i],
                        self.p[i + 1], self.v[i + 1], self.a[i + 1], self.order)


def accept_trajectory(controller_joints: list[str], joint_names: list[str], stamp: float, now: float,
                      times: np.ndarray, positions: np.ndarray, velocities: np.ndarray | None,
                      accelerations: np.ndarray | None, measured: np.ndarray,
                      measured_vel: np.ndarray) -> JtcTrajectory:
    """Validate a JointTrajectory the way JTC does and build it in controller joint order."""
    if not joint_names:
        raise TrajectoryRejected("empty joint_names")
    unknown = [n for n in joint_names if n not in controller_joints]
    if unknown:
        raise TrajectoryRejected(f"unknown joints {unknown}")
    if sorted(joint_names) != sorted(controller_joints):
        raise TrajectoryRejected(f"joint_names must hold all of {controller_joints} (got {joint_names})")
    if positions.shape[0] == 0:
        raise TrajectoryRejected("no points")
    if positions.shape[1] != len(joint_names):
        raise TrajectoryRejected("points have a different size from joint_names")
    if np.any(np.diff(times) <= 0) or np.any(times < 0):
        raise TrajectoryRejected("time_from_start is not strictly increasing")
    for arr, label in ((positions, "positions"), (velocities, "velocities"), (accelerations, "accelerations")):
        if arr is not None and not np.all(np.isfinite(arr)):
            raise TrajectoryRejected(f"non-finite {label}")
    if velocities is not None and np.any(velocities[-1] != 0):
        raise TrajectoryRejected("last point has non-zero velocity")
    start = now if stamp == 0 else stamp
    if stamp != 0 and stamp + times[-1] < now:
        raise TrajectoryRejected("trajectory ends in the past")
    order = [joint_names.index(n) for n in controller_joints]
    return JtcTrajectory(start, measured, measured_vel, times, positions[:, order],
                         None if velocities is None else velocities[:, order],
                         None if accelerations is None else accelerations[:, order])
