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


PI_GRIPPER_RANGE = (0.5476, 1.6296)  # rad: the pi runtime's gripper encoder range (counts 2405..3110 of 4096)
FLIP = np.array([1, -1, -1, 1, 1, 1, 1] * 2, float)  # adapt_to_pi: shoulder and elbow turn the other way
DELTA_MASK = np.array(([True] * 6 + [False]) * 2)  # openpi's ALOHA configs: joints as deltas, grippers absolute
GRIPPERS = (6, 13)


class OpenpiAloha:
    """openpi's ALOHA data transforms for a pi0 run in process on an openpi-trained ALOHA checkpoint
    (``AlohaInputs``/``AlohaOutputs`` with ``adapt_to_pi``, then ``DeltaActions``/``AbsoluteActions``).

    Our state (14, openpi order, fingers in metres) -> the model's: joints x FLIP; gripper = motor angle of
    the finger normalised over PI_GRIPPER_RANGE. The model's (un-normalised) actions -> targets: the delta
    joints plus the model-space state, x FLIP; gripper + 0.5476 = the motor angle, whose finger position
    (clipped to ``finger_limits``) is the target.
    """

    def __init__(self, finger_limits: tuple[float, float], delta: bool = True):
        self.finger_limits = finger_limits
        self.mask = DELTA_MASK if delta else np.zeros(14, bool)

    def state(self, state: np.ndarray) -> np.ndarray:
        s = FLIP * np.asarray(state, float)
        lo, hi = PI_GRIPPER_RANGE
        for k in GRIPPERS:
            s[k] = (finger_to_motor(state[k]) - lo) / (hi - lo)
        return s

    def targets(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        """(H, 14) un-normalised model actions and our state at capture -> (H, 14) targets."""
        a = np.array(actions, float) + np.where(self.mask, self.state(state), 0.0)
        a *= FLIP
        for k in GRIPPERS:
            a[:, k] = np.clip(motor_to_finger(a[:, k] + PI_GRIPPER_RANGE[0]), *self.finger_limits)
        return a

    def model_actions(self, targets: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`targets` (guided RTC's prefix in the model's space)."""
        a = np.array(targets, float)
        for k in GRIPPERS:
            a[:, k] = finger_to_motor(a[:, k]) - PI_GRIPPER_RANGE[0]
        a *= FLIP
        return a - np.where(self.mask, self.state(state), 0.0)
