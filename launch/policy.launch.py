"""ros2 launch vla_ros policy.launch.py robot:=widowx policy:=scripted sim:=mujoco use_sim_time:=false

Starts the same nodes, with the same parameters, as ``vla-ros launch`` (the graph is described once,
in ``vla_ros.graph``). If any node exits, the whole launch shuts down.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from vla_ros.graph import LAUNCH_ARGUMENTS, GraphArgs, build_graph, write_params_file


def _nodes(context):
    args = GraphArgs.from_strings({a.name: LaunchConfiguration(a.name).perform(context) for a in LAUNCH_ARGUMENTS})
    specs = build_graph(args)
    generated = str(write_params_file(specs))
    return [
        Node(
            package="vla_ros",
            executable=spec.executable,
            name=spec.name,
            output="screen",
            emulate_tty=True,
            parameters=[generated, *spec.param_files],
            on_exit=Shutdown(reason=f"{spec.name} exited"),
        )
        for spec in specs
    ]


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument(a.name, default_value=a.default, description=a.description,
                              **({"choices": list(a.choices)} if a.choices else {}))
        for a in LAUNCH_ARGUMENTS
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
