"""The node graph for a set of launch arguments: shared by launch/policy.launch.py and ``vla-ros launch``."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .interfaces import SIM_TASK_SUCCESS
from .params import POLICY_PARAMS
from .paths import resolve, share_dir
from .robots import DRIVER_KINDS, OUTPUT_INTERFACES, load_robot


@dataclass(frozen=True)
class LaunchArgument:
    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Provider:
    """What fills a role of the graph: an executable of a ROS package (launch_ros finds it in
    lib/<package>/); this package's nodes also name their Python module, which ``vla-ros launch`` runs
    so that a source checkout's edits are live."""

    package: str
    executable: str
    module: str = ""


# The sim role: our MuJoCo sim, or nothing (a real robot's drivers, Gazebo, another simulator publish
# the same topics). Another provider is one more entry here.
SIM_PROVIDERS: dict[str, Provider | None] = {
    "mujoco": Provider("vla_ros", "sim_node", "vla_ros.sim.sim_node"),
    "gazebo": None,  # not a node: policy.launch.py includes launch/gazebo.launch.py (a ROS install with gz sim)
    "none": None,
}
EXTERNAL_SIMS = ("gazebo",)  # started by an included launch file, publishing /clock
POLICY = Provider("vla_ros", "policy_node", "vla_ros.ros.policy_node")
CONTROLLER = Provider("vla_ros", "controller_node", "vla_ros.ros.controller_node")
RECORDER = Provider("vla_ros", "recorder_node", "vla_ros.ros.recorder_node")
RELAY = Provider("vla_ros", "joint_state_relay", "vla_ros.ros.joint_state_relay")
BOOL = ("true", "false")
DEFAULT_BACKEND = next(p.default for p in POLICY_PARAMS if p.name == "backend")

LAUNCH_ARGUMENTS: list[LaunchArgument] = [
    LaunchArgument("robot", "widowx", "Robot preset: config/robots/<robot>.yaml (or a YAML path)"),
    LaunchArgument("policy", "builtin", "Policy config: config/policies/<policy>.yaml (or a YAML path)"),
    LaunchArgument("sim", "mujoco", "Simulator to start with the graph: mujoco, gazebo (ros2 launch with gz sim "
                   "Harmonic installed; sim time) or none (a real robot)", tuple(SIM_PROVIDERS)),
    LaunchArgument("use_sim_time", "false", "Use /clock (the sim publishes it when true)", BOOL),
    LaunchArgument("params_file", "", "Extra ROS parameter YAML applied last to every node"),
    LaunchArgument("record", "false", "Start the recorder (episodes as rosbag2/MCAP via /vla/recorder/start, stop)",
                   BOOL),
    LaunchArgument("record_dir", "recordings", "Folder of the recorded episode bags"),
    LaunchArgument("output_interface", "", "Arm output (empty: the driver's own): forward_position or "
                   "joint_trajectory (driver ros2_control), ee_pose or ee_twist (MoveIt Servo)",
                   ("", *OUTPUT_INTERFACES)),
    LaunchArgument("driver", "", "The robot's driver stack (empty: the preset's): interbotix_xs, franka_ros2 or "
                   "ros2_control; the MuJoCo sim plays the same one", ("", *DRIVER_KINDS)),
    LaunchArgument("headless", "true", "sim:=gazebo: the gz sim server only, cameras rendered offscreen (false: with "
                   "the GUI)", BOOL),
    LaunchArgument("operator_heartbeat", "auto", "Operator deadman (heartbeat on /vla/operator/heartbeat): auto = "
                   "on with sim:=none, off with a sim", ("auto", "true", "false")),
    LaunchArgument("enable", "auto", "Stream commands from the start: auto = true with a sim, false with sim:=none "
                   "(then call /vla/controller/enable)", ("auto", "true", "false")),
]
# With sim:=none (a real robot) the controller stops the arm when a joint's command and measurement part by more
# than this (rad), unless a params_file sets max_deviation.
REAL_ROBOT_MAX_DEVIATION = 0.3


class GraphError(ValueError):
    """The launch arguments describe a graph that cannot work; the message says what to set."""


@dataclass
class GraphArgs:
    robot: str = "widowx"
    policy: str = "builtin"
    sim: str = "mujoco"
    use_sim_time: bool = False
    params_file: str = ""
    record: bool = False
    record_dir: str = "recordings"
    output_interface: str = ""
    driver: str = ""
    headless: bool = True
    operator_heartbeat: str = "auto"
    enable: str = "auto"

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> GraphArgs:
        """From ``name:=value`` style strings; unknown names raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown launch arguments {unknown}; known: {sorted(known)}")
        flags = {f.name for f in fields(cls) if f.type in (bool, "bool")}
        args = cls(**{k: v for k, v in values.items() if k not in flags})
        for name in flags & set(values):
            flag = str(values[name]).lower()
            if flag not in BOOL:
                raise ValueError(f"{name} must be true or false, not {values[name]!r}")
            setattr(args, name, flag == "true")
        for arg in LAUNCH_ARGUMENTS:
            if arg.choices and arg.name not in flags and getattr(args, arg.name) not in arg.choices:
                raise ValueError(f"{arg.name} must be one of {list(arg.choices)}, not {getattr(args, arg.name)!r}")
        return args


@dataclass
class NodeSpec:
    role: str  # sim | relay | policy | controller | recorder
    name: str
    provider: Provider
    parameters: dict  # generated from the robot preset and the launch arguments
    param_files: list[str] = field(default_factory=list)  # applied after ``parameters``, in order


def policy_config_path(policy: str) -> Path:
    p = Path(policy)
    path = resolve(p) if p.suffix in (".yaml", ".yml") else share_dir() / "config" / "policies" / f"{policy}.yaml"
    if not path.exists():
        available = sorted(q.stem for q in (share_dir() / "config" / "policies").glob("*.yaml"))
        raise FileNotFoundError(f"unknown policy {policy!r}; available: {available}")
    return path


def policy_parameters(policy_file: str | Path) -> dict[str, Any]:
    """The ``policy_node`` parameters of a config/policies YAML file, nested keys flattened with dots."""
    data = yaml.safe_load(Path(policy_file).read_text()) or {}
    params = (data.get("policy_node") or data.get("/**") or {}).get("ros__parameters", {})
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = value

    walk("", params)
    return flat


def graph_driver(args: GraphArgs) -> str:
    """The driver the nodes speak ('' = the preset's): Gazebo's arms run ros2_control controllers."""
    return args.driver or ("ros2_control" if args.sim in EXTERNAL_SIMS else "")


def _check(args: GraphArgs, robot, backend: str, options: dict[str, Any]) -> None:
    """Fail fast, saying what to set, on graphs that would start and then wait forever or fail."""
    if args.sim == "mujoco" and robot.sim is None:
        raise GraphError(f"robot {robot.name!r} has no MuJoCo sim yet ({robot.path} has no sim section): use "
                         f"sim:=none with the robot's drivers publishing {robot.joint_states_topic} and its cameras")
    driver = graph_driver(args) or robot.driver.kind
    if args.sim in EXTERNAL_SIMS and driver != "ros2_control":
        raise GraphError(f"sim:={args.sim} runs ros2_control controllers (gz_ros2_control), not the {driver} driver: "
                         "leave driver empty or set driver:=ros2_control")
    from .drivers.outputs import resolve_interface

    try:
        resolve_interface(robot, driver, args.output_interface)
    except ValueError as exc:
        raise GraphError(str(exc)) from None
    from .policies import backend_class

    try:
        cls = backend_class(backend)
    except KeyError as exc:
        raise GraphError(str(exc).strip("'\"")) from None
    missing = cls.preflight({k[len(backend) + 1:]: v for k, v in options.items() if k.startswith(backend + ".")},
                            robot, options)
    if missing:
        raise GraphError(missing)
    if SIM_PROVIDERS[args.sim] is None:
        if "objects" in cls.extra_inputs:
            raise GraphError(f"policy {backend!r} plans from the simulator's object poses (/sim/objects), which "
                             f"nothing publishes with sim:={args.sim}: start a sim (sim:=mujoco) or choose a "
                             "learned policy (policy:=pi0, openvla or openpi)")


def build_graph(args: GraphArgs, overrides: dict[str, dict] | None = None, check: bool = True) -> list[NodeSpec]:
    """Nodes to start, each with generated parameters and the parameter files to apply on top.

    ``overrides`` (node name -> parameters) are merged into the generated parameters. ``check=False``
    skips the fail-fast checks (tests whose probe stands in for a robot or simulator).
    """
    robot = load_robot(args.robot)
    policy_file = policy_config_path(args.policy)
    extra = [str(resolve(args.params_file))] if args.params_file else []
    if extra and not Path(extra[0]).exists():
        raise FileNotFoundError(f"params_file {extra[0]} does not exist")
    options = {**policy_parameters(policy_file), **(policy_parameters(extra[0]) if extra else {}),
               **(overrides or {}).get("policy_node", {})}
    backend = options.get("backend", DEFAULT_BACKEND)
    if check:
        _check(args, robot, backend, options)
    common = {"robot": args.robot, "use_sim_time": args.use_sim_time or args.sim in EXTERNAL_SIMS}
    js_topic = robot.joint_states_topic
    output = args.output_interface
    real = args.sim == "none"
    enabled = _on(args.enable, auto=not real)
    cams = robot.cameras
    nodes = []
    sim = SIM_PROVIDERS[args.sim]
    if sim is not None:
        nodes.append(NodeSpec("sim", "sim_node", sim, {
            "robot": args.robot, "use_sim_time": False, "publish_clock": args.use_sim_time,
            "driver": graph_driver(args),
            **({"camera_rate": cams[0].rate} if cams else {}),
        }, list(extra)))
    # per-arm drivers: one merged joint state for the policy and controller (Gazebo's joint_state_broadcaster
    # publishes the merged one itself)
    if robot.joint_state_sources and args.sim not in EXTERNAL_SIMS:
        nodes.append(NodeSpec("relay", "joint_state_relay", RELAY, {**common}, list(extra)))
    # the preset's cameras the backend reads (frames nobody reads are neither rendered nor sent)
    seen = _cameras_read(args.policy, backend, options, robot)
    nodes.append(NodeSpec("policy", "policy_node", POLICY, {
        **common, "joint_states_topic": js_topic,
        **({"task_success_topic": SIM_TASK_SUCCESS, "task_reset_sim": True} if args.sim == "mujoco" else {}),
        "image_keys": [c.key for c in seen], "image_topics": [c.image_topic for c in seen],
        "image_sizes": [f"{c.width}x{c.height}" for c in seen],
    }, [str(policy_file), *extra]))
    nodes.append(NodeSpec("controller", "controller_node", CONTROLLER, {
        **common, "joint_states_topic": js_topic, "output_interface": output, "driver": graph_driver(args),
        "start_enabled": enabled, **({"max_deviation": REAL_ROBOT_MAX_DEVIATION} if real else {}),
        "operator_heartbeat": _on(args.operator_heartbeat, auto=real),
    }, list(extra)))
    if args.record:
        nodes.append(NodeSpec("recorder", "recorder_node", RECORDER, {
            **common, "output_dir": str(Path(args.record_dir).expanduser().resolve()),
            "output_interface": output, "driver": graph_driver(args),
        }, list(extra)))
    for node in nodes:
        node.parameters.update((overrides or {}).get(node.name, {}))
    return nodes


def _on(choice: str, auto: bool) -> bool:
    """An auto/true/false launch argument."""
    return auto if choice == "auto" else choice == "true"


def _cameras_read(policy: str, backend: str, options: dict[str, Any], robot) -> list:
    """The preset's cameras that the policy's backend reads: none, those it names, or all of them."""
    from .policies import backend_class

    try:
        if not backend_class(policy).uses_images:
            return []
        keys = backend_class(backend).cameras(
            {k[len(backend) + 1:]: v for k, v in options.items() if k.startswith(backend + ".")}, robot)
    except (KeyError, ImportError):  # (an unknown backend fails in the policy node, with its own message)
        return list(robot.cameras)
    return [c for c in robot.cameras if keys is None or c.key in keys]


def write_params_file(nodes: list[NodeSpec], directory: str | Path | None = None) -> Path:
    """Write every node's generated parameters to one ROS parameter YAML file."""
    folder = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="vla_ros_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "generated_params.yaml"
    path.write_text(yaml.safe_dump({n.name: {"ros__parameters": n.parameters} for n in nodes}, sort_keys=False))
    return path
