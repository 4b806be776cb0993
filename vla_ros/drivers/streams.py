"""The command streams a preset's driver receives, as data: topic, type, joints and how to read joint values
from a message. The recorder records them; the limit monitor (fuzzing, tests) checks every command on them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from .. import interfaces as io
from ..core.limits import JointLimits
from ..robots import RobotPreset
from . import interbotix, servo
from .outputs import ROS2_CONTROL_OUTPUTS, SERVO_OUTPUTS, command_divider, resolve_interface
from .units import xs_gripper_command


@dataclass
class CommandStream:
    name: str
    topic: str
    msg_type: type
    joints: list[str]  # preset joints the values are for (empty: not joint values, e.g. a pose)
    values: Callable | None = None  # msg -> joint values (None: not checked)
    period: float = 0.002  # s between two commands of the stream
    limits: JointLimits | None = None  # in the stream's units (None: the joints' URDF limits)


def _jtc_first(msg) -> list[float]:
    return list(msg.points[0].positions) if msg.points else []


def command_streams(robot: RobotPreset, driver: str = "", interface: str = "", control_rate: float = 500.0,
                    trajectory_divider: int = 2, command_rate: float = 0.0) -> list[CommandStream]:
    """Every stream the controller sends for ``robot`` with ``driver`` and ``interface`` (controller params)."""
    driver = driver or robot.driver.kind
    interface = resolve_interface(robot, driver, interface)
    period = command_divider(robot, control_rate, command_rate, driver) / control_rate
    jtc_period = trajectory_divider / control_rate
    streams: list[CommandStream] = []
    taken: set[str] = set()
    if interface in SERVO_OUTPUTS:
        node = robot.driver.servo.node
        topic, kind = (servo.pose_topic(node), PoseStamped) if interface == "ee_pose" else \
            (servo.twist_topic(node), TwistStamped)
        streams.append(CommandStream("servo", topic, kind, [], None, period))
        taken = set(robot.chain().joint_names)
    if driver == "interbotix_xs":
        from interbotix_xs_msgs.msg import JointGroupCommand, JointSingleCommand

        spec = robot.driver.interbotix
        for arm in spec.arms:
            if not set(arm.joints) & taken:
                streams.append(CommandStream(f"{arm.namespace}/arm", interbotix.group_topic(arm.namespace),
                                             JointGroupCommand, list(arm.joints), lambda m: list(m.cmd), period))
            grip = next((g for g in robot.grippers if g.joint == arm.gripper), None)
            if grip is not None:
                lim = robot.limits_for([grip.joint], 1.0)  # commands stay within the finger's URDF range
                ends = sorted(xs_gripper_command(v, spec.gripper) for v in (lim.lower[0], lim.upper[0]))
                command_limits = JointLimits(["gripper"], np.array(ends[:1]), np.array(ends[1:]),
                                             np.array([np.inf]))
                streams.append(CommandStream(f"{arm.namespace}/gripper", interbotix.single_topic(arm.namespace),
                                             JointSingleCommand, [grip.joint], lambda m: [m.cmd], period,
                                             command_limits))
    elif driver == "franka_ros2":
        arm = [j for j in robot.arm_joints if j not in taken]
        if arm:
            streams.append(CommandStream(robot.driver.franka.arm_controller,
                                         io.trajectory_topic(robot.driver.franka.arm_controller), JointTrajectory,
                                         arm, _jtc_first, jtc_period))
    else:
        kind = interface if interface in ROS2_CONTROL_OUTPUTS else "forward_position"
        for c in robot.controllers:
            group = [j for j in c.joints if j in robot.action_joints and j not in taken]
            if not group:
                continue
            if kind == "joint_trajectory":
                streams.append(CommandStream(c.name, io.trajectory_topic(c.name), JointTrajectory, group, _jtc_first,
                                             jtc_period))
            else:
                streams.append(CommandStream(c.name, io.commands_topic(c.name), Float64MultiArray, group,
                                             lambda m: list(m.data), period))
    return streams
