"""Output adapters: send the controller's commands to ros2_control-style controller topics."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from .. import interfaces as io
from ..core.cartesian import tool_pose, tool_twist
from ..core.control import ControlCore, TickResult
from ..core.kinematics import Chain
from ..core.transforms import matrix_to_quat_wxyz
from .conversions import to_duration, to_time

COMMAND_QOS = QoSProfile(depth=io.COMMAND_QOS_DEPTH)


class ForwardPositionAdapter:
    """``/<controller>/commands`` (Float64MultiArray) every control tick, in the group's joint order."""

    def __init__(self, node: Node, controller: str, joints: list[str], all_joints: list[str]):
        self.index = [all_joints.index(j) for j in joints]
        self.pub = node.create_publisher(Float64MultiArray, io.commands_topic(controller), COMMAND_QOS)

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
        self.pub = node.create_publisher(JointTrajectory, io.trajectory_topic(controller), COMMAND_QOS)

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


class _CartesianAdapter:
    """A stamped geometry message about the arm's tool chain on ``topic``, every control tick."""

    MSG: type

    def __init__(self, node: Node, topic: str, chain: Chain, frame: str, all_joints: list[str]):
        self.chain, self.frame = chain, frame
        self.index = [all_joints.index(j) for j in chain.joint_names]
        self.pub = node.create_publisher(self.MSG, topic, COMMAND_QOS)

    def _message(self, now: float):
        msg = self.MSG()
        msg.header.stamp, msg.header.frame_id = to_time(now), self.frame
        return msg


class EePoseAdapter(_CartesianAdapter):
    """The tool pose of the commanded arm joints (PoseStamped, base frame) every control tick."""

    MSG = PoseStamped

    def publish(self, result: TickResult, core: ControlCore, now: float, tick: int) -> None:
        pose = tool_pose(self.chain, result.command[self.index])
        msg = self._message(now)
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pose[:3, 3])
        w, x, y, z = (float(v) for v in matrix_to_quat_wxyz(pose[:3, :3]))
        msg.pose.orientation.w, msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z = w, x, y, z
        self.pub.publish(msg)


class EeTwistAdapter(_CartesianAdapter):
    """The tool twist of the commanded arm motion (TwistStamped, base frame, stamped now: MoveIt Servo drops
    commands older than 0.1 s) every control tick: zero once a hold has braked to rest, the braking ramp
    before (as the joint outputs send it)."""

    MSG = TwistStamped

    def publish(self, result: TickResult, core: ControlCore, now: float, tick: int) -> None:
        twist = tool_twist(self.chain, result.command[self.index], result.velocity[self.index])
        msg = self._message(now)
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in twist[:3])
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in twist[3:])
        self.pub.publish(msg)


def make_adapters(node: Node, interface: str, groups: dict[str, list[str]], joints: list[str], points: int,
                  divider: int, robot=None, ee_topic: str = "") -> list:
    """One adapter per controller group; with ee_pose / ee_twist, the arm's group (the one holding the tool
    chain's joints) gets the Cartesian adapter and the others forward position commands."""
    adapters = []
    chain = None
    if interface in ("ee_pose", "ee_twist"):
        if robot is None or not robot.single_arm:
            raise ValueError(f"output_interface {interface}: needs a single-arm preset (one tool chain)")
        chain = robot.chain()
        missing = [j for j in chain.joint_names if j not in joints]
        if missing:
            raise ValueError(f"output_interface {interface}: the controller's joints lack the arm's {missing}")
    for controller, group in groups.items():
        if chain is not None and set(chain.joint_names) <= set(group):
            kind = EePoseAdapter if interface == "ee_pose" else EeTwistAdapter
            default = io.SERVO_POSE if interface == "ee_pose" else io.SERVO_TWIST
            adapters.append(kind(node, ee_topic or default, chain, robot.base_link, joints))
        elif interface in ("forward_position", "ee_pose", "ee_twist"):
            adapters.append(ForwardPositionAdapter(node, controller, group, joints))
        elif interface == "joint_trajectory":
            adapters.append(JointTrajectoryAdapter(node, controller, group, joints, points, divider))
        else:
            raise ValueError(f"unknown output_interface {interface!r}")
    if chain is not None and not any(isinstance(a, _CartesianAdapter) for a in adapters):
        raise ValueError(f"output_interface {interface}: no controller group holds all of {chain.joint_names}")
    return adapters
