"""Gazebo (gz sim Harmonic) files for a robot preset: the URDF with ros2_control and camera sensors, the
controller_manager YAML, the ros_gz_bridge YAML and a world with the preset's table and cubes.

Checked against the jazzy branches of gz_ros2_control (mimic joints: state interfaces only; the
GazeboSimSystem plugin), ros2_control (node names: letters, digits and '_', not starting with a digit; the
spawner names a controller's node), ros2_controllers and ros_gz (bridge YAML), and SDFormat/URDF rules (a
model is fixed to the world by a joint to a link named ``world``; a sensor cannot hang off ``world``).

``launch/gazebo.launch.py`` writes them and starts gz sim, the bridge, robot_state_publisher and the
controller spawners; ``policy.launch.py sim:=gazebo`` includes it. Gazebo and gz_ros2_control come from a
ROS install (not PyPI): these are generated and checked here, and run where Gazebo is installed.
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import yaml

from .core.action_space import home_posture
from .core.kinematics import Chain
from .core.transforms import look_at, make_transform, matrix_to_rpy
from .robots import RobotPreset

CONTROL_RATE = 500  # controller_manager update rate (Hz), the controller node's rate
WORLD = "world"  # URDF convention (sdformat): a fixed joint from a link of this name welds the model to the world
NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # rcl node names: the spawner makes one per controller
CONTROLLER_TYPES = {
    "forward_position": "forward_command_controller/ForwardCommandController",
    "joint_trajectory": "joint_trajectory_controller/JointTrajectoryController",
}


def commanded_joints(robot: RobotPreset) -> list[str]:
    """Every joint a controller group commands."""
    return [j for c in robot.controllers for j in c.joints]


def mimic_joints(robot: RobotPreset) -> list:
    """URDF joints that mimic a commanded one: ros2_control lists them with state interfaces only, and
    gz_ros2_control drives them (Harmonic's default DART engine does not enforce the URDF mimic tag itself)."""
    commanded = set(commanded_joints(robot))
    return [j for j in robot.urdf_model.joints if j.mimic and j.mimic[0] in commanded]


def check_controller_names(robot: RobotPreset) -> None:
    """Each controller becomes a node (the spawner, the controller manager): ros2_control refuses other names."""
    bad = [c.name for c in robot.controllers if not NODE_NAME.match(c.name)]
    if bad:
        raise ValueError(f"controller names {bad} are not valid node names (letters, digits and '_', not starting "
                         "with a digit): ros2_control's spawner and controller manager refuse them")


def initial_positions(robot: RobotPreset) -> dict[str, float]:
    """The preset's home for every commanded joint (arm: the sim's home; grippers: the sim's gripper home) and
    the mimic joints' values from it, each within its URDF limits."""
    posture = home_posture(robot)
    home = dict(zip(robot.arm_joints, [] if posture is None else posture))
    gripper_home = robot.sim.gripper_home if robot.sim is not None else None
    for grip in robot.grippers:
        home[grip.joint] = grip.open if gripper_home is None else gripper_home
    for joint in mimic_joints(robot):
        source, multiplier, offset = joint.mimic
        home[joint.name] = offset + multiplier * home.get(source, 0.0)
    model = robot.urdf_model
    return {n: float(np.clip(home.get(n, 0.0), model.joint(n).lower, model.joint(n).upper))
            for n in [*commanded_joints(robot), *(j.name for j in mimic_joints(robot))]}


def _fixed_camera_frame(robot: RobotPreset) -> tuple[str, np.ndarray]:
    """The link fixed cameras hang off and its pose in the description's root frame (where the preset gives a
    fixed camera's pose, as the MuJoCo sim places it): the root link, or, where the root is ``world`` (no link
    in Gazebo), the preset's base link."""
    model = robot.urdf_model
    if model.root != WORLD:
        return model.root, np.eye(4)
    return robot.base_link, Chain(model, model.root, robot.base_link).fk(np.zeros(0))


def _camera_pose(robot: RobotPreset, cam) -> tuple[str, list[float]]:
    """(link, x y z roll pitch yaw in that link's frame) of a camera sensor: gz cameras look along +X, +Z up."""
    spec = cam.sim
    rot = look_at(np.array(spec.pos, float), np.array(spec.lookat, float), np.array(spec.up, float))
    # columns: forward (-Z of the look-at frame), left (-X), up (+Y)
    gz_rot = rot @ np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
    pose = make_transform(gz_rot, spec.pos)
    link = spec.body
    if not link:
        link, frame = _fixed_camera_frame(robot)
        pose = np.linalg.inv(frame) @ pose
    return link, [*map(float, pose[:3, 3]), *map(float, matrix_to_rpy(pose[:3, :3]))]


def horizontal_fov(fovy_deg: float, width: int, height: int) -> float:
    """The horizontal field of view (rad) of a pinhole camera with vertical ``fovy_deg`` and this aspect."""
    return 2.0 * float(np.arctan(np.tan(np.radians(fovy_deg) / 2.0) * width / height))


def box_inertia(mass: float, size: list[float]) -> tuple[float, float, float]:
    """Principal moments of a solid box: m (b^2 + c^2) / 12 about each axis."""
    a, b, c = size
    return mass * (b * b + c * c) / 12.0, mass * (a * a + c * c) / 12.0, mass * (a * a + b * b) / 12.0


def urdf_with_ros2_control(robot: RobotPreset, controllers_yaml: str | Path) -> str:
    """The preset's URDF plus a ros2_control block (position command, position/velocity state per commanded
    joint; GazeboSimSystem), the gz_ros2_control plugin reading ``controllers_yaml``, and a camera sensor
    per simulated camera publishing on the camera's image topic."""
    root = ET.fromstring(robot.urdf_path.read_text())
    model_root = robot.urdf_model.root
    if model_root != WORLD:  # welded to the world (else Gazebo spawns a free-floating arm that tips over)
        ET.SubElement(root, "link", name=WORLD)
        joint = ET.SubElement(root, "joint", name=f"{WORLD}_to_{model_root.replace('/', '_')}", type="fixed")
        ET.SubElement(joint, "parent", link=WORLD)
        ET.SubElement(joint, "child", link=model_root)
        ET.SubElement(joint, "origin", xyz="0 0 0", rpy="0 0 0")
    control = ET.SubElement(root, "ros2_control", name="GazeboSimSystem", type="system")
    ET.SubElement(ET.SubElement(control, "hardware"), "plugin").text = "gz_ros2_control/GazeboSimSystem"
    home = initial_positions(robot)
    mimics = {j.name for j in mimic_joints(robot)}
    for name in [*commanded_joints(robot), *(j.name for j in mimic_joints(robot))]:
        joint = ET.SubElement(control, "joint", name=name)
        if name not in mimics:  # a mimic joint: state interfaces only (gz_ros2_control drives it from its source)
            ET.SubElement(joint, "command_interface", name="position")
        state = ET.SubElement(joint, "state_interface", name="position")
        ET.SubElement(state, "param", name="initial_value").text = f"{home[name]:.9g}"
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
        ET.SubElement(sensor, "pose").text = " ".join(f"{v:.9g}" for v in pose)
        ET.SubElement(sensor, "topic").text = cam.image_topic.lstrip("/")
        ET.SubElement(sensor, "update_rate").text = f"{cam.rate:g}"
        camera = ET.SubElement(sensor, "camera")
        ET.SubElement(camera, "camera_info_topic").text = cam.info_topic.lstrip("/")
        ET.SubElement(camera, "horizontal_fov").text = f"{horizontal_fov(cam.sim.fovy, cam.width, cam.height):.6g}"
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
    check_controller_names(robot)
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

    ground = -(sim.table.thickness if sim is not None else 0.0)  # under the table slab (its top is z = 0)
    plane = "<geometry><plane><normal>0 0 1</normal><size>20 20</size></plane></geometry>"
    lines.append(f'    <model name="ground_plane"><static>true</static><pose>0 0 {ground:.6g} 0 0 0</pose>'
                 f'<link name="link"><collision name="c">{plane}</collision><visual name="v">{plane}</visual></link>'
                 '</model>')

    def box(name: str, pose, size, rgba, mass: float | None) -> str:
        geometry = f"<geometry><box><size>{' '.join(f'{v:.6g}' for v in size)}</size></box></geometry>"
        color = " ".join(f"{v:.3g}" for v in rgba)
        inertial = ""
        if mass:
            ixx, iyy, izz = box_inertia(mass, size)
            inertial = (f"<inertial><mass>{mass:.6g}</mass><inertia><ixx>{ixx:.6g}</ixx><iyy>{iyy:.6g}</iyy>"
                        f"<izz>{izz:.6g}</izz><ixy>0</ixy><ixz>0</ixz><iyz>0</iyz></inertia></inertial>")
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
