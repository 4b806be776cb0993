"""End-effector commands from joint commands, and joint targets from end-effector commands (ROS-free).

The controller plans in joint space (limits, RTC merging, watchdogs); a Cartesian output is the tool pose
of the commanded joints (forward kinematics) or their tool twist (Jacobian x joint velocities), in the
chain's base frame. The sim's Cartesian inputs go the other way: inverse kinematics of a pose target, or a
twist integrated through the damped pseudo-inverse of the Jacobian.
"""

from __future__ import annotations

import numpy as np

from .kinematics import Chain

TWIST_TIMEOUT = 0.1  # s: a twist older than this is no command (MoveIt Servo's incoming_command_timeout)


def tool_pose(chain: Chain, q: np.ndarray) -> np.ndarray:
    """4x4 tool pose of joint positions ``q`` (chain order)."""
    return chain.fk(np.asarray(q, float))


def tool_twist(chain: Chain, q: np.ndarray, qdot: np.ndarray) -> np.ndarray:
    """(6,) linear (m/s) then angular (rad/s) velocity of the tool, base frame."""
    return chain.jacobian(np.asarray(q, float)) @ np.asarray(qdot, float)


def joint_step_for_twist(chain: Chain, q: np.ndarray, twist: np.ndarray, dt: float,
                         damping: float = 1e-4) -> np.ndarray:
    """Joint displacement that moves the tool by ``twist`` x ``dt`` (damped least squares: bounded near a
    singularity)."""
    jac = chain.jacobian(np.asarray(q, float))
    return jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(6), np.asarray(twist, float) * dt)
