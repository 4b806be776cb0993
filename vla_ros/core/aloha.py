"""ALOHA gripper units of openpi checkpoints (openpi ``aloha_policy.py`` and the Interbotix/aloha constants).

openpi's ALOHA data come from the ROS 1 "puppet" followers: the state's gripper is the finger position
normalised over 0.01844 (closed) .. 0.05800 m (open); the action's gripper is the gripper motor's joint
angle normalised over -0.6213 (closed) .. 1.4910 rad (open), which the ALOHA runtime un-normalises and
sends to the motor. Finger position x and motor angle theta are tied by the Interbotix linkage (horn
radius h = 0.022 m, arm length a = 0.036 m): sin(theta) = (h^2 + x^2 - a^2) / (2 h x), so
x = h sin(theta) + sqrt(a^2 - h^2 cos(theta)^2); the two ranges above are the same gripper travel.
"""

from __future__ import annotations

import numpy as np

FINGER_RANGE = (0.01844, 0.05800)  # m: PUPPET_GRIPPER_POSITION_CLOSE, _OPEN
MOTOR_RANGE = (-0.6213, 1.4910)  # rad: PUPPET_GRIPPER_JOINT_CLOSE, _OPEN
HORN_RADIUS, ARM_LENGTH = 0.022, 0.036  # m: the Interbotix gripper linkage


def finger_to_motor(finger: np.ndarray) -> np.ndarray:
    """Finger position (m) -> gripper motor angle (rad)."""
    x = np.asarray(finger, float)
    h, a = HORN_RADIUS, ARM_LENGTH
    return np.arcsin(np.clip((h**2 + x**2 - a**2) / (2 * h * x), -1.0, 1.0))


def motor_to_finger(angle: np.ndarray) -> np.ndarray:
    """Gripper motor angle (rad) -> finger position (m)."""
    theta = np.asarray(angle, float)
    h, a = HORN_RADIUS, ARM_LENGTH
    return h * np.sin(theta) + np.sqrt(a**2 - (h * np.cos(theta)) ** 2)


def state_from_finger(finger: np.ndarray) -> np.ndarray:
    """Measured finger position (m) -> openpi ALOHA state value (0 closed .. 1 open, not clipped)."""
    lo, hi = FINGER_RANGE
    return (np.asarray(finger, float) - lo) / (hi - lo)


def finger_from_state(value: np.ndarray) -> np.ndarray:
    lo, hi = FINGER_RANGE
    return lo + np.asarray(value, float) * (hi - lo)


def finger_from_action(value: np.ndarray) -> np.ndarray:
    """openpi ALOHA action value (normalised motor angle) -> finger position (m) that angle reaches."""
    lo, hi = MOTOR_RANGE
    return motor_to_finger(lo + np.asarray(value, float) * (hi - lo))


def action_from_finger(finger: np.ndarray) -> np.ndarray:
    lo, hi = MOTOR_RANGE
    return (finger_to_motor(finger) - lo) / (hi - lo)
