"""ros2 launch vla_ros policy.launch.py robot:=widowx policy:=builtin sim:=mujoco use_sim_time:=false

Starts the same nodes, with the same parameters, as ``vla-ros launch`` (the graph is described once,
in ``vla_ros.graph``). If any node exits, the whole launch shuts down; if it exited with an error
(a non-zero code, or a signal), launch logs an ERROR naming it and its code and ``ros2 launch`` exits 1.
The generated parameter file is removed at shutdown.
"""

import shutil
import tempfile
from pathlib import Path

from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    OpaqueFunction,
    RegisterEventHandler,
    Shutdown,
)
from launch.event_handlers import OnShutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from vla_ros.graph import EXTERNAL_SIMS, LAUNCH_ARGUMENTS, GraphArgs, build_graph, write_params_file


def _on_exit(name):
    def handler(event, context):
        if event.returncode != 0:  # launch reports the exception as an ERROR and run() returns 1
            raise RuntimeError(f"{name} exited with code {event.returncode}")
        if not context.is_shutdown:
            return [Shutdown(reason=f"{name} exited")]
        return None

    return handler


def _nodes(context):
    args = GraphArgs.from_strings({a.name: LaunchConfiguration(a.name).perform(context) for a in LAUNCH_ARGUMENTS})
    specs = build_graph(args)
    folder = tempfile.mkdtemp(prefix="vla_ros_launch_")
    generated = str(write_params_file(specs, folder))
    nodes = [
        Node(
            package=spec.provider.package,
            executable=spec.provider.executable,
            name=spec.name,
            output="screen",
            emulate_tty=True,
            parameters=[generated, *spec.param_files],
            on_exit=_on_exit(spec.name),
        )
        for spec in specs
    ]
    cleanup = RegisterEventHandler(OnShutdown(on_shutdown=lambda event, ctx: shutil.rmtree(folder, True)))
    sims = []
    if args.sim in EXTERNAL_SIMS:  # gazebo: its own launch file (gz sim, bridge, controllers)
        sim_launch = Path(__file__).with_name(f"{args.sim}.launch.py")
        sims.append(IncludeLaunchDescription(PythonLaunchDescriptionSource(str(sim_launch)), launch_arguments={
            "robot": args.robot, "output_interface": args.output_interface,
            "headless": str(args.headless).lower()}.items()))
    return [cleanup, *sims, *nodes]


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                              **({"choices": list(a.choices)} if a.choices else {}))
        for a in LAUNCH_ARGUMENTS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
