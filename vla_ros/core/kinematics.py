"""Serial-chain kinematics from a URDF: forward kinematics, geometric Jacobian, damped IK."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .transforms import axis_angle_to_matrix, make_transform, rotation_log, rpy_to_matrix
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

    @property
    def dof(self) -> int:
        return len(self.joint_names)

    def _frames(self, q: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """World transforms of each joint frame (before its motion) and of the tip."""
        frames = []
        tf = np.eye(4)
        for fixed, axis, kind, qi in zip(self._fixed, self._axes, self._types, q):
            tf = tf @ fixed
            frames.append(tf)
            motion = np.eye(4)
            if kind == "prismatic":
                motion[:3, 3] = axis * qi
            else:
                motion[:3, :3] = axis_angle_to_matrix(axis, qi)
            tf = tf @ motion
        return frames, tf @ self._tip_offset

    def fk(self, q: np.ndarray) -> np.ndarray:
        """4x4 pose of the tip in the base frame."""
        return self._frames(np.asarray(q, float))[1]

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """6xN geometric Jacobian (linear rows first) of the tip in the base frame."""
        frames, tip = self._frames(np.asarray(q, float))
        jac = np.zeros((6, self.dof))
        p_tip = tip[:3, 3]
        for i, (frame, axis, kind) in enumerate(zip(frames, self._axes, self._types)):
            z = frame[:3, :3] @ axis
            if kind == "prismatic":
                jac[:3, i] = z
            else:
                jac[:3, i] = np.cross(z, p_tip - frame[:3, 3])
                jac[3:, i] = z
        return jac

    def ik(
        self,
        target: np.ndarray,
        q0: np.ndarray,
        *,
        max_iterations: int = 60,
        position_tolerance: float = 1e-4,
        rotation_tolerance: float = 1e-3,
        rotation_weight: float = 0.3,
        damping: float = 1e-3,
    ) -> IkResult:
        """Damped least squares towards a 4x4 target pose, clamped to joint limits."""
        q = np.clip(np.asarray(q0, float).copy(), self.lower, self.upper)
        weights = np.array([1.0, 1.0, 1.0, rotation_weight, rotation_weight, rotation_weight])
        for it in range(1, max_iterations + 1):
            pose = self.fk(q)
            err = np.concatenate([target[:3, 3] - pose[:3, 3], rotation_log(target[:3, :3] @ pose[:3, :3].T)])
            pos_err, rot_err = np.linalg.norm(err[:3]), np.linalg.norm(err[3:])
            if pos_err < position_tolerance and rot_err < rotation_tolerance:
                return IkResult(q, True, pos_err, rot_err, it)
            jac = self.jacobian(q) * weights[:, None]
            werr = err * weights
            step = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(6), werr)
            norm = np.linalg.norm(step)
            if norm > 0.5:
                step *= 0.5 / norm
            q = np.clip(q + step, self.lower, self.upper)
        pose = self.fk(q)
        pos_err = float(np.linalg.norm(target[:3, 3] - pose[:3, 3]))
        rot_err = float(np.linalg.norm(rotation_log(target[:3, :3] @ pose[:3, :3].T)))
        return IkResult(q, pos_err < position_tolerance * 10 and rot_err < rotation_tolerance * 10,
                        pos_err, rot_err, max_iterations)
