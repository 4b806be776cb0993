"""Driver adapters and emulations without ROS: unit conversions against hand-computed numbers, what the
xs_sdk's modes do to motion, and which outputs a preset and driver give."""

import math

import pytest

from vla_ros.config_schema import ConfigError, load
from vla_ros.drivers.outputs import command_divider, resolve_interface
from vla_ros.drivers.units import franka_gripper_closed, xs_gripper_command, xs_linkage_angle
from vla_ros.drivers.xs_motors import (
    XS_MODELS,
    MotorMode,
    Profile,
    angle_from_finger,
    angle_from_linear,
    finger_from_angle,
)
from vla_ros.graph import GraphArgs, GraphError, build_graph
from vla_ros.robots import DriverSpec, XsGripperSpec, load_robot

WX, ALOHA = XS_MODELS["wx250s"], XS_MODELS["aloha_vx300s"]


def test_aloha_gripper_command_is_the_motor_angle_of_alohas_constants():
    grip = load_robot("aloha").driver.interbotix.gripper
    assert grip.mode == "current_based_position"
    assert xs_gripper_command(0.0579, grip) == pytest.approx(1.6214, abs=1e-9)  # FOLLOWER_GRIPPER_JOINT_OPEN
    assert xs_gripper_command(0.0440, grip) == pytest.approx(0.6197, abs=1e-9)  # ..._CLOSE
    # halfway: 0.6197 + 0.5 * (1.6214 - 0.6197)
    assert xs_gripper_command(0.05095, grip) == pytest.approx(1.12055, abs=1e-9)
    # the metres sent unconverted would read as ~0.05 rad, far below closed: the conversion is never identity
    assert xs_gripper_command(0.05, grip) > 1.0


def test_widowx_gripper_units_in_each_mode():
    linear = XsGripperSpec(mode="linear_position")
    assert xs_gripper_command(0.026, linear) == pytest.approx(0.052)  # the full gap, not one finger
    position = load_robot("widowx").driver.interbotix.gripper
    # sin a = (x^2 + r^2 - L^2) / (2 r x) = (0.026^2 + 0.014^2 - 0.024^2) / (2 * 0.014 * 0.026) = 0.296 / 0.728
    assert xs_gripper_command(0.026, position) == pytest.approx(math.asin(0.296 / 0.728), abs=1e-12)
    assert xs_linkage_angle(0.038, 0.014, 0.024) == pytest.approx(math.pi / 2, abs=1e-6)  # fully out: r + L
    with pytest.raises(ValueError):
        xs_linkage_angle(0.0, 0.014, 0.024)


def test_the_emulated_driver_computes_fingers_as_xs_driver_does():
    # left_finger = r sin a + sqrt(L^2 - (r cos a)^2): at a = 0, sqrt(0.024^2 - 0.014^2)
    assert finger_from_angle(0.0, WX) == pytest.approx(math.sqrt(0.024**2 - 0.014**2))
    assert finger_from_angle(math.pi / 2, WX) == pytest.approx(0.038)
    # ALOHA's motor range through the aloha_vx300s linkage (horn 0.0275, arm 0.035): 0.0429 .. 0.0624 m
    assert finger_from_angle(0.6197, ALOHA) == pytest.approx(0.0429, abs=1e-4)
    assert finger_from_angle(1.6214, ALOHA) == pytest.approx(0.0624, abs=1e-4)
    # linear_position: the full gap -> the angle whose linkage puts each finger at half of it
    for gap in (0.03, 0.052, 0.07):
        assert finger_from_angle(angle_from_linear(gap, WX), WX) == pytest.approx(gap / 2, abs=1e-6)
    assert angle_from_finger(finger_from_angle(0.3, WX), WX) == pytest.approx(0.3, abs=1e-3)


def test_adapter_and_emulation_agree_on_the_widowx_gripper():
    grip = load_robot("widowx").driver.interbotix.gripper
    for finger in (0.015, 0.02, 0.026, 0.037):
        assert finger_from_angle(xs_gripper_command(finger, grip), WX) == pytest.approx(finger, abs=1e-9)


def test_a_time_profile_makes_streamed_goals_crawl_and_no_profile_follows():
    boot, streaming = MotorMode("position", "time", 2000, 300), MotorMode("position", "velocity", 0, 0)
    for mode, low, high in ((boot, 0.0, 0.02), (streaming, 0.999, 1.001)):
        motor = Profile(0.0)
        for k in range(100):  # 1 s of goals at 100 Hz, each 1 rad ahead
            motor.set_goal(1.0, k * 0.01)
            for j in range(5):
                position = motor.sample(k * 0.01 + j * 0.002, 0.002, mode)
        assert low <= position <= high, (mode, position)
    motor = Profile(0.0)  # one goal under the boot profile: there after its 2 s, half way at 1 s
    motor.set_goal(1.0, 0.0)
    assert motor.sample(1.0, 0.002, boot) == pytest.approx(0.5)
    assert motor.sample(2.0, 0.002, boot) == pytest.approx(1.0)
    slow = MotorMode("position", "velocity", 100, 0)  # 100 x 0.229 rpm = 2.398 rad/s
    motor = Profile(0.0)
    motor.set_goal(1.0, 0.0)
    assert motor.sample(0.1, 0.1, slow) == pytest.approx(100 * 0.229 * 2 * math.pi / 60 * 0.1)


def test_franka_goals_binarise_the_finger():
    assert franka_gripper_closed(0.001, 0.04, 0.0)
    assert not franka_gripper_closed(0.03, 0.04, 0.0)


def test_presets_name_their_drivers_and_rates():
    widowx, aloha, franka = load_robot("widowx"), load_robot("aloha"), load_robot("franka")
    assert (widowx.driver.kind, aloha.driver.kind, franka.driver.kind) == ("interbotix_xs", "interbotix_xs",
                                                                          "franka_ros2")
    assert widowx.joint_states_topic == "/wx250s/joint_states"
    assert [a.namespace for a in aloha.driver.interbotix.arms] == ["follower_left", "follower_right"]
    assert command_divider(aloha, 500.0) == 10 and command_divider(widowx, 500.0) == 5
    assert command_divider(franka, 500.0) == 1 and command_divider(aloha, 500.0, 100.0) == 5


def test_ros2_control_outputs_need_the_ros2_control_driver():
    widowx = load_robot("widowx")
    assert resolve_interface(widowx, "interbotix_xs", "") == "driver"
    assert resolve_interface(widowx, "ros2_control", "") == "forward_position"
    assert resolve_interface(widowx, "interbotix_xs", "ee_twist") == "ee_twist"
    with pytest.raises(ValueError, match="driver:=ros2_control"):
        resolve_interface(widowx, "interbotix_xs", "joint_trajectory")


def test_driver_sections_are_validated():
    with pytest.raises(ConfigError, match="interbotix"):
        load(DriverSpec, {"kind": "interbotix_xs"}, "x.yaml")
    with pytest.raises(ConfigError, match="mode"):
        load(XsGripperSpec, {"mode": "pwm"}, "x.yaml")
    with pytest.raises(ConfigError, match="both or neither"):
        load(XsGripperSpec, {"mode": "position", "motor": [0.6, 1.6]}, "x.yaml")


def _controller(nodes):
    return next(n for n in nodes if n.role == "controller").parameters


def test_a_real_robot_starts_disabled_with_the_deviation_limit_on():
    real = _controller(build_graph(GraphArgs.from_strings({"robot": "widowx", "sim": "none", "policy": "builtin"})))
    assert real["start_enabled"] is False and real["max_deviation"] > 0.0 and real["operator_heartbeat"] is True
    forced = _controller(build_graph(GraphArgs.from_strings({"robot": "widowx", "sim": "none", "enable": "true"})))
    assert forced["start_enabled"] is True
    sim = _controller(build_graph(GraphArgs.from_strings({"robot": "widowx"})))
    assert sim["start_enabled"] is True and "max_deviation" not in sim and sim["operator_heartbeat"] is False


def test_driver_and_output_combinations_that_cannot_work_fail_at_launch():
    with pytest.raises(GraphError, match="driver:=ros2_control"):
        build_graph(GraphArgs.from_strings({"robot": "widowx", "output_interface": "forward_position"}))
    with pytest.raises(GraphError, match="driver:=ros2_control"):
        build_graph(GraphArgs.from_strings({"robot": "aloha", "sim": "gazebo", "driver": "interbotix_xs"}))
    gazebo = build_graph(GraphArgs.from_strings({"robot": "aloha", "sim": "gazebo", "policy": "openpi"}))
    assert _controller(gazebo)["driver"] == "ros2_control"  # Gazebo's arms run ros2_control controllers
    nodes = build_graph(GraphArgs.from_strings({"robot": "widowx", "driver": "ros2_control",
                                                "output_interface": "forward_position"}))
    assert _controller(nodes)["driver"] == "ros2_control"
    # a remote policy whose layout cannot serve the configuration: DROID's actions are 1/15 s apart
    with pytest.raises(GraphError, match="chunk_dt to 0.0667"):
        build_graph(GraphArgs.from_strings({"robot": "franka", "policy": "openpi"}))
