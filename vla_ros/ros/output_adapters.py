"""Output adapters: send the controller's commands to ros2_control-style controller topics."""

from __future__ import annotations

import numpy as np
from rclpy.node import Node
from rclpy.qos import QoSProfile
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from .. import interfaces as io
from ..core.control import ControlCore, TickResult
from .conversions import to_duration


class ForwardPositionAdapter:
    """``/<controller>/commands`` (Float64MultiArray) every control tick, in the group's joint order."""

    def __init__(self, node: Node, controller: str, joints: list[str], all_joints: list[str]):
        self.index = [all_joints.index(j) for j in joints]
        self.pub = node.create_publisher(Float64MultiArray, io.commands_topic(controller), QoSProfile(depth=10))

    def publish(self, result: TickResult, core: ControlCore, now: float, tick: int) -> None:
        self.pub.publish(Float64MultiArray(data=[float(v) for v in result.command[self.index]]))


class JointTrajectoryAdapter:
    """``/<controller>/joint_trajectory``: a short look-ahead window with velocities, stamp 0 (= now).

    Every point lies at least one spacing ahead (points[0].time_from_start > 0), so a replacement
    never jumps; the last point has zero velocity as JTC requires.
    """

    def __init__(self, node: Node, controller: str, joints: list[str], all_joints: list[str], points: int,
                 divider: int):
        self.joints = joints
        self.index = [all_joints.index(j) for j in joints]
        self.points = points
        self.divider = divider
        self.pub = node.create_publisher(JointTrajectory, io.trajectory_topic(controller), QoSProfile(depth=10))

    def publish(self, result: TickResult, core: ControlCore, now: float, tick: int) -> None:
        if tick % self.divider:
            return
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


def make_adapters(node: Node, interface: str, groups: dict[str, list[str]], joints: list[str], points: int,
                  divider: int) -> list:
    adapters = []
    for controller, group in groups.items():
        if interface == "forward_position":
            adapters.append(ForwardPositionAdapter(node, controller, group, joints))
        elif interface == "joint_trajectory":
            adapters.append(JointTrajectoryAdapter(node, controller, group, joints, points, divider))
        else:
            raise ValueError(f"unknown output_interface {interface!r}")
    return adapters
