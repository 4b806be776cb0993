"""Serial-chain kinematics from a URDF: forward kinematics, geometric Jacobian, damped IK."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .transforms import make_transform, rotation_log, rpy_to_matrix
from .urdf import UrdfModel


@dataclass
class IkResult:
    q: np.ndarray
    success: bool
    position_error: float
    rotation_error: float
    iterations: int


class Chain:
    """The movable joints between a base link and a tip link, in order."""

    def __init__(self, model: UrdfModel, base: str, tip: str):
        path = model.path(base, tip)
        self.base, self.tip = base, tip
        self._fixed: list[np.ndarray] = []  # transform before each movable joint
        self._axes: list[np.ndarray] = []
        self._types: list[str] = []
        self.joint_names: list[str] = []
        lower, upper = [], []
        pending = np.eye(4)
        for joint in path:
            pending = pending @ make_transform(rpy_to_matrix(joint.rpy), joint.xyz)
            if joint.movable:
                self._fixed.append(pending)
                self._axes.append(joint.axis)
                self._types.append(joint.type)
                self.joint_names.append(joint.name)
                lower.append(joint.lower)
                upper.append(joint.upper)
                pending = np.eye(4)
        self._tip_offset = pending
        self.lower = np.array(lower)
        self.upper = np.array(upper)

        axes = self._axis_rows = np.array(self._axes, float).reshape(-1, 3)
        self._revolute = np.array([t != "prismatic" for t in self._types])
        skew = np.zeros((len(axes), 3, 3))
        skew[:, 0, 1], skew[:, 0, 2], skew[:, 1, 2] = -axes[:, 2], axes[:, 1], -axes[:, 0]
        skew -= skew.transpose(0, 2, 1)
        self._skew, self._skew2 = skew, skew @ skew  # Rodrigues: R = I + sin q K + (1 - cos q) K^2

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    def _motions(self, q: np.ndarray) -> np.ndarray:
        """(N, 4, 4) joint motions for positions ``q`` (all joints at once)."""
        q = np.asarray(q, float)
        rev = np.where(self._revolute, q, 0.0)
        motion = np.zeros((len(q), 4, 4))
        motion[:, :3, :3] = (np.eye(3) + np.sin(rev)[:, None, None] * self._skew
                             + (1.0 - np.cos(rev))[:, None, None] * self._skew2)
        motion[:, :3, 3] = np.where(self._revolute, 0.0, q)[:, None] * self._axis_rows
        motion[:, 3, 3] = 1.0
        return motion

    def _frames(self, q: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """World transforms of each joint frame (before its motion) and of the tip."""
        frames = []
        tf = np.eye(4)
        for fixed, motion in zip(self._fixed, self._motions(q)):
            tf = tf @ fixed
            frames.append(tf)
            tf = tf @ motion
        return frames, tf @ self._tip_offset

    @property
    def origin(self) -> np.ndarray:
        """Position of the first movable joint in the base frame (where a mounted arm stands)."""
        return self._fixed[0][:3, 3].copy() if self._fixed else self._tip_offset[:3, 3].copy()

    def fk(self, q: np.ndarray) -> np.ndarray:
        """4x4 pose of the tip in the base frame."""
        return self._frames(np.asarray(q, float))[1]

    def _jacobian(self, frames: list[np.ndarray], tip: np.ndarray) -> np.ndarray:
        stacked = np.array(frames)
        z = np.einsum("nij,nj->ni", stacked[:, :3, :3], self._axis_rows)
        lever = tip[:3, 3] - stacked[:, :3, 3]
        linear = np.where(self._revolute[:, None], np.cross(z, lever), z)
        angular = np.where(self._revolute[:, None], z, 0.0)
        return np.vstack([linear.T, angular.T])

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """6xN geometric Jacobian (linear rows first) of the tip in the base frame."""
        return self._jacobian(*self._frames(np.asarray(q, float)))

    def ik(
        self,
        target: np.ndarray,
        q0: np.ndarray,
        *,
        max_iterations: int = 60,
        position_tolerance: float = 1e-4,
        rotation_tolerance: float = 1e-3,
        rotation_weight: float = 0.3,
        damping: float = 1e-6,
        restarts: int = 0,
        rest: np.ndarray | None = None,
    ) -> IkResult:
        """Damped least squares towards a 4x4 target pose, clamped to joint limits. The damping grows with the
        error (Levenberg-Marquardt style: short steps far off, Gauss-Newton near the goal). ``restarts`` > 0:
        an attempt that stalls or fails is repeated from seeds drawn within the limits (a fixed sequence),
        the best result returned. ``rest``: a posture the joints drift towards where the pose leaves freedom
        (the null space of a redundant arm such as the 7-joint Franka, which otherwise wanders to its limits);
        joints at a limit that a step would push further are left out of that step."""
        solve = lambda seed, stall: self._solve(target, seed, max_iterations, position_tolerance,  # noqa: E731
                                                rotation_tolerance, rotation_weight, damping, stall, rest)
        best = solve(q0, restarts > 0)
        rng = None
        for _ in range(restarts):
            if best.success:
                break
            rng = rng or np.random.default_rng(0)
            seed = rng.uniform(np.maximum(self.lower, -np.pi), np.minimum(self.upper, np.pi))
            result = solve(seed, True)
            result.iterations += best.iterations
            better = result.position_error + rotation_weight * result.rotation_error < (
                best.position_error + rotation_weight * best.rotation_error)
            best = result if result.success or better else IkResult(best.q, False, best.position_error,
                                                                    best.rotation_error, result.iterations)
        return best

    def _solve(self, target: np.ndarray, q0: np.ndarray, max_iterations: int, position_tolerance: float,
               rotation_tolerance: float, rotation_weight: float, damping: float, stall: bool,
               rest: np.ndarray | None = None) -> IkResult:
        """One attempt from ``q0``; with ``stall``, it gives up once the error stops falling."""
        q = np.clip(np.asarray(q0, float).copy(), self.lower, self.upper)
        rest = np.asarray(rest, float) if rest is not None and self.dof > 6 else None  # (only where freedom is spare)
        weights = np.array([1.0, 1.0, 1.0, rotation_weight, rotation_weight, rotation_weight])
        best = (np.inf, q, np.inf, np.inf)
        history: list[float] = []
        it = 0
        for it in range(1, max_iterations + 1):
            frames, pose = self._frames(q)
            err = np.concatenate([target[:3, 3] - pose[:3, 3], rotation_log(target[:3, :3] @ pose[:3, :3].T)])
            pos_err, rot_err = float(np.linalg.norm(err[:3])), float(np.linalg.norm(err[3:]))
            if pos_err < position_tolerance and rot_err < rotation_tolerance:
                return IkResult(q, True, pos_err, rot_err, it)
            cost = pos_err + rotation_weight * rot_err
            if cost < best[0]:
                best = (cost, q, pos_err, rot_err)
            history.append(cost)
            if stall and it >= 10 and history[-1] > 0.8 * history[-6]:
                break  # a local minimum or a joint limit: a new seed does better than more steps
            jac = self._jacobian(frames, pose) * weights[:, None]
            werr = err * weights
            lam = damping + 0.01 * float(werr @ werr)
            free = np.ones(self.dof, bool)
            for _ in range(2):  # once more without the joints a step would push past their limits
                j = jac * free
                inverse = j.T @ np.linalg.inv(j @ j.T + lam * np.eye(6))
                step = inverse @ werr
                if rest is not None:  # drift towards the rest posture without moving the tool
                    step += (np.eye(self.dof) - inverse @ j) @ (0.2 * (rest - q) * free)
                blocked = ((q <= self.lower) & (step < 0)) | ((q >= self.upper) & (step > 0))
                if not (blocked & free).any():
                    break
                free &= ~blocked
            norm = float(np.linalg.norm(step))
            if norm > 0.5:
                step *= 0.5 / norm
            q = np.clip(q + step, self.lower, self.upper)
        _, q, pos_err, rot_err = best
        return IkResult(q, pos_err < position_tolerance * 10 and rot_err < rotation_tolerance * 10,
                        pos_err, rot_err, it)
