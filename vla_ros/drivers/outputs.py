"""The controller's outputs for a preset and a driver: which adapter sends which joints, and the set-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rclpy.node import Node

from ..robots import RobotPreset
from . import franka, interbotix, servo
from .base import Output, SetupStep
from .ros2_control import ForwardPositionOutput, JointTrajectoryOutput

ROS2_CONTROL_OUTPUTS = ("forward_position", "joint_trajectory")
SERVO_OUTPUTS = ("ee_pose", "ee_twist")


@dataclass
class Outputs:
    adapters: list[Output]
    setup: list[SetupStep] = field(default_factory=list)
    description: str = ""


def resolve_interface(robot: RobotPreset, driver: str, interface: str) -> str:
    """The output interface a driver takes: '' is the driver's own (ros2_control: the preset's); ros2_control
    interfaces need driver ros2_control."""
    if interface in ("", "driver"):
        return robot.output_interface if driver == "ros2_control" else "driver"
    if interface in ROS2_CONTROL_OUTPUTS and driver != "ros2_control":
        raise ValueError(f"output_interface {interface} is a ros2_control controller input, which driver {driver!r} "
                         f"does not have: leave output_interface empty (the driver's own) or set driver:=ros2_control")
    return interface


def command_divider(robot: RobotPreset, control_rate: float, command_rate: float = 0.0, driver: str = "") -> int:
    """Control ticks per command sent: the driver's rate (parameter, else the preset's for its own driver; 0:
    every tick)."""
    rate = command_rate or (robot.driver.command_rate if driver in ("", robot.driver.kind) else 0.0)
    return max(1, int(round(control_rate / rate))) if rate > 0.0 else 1


def build_outputs(node: Node, robot: RobotPreset, joints: list[str], p: dict,
                  report: Callable[[str, str], None], log: Callable[[str], None]) -> Outputs:
    """Adapters for ``joints`` (the controller's), from controller parameters ``p`` (driver, output_interface,
    command_rate, control_rate, trajectory_points, trajectory_publish_divider, ee_topic, driver_setup)."""
    driver = p.get("driver") or robot.driver.kind
    interface = resolve_interface(robot, driver, p.get("output_interface", ""))
    divider = command_divider(robot, p["control_rate"], p.get("command_rate", 0.0), driver)
    adapters: list[Output] = []
    steps: list[SetupStep] = []
    taken: set[str] = set()
    if interface in SERVO_OUTPUTS:
        if not robot.single_arm:
            raise ValueError(f"output_interface {interface}: needs a single-arm preset (one tool chain)")
        chain = robot.chain()
        missing = [j for j in chain.joint_names if j not in joints]
        if missing:
            raise ValueError(f"output_interface {interface}: the controller's joints lack the arm's {missing}")
        kind = servo.EePoseOutput if interface == "ee_pose" else servo.EeTwistOutput
        node_name = robot.driver.servo.node
        topic = p.get("ee_topic") or (servo.pose_topic(node_name) if interface == "ee_pose" else
                                      servo.twist_topic(node_name))
        adapters.append(kind(node, topic, chain, robot.base_link, joints, divider))
        taken = set(chain.joint_names)
        if not p.get("ee_topic"):  # MoveIt Servo: switch its command type (a custom topic is someone else's)
            steps += servo.setup_steps(node_name, interface)
    rest = [j for j in joints if j not in taken]
    if driver == "interbotix_xs":
        xs = robot.driver.interbotix
        grippers = {g.joint: g for g in robot.grippers}
        for arm in xs.arms:
            if not any(j in rest for j in [*arm.joints, arm.gripper]):
                continue
            adapters.append(interbotix.XsArmOutput(node, arm, xs.gripper, grippers.get(arm.gripper), joints, divider,
                                                   arm_group=all(j in rest for j in arm.joints)))
            steps += interbotix.setup_steps(arm, xs.gripper)
    elif driver == "franka_ros2":
        spec = robot.driver.franka
        arm = [j for j in robot.arm_joints if j in rest]
        if arm:
            adapters.append(JointTrajectoryOutput(node, spec.arm_controller, arm, joints, p["trajectory_points"],
                                                  p["trajectory_publish_divider"]))
        for grip in robot.grippers:
            if grip.joint in rest:
                adapters.append(franka.FrankaGripperOutput(node, spec, grip, joints, report, log))
    else:
        kind = interface if interface in ROS2_CONTROL_OUTPUTS else "forward_position"
        for c in robot.controllers:
            group = [j for j in c.joints if j in rest]
            if not group:
                continue
            if kind == "joint_trajectory":
                adapters.append(JointTrajectoryOutput(node, c.name, group, joints, p["trajectory_points"],
                                                      p["trajectory_publish_divider"]))
            else:
                adapters.append(ForwardPositionOutput(node, c.name, group, joints, divider))
    covered = {j for a in adapters for j in a.joints}
    uncovered = [j for j in joints if j not in covered]
    if uncovered:
        raise ValueError(f"joints {uncovered} are commanded by no output of driver {driver!r} (robot {robot.name!r})")
    if not p.get("driver_setup", True):
        steps = []
    return Outputs(adapters, steps, f"driver {driver}, output {interface}, commands every {divider} tick(s)")
