"""ros2_control: forward position controllers (``~/commands``) and joint_trajectory_controllers
(``~/joint_trajectory``), as Gazebo (gz_ros2_control) and custom bring-ups load them."""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from .. import interfaces as io
from ..core.control import ControlCore, TickResult
from ..ros.conversions import to_duration
from .base import COMMAND_QOS, Output


class ForwardPositionOutput(Output):
    """``/<controller>/commands`` (Float64MultiArray) in the group's joint order."""

    def __init__(self, node: Node, controller: str, joints: list[str], all_joints: list[str], divider: int = 1):
        self.joints = list(joints)
        self.index = [all_joints.index(j) for j in joints]
        self.divider = divider
        self.pub = node.create_publisher(Float64MultiArray, io.commands_topic(controller), COMMAND_QOS)
        self.publishers = [self.pub]

    def send(self, result: TickResult, core: ControlCore, now: float) -> None:
        self.pub.publish(Float64MultiArray(data=[float(v) for v in result.command[self.index]]))


class JointTrajectoryOutput(Output):
    """``<topic>`` (default ``/<controller>/joint_trajectory``): a short look-ahead window with velocities,
    stamp 0 (= now).

    Every point lies at least one spacing ahead (points[0].time_from_start > 0), so a replacement never
    jumps; the last point has zero velocity as JTC requires.
    """

    def __init__(self, node: Node, controller: str, joints: list[str], all_joints: list[str], points: int,
                 divider: int, topic: str = ""):
        self.joints = joints
        self.index = [all_joints.index(j) for j in joints]
        self.points = points
        self.divider = divider
        self.pub = node.create_publisher(JointTrajectory, topic or io.trajectory_topic(controller), COMMAND_QOS)
        self.publishers = [self.pub]

    def send(self, result: TickResult, core: ControlCore, now: float) -> None:
        spacing = core.period * self.divider
        if result.holding:
            positions = np.repeat(result.command[None, :], self.points, axis=0)
            velocities = np.zeros_like(positions)
        else:
            positions, velocities = core.lookahead(now, self.points, spacing)
        msg = JointTrajectory(joint_names=list(self.joints))
        for k in range(self.points):
            msg.points.append(JointTrajectoryPoint(
                positions=[float(v) for v in positions[k, self.index]],
                velocities=[float(v) for v in velocities[k, self.index]],
                time_from_start=to_duration((k + 1) * spacing)))
        self.pub.publish(msg)
