"""Gazebo files generated from the presets (Gazebo itself cannot run here): every joint, controller, topic."""

from xml.etree import ElementTree as ET

import numpy as np
import pytest
import yaml

from vla_ros.core.transforms import rpy_to_matrix
from vla_ros.core.urdf import parse_urdf
from vla_ros.gazebo import commanded_joints, write_files
from vla_ros.graph import GraphArgs, GraphError, build_graph
from vla_ros.launcher import Graph
from vla_ros.robots import load_robot


@pytest.mark.parametrize("name, interface", [("widowx", ""), ("franka", "forward_position"),
                                             ("widowx", "joint_trajectory")])
def test_the_urdf_controllers_and_bridge_name_every_joint_and_topic_the_nodes_use(tmp_path, name, interface):
    robot = load_robot(name)
    files = write_files(robot, tmp_path, interface)
    root = ET.parse(files["urdf"]).getroot()
    model = parse_urdf(files["urdf"])  # still a URDF our reader (and robot_state_publisher) takes
    assert [j.name for j in model.joints] == [j.name for j in robot.urdf_model.joints]
    control = root.find("ros2_control")
    assert control.find("hardware/plugin").text == "gz_ros2_control/GazeboSimSystem"
    joints = {j.get("name"): j for j in control.findall("joint")}
    assert list(joints) == commanded_joints(robot)
    assert set(robot.action_joints) <= set(joints)
    for name_, joint in joints.items():
        assert model.joint(name_).movable
        assert [c.get("name") for c in joint.findall("command_interface")] == ["position"]
        assert [s.get("name") for s in joint.findall("state_interface")] == ["position", "velocity"]
    home = dict(zip(robot.arm_joints, robot.sim.home))
    first = robot.arm_joints[1]
    assert float(joints[first].find("state_interface/param").text) == pytest.approx(home[first])
    plugin = root.find("gazebo/plugin")
    assert plugin.get("filename") == "gz_ros2_control-system" and plugin.find("parameters").text == str(
        files["controllers"])

    controllers = yaml.safe_load(files["controllers"].read_text())
    manager = controllers["controller_manager"]["ros__parameters"]
    assert manager["update_rate"] == 500
    kind = interface or robot.output_interface
    expected = {"forward_position": "forward_command_controller/ForwardCommandController",
                "joint_trajectory": "joint_trajectory_controller/JointTrajectoryController"}[kind]
    for c in robot.controllers:
        assert manager[c.name]["type"] == expected
        assert controllers[c.name]["ros__parameters"]["joints"] == list(c.joints)
    assert manager["joint_state_broadcaster"]["type"] == "joint_state_broadcaster/JointStateBroadcaster"

    # the bridge carries /clock and exactly the camera topics the policy node subscribes to
    bridge = yaml.safe_load(files["bridge"].read_text())
    policy = next(n for n in build_graph(GraphArgs(robot=name, sim="gazebo", policy="pi0"), check=False)
                  if n.name == "policy_node")
    images = [b["ros_topic_name"] for b in bridge if b["ros_type_name"] == "sensor_msgs/msg/Image"]
    assert images == policy.parameters["image_topics"]
    assert any(b["ros_topic_name"] == "/clock" and b["direction"] == "GZ_TO_ROS" for b in bridge)
    sensors = root.findall("gazebo/sensor")
    assert [s.get("name") for s in sensors] == [c.name for c in robot.cameras if c.sim]
    assert [s.find("topic").text for s in sensors] == [t.lstrip("/") for t in images]

    world = ET.parse(files["world"]).getroot()
    models = [m.get("name") for m in world.iter("model")]
    assert models == ["table", *robot.task.objects]


def test_camera_sensors_look_where_the_preset_says():
    """gz cameras look along +X (z up): the sensor's rotation takes +X onto the preset's pos -> lookat."""
    from vla_ros.gazebo import _camera_pose

    robot = load_robot("franka")
    for cam in robot.cameras:
        link, pose = _camera_pose(robot, cam)
        assert link == (cam.sim.body or robot.base_link)
        forward = rpy_to_matrix(pose[3:]) @ np.array([1.0, 0.0, 0.0])
        expected = np.subtract(cam.sim.lookat, cam.sim.pos)
        np.testing.assert_allclose(forward, expected / np.linalg.norm(expected), atol=1e-9)
        up = rpy_to_matrix(pose[3:]) @ np.array([0.0, 0.0, 1.0])
        assert up @ np.asarray(cam.sim.up) > 0  # the image's top towards the preset's up


def test_sim_gazebo_runs_nodes_on_sim_time_and_only_from_ros2_launch(tmp_path):
    specs = build_graph(GraphArgs(robot="widowx", sim="gazebo", policy="pi0"), check=False)
    assert [s.name for s in specs] == ["policy_node", "controller_node"]  # the sim comes from gazebo.launch.py
    assert all(s.parameters["use_sim_time"] for s in specs)
    with pytest.raises(GraphError, match="ros2 launch vla_ros policy.launch.py sim:=gazebo"):
        Graph(GraphArgs(robot="widowx", sim="gazebo", policy="pi0"))
    with pytest.raises(ValueError, match="has no controller here"):
        write_files(load_robot("widowx"), tmp_path, "ee_pose")


def test_the_launch_files_compile():
    """(launch_ros is not on PyPI: the launch tests in test_package run where ROS is installed.)"""
    from vla_ros.paths import share_dir

    for name in ("policy.launch.py", "gazebo.launch.py"):
        path = share_dir() / "launch" / name
        compile(path.read_text(), str(path), "exec")


def test_gazebo_launch_file_with_launch_ros():
    """Where launch_ros is importable: the description declares its arguments (gz sim itself needs a ROS install)."""
    pytest.importorskip("launch_ros")
    import importlib.util

    from launch.actions import DeclareLaunchArgument

    from vla_ros.paths import share_dir

    spec = importlib.util.spec_from_file_location("gazebo_launch", share_dir() / "launch" / "gazebo.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    declared = [e.name for e in module.generate_launch_description().entities if isinstance(e, DeclareLaunchArgument)]
    assert declared == ["robot", "output_interface"]
