"""An end-effector workspace box: an axis-aligned box in the robot's base frame (metres) that the tool
point may not leave. Checked on the plan a little ahead, so the arm brakes at the wall, not beyond it."""

from __future__ import annotations

import numpy as np

from .kinematics import Chain


class WorkspaceBox:
    def __init__(self, chain: Chain, joints: list[str], lower, upper):
        """``joints``: the controller's joint order (the chain's joints must be among them)."""
        self.lower, self.upper = np.asarray(lower, float), np.asarray(upper, float)
        if self.lower.shape != (3,) or self.upper.shape != (3,) or np.any(self.lower >= self.upper):
            raise ValueError(f"workspace box needs min < max, 3 values each (x, y, z), not {lower} .. {upper}")
        missing = [j for j in chain.joint_names if j not in joints]
        if missing:
            raise ValueError(f"the workspace box needs the chain's joints {missing} among the controlled ones")
        self.chain = chain
        self.index = [joints.index(j) for j in chain.joint_names]

    def position(self, q: np.ndarray) -> np.ndarray:
        return self.chain.fk(np.asarray(q)[self.index])[:3, 3]

    def outside(self, p: np.ndarray) -> float:
        """Distance (m) from point ``p`` to the box (0 inside)."""
        return float(np.linalg.norm(np.maximum(np.maximum(self.lower - p, p - self.upper), 0.0)))

    def leaving(self, target: np.ndarray, current: np.ndarray) -> str:
        """A reason when joint positions ``target`` put the tool outside the box and further out than
        ``current`` does (an arm that starts outside may still move back in); else ''."""
        p = self.position(target)
        gap = self.outside(p)
        if gap <= 1e-4 or gap <= self.outside(self.position(current)) + 1e-6:
            return ""
        return (f"workspace: end effector would reach ({p[0]:.3f}, {p[1]:.3f}, {p[2]:.3f}) m, {gap * 1000:.0f} mm "
                f"outside the box {np.round(self.lower, 3).tolist()} .. {np.round(self.upper, 3).tolist()}")
