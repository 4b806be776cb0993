"""The emulated Interbotix xs_sdk the MuJoCo sim runs, one per driver namespace: the driver's topics,
services and joint states, and what its operating modes do to motion (vla_ros.drivers.xs_motors): under
the bring-up's boot modes a streamed WidowX crawls (a 2 s profile per goal) and its PWM gripper does not
follow metres, as the real arm would until vla_ros's set-up has run."""

from __future__ import annotations

import math
import threading

from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState

from ..core.problems import ProblemTracker
from ..robots import XsArmSpec
from ..ros.conversions import to_time
from ..sim.physics import ArmSim
from . import interbotix as xs
from .xs_motors import (
    MODES,
    PWM_FINGER_SPEED,
    PWM_LIMIT,
    XS_MODELS,
    MotorMode,
    Profile,
    angle_from_finger,
    angle_from_linear,
    finger_from_angle,
)

JOINT_STATE_RATE = 100.0  # Hz (xs_sdk's joint_state publishing)


class XsSdkEmulation:
    """One xs_sdk instance (``robot_name`` = ``arm.namespace``) over the sim's joints."""

    def __init__(self, node: Node, sim: ArmSim, arm: XsArmSpec, lock: threading.Lock, problems: ProblemTracker,
                 now):
        from interbotix_xs_msgs.msg import JointGroupCommand, JointSingleCommand
        from interbotix_xs_msgs.srv import OperatingModes, Reboot, RegisterValues, RobotInfo, TorqueEnable

        self.sim, self.arm, self.lock, self.problems, self.now = sim, arm, lock, problems, now
        self.model = XS_MODELS[arm.model]
        self.names = [j[len(arm.prefix):] for j in arm.joints]  # the driver's joint names
        self.arm_mode = MotorMode(**vars(self.model.boot_arm))
        self.gripper_mode = MotorMode(**vars(self.model.boot_gripper))
        self.registers: dict[tuple[str, str], int] = {}
        self.torque = True
        self.counts = {"group_commands": 0, "single_commands": 0, "rejected": 0}
        self.profiles: list[Profile] = []
        self.finger_goal = 0.0  # m (position modes), or the PWM-driven finger target
        self.pwm = 0.0
        self._reset()
        ns = arm.namespace
        qos = QoSProfile(depth=10)  # (xs_sdk: reliable, depth 10)
        node.create_subscription(JointGroupCommand, xs.group_topic(ns), self._on_group, qos)
        node.create_subscription(JointSingleCommand, xs.single_topic(ns), self._on_single, qos)
        node.create_service(OperatingModes, xs.service(ns, "set_operating_modes"), self._on_modes)
        node.create_service(Reboot, xs.service(ns, "reboot_motors"), self._on_reboot)
        node.create_service(RegisterValues, xs.service(ns, "set_motor_registers"), self._on_registers)
        node.create_service(TorqueEnable, xs.service(ns, "torque_enable"), self._on_torque)
        node.create_service(RobotInfo, xs.service(ns, "get_robot_info"), self._on_info)
        self.js_pub = node.create_publisher(JointState, xs.joint_states_topic(ns), QoSProfile(depth=10))
        sim.step_hooks.append(self._step)
        sim.reset_hooks.append(self._reset)

    # -- commands (ROS callbacks; the physics thread reads under the lock) --------------------
    def _reject(self, key: str, text: str) -> None:
        self.counts["rejected"] += 1
        self.problems.report(f"xs:{self.arm.namespace}:{key}", f"/{self.arm.namespace} (emulated xs_sdk): {text}",
                             self.now())

    def _on_group(self, msg) -> None:
        if msg.name != "arm":
            return self._reject("group", f"joint_group command for unknown group {msg.name!r} ignored")
        if len(msg.cmd) != len(self.names) or not all(math.isfinite(v) for v in msg.cmd):
            return self._reject("group", f"joint_group 'arm' needs {len(self.names)} finite values, "
                                f"got {list(msg.cmd)}")
        self.counts["group_commands"] += 1
        with self.lock:
            self.arm_goals = True
            for profile, value in zip(self.profiles, msg.cmd):
                profile.set_goal(value, self.sim.time)

    def _on_single(self, msg) -> None:
        if not math.isfinite(msg.cmd):
            return self._reject("single", f"joint_single {msg.name!r}: non-finite command")
        self.counts["single_commands"] += 1
        with self.lock:
            if msg.name == "gripper" and self.arm.gripper:
                self._gripper_command(float(msg.cmd))
            elif msg.name in self.names:
                self.arm_goals = True
                self.profiles[self.names.index(msg.name)].set_goal(msg.cmd, self.sim.time)
            else:
                self._reject("single", f"joint_single command for unknown joint {msg.name!r} ignored")

    def _gripper_command(self, cmd: float) -> None:
        mode = self.gripper_mode.mode
        if mode == "pwm":
            self.pwm = max(-PWM_LIMIT, min(PWM_LIMIT, cmd))
        elif mode == "linear_position":
            self.finger_goal = finger_from_angle(angle_from_linear(cmd, self.model), self.model)
        elif mode in ("position", "ext_position", "current_based_position"):
            self.finger_goal = finger_from_angle(cmd, self.model)
        else:
            self._reject("mode", f"gripper command in {mode} mode is not emulated")

    # -- services ----------------------------------------------------------------------------
    def _targets(self, cmd_type: str, name: str) -> list[str]:
        if cmd_type == "group" and name in ("arm", "all"):
            return ["arm"] + (["gripper"] if name == "all" and self.arm.gripper else [])
        if cmd_type == "single" and (name == "gripper" and self.arm.gripper or name in self.names):
            return [name]
        return []

    def _on_modes(self, req, resp):
        targets = self._targets(req.cmd_type, req.name)
        if not targets or req.mode not in MODES or req.profile_type not in ("velocity", "time"):
            self._reject("modes", f"set_operating_modes refused: {req.cmd_type} {req.name!r} mode {req.mode!r} "
                         f"profile {req.profile_type!r}")
            return resp
        mode = MotorMode(req.mode, req.profile_type, int(req.profile_velocity), int(req.profile_acceleration))
        with self.lock:
            for target in targets:
                if target == "gripper":
                    self.gripper_mode, self.pwm = mode, 0.0
                    self.finger_goal = self.sim.joint(self.arm.gripper)
                else:  # (a single arm joint takes the arm's mode here: the set-up sets groups)
                    self.arm_mode = mode
        return resp

    def _on_reboot(self, req, resp):
        if not self._targets(req.cmd_type, req.name):
            self._reject("reboot", f"reboot_motors: unknown {req.cmd_type} {req.name!r}")
        return resp

    def _on_registers(self, req, resp):
        if not self._targets(req.cmd_type, req.name):
            self._reject("registers", f"set_motor_registers: unknown {req.cmd_type} {req.name!r}")
            return resp
        self.registers[(req.name, req.reg)] = int(req.value)
        return resp

    def _on_torque(self, req, resp):
        self.torque = bool(req.enable)
        return resp

    def _on_info(self, req, resp):
        if req.cmd_type == "group" and req.name == "arm":
            resp.joint_names = list(self.names)
            resp.num_joints = len(self.names)
        return resp

    # -- physics thread ----------------------------------------------------------------------
    def _reset(self) -> None:
        self.arm_goals = False  # no goal since the reset: the motors hold (another input may drive the arm)
        self.profiles = [Profile(self.sim.joint(j)) for j in self.arm.joints]
        if self.arm.gripper:
            self.finger_goal, self.pwm = self.sim.joint(self.arm.gripper), 0.0

    def _step(self, t: float, dt: float) -> None:
        for joint, profile in zip(self.arm.joints, self.profiles if self.arm_goals else ()):
            self.sim.set_target(joint, profile.sample(t, dt, self.arm_mode))
        if not self.arm.gripper:
            return
        if self.gripper_mode.mode == "pwm":  # PWM pushes the finger; a small value barely moves it
            self.finger_goal += self.pwm / PWM_LIMIT * PWM_FINGER_SPEED * dt
            lo, hi = self.sim.model.actuator_ctrlrange[self.sim.actuated.index(self.arm.gripper)]
            self.finger_goal = min(max(self.finger_goal, lo), hi)
        self.sim.set_target(self.arm.gripper, self.finger_goal)

    def publish_joint_states(self, stamp: float) -> None:
        """The driver's joint_states: the arm's joints, the gripper motor angle, both fingers (m)."""
        with self.lock:
            q = [self.sim.joint(j) for j in self.arm.joints]
            v = [self.sim.velocity(j) for j in self.arm.joints]
            e = [self.sim.effort(j) for j in self.arm.joints]
            finger = self.sim.joint(self.arm.gripper) if self.arm.gripper else None
        names = list(self.names)
        if finger is not None:
            names += ["gripper", "left_finger", "right_finger"]
            q += [angle_from_finger(finger, self.model), finger, -finger]
            v, e = v + [0.0, 0.0, 0.0], e + [0.0, 0.0, 0.0]
        msg = JointState(name=names, position=q, velocity=v, effort=e)
        msg.header.stamp = to_time(stamp)
        self.js_pub.publish(msg)
