"""Interbotix xs_sdk (``xsarm_control``; each ALOHA follower): the adapter.

Per driver namespace: ``JointGroupCommand{name: 'arm'}`` on ``/<ns>/commands/joint_group`` (rad, the group's
order) and ``JointSingleCommand{name: 'gripper'}`` on ``/<ns>/commands/joint_single`` in the units of the
gripper's operating mode (vla_ros.drivers.units). Joint states come from ``/<ns>/joint_states``
(unprefixed names). The set-up puts the driver in streaming modes with its own services, as the upstream
tools do: the arm in ``position`` with no profile (``profile_velocity`` 0), the gripper in the preset's mode,
and, where the preset says, a gripper reboot and current limit (ALOHA's ``setup_follower_bot``).
"""

from __future__ import annotations

from rclpy.node import Node

from ..core.control import ControlCore, TickResult
from ..robots import GripperSpec, XsArmSpec, XsGripperSpec
from .base import COMMAND_QOS, Output, SetupStep
from .units import xs_gripper_command

GRIPPER_EPSILON = 1e-4  # m of finger change below which no new gripper command is sent
GRIPPER_REFRESH = 1.0  # s: the gripper command is repeated this often even when unchanged


def group_topic(namespace: str) -> str:
    return f"/{namespace}/commands/joint_group"


def single_topic(namespace: str) -> str:
    return f"/{namespace}/commands/joint_single"


def joint_states_topic(namespace: str) -> str:
    return f"/{namespace}/joint_states"


def service(namespace: str, name: str) -> str:
    return f"/{namespace}/{name}"


class XsArmOutput(Output):
    """One xs_sdk instance: the arm group at the driver's rate, the gripper on change (each single command is
    a bus write that waits for a status reply, as Interbotix's ros_control bridge sends it)."""

    def __init__(self, node: Node, arm: XsArmSpec, gripper: XsGripperSpec, limits: GripperSpec | None,
                 all_joints: list[str], divider: int, arm_group: bool = True):
        from interbotix_xs_msgs.msg import JointGroupCommand, JointSingleCommand

        self.Group, self.Single = JointGroupCommand, JointSingleCommand
        self.arm, self.grip, self.divider = arm, gripper, divider
        self.index = [all_joints.index(j) for j in arm.joints] if arm_group else []
        self.finger = all_joints.index(arm.gripper) if arm.gripper in all_joints else None
        self.joints = [*(arm.joints if arm_group else []), *([arm.gripper] if self.finger is not None else [])]
        self.limits = limits
        self.publishers = []
        if self.index:
            self.group_pub = node.create_publisher(JointGroupCommand, group_topic(arm.namespace), COMMAND_QOS)
            self.publishers.append(self.group_pub)
        if self.finger is not None:
            self.single_pub = node.create_publisher(JointSingleCommand, single_topic(arm.namespace), COMMAND_QOS)
            self.publishers.append(self.single_pub)
        self._last_finger: float | None = None
        self._last_sent = -1e9

    def send(self, result: TickResult, core: ControlCore, now: float) -> None:
        if self.index:
            self.group_pub.publish(self.Group(name="arm", cmd=[float(v) for v in result.command[self.index]]))
        if self.finger is None:
            return
        finger = float(result.command[self.finger])
        if (self._last_finger is not None and abs(finger - self._last_finger) < GRIPPER_EPSILON
                and now - self._last_sent < GRIPPER_REFRESH):
            return
        self.single_pub.publish(self.Single(name="gripper", cmd=float(xs_gripper_command(finger, self.grip))))
        self._last_finger, self._last_sent = finger, now


def setup_steps(arm: XsArmSpec, gripper: XsGripperSpec) -> list[SetupStep]:
    """The driver services that put one xs_sdk instance into streaming modes (in the order ALOHA's
    ``setup_follower_bot`` calls them)."""
    from interbotix_xs_msgs.srv import OperatingModes, Reboot, RegisterValues, TorqueEnable

    ns = arm.namespace
    steps = []
    if arm.gripper and gripper.reboot:
        steps.append(SetupStep(service(ns, "reboot_motors"), Reboot, Reboot.Request(
            cmd_type="single", name="gripper", enable=True, smart_reboot=True), "reboot the gripper motor"))
    steps.append(SetupStep(service(ns, "set_operating_modes"), OperatingModes, OperatingModes.Request(
        cmd_type="group", name="arm", mode="position", profile_type="velocity", profile_velocity=0,
        profile_acceleration=0), "put group 'arm' in position mode with no profile"))
    if arm.gripper:
        steps.append(SetupStep(service(ns, "set_operating_modes"), OperatingModes, OperatingModes.Request(
            cmd_type="single", name="gripper", mode=gripper.mode, profile_type="velocity", profile_velocity=0,
            profile_acceleration=0), f"put the gripper in {gripper.mode} mode"))
        if gripper.current_limit:
            steps.append(SetupStep(service(ns, "set_motor_registers"), RegisterValues, RegisterValues.Request(
                cmd_type="single", name="gripper", reg="Current_Limit", value=int(gripper.current_limit)),
                f"set the gripper's Current_Limit to {gripper.current_limit}"))
    # (set_operating_modes switches torque off while it changes a mode; ALOHA's setup ends with torque on)
    steps.append(SetupStep(service(ns, "torque_enable"), TorqueEnable, TorqueEnable.Request(
        cmd_type="group", name="all", enable=True), "switch torque on"))
    return steps
