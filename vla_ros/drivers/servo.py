"""MoveIt Servo (Jazzy): tool poses or twists of the commanded arm joints, after switching Servo's command
type; the gripper stays on the robot's driver (Servo moves no gripper).

Servo drops every twist and pose until ``~/switch_command_type`` names its type (TWIST = 1, POSE = 2), and
scales twists by 0.4 / 0.8 unless ``moveit_servo.command_in_type`` is ``speed_units``: the set-up switches the
type and refuses a Servo whose twists would not be m/s and rad/s.
"""

from __future__ import annotations

from geometry_msgs.msg import PoseStamped, TwistStamped
from rcl_interfaces.srv import GetParameters
from rclpy.node import Node

from ..core.cartesian import tool_pose, tool_twist
from ..core.control import ControlCore, TickResult
from ..core.kinematics import Chain
from ..core.transforms import matrix_to_quat_wxyz
from ..ros.conversions import to_time
from .base import COMMAND_QOS, Output, SetupStep

JOINT_JOG, TWIST, POSE = 0, 1, 2  # moveit_msgs/srv/ServoCommandType
COMMAND_IN_TYPE = "moveit_servo.command_in_type"
SPEED_UNITS = "speed_units"


def pose_topic(node: str) -> str:
    return f"{node}/pose_target_cmds"


def twist_topic(node: str) -> str:
    return f"{node}/delta_twist_cmds"


class CartesianOutput(Output):
    """A stamped geometry message about the arm's tool chain on ``topic``, every ``divider``-th tick."""

    MSG: type

    def __init__(self, node: Node, topic: str, chain: Chain, frame: str, all_joints: list[str], divider: int = 1):
        self.chain, self.frame, self.divider = chain, frame, divider
        self.joints = list(chain.joint_names)
        self.index = [all_joints.index(j) for j in self.joints]
        self.pub = node.create_publisher(self.MSG, topic, COMMAND_QOS)
        self.publishers = [self.pub]

    def _message(self, now: float):
        msg = self.MSG()
        msg.header.stamp, msg.header.frame_id = to_time(now), self.frame
        return msg


class EePoseOutput(CartesianOutput):
    """The tool pose of the commanded arm joints (PoseStamped, base frame)."""

    MSG = PoseStamped

    def send(self, result: TickResult, core: ControlCore, now: float) -> None:
        pose = tool_pose(self.chain, result.command[self.index])
        msg = self._message(now)
        msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pose[:3, 3])
        w, x, y, z = (float(v) for v in matrix_to_quat_wxyz(pose[:3, :3]))
        msg.pose.orientation.w, msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z = w, x, y, z
        self.pub.publish(msg)


class EeTwistOutput(CartesianOutput):
    """The tool twist of the commanded arm motion (TwistStamped, base frame, stamped now: Servo drops commands
    older than 0.1 s): zero once a hold has braked to rest, the braking ramp before."""

    MSG = TwistStamped

    def send(self, result: TickResult, core: ControlCore, now: float) -> None:
        twist = tool_twist(self.chain, result.command[self.index], result.velocity[self.index])
        msg = self._message(now)
        msg.twist.linear.x, msg.twist.linear.y, msg.twist.linear.z = (float(v) for v in twist[:3])
        msg.twist.angular.x, msg.twist.angular.y, msg.twist.angular.z = (float(v) for v in twist[3:])
        self.pub.publish(msg)


def _servo_answer(response) -> str:
    return "" if response.success else "success = false"


def _speed_units(response) -> str:
    values = list(response.values)
    value = values[0].string_value if values else ""
    if value == SPEED_UNITS:
        return ""
    return (f"{COMMAND_IN_TYPE} is {value or 'not set'!r}: Servo would scale the twists (0.4 linear, 0.8 angular); "
            f"set {COMMAND_IN_TYPE}: {SPEED_UNITS} in the Servo config (and scale.linear/rotational at or above the "
            "arm's speeds)")


def setup_steps(servo_node: str, interface: str) -> list[SetupStep]:
    """Switch Servo's command type (and, for twists, require speed_units)."""
    from moveit_msgs.srv import ServoCommandType

    kind = TWIST if interface == "ee_twist" else POSE
    steps = []
    if kind == TWIST:
        steps.append(SetupStep(f"{servo_node}/get_parameters", GetParameters, GetParameters.Request(
            names=[COMMAND_IN_TYPE]), f"check that twists are in {SPEED_UNITS}", _speed_units))
    steps.append(SetupStep(f"{servo_node}/switch_command_type", ServoCommandType,
                           ServoCommandType.Request(command_type=kind),
                           f"switch the command type to {'TWIST' if kind == TWIST else 'POSE'}", _servo_answer))
    return steps
