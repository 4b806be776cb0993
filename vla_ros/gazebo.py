"""Gazebo (gz sim Harmonic) files for a robot preset: the URDF with ros2_control and camera sensors, the
controller_manager YAML, the ros_gz_bridge YAML and a world with the preset's table and cubes.

``launch/gazebo.launch.py`` writes them and starts gz sim, the bridge, robot_state_publisher and the
controller spawners; ``policy.launch.py sim:=gazebo`` includes it. Gazebo and gz_ros2_control come from a
ROS install (not PyPI): these are generated and checked here, and run where Gazebo is installed.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import yaml

from .core.action_space import home_posture
from .core.transforms import look_at, matrix_to_rpy
from .robots import RobotPreset

CONTROL_RATE = 500  # controller_manager update rate (Hz), the controller node's rate
CONTROLLER_TYPES = {
    "forward_position": "forward_command_controller/ForwardCommandController",
    "joint_trajectory": "joint_trajectory_controller/JointTrajectoryController",
}


def commanded_joints(robot: RobotPreset) -> list[str]:
    """Every joint a controller group commands (mimic joints follow their source in gz_ros2_control)."""
    return [j for c in robot.controllers for j in c.joints]


def _camera_pose(robot: RobotPreset, cam) -> tuple[str, list[float]]:
    """(link, x y z roll pitch yaw) of a camera sensor: gz cameras look along +X with +Z up."""
    spec = cam.sim
    rot = look_at(np.array(spec.pos, float), np.array(spec.lookat, float), np.array(spec.up, float))
    # columns: forward (-Z of the look-at frame), left (-X), up (+Y)
    gz_rot = rot @ np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
    return spec.body or robot.base_link, [*map(float, spec.pos), *map(float, matrix_to_rpy(gz_rot))]


def urdf_with_ros2_control(robot: RobotPreset, controllers_yaml: str | Path) -> str:
    """The preset's URDF plus a ros2_control block (position command, position/velocity state per commanded
    joint; GazeboSimSystem), the gz_ros2_control plugin reading ``controllers_yaml``, and a camera sensor
    per simulated camera publishing on the camera's image topic."""
    root = ET.fromstring(robot.urdf_path.read_text())
    control = ET.SubElement(root, "ros2_control", name="GazeboSimSystem", type="system")
    ET.SubElement(ET.SubElement(control, "hardware"), "plugin").text = "gz_ros2_control/GazeboSimSystem"
    posture = home_posture(robot)
    home = dict(zip(robot.arm_joints, [] if posture is None else posture))
    for name in commanded_joints(robot):
        joint = ET.SubElement(control, "joint", name=name)
        ET.SubElement(joint, "command_interface", name="position")
        state = ET.SubElement(joint, "state_interface", name="position")
        ET.SubElement(state, "param", name="initial_value").text = f"{home.get(name, 0.0):.6g}"
        ET.SubElement(joint, "state_interface", name="velocity")
    plugin = ET.SubElement(ET.SubElement(root, "gazebo"), "plugin", filename="gz_ros2_control-system",
                           name="gz_ros2_control::GazeboSimROS2ControlPlugin")
    ET.SubElement(plugin, "parameters").text = str(controllers_yaml)
    for cam in robot.cameras:
        if cam.sim is None:
            continue
        link, pose = _camera_pose(robot, cam)
        sensor = ET.SubElement(ET.SubElement(root, "gazebo", reference=link), "sensor", name=cam.name,
                               type="camera")
        ET.SubElement(sensor, "pose").text = " ".join(f"{v:.6g}" for v in pose)
        ET.SubElement(sensor, "topic").text = cam.image_topic.lstrip("/")
        ET.SubElement(sensor, "update_rate").text = f"{cam.rate:g}"
        camera = ET.SubElement(sensor, "camera")
        ET.SubElement(camera, "camera_info_topic").text = cam.info_topic.lstrip("/")
        ET.SubElement(camera, "horizontal_fov").text = f"{np.radians(cam.sim.fovy) * cam.width / cam.height:.6g}"
        image = ET.SubElement(camera, "image")
        ET.SubElement(image, "width").text = str(cam.width)
        ET.SubElement(image, "height").text = str(cam.height)
        ET.SubElement(image, "format").text = "R8G8B8"
        ET.SubElement(sensor, "always_on").text = "1"
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def controllers_yaml(robot: RobotPreset, output_interface: str = "") -> dict:
    """controller_manager parameters: the joint_state_broadcaster and one controller per preset group, of the
    type the controller node's output needs (forward position, or JTC for joint_trajectory)."""
    interface = output_interface or robot.output_interface
    if interface not in CONTROLLER_TYPES:
        raise ValueError(f"Gazebo runs joint controllers: output_interface {interface!r} has no controller here "
                         f"(choose one of {sorted(CONTROLLER_TYPES)})")
    manager = {"update_rate": CONTROL_RATE, "joint_state_broadcaster": {
        "type": "joint_state_broadcaster/JointStateBroadcaster"}}
    params = {"controller_manager": {"ros__parameters": manager}}
    for c in robot.controllers:
        manager[c.name] = {"type": CONTROLLER_TYPES[interface]}
        if interface == "forward_position":
            params[c.name] = {"ros__parameters": {"joints": list(c.joints), "interface_name": "position"}}
        else:
            params[c.name] = {"ros__parameters": {"joints": list(c.joints), "command_interfaces": ["position"],
                                                  "state_interfaces": ["position", "velocity"],
                                                  "allow_nonzero_velocity_at_trajectory_end": False}}
    return params


def bridge_yaml(robot: RobotPreset) -> list[dict]:
    """ros_gz_bridge entries: /clock and each camera's image and camera_info, Gazebo to ROS."""
    entries = [{"ros_topic_name": "/clock", "gz_topic_name": "/clock", "ros_type_name": "rosgraph_msgs/msg/Clock",
                "gz_type_name": "gz.msgs.Clock", "direction": "GZ_TO_ROS"}]
    for cam in robot.cameras:
        if cam.sim is None:
            continue
        entries.append({"ros_topic_name": cam.image_topic, "gz_topic_name": cam.image_topic,
                        "ros_type_name": "sensor_msgs/msg/Image", "gz_type_name": "gz.msgs.Image",
                        "direction": "GZ_TO_ROS"})
        entries.append({"ros_topic_name": cam.info_topic, "gz_topic_name": cam.info_topic,
                        "ros_type_name": "sensor_msgs/msg/CameraInfo", "gz_type_name": "gz.msgs.CameraInfo",
                        "direction": "GZ_TO_ROS"})
    return entries


def world_sdf(robot: RobotPreset) -> str:
    """An SDF world: physics at the control rate, light, ground, the preset's table and cubes (cubes on a
    row in the task region; the MuJoCo sim's seeded placement and success check are not reproduced)."""
    sim, task = robot.sim, robot.task
    lines = ['<?xml version="1.0"?>', '<sdf version="1.9">', f'  <world name="vla_ros_{robot.name}">',
             f'    <physics name="fixed" type="ignored"><max_step_size>{1.0 / CONTROL_RATE:.6g}</max_step_size>'
             '<real_time_factor>1</real_time_factor></physics>',
             '    <plugin filename="gz-sim-physics-system" name="gz::sim::systems::Physics"/>',
             '    <plugin filename="gz-sim-user-commands-system" name="gz::sim::systems::UserCommands"/>',
             '    <plugin filename="gz-sim-scene-broadcaster-system" name="gz::sim::systems::SceneBroadcaster"/>',
             '    <plugin filename="gz-sim-sensors-system" name="gz::sim::systems::Sensors">'
             '<render_engine>ogre2</render_engine></plugin>',
             '    <light type="directional" name="sun"><pose>0 0 3 0 0 0</pose><direction>0 0.2 -1</direction>'
             '<diffuse>0.8 0.8 0.8 1</diffuse></light>']

    def box(name: str, pose, size, rgba, mass: float | None) -> str:
        geometry = f"<geometry><box><size>{' '.join(f'{v:.6g}' for v in size)}</size></box></geometry>"
        color = " ".join(f"{v:.3g}" for v in rgba)
        inertial = f"<inertial><mass>{mass:.6g}</mass></inertial>" if mass else ""
        return (f'    <model name="{name}"><static>{"false" if mass else "true"}</static>'
                f"<pose>{' '.join(f'{v:.6g}' for v in pose)} 0 0 0</pose><link name=\"link\">{inertial}"
                f"<collision name=\"c\">{geometry}</collision><visual name=\"v\">{geometry}"
                f"<material><ambient>{color}</ambient><diffuse>{color}</diffuse></material></visual></link></model>")

    if sim is not None:
        t = sim.table
        lines.append(box("table", [t.center[0], t.center[1], -t.thickness / 2], [*t.size, t.thickness],
                         [0.62, 0.5, 0.36, 1.0], None))
    if task is not None:
        xs = np.linspace(task.region.x[0], task.region.x[1], 3)
        y = float(np.mean(task.region.y))
        for x, (name, rgba) in zip(xs, task.objects.items()):
            size = task.cube_size
            lines.append(box(name, [x, y, size / 2], [size] * 3, rgba, task.cube_mass))
    lines += ["  </world>", "</sdf>"]
    return "\n".join(lines) + "\n"


def write_files(robot: RobotPreset, folder: str | Path, output_interface: str = "") -> dict[str, Path]:
    """Write robot.urdf, controllers.yaml, bridge.yaml and world.sdf into ``folder``; their paths by name."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"controllers": folder / "controllers.yaml", "urdf": folder / "robot.urdf",
             "bridge": folder / "bridge.yaml", "world": folder / "world.sdf"}
    paths["controllers"].write_text(yaml.safe_dump(controllers_yaml(robot, output_interface), sort_keys=False))
    paths["urdf"].write_text(urdf_with_ros2_control(robot, paths["controllers"]))
    paths["bridge"].write_text(yaml.safe_dump(bridge_yaml(robot), sort_keys=False))
    paths["world"].write_text(world_sdf(robot))
    return paths
