"""ros2 launch vla_ros gazebo.launch.py robot:=widowx [output_interface:=joint_trajectory] [headless:=false]

gz sim (Harmonic) with the preset's arm under gz_ros2_control, its table and cubes, its cameras bridged to
ROS (ros_gz_bridge, with /clock), robot_state_publisher, and spawners for the joint_state_broadcaster and
each controller group once the arm is in the world. The files come from ``vla_ros.gazebo`` (written to a
temporary folder, removed at shutdown). ``policy.launch.py sim:=gazebo`` includes this file; needs
ros_gz_sim, ros_gz_bridge, gz_ros2_control, controller_manager and robot_state_publisher (a ROS install).
``headless:=true`` (the default) runs the server only, rendering the cameras offscreen; if gz sim exits, the
launch reports it as an error and shuts down (as for any node of the graph).
"""

import os
import shutil
import tempfile

from ament_index_python.packages import get_package_share_directory
from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    OpaqueFunction,
    RegisterEventHandler,
    Shutdown,
)
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from vla_ros.gazebo import write_files
from vla_ros.robots import load_robot


def _gz_exited(event, context):
    """gz sim gone: an error (as a node that dies), unless the launch is already shutting down."""
    cmd = " ".join(str(c) for c in getattr(event, "cmd", []) or []).split()
    if not cmd or not ({"gz", "ign"} & set(cmd[:2]) and {"sim", "gazebo"} & set(cmd[:3])):
        return None  # (another process of the launch: policy.launch.py watches its own nodes)
    if context.is_shutdown:
        return None
    if event.returncode != 0:
        raise RuntimeError(f"Gazebo (gz sim) exited with code {event.returncode}")
    return [Shutdown(reason="Gazebo (gz sim) exited")]


def _setup(context):
    robot = load_robot(LaunchConfiguration("robot").perform(context))
    folder = tempfile.mkdtemp(prefix="vla_ros_gz_")
    files = write_files(robot, folder, LaunchConfiguration("output_interface").perform(context))
    gz_launch = os.path.join(get_package_share_directory("ros_gz_sim"), "launch", "gz_sim.launch.py")
    headless = LaunchConfiguration("headless").perform(context).lower() == "true"
    gz_args = f"-r {'-s --headless-rendering ' if headless else ''}{files['world']}"
    gz = IncludeLaunchDescription(PythonLaunchDescriptionSource(gz_launch),
                                  launch_arguments={"gz_args": gz_args}.items())
    sim_time = {"use_sim_time": True}
    state_publisher = Node(package="robot_state_publisher", executable="robot_state_publisher", output="screen",
                           parameters=[{"robot_description": files["urdf"].read_text(), **sim_time}])
    spawn = Node(package="ros_gz_sim", executable="create", output="screen",
                 arguments=["-topic", "robot_description", "-name", robot.name])
    bridge = Node(package="ros_gz_bridge", executable="parameter_bridge", output="screen",
                  parameters=[{"config_file": str(files["bridge"]), **sim_time}])
    spawners = [Node(package="controller_manager", executable="spawner", output="screen",
                     arguments=[name, "--controller-manager", "/controller_manager"])
                for name in ["joint_state_broadcaster", *(c.name for c in robot.controllers)]]
    return [
        RegisterEventHandler(OnShutdown(on_shutdown=lambda event, ctx: shutil.rmtree(folder, True))),
        RegisterEventHandler(OnProcessExit(on_exit=_gz_exited)),
        gz, state_publisher, spawn, bridge,
        RegisterEventHandler(OnProcessExit(target_action=spawn, on_exit=spawners)),  # once the arm exists
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("robot", default_value="widowx", description="Robot preset"),
        DeclareLaunchArgument("output_interface", default_value="",
                              description="forward_position or joint_trajectory controllers (empty: the preset's)"),
        DeclareLaunchArgument("headless", default_value="true",
                              description="true: gz sim server only, cameras rendered offscreen "
                                          "(-s --headless-rendering)"),
        OpaqueFunction(function=_setup),
    ])
