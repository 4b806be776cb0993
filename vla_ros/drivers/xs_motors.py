"""What an Interbotix xs_sdk does with commands, without ROS: Dynamixel operating modes and profiles, and
the gripper linkage as the driver computes it (interbotix_xs_driver ``xs_driver.cpp``). The sim's emulated
xs_sdk (vla_ros.drivers.interbotix_sim) runs these; they do not share code with the adapter's conversions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

PWM_LIMIT = 885.0  # XM430 PWM_Limit: the full-scale PWM command
PWM_FINGER_SPEED = 0.05  # m/s of one finger at full PWM (a stand-in: PWM sets a force, not a speed)
RPM_UNIT = 0.229  # Profile_Velocity unit (rev/min) in velocity-based profiles
MODES = ("position", "ext_position", "current_based_position", "linear_position", "pwm", "velocity", "current")
POSITION_MODES = ("position", "ext_position", "current_based_position")


@dataclass
class MotorMode:
    """A motor's operating mode and profile, as ``set_operating_modes`` sets them."""

    mode: str = "position"
    profile_type: str = "velocity"  # velocity | time
    profile_velocity: int = 0  # velocity: 0.229 rpm units (0: no limit); time: ms per goal
    profile_acceleration: int = 0  # velocity: 214.577 rev/min^2 units (0: no limit); time: ms of acceleration


@dataclass
class XsModel:
    """A robot_model's gripper linkage (interbotix_xsarm_control config/<model>.yaml) and the modes its
    standard bring-up boots with (config/modes.yaml; ALOHA: config/follower_modes_*.yaml)."""

    horn_radius: float
    arm_length: float
    boot_arm: MotorMode
    boot_gripper: MotorMode


XS_MODELS: dict[str, XsModel] = {
    # xsarm_control's default modes.yaml: a 2 s time-based profile for every goal, a PWM gripper
    "wx250s": XsModel(0.014, 0.024, MotorMode("position", "time", 2000, 300), MotorMode("pwm")),
    # Interbotix/aloha follower_modes_*.yaml: no profile, the gripper in linear_position
    "aloha_vx300s": XsModel(0.0275, 0.035, MotorMode("position", "velocity", 0, 0),
                            MotorMode("linear_position", "velocity", 0, 0)),
}


def finger_from_angle(angle: float, model: XsModel) -> float:
    """``left_finger`` (m) for gripper motor angle ``angle`` (rad), as the driver publishes it: the horn's
    offset plus the arm's projection (xs_driver.cpp, joint-state update)."""
    a1 = model.horn_radius * math.sin(angle)
    c = math.sqrt(model.horn_radius**2 - a1**2)
    a2 = math.sqrt(model.arm_length**2 - c**2)
    return a1 + a2


def angle_from_linear(gap: float, model: XsModel) -> float:
    """The motor angle a ``linear_position`` command (the full gap, m) is converted to by the driver."""
    half = gap / 2.0
    r, arm = model.horn_radius, model.arm_length
    cosine = (r**2 + half**2 - arm**2) / (2.0 * r * half)
    return math.pi / 2.0 - math.acos(max(-1.0, min(1.0, cosine)))


def angle_from_finger(finger: float, model: XsModel) -> float:
    """The motor angle whose linkage puts the finger at ``finger`` (numerically, over the horn's half turn)."""
    angles = np.linspace(-math.pi / 2.0, math.pi / 2.0, 2001)
    fingers = np.array([finger_from_angle(a, model) for a in angles])
    return float(np.interp(finger, fingers, angles))


class Profile:
    """One motor's goal position under its profile: ``goal`` restarts the profile from where it is; ``sample``
    gives the position the motor is driven to (the sim's servo target)."""

    def __init__(self, position: float):
        self.position = self.start = self.goal = float(position)
        self.t0 = 0.0

    def set_goal(self, goal: float, t: float) -> None:
        self.start, self.goal, self.t0 = self.position, float(goal), t

    def sample(self, t: float, dt: float, mode: MotorMode) -> float:
        if mode.profile_type == "time" and mode.profile_velocity > 0:
            total = mode.profile_velocity / 1000.0
            ramp = min(mode.profile_acceleration / 1000.0, total / 2.0)
            self.position = self.start + (self.goal - self.start) * _trapezoid(t - self.t0, total, ramp)
        elif mode.profile_type == "velocity" and mode.profile_velocity > 0:
            step = mode.profile_velocity * RPM_UNIT * 2.0 * math.pi / 60.0 * dt
            self.position += float(np.clip(self.goal - self.position, -step, step))
        else:
            self.position = self.goal
        return self.position


def _trapezoid(tau: float, total: float, ramp: float) -> float:
    """Fraction of the way covered ``tau`` s into a trapezoidal-velocity move of ``total`` s whose speed ramps
    over ``ramp`` s at each end."""
    if tau <= 0.0:
        return 0.0
    if tau >= total:
        return 1.0
    if ramp <= 0.0:
        return tau / total
    peak = 1.0 / (total - ramp)
    if tau < ramp:
        return 0.5 * peak * tau * tau / ramp
    if tau <= total - ramp:
        return peak * (tau - ramp / 2.0)
    rest = total - tau
    return 1.0 - 0.5 * peak * rest * rest / ramp
