"""joint_trajectory_controller semantics (ros2_controllers, Jazzy) for simulated robots.

A new trajectory replaces the active one. It starts at its stamp (0 = on arrival), from the measured
state, and reaches ``points[0]`` at ``start + points[0].time_from_start``. Segments are linear with
positions only, cubic with velocities and quintic with accelerations; the last point is held.
"""

from __future__ import annotations

import numpy as np

from .interpolation import hermite


class TrajectoryRejected(ValueError):
    """A trajectory the joint_trajectory_controller would refuse."""


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
        h = self.t[i + 1] - self.t[i]
        if h <= 0:  # points[0] at time 0: jump
            return self.p[i + 1].copy()
        return hermite((now - self.t[i]) / h, h, self.p[i], self.v[i], self.a[i], self.p[i + 1], self.v[i + 1],
                       self.a[i + 1], self.order)[0]


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
