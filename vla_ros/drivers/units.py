"""ROS-free unit conversions of the adapters: preset joint values (finger metres) to driver commands.

The emulations convert the other way with the drivers' own formulas (vla_ros.drivers.*_sim), written
independently, so a sign or factor slip in one shows against the other.
"""

from __future__ import annotations

import math

from ..robots import XsGripperSpec


def xs_linkage_angle(finger: float, horn_radius: float, arm_length: float) -> float:
    """Gripper motor angle (rad) that puts a finger ``finger`` m from the centre: the crank-slider
    ``finger = r sin(a) + sqrt(L^2 - (r cos(a))^2)`` solved for ``a`` (sin a = (x^2 + r^2 - L^2) / (2 r x))."""
    x, r, arm = float(finger), horn_radius, arm_length
    if x <= 0.0:
        raise ValueError(f"finger position {x} m is not positive")
    s = (x * x + r * r - arm * arm) / (2.0 * r * x)
    return math.asin(min(1.0, max(-1.0, s)))


def xs_gripper_command(finger: float, spec: XsGripperSpec) -> float:
    """The ``JointSingleCommand('gripper').cmd`` for finger position ``finger`` (m per finger) in the mode
    vla_ros sets: linear_position takes the full gap (m), the position modes the motor angle (rad)."""
    if spec.mode == "linear_position":
        return 2.0 * float(finger)
    if spec.motor:  # a linear map between [closed, open] pairs (ALOHA's FOLLOWER_GRIPPER_* constants)
        (f0, f1), (m0, m1) = spec.finger, spec.motor
        return m0 + (float(finger) - f0) / (f1 - f0) * (m1 - m0)
    return xs_linkage_angle(finger, spec.horn_radius, spec.arm_length)


def franka_gripper_closed(finger: float, open_: float, closed: float) -> bool:
    """The franka_gripper takes open/close goals: a finger command nearer ``closed`` than ``open_`` closes."""
    return abs(float(finger) - closed) < abs(float(finger) - open_)
