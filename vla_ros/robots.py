"""Robot presets: typed sections of config/robots/*.yaml, validated when loaded.

A preset is what a user edits to add a robot; nothing else reads its YAML. Every default lives here,
once. A wrong key, type or joint name fails at load with the file and key named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from .config_schema import ConfigError, load
from .core.kinematics import Chain
from .core.limits import JointLimits
from .core.urdf import UrdfModel, parse_urdf
from .paths import resolve, share_dir

OUTPUT_INTERFACES = ("forward_position", "joint_trajectory", "ee_pose", "ee_twist")
ACTION_KINDS = ("joint_absolute", "joint_delta", "joint_velocity", "ee_delta")
TASK_KINDS = ("pick_cube", "transfer_cube")  # implemented in vla_ros.sim.tasks
# the steps towards success a task reports (/sim/task_progress: how many of them an episode has reached)
TASK_STAGES = {"pick_cube": ("lifted",), "transfer_cube": ("lifted by the giver", "touched by the receiver aloft")}
OPENPI_LAYOUTS = ("vla_ros", "aloha", "droid", "libero")  # implemented in vla_ros.remote.layouts
DRIVER_KINDS = ("ros2_control", "interbotix_xs", "franka_ros2")  # implemented in vla_ros.drivers
XS_GRIPPER_MODES = ("linear_position", "position", "current_based_position")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}: {value!r} is not one of {list(choices)}")


@dataclass
class GripperSpec:
    """A gripper joint and its joint values (metres per finger, or radians) when open and closed."""

    joint: str
    open: float
    closed: float


@dataclass
class ArmSpec:
    """One arm of a multi-arm robot: its tool link and gripper joint (its joints: the chain to the tool)."""

    name: str
    ee_link: str
    gripper: str


@dataclass
class ControllerSpec:
    """A ros2_control controller and the joints it commands."""

    name: str
    joints: list[str]


@dataclass
class CameraSimSpec:
    """Where the simulator places a camera: in the robot base frame, or in link ``body``'s frame (a wrist
    camera moves with it); +Y of the image roughly along ``up`` (same frame)."""

    pos: list[float]
    lookat: list[float]
    fovy: float = 45.0
    body: str = ""
    up: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0])


@dataclass
class CameraSpec:
    """A camera: model image ``key``, ``width`` x ``height`` as its driver publishes (the sim renders at it)."""

    key: str
    name: str
    width: int
    height: int
    rate: float = 10.0
    topic: str = ""  # the driver's image topic; default /<name>/image_raw
    sim: CameraSimSpec | None = None

    @property
    def image_topic(self) -> str:
        return self.topic or f"/{self.name}/image_raw"

    @property
    def info_topic(self) -> str:
        return f"/{self.name}/camera_info"

    @property
    def frame_id(self) -> str:
        return f"{self.name}_optical_frame"


@dataclass
class LimitsSpec:
    """Per-joint acceleration and jerk limits (``default`` for the rest); the URDF gives none."""

    acceleration: dict[str, float] = field(default_factory=dict)
    jerk: dict[str, float] = field(default_factory=dict)


@dataclass
class ActuatorGains:
    kp: float
    kv: float = 0.0


@dataclass
class TableSpec:
    center: list[float] = field(default_factory=lambda: [0.25, 0.0])
    size: list[float] = field(default_factory=lambda: [0.9, 1.0])
    thickness: float = 0.04


@dataclass
class SimSpec:
    """The MuJoCo scene: physics rate, servo gains, start pose, table."""

    physics_rate: float = 500.0
    fixed_joints: list[str] = field(default_factory=list)
    home: list[float] = field(default_factory=list)  # arm_joints order
    gripper_home: float | None = None
    armature: float = 0.0
    actuators: dict[str, ActuatorGains] = field(default_factory=dict)
    table: TableSpec = field(default_factory=TableSpec)


@dataclass
class RegionSpec:
    x: list[float] = field(default_factory=lambda: [0.22, 0.36])
    y: list[float] = field(default_factory=lambda: [-0.14, 0.14])


@dataclass
class TaskSpec:
    """The simulated task; ``kind`` selects it (vla_ros.sim.tasks)."""

    kind: str = "pick_cube"
    target: str = "red_cube"
    objects: dict[str, list[float]] = field(default_factory=dict)  # name -> rgba
    cube_size: float = 0.03
    cube_mass: float = 0.02
    region: RegionSpec = field(default_factory=RegionSpec)
    min_spacing: float = 0.075
    yaw: float = float(np.pi / 4)  # each object's yaw is drawn from [-yaw, yaw] (rad); 0: axis-aligned
    lift_height: float = 0.05
    hold_time: float = 0.5
    # transfer_cube: the links of the hand that gives the cube and of the one that must end up holding it
    giver: list[str] = field(default_factory=list)
    receiver: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        _choice("kind", self.kind, TASK_KINDS)
        if self.kind == "transfer_cube" and not (self.giver and self.receiver):
            raise ValueError("transfer_cube: name the giver's and the receiver's finger links (giver, receiver)")
        if not 0.0 <= self.yaw <= np.pi:
            raise ValueError(f"task.yaw: {self.yaw} rad must lie in [0, pi]")
        if self.objects and self.target not in self.objects:
            raise ValueError(f"target: {self.target!r} is not one of the objects {sorted(self.objects)}")


@dataclass
class ActionGripperSpec:
    """The model's gripper values for closed and open (empty: the joint's own values)."""

    model_closed: float | None = None
    model_open: float | None = None
    threshold: float | None = None  # binarise the model's value first (DROID: 0.5)


@dataclass
class ActionSpaceSpec:
    """How model actions become joint targets (see vla_ros.core.action_space)."""

    kind: str = "joint_absolute"
    gripper: ActionGripperSpec = field(default_factory=ActionGripperSpec)
    ee_scale: list[float] = field(default_factory=lambda: [1.0, 1.0])  # ee_delta: metres, radians per unit
    model_dims: list[str] = field(default_factory=list)  # joint per model column (empty: action_joints)
    velocity_step: float = 0.0  # joint_velocity: rad per chunk step per unit (0: chunk_dt, i.e. rad/s)
    clip: float = 0.0  # > 0: the model's arm columns clipped to [-clip, clip]

    def __post_init__(self) -> None:
        _choice("kind", self.kind, ACTION_KINDS)
        if self.velocity_step < 0.0 or self.clip < 0.0:
            raise ValueError(f"action_space: velocity_step and clip must be >= 0 ({self.velocity_step}, {self.clip})")


@dataclass
class OpenpiSpec:
    """The openpi observation layout and which layout camera each image key feeds."""

    layout: str = "vla_ros"
    cameras: dict[str, str] = field(default_factory=dict)  # layout camera -> image key
    # libero: where the robot's base is in the frame the end-effector poses are given in (LIBERO reports them in
    # its world frame; the offset depends on the scene). Zeros: poses in the base frame.
    base_position: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])

    def __post_init__(self) -> None:
        _choice("layout", self.layout, OPENPI_LAYOUTS)
        if len(self.base_position) != 3:
            raise ValueError(f"openpi.base_position: 3 values (x, y, z), not {self.base_position}")


@dataclass
class JointStateSource:
    """A driver's joint-state topic whose joint names get ``prefix`` (a per-arm Interbotix driver)."""

    topic: str
    prefix: str = ""


@dataclass
class XsArmSpec:
    """One Interbotix xs_sdk instance (``robot_name``): its group ``arm`` and its gripper, as preset joints."""

    namespace: str  # /<namespace>/commands/joint_group, /<namespace>/joint_states, /<namespace>/set_operating_modes
    joints: list[str]  # the preset's names of the group's joints, in the driver's order
    gripper: str = ""  # the preset's finger joint (m per finger) commanded as the driver's `gripper` motor
    prefix: str = ""  # preset joint name = prefix + the driver's name
    model: str = "wx250s"  # robot_model (the driver's config: gripper linkage, boot modes; the sim emulates it)


@dataclass
class XsGripperSpec:
    """How vla_ros drives an xs_sdk gripper: the operating mode it sets and the finger <-> command units.

    linear_position: the command is the full finger gap (2 x finger, m). position / current_based_position: the
    motor angle (rad), from the finger through the linkage (``horn_radius``, ``arm_length``: the driver's config),
    or, where ``motor`` and ``finger`` are given, linearly between those [closed, open] pairs (ALOHA's constants)."""

    mode: str = "linear_position"
    horn_radius: float = 0.014
    arm_length: float = 0.024
    motor: list[float] = field(default_factory=list)  # [closed, open] rad
    finger: list[float] = field(default_factory=list)  # [closed, open] m
    current_limit: int = 0  # Current_Limit register set at start (0: left as it is)
    reboot: bool = False  # reboot the gripper motor at start (ALOHA: clears an overload error)

    def __post_init__(self) -> None:
        _choice("gripper.mode", self.mode, XS_GRIPPER_MODES)
        if bool(self.motor) != bool(self.finger) or (self.motor and (len(self.motor) != 2 or len(self.finger) != 2)):
            raise ValueError("gripper: motor and finger are [closed, open] pairs, both or neither")
        if self.mode == "linear_position" and self.motor:
            raise ValueError("gripper: linear_position takes the finger gap; motor/finger maps are for position modes")


@dataclass
class InterbotixSpec:
    arms: list[XsArmSpec]
    gripper: XsGripperSpec = field(default_factory=XsGripperSpec)


@dataclass
class FrankaDriverSpec:
    """franka_ros2: the arm through a joint_trajectory_controller, the hand through franka_gripper's actions."""

    arm_controller: str = "fr3_arm_controller"
    gripper_node: str = "/franka_gripper"  # actions <node>/move, <node>/grasp
    speed: float = 0.1  # m/s of the fingers' gap for move and grasp goals
    force: float = 40.0  # N for grasp goals
    epsilon: float = 0.08  # m: a grasp succeeds with the gap anywhere below the commanded one by this much


@dataclass
class ServoSpec:
    """MoveIt Servo (ee_pose / ee_twist outputs): its node, whose command type vla_ros switches at start."""

    node: str = "/servo_node"


@dataclass
class DriverSpec:
    """The real driver stack the arm speaks (vla_ros.drivers); the sim plays the same one."""

    kind: str = "ros2_control"
    command_rate: float = 0.0  # Hz the driver takes commands at (0: the controller's control_rate)
    interbotix: InterbotixSpec | None = None
    franka: FrankaDriverSpec = field(default_factory=FrankaDriverSpec)
    servo: ServoSpec = field(default_factory=ServoSpec)
    bringup: str = ""  # the upstream command that starts the real driver (shown in messages and the README)

    def __post_init__(self) -> None:
        _choice("driver.kind", self.kind, DRIVER_KINDS)
        if self.kind == "interbotix_xs" and not self.interbotix:
            raise ValueError("driver: interbotix_xs needs an interbotix section (arms, gripper)")
        if self.command_rate < 0.0:
            raise ValueError(f"driver.command_rate: {self.command_rate} must be >= 0")


@dataclass
class DatasetSpec:
    """How a LeRobotDataset names this robot's rows (``vla-ros export``, and training from such a dataset).

    ``joints``: dataset name per state/action joint (default: the joint's own name); ``names_key``: ``names``
    written as ``{names_key: [...]}`` (LeRobot's ALOHA and DROID datasets) or, empty, as a flat list;
    ``gripper``: the gripper joints' units in the dataset: ``metres`` as measured, ``open_is_1`` =
    (x - closed) / (open - closed) (ALOHA's normalised gripper), ``closed_is_1`` = 1 - that (DROID's);
    ``cameras``: dataset camera name per image key (default: the key); ``fps``: the default frame rate."""

    robot_type: str = ""
    joints: dict[str, str] = field(default_factory=dict)
    names_key: str = ""
    gripper: str = "metres"
    cameras: dict[str, str] = field(default_factory=dict)
    fps: int = 10

    def __post_init__(self) -> None:
        _choice("dataset.gripper", self.gripper, ("metres", "open_is_1", "closed_is_1"))
        if self.fps <= 0:
            raise ValueError(f"dataset.fps: {self.fps} must be > 0")


@dataclass
class RobotPreset:
    name: str
    urdf: str
    base_link: str
    ee_link: str
    arm_joints: list[str]
    state_joints: list[str]
    action_joints: list[str]
    controllers: list[ControllerSpec]
    description: str = ""
    gripper: GripperSpec | None = None  # one gripper, or
    grippers: list[GripperSpec] = field(default_factory=list)  # several (ALOHA)
    arms: list[ArmSpec] = field(default_factory=list)  # several arms: each one's tool and gripper (ALOHA)
    output_interface: str = "forward_position"
    approach_axis: str = "x"  # the tool frame's axis that points from the hand between the fingers (x: Interbotix)
    joint_states_topic: str = "/joint_states"
    # drivers publishing per arm: a relay node merges them into joint_states_topic (empty: no relay)
    joint_state_sources: list[JointStateSource] = field(default_factory=list)
    velocity_scale: float = 0.5  # commands use this fraction of the URDF velocity limits
    limits: LimitsSpec = field(default_factory=LimitsSpec)
    home: list[float] = field(default_factory=list)
    cameras: list[CameraSpec] = field(default_factory=list)
    sim: SimSpec | None = None
    task: TaskSpec | None = None
    action_space: ActionSpaceSpec = field(default_factory=ActionSpaceSpec)
    openpi: OpenpiSpec = field(default_factory=OpenpiSpec)
    driver: DriverSpec = field(default_factory=DriverSpec)
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    path: Path = field(default=Path("."), init=False, compare=False)  # the YAML file (set by load_robot)

    def __post_init__(self) -> None:
        if self.gripper is not None and self.grippers:
            raise ValueError("gripper: give either gripper or grippers, not both")
        if self.gripper is not None:
            self.grippers = [self.gripper]
        self.gripper = self.grippers[0] if self.grippers else None
        _choice("output_interface", self.output_interface, OUTPUT_INTERFACES)
        _choice("approach_axis", self.approach_axis, ("x", "z"))
        if not 0.0 < self.velocity_scale <= 1.0:
            raise ValueError(f"velocity_scale: {self.velocity_scale} must be in (0, 1]")
        keys = [c.key for c in self.cameras]
        if len(set(keys)) != len(keys):
            raise ValueError(f"cameras: image keys {keys} are not unique")
        unknown = set(self.dataset.cameras) - set(keys)
        if unknown:
            raise ValueError(f"dataset.cameras: {sorted(unknown)} are not camera keys ({keys})")
        if self.sim is not None and self.sim.home and len(self.sim.home) != len(self.arm_joints):
            raise ValueError(f"sim.home: {len(self.sim.home)} values for {len(self.arm_joints)} arm_joints")

    def check_joints(self) -> None:
        """Every joint named in the preset exists in its URDF (called by load_robot)."""
        known = {j.name for j in self.urdf_model.joints}
        named = {"arm_joints": self.arm_joints, "state_joints": self.state_joints,
                 "arms.gripper": [a.gripper for a in self.arms],
                 "action_joints": self.action_joints, "grippers": [g.joint for g in self.grippers],
                 "action_space.model_dims": self.action_space.model_dims, "dataset.joints": list(self.dataset.joints),
                 **{f"controllers.{c.name}": c.joints for c in self.controllers}}
        for key, joints in named.items():
            unknown = [j for j in joints if j not in known]
            if unknown:
                raise ValueError(f"{key}: joints {unknown} are not in {self.urdf}")
        for arm in self.driver.interbotix.arms if self.driver.interbotix else ():
            unknown = [j for j in [*arm.joints, arm.gripper] if j and j not in known]
            if unknown:
                raise ValueError(f"driver.interbotix.arms.{arm.namespace}: joints {unknown} are not in {self.urdf}")
        uncommanded = [j for j in self.action_joints if not any(j in c.joints for c in self.controllers)]
        if uncommanded:
            raise ValueError(f"action_joints: {uncommanded} belong to no controller")
        links = self.urdf_model.links
        for key, names in (("arms.ee_link", [a.ee_link for a in self.arms]),
                           ("task.giver/receiver", self.task.giver + self.task.receiver if self.task else [])):
            unknown = [n for n in names if n not in links]
            if unknown:
                raise ValueError(f"{key}: links {unknown} are not in {self.urdf}")

    @property
    def urdf_path(self) -> Path:
        return resolve(self.urdf)

    @cached_property
    def urdf_model(self) -> UrdfModel:
        return parse_urdf(self.urdf_path)

    @property
    def single_arm(self) -> bool:
        """One tool chain (base_link -> ee_link) covers the arm: what Cartesian commands need (not ALOHA's pair)."""
        return len(self.grippers) <= 1

    def chain(self) -> Chain:
        return Chain(self.urdf_model, self.base_link, self.ee_link)

    def arm_chains(self) -> dict[str, Chain]:
        """Each arm's chain from the description's root (the world of a multi-arm robot) to its tool."""
        model = self.urdf_model
        return {a.name: Chain(model, model.root, a.ee_link) for a in self.arms}

    def limits_for(self, joints: list[str] | None = None, velocity_scale: float | None = None) -> JointLimits:
        """URDF position and velocity limits (velocity x velocity_scale, default the preset's), the preset's
        acceleration and jerk limits (missing: none)."""
        joints = joints or self.action_joints
        scale = self.velocity_scale if not velocity_scale else velocity_scale
        js = [self.urdf_model.joint(n) for n in joints]

        def per_joint(table: dict[str, float]) -> np.ndarray:
            return np.array([float(table.get(n, table.get("default", np.inf))) for n in joints])

        return JointLimits(joints, np.array([j.lower for j in js]), np.array([j.upper for j in js]),
                           np.array([j.velocity for j in js]) * scale, per_joint(self.limits.acceleration),
                           per_joint(self.limits.jerk))


def preset_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        return resolve(p)
    return share_dir() / "config" / "robots" / f"{name_or_path}.yaml"


def available_robots() -> list[str]:
    return sorted(p.stem for p in (share_dir() / "config" / "robots").glob("*.yaml"))


def load_robot(name_or_path: str) -> RobotPreset:
    """Load and validate a preset by name (``widowx``) or YAML path."""
    path = preset_path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"unknown robot {name_or_path!r}; available: {available_robots()}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    robot = load(RobotPreset, data, str(path))
    robot.path = path
    try:
        robot.check_joints()
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return robot
