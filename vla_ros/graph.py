"""The node graph for a set of launch arguments: shared by launch/policy.launch.py and ``vla-ros launch``."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from .paths import resolve, share_dir
from .robots import load_robot


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()


LAUNCH_ARGUMENTS: list[LaunchArgument] = [
    LaunchArgument("robot", "widowx", "Robot preset: config/robots/<robot>.yaml (or a YAML path)"),
    LaunchArgument("policy", "scripted", "Policy config: config/policies/<policy>.yaml (or a YAML path)"),
    LaunchArgument("sim", "mujoco", "Simulator to start with the graph (none = real robot)", ("mujoco", "none")),
    LaunchArgument("use_sim_time", "false", "Use /clock (the sim publishes it when true)", ("true", "false")),
    LaunchArgument("params_file", "", "Extra ROS parameter YAML applied last to every node"),
]


@dataclass
class GraphArgs:
    robot: str = "widowx"
    policy: str = "scripted"
    sim: str = "mujoco"
    use_sim_time: bool = False
    params_file: str = ""

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> GraphArgs:
        """From ``name:=value`` style strings; unknown names raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown launch arguments {unknown}; known: {sorted(known)}")
        args = cls(**{k: v for k, v in values.items() if k != "use_sim_time"})
        if "use_sim_time" in values:
            flag = str(values["use_sim_time"]).lower()
            if flag not in ("true", "false"):
                raise ValueError(f"use_sim_time must be true or false, not {values['use_sim_time']!r}")
            args.use_sim_time = flag == "true"
        for arg in LAUNCH_ARGUMENTS:
            if arg.choices and arg.name != "use_sim_time" and getattr(args, arg.name) not in arg.choices:
                raise ValueError(f"{arg.name} must be one of {list(arg.choices)}, not {getattr(args, arg.name)!r}")
        return args


@dataclass
class NodeSpec:
    name: str
    executable: str  # in lib/vla_ros/ (launch_ros)
    module: str  # python -m <module> (pip launcher)
    parameters: dict  # generated from the robot preset and the launch arguments
    param_files: list[str] = field(default_factory=list)  # applied after ``parameters``, in order


def policy_config_path(policy: str) -> Path:
    p = Path(policy)
    path = resolve(p) if p.suffix in (".yaml", ".yml") else share_dir() / "config" / "policies" / f"{policy}.yaml"
    if not path.exists():
        available = sorted(q.stem for q in (share_dir() / "config" / "policies").glob("*.yaml"))
        raise FileNotFoundError(f"unknown policy {policy!r}; available: {available}")
    return path


def build_graph(args: GraphArgs, overrides: dict[str, dict] | None = None) -> list[NodeSpec]:
    """Nodes to start, each with generated parameters and the parameter files to apply on top.

    ``overrides`` (node name -> parameters) are merged into the generated parameters.
    """
    robot = load_robot(args.robot)
    policy_file = policy_config_path(args.policy)
    extra = [str(resolve(args.params_file))] if args.params_file else []
    if extra and not Path(extra[0]).exists():
        raise FileNotFoundError(f"params_file {extra[0]} does not exist")
    common = {"robot": args.robot, "use_sim_time": args.use_sim_time}
    js_topic = robot.data.get("joint_states_topic", "/joint_states")
    cams = robot.cameras
    nodes = []
    if args.sim == "mujoco":
        if not robot.data.get("sim"):
            raise ValueError(f"robot preset {robot.name!r} has no sim section; use sim:=none with a real robot")
        nodes.append(NodeSpec("sim_node", "sim_node", "vla_ros.sim.sim_node", {
            "robot": args.robot, "use_sim_time": False, "publish_clock": args.use_sim_time,
            **({"camera_rate": cams[0].rate} if cams else {}),
        }, list(extra)))
    nodes.append(NodeSpec("policy_node", "policy_node", "vla_ros.ros.policy_node", {
        **common, "joint_states_topic": js_topic,
        "image_keys": [c.key for c in cams], "image_topics": [c.image_topic for c in cams],
        "image_sizes": [f"{c.width}x{c.height}" for c in cams],
    }, [str(policy_file), *extra]))
    nodes.append(NodeSpec("controller_node", "controller_node", "vla_ros.ros.controller_node", {
        **common, "joint_states_topic": js_topic,
        "output_interface": robot.data.get("output_interface", "forward_position"),
        "velocity_scale": float(robot.data.get("velocity_scale", 0.5)),
        "unblended_joints": [g["joint"] for g in robot.grippers],
    }, list(extra)))
    for node in nodes:
        node.parameters.update((overrides or {}).get(node.name, {}))
    return nodes


def write_params_file(nodes: list[NodeSpec], directory: str | Path | None = None) -> Path:
    """Write every node's generated parameters to one ROS parameter YAML file."""
    folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="vla_ros_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "generated_params.yaml"
    path.write_text(yaml.safe_dump({n.name: {"ros__parameters": n.parameters} for n in nodes}, sort_keys=False))
    return path
