"""Gazebo files generated from the presets (Gazebo itself cannot run here): every joint, controller, topic."""

from xml.etree import ElementTree as ET

import numpy as np
import pytest
import yaml

from vla_ros.core.kinematics import Chain
from vla_ros.core.transforms import rpy_to_matrix
from vla_ros.core.urdf import parse_urdf
from vla_ros.gazebo import box_inertia, check_controller_names, commanded_joints, mimic_joints, write_files
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
    assert {j.name for j in robot.urdf_model.joints} <= {j.name for j in model.joints}
    control = root.find("ros2_control")
    assert control.find("hardware/plugin").text == "gz_ros2_control/GazeboSimSystem"
    joints = {j.get("name"): j for j in control.findall("joint")}
    mimics = [j.name for j in mimic_joints(robot)]
    assert list(joints) == [*commanded_joints(robot), *mimics]
    assert set(robot.action_joints) <= set(joints)
    for name_, joint in joints.items():
        assert model.joint(name_).movable
        assert [c.get("name") for c in joint.findall("command_interface")] == ([] if name_ in mimics else
                                                                               ["position"])
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
    assert models == ["ground_plane", "table", *robot.task.objects]


# --- the rules of gz_ros2_control, ros2_control and SDFormat the generated files must follow -----------------

@pytest.mark.parametrize("name", ["widowx", "franka", "aloha"])
def test_controller_names_are_node_names(name):
    """ros2_control: each controller is a node; rcl node names take letters, digits and '_' (not a leading
    digit): the jazzy spawner and controller manager refuse 'follower_left/arm_controller'."""
    robot = load_robot(name)
    check_controller_names(robot)
    for c in robot.controllers:
        assert c.name.replace("_", "a").isalnum() and not c.name[0].isdigit(), c.name
    robot.controllers[0].name = "follower_left/arm_controller"
    with pytest.raises(ValueError, match="not valid node names"):
        check_controller_names(robot)


@pytest.mark.parametrize("name", ["widowx", "franka", "aloha"])
def test_the_arm_is_welded_to_the_world(tmp_path, name):
    """SDFormat's URDF rule: a fixed joint from a link named 'world' fixes the model (else it floats and tips)."""
    robot = load_robot(name)
    model = parse_urdf(write_files(robot, tmp_path)["urdf"])
    assert model.root == "world"
    for joint in (j for j in model.joints if j.parent == "world"):
        assert joint.type == "fixed"
        if robot.urdf_model.root != "world":  # added: the arm's root at the world's origin, as MuJoCo welds it
            assert joint.child == robot.urdf_model.root and np.allclose([*joint.xyz, *joint.rpy], 0.0)


@pytest.mark.parametrize("name, mimic", [("widowx", "right_finger"), ("franka", "fr3_finger_joint2"),
                                         ("aloha", "left_right_finger"), ("aloha", "right_right_finger")])
def test_mimic_fingers_are_listed_with_state_interfaces_only(tmp_path, name, mimic):
    """gz_ros2_control: a mimic joint is listed in <ros2_control> with state interfaces only (it follows its
    source there; Harmonic's DART does not enforce the URDF mimic tag)."""
    root = ET.parse(write_files(load_robot(name), tmp_path)["urdf"]).getroot()
    joint = next(j for j in root.find("ros2_control").findall("joint") if j.get("name") == mimic)
    assert joint.findall("command_interface") == [] and joint.findall("state_interface")


@pytest.mark.parametrize("name", ["widowx", "franka", "aloha"])
def test_initial_values_are_the_presets_home_within_the_limits(tmp_path, name):
    robot = load_robot(name)
    root = ET.parse(write_files(robot, tmp_path)["urdf"]).getroot()
    home = dict(zip(robot.arm_joints, robot.sim.home))
    home.update({g.joint: robot.sim.gripper_home for g in robot.grippers})
    for j in mimic_joints(robot):
        home[j.name] = j.mimic[2] + j.mimic[1] * home[j.mimic[0]]
    for joint in root.find("ros2_control").findall("joint"):
        name_ = joint.get("name")
        value = float(joint.find("state_interface/param[@name='initial_value']").text)
        limits = robot.urdf_model.joint(name_)
        assert limits.lower - 1e-9 <= value <= limits.upper + 1e-9, (name_, value)
        assert value == pytest.approx(home[name_], abs=1e-6), name_


@pytest.mark.parametrize("name", ["widowx", "franka", "aloha"])
def test_fixed_cameras_stand_where_the_preset_puts_them_in_the_world(tmp_path, name):
    """The sensor's link (FK in the generated URDF, from the world) composed with its pose is the preset's
    camera pose; wrist cameras keep their link. ALOHA's cam_low at (1.3, 0, 0.12), not 0.5 m further."""
    from vla_ros.core.transforms import make_transform

    robot = load_robot(name)
    root = ET.parse(write_files(robot, tmp_path)["urdf"]).getroot()
    model = parse_urdf(tmp_path / "robot.urdf")
    for cam in (c for c in robot.cameras if c.sim):
        sensor = next(g for g in root.findall("gazebo") if g.find("sensor") is not None
                      and g.find("sensor").get("name") == cam.name)
        link = sensor.get("reference")
        assert link != "world"  # Gazebo has no link of that name to carry a sensor
        x, y, z, *rpy = (float(v) for v in sensor.find("sensor/pose").text.split())
        if cam.sim.body:
            assert link == cam.sim.body
            np.testing.assert_allclose([x, y, z], cam.sim.pos, atol=1e-6)
            continue
        world = Chain(model, "world", link).fk(np.zeros(0)) @ make_transform(rpy_to_matrix(rpy), [x, y, z])
        np.testing.assert_allclose(world[:3, 3], cam.sim.pos, atol=1e-6)
        forward = world[:3, :3] @ np.array([1.0, 0.0, 0.0])
        look = np.subtract(cam.sim.lookat, cam.sim.pos)
        np.testing.assert_allclose(forward, look / np.linalg.norm(look), atol=1e-6)


def test_horizontal_fov_is_the_pinhole_formula(tmp_path):
    """hfov = 2 atan(tan(vfov / 2) * w / h): ALOHA's 58 deg vertical at 640x480 is 72.9 deg, not 77.3."""
    root = ET.parse(write_files(load_robot("aloha"), tmp_path)["urdf"]).getroot()
    hfov = float(root.find("gazebo/sensor/camera/horizontal_fov").text)
    assert np.degrees(hfov) == pytest.approx(72.94, abs=0.01)


def test_cubes_have_the_inertia_of_their_mass_and_size_and_the_world_a_ground(tmp_path):
    robot = load_robot("widowx")
    world = ET.parse(write_files(robot, tmp_path)["world"]).getroot()
    s, m = robot.task.cube_size, robot.task.cube_mass
    for model in world.iter("model"):
        if model.get("name") in robot.task.objects:
            inertia = model.find("link/inertial/inertia")
            for axis in ("ixx", "iyy", "izz"):
                assert float(inertia.find(axis).text) == pytest.approx(m * s * s / 6.0, rel=1e-5)  # m s^2 / 6
    assert box_inertia(2.0, [1.0, 2.0, 3.0]) == pytest.approx((13 / 6, 10 / 6, 5 / 6))
    plane = next(m for m in world.iter("model") if m.get("name") == "ground_plane")
    assert plane.find("static").text == "true" and plane.find("link/collision/geometry/plane") is not None


def test_the_gazebo_launch_runs_headless_and_ends_the_graph_with_gz():
    """(launch_ros is not on PyPI: the text is checked here, the description where ROS is installed.)"""
    from vla_ros.paths import share_dir

    text = (share_dir() / "launch" / "gazebo.launch.py").read_text()
    assert "-s --headless-rendering" in text and '"headless"' in text
    assert "OnProcessExit(on_exit=_gz_exited)" in text and "raise RuntimeError" in text


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
    assert declared == ["robot", "output_interface", "headless"]
