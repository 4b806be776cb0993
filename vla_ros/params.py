"""Every node parameter, declared once: name, default, type, range, description.

Nodes declare from these tables (``vla_ros.ros.param_util``) and the README's tables are generated
from them (``python -m vla_ros.docs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .sim.perturb import CONDITIONS, TRAINING


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    type: str = ""  # inferred from default; give it for empty lists: string_array, double_array
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    dynamic: bool = False  # may change at run time

    @property
    def kind(self) -> str:
        if self.type:
            return self.type
        d = self.default
        if isinstance(d, bool):
            return "bool"
        if isinstance(d, int):
            return "int"
        if isinstance(d, float):
            return "double"
        if isinstance(d, str):
            return "string"
        if isinstance(d, (list, tuple)) and d:
            return {bool: "bool_array", int: "integer_array", float: "double_array", str: "string_array"}[type(d[0])]
        raise TypeError(f"give a type for parameter {self.name!r}")


DRIVER_CHOICES = ("", "ros2_control", "interbotix_xs", "franka_ros2")
ROBOT = ParamSpec("robot", "widowx", "Robot preset name (config/robots/<name>.yaml) or a YAML path")
JOINT_STATES_TOPIC = ParamSpec("joint_states_topic", "/joint_states", "sensor_msgs/JointState input topic")

POLICY_PARAMS: list[ParamSpec] = [
    ROBOT,
    ParamSpec("backend", "builtin", "Policy backend (see the backends table)"),
    ParamSpec("instruction", "pick up the red cube", "Language instruction; also settable on /vla/instruction",
              dynamic=True),
    ParamSpec("image_keys", [], "Model image keys, one per camera topic", type="string_array"),
    ParamSpec("image_topics", [], "sensor_msgs/Image topics feeding image_keys (same order)", type="string_array"),
    ParamSpec("image_transport", "raw", "raw: sensor_msgs/Image on each image topic; compressed: "
              "sensor_msgs/CompressedImage (JPEG/PNG) on <topic>/compressed, as image_transport publishes it",
              choices=("raw", "compressed")),
    ParamSpec("image_sizes", [], "Size each camera publishes, 'WxH' per image key ('' or empty: the backend's); "
              "frames at it are resized with padding silently, other sizes with a warning", type="string_array"),
    ParamSpec("image_width", 224, "Width the backend receives (other sizes are resized with padding)", min=8, max=4096),
    ParamSpec("image_height", 224, "Height the backend receives", min=8, max=4096),
    ParamSpec("state_joints", [], "Joints forming the state vector (empty: the preset's)", type="string_array"),
    ParamSpec("action_joints", [], "Target dimensions of published chunks (empty: the preset's)",
              type="string_array"),
    JOINT_STATES_TOPIC,
    ParamSpec("chunk_dt", 0.1, "Seconds between consecutive targets in a chunk", min=0.001, max=10.0),
    ParamSpec("horizon", 10, "Targets per published chunk", min=1, max=1000),
    ParamSpec("trigger", "latency_aware", "When inference starts: every inference_period, or early enough "
              "(measured latency) that the next chunk arrives after execution_horizon steps",
              choices=("fixed", "latency_aware")),
    ParamSpec("inference_period", 0.25, "fixed trigger: seconds between inference starts (skipped while busy)",
              min=0.001, max=60.0, dynamic=True),
    ParamSpec("execution_horizon", 3, "latency_aware trigger: chunk steps executed before the next chunk "
              "should take over", min=1, max=1000),
    ParamSpec("latency_quantile", 95.0, "Percentile of recent inference latencies used for scheduling",
              min=50.0, max=100.0),
    ParamSpec("trigger_margin", 0.01, "Extra seconds of lead when scheduling inference", min=0.0, max=10.0),
    ParamSpec("publish_path", True, "Publish each chunk's planned tool path (nav_msgs/Path in the arm's base frame) "
              "on /vla/planned_path (several arms: /vla/planned_path/<arm>) for RViz / Foxglove"),
    ParamSpec("max_input_age", 0.5, "Inputs older than this (s) are stale: no inference", min=0.01, max=60.0,
              dynamic=True),
    ParamSpec("start_paused", False, "Wait for /vla/resume before the first inference"),
    ParamSpec("input_timeout", 5.0, "Missing inputs are awaited quietly (INFO) this long after start-up or a "
              "reset, then reported as errors (s)", min=0.0, max=600.0),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages", min=0.05, max=60.0),
    ParamSpec("task_success_topic", "", "RunTask: std_msgs/Bool that says the task succeeded (it must read False, "
              "then True, during a run); empty: a run ends at its time limit or a cancel (the sim: /sim/task_success)"),
    ParamSpec("task_reset_sim", False, "RunTask: reset the sim (/sim/reset) before each run (the graph sets it with "
              "sim:=mujoco)"),
    ParamSpec("task_preempt", False, "RunTask: a new goal pre-empts the running one (false: it is rejected)"),
]

CONTROLLER_PARAMS: list[ParamSpec] = [
    ROBOT,
    ParamSpec("joints", [], "Joints the controller commands (empty: the preset's action joints)",
              type="string_array"),
    JOINT_STATES_TOPIC,
    ParamSpec("control_rate", 500.0, "Command loop rate (Hz)", min=1.0, max=2000.0),
    ParamSpec("interpolation", "quintic", "Interpolation between chunk targets (cubic: C1, quintic: C2)",
              choices=("linear", "cubic", "quintic")),
    ParamSpec("merge", "rtc", "How a new chunk merges into the plan: latest-only, ACT temporal ensembling, "
              "or RTC prefix blending", choices=("latest", "ensemble", "rtc")),
    ParamSpec("ensemble_k", 0.01, "ensemble: weight exp(-k i), i = 0 the oldest prediction", min=0.0, max=10.0,
              dynamic=True),
    ParamSpec("rtc_schedule", "exp", "rtc: prefix weight decay", choices=("linear", "exp"), dynamic=True),
    ParamSpec("execution_horizon", 0, "rtc: steps of a chunk executed before the next takes over; the blend "
              "ends there (0: half the chunk, or the part the running plan does not cover if longer)", min=0,
              max=1000, dynamic=True),
    ParamSpec("unblended_joints", [], "Joints that always take the newest chunk, not a blend (grippers: "
              "blending an open/close event delays the grasp); empty: the preset's grippers",
              type="string_array"),
    ParamSpec("use_motion_limits", True, "Jerk-limited trajectory generation (ruckig) within the preset's "
              "acceleration/jerk limits"),
    ParamSpec("velocity_scale", 0.0, "Fraction of the URDF velocity limits commands may use (0: the preset's "
              "velocity_scale)", min=0.0, max=1.0),
    ParamSpec("chunk_timeout", 1.0, "Hold position when no chunk arrived for this long (s)", min=0.01, max=60.0,
              dynamic=True),
    ParamSpec("state_timeout", 0.1, "Hold position when joint states are older than this (s)", min=0.001,
              max=10.0, dynamic=True),
    ParamSpec("max_chunk_age", 1.0, "Reject chunks whose stamp is older than this on arrival (s)", min=0.01,
              max=60.0, dynamic=True),
    ParamSpec("max_deviation", 0.0, "Stop the arm (brake, hold, reason on /diagnostics) when a non-gripper joint's "
              "command is further than this from its measured position (rad), until ~/reset; 0: off", min=0.0,
              max=10.0, dynamic=True),
    ParamSpec("workspace_min", [], "End-effector box, lower corner (x, y, z in m, the preset's base frame): "
              "the arm brakes and holds (reason on /diagnostics) where the plan would take the tool out; "
              "empty: no box", type="double_array"),
    ParamSpec("workspace_max", [], "End-effector box, upper corner (x, y, z in m); empty: no box",
              type="double_array"),
    ParamSpec("driver", "", "The robot's driver stack (empty: the preset's driver.kind): interbotix_xs (xs_sdk "
              "JointGroupCommand / JointSingleCommand), franka_ros2 (joint_trajectory_controller + franka_gripper "
              "actions) or ros2_control (forward position / joint_trajectory controllers)", choices=DRIVER_CHOICES),
    ParamSpec("output_interface", "", "Arm command interface: empty = the driver's own (ros2_control: the preset's "
              "output_interface); forward_position or joint_trajectory (driver ros2_control); ee_pose / ee_twist "
              "(MoveIt Servo: PoseStamped / TwistStamped in the base frame; the grippers stay on the driver)",
              choices=("", "forward_position", "joint_trajectory", "ee_pose", "ee_twist")),
    ParamSpec("command_rate", 0.0, "Rate commands reach the driver (Hz; 0: the preset's driver.command_rate, else "
              "every control tick); the internal interpolation runs at control_rate", min=0.0, max=2000.0),
    ParamSpec("driver_setup", True, "Put the driver into streaming modes at start with its own services (xs_sdk "
              "operating modes, ALOHA's gripper reboot and current limit; MoveIt Servo's command type); false: skip"),
    ParamSpec("driver_timeout", 2.0, "A command topic without subscriber or an absent action server holds the arm; "
              "after this long it is an ERROR on the log and /diagnostics (s)", min=0.1, max=60.0),
    ParamSpec("ee_topic", "", "ee_pose / ee_twist output topic (empty: MoveIt Servo's /servo_node/pose_target_cmds "
              "or /servo_node/delta_twist_cmds)"),
    ParamSpec("trajectory_points", 5, "joint_trajectory output: look-ahead points per message", min=1, max=100),
    ParamSpec("trajectory_publish_divider", 2, "joint_trajectory output: publish every Nth control tick", min=1,
              max=100),
    ParamSpec("state_publish_rate", 100.0, "Rate of /vla/controller/state (commanded positions, velocities)",
              min=1.0, max=2000.0),
    ParamSpec("start_enabled", True, "Stream commands from start-up (else wait for ~/enable)"),
    ParamSpec("operator_heartbeat", False, "Deadman: hold unless a True heartbeat (std_msgs/Bool on heartbeat_topic) "
              "is fresher than heartbeat_timeout; a lost heartbeat brakes to a hold, and only a fresh heartbeat plus "
              "/vla/controller/enable resumes (on by default with sim:=none)"),
    ParamSpec("heartbeat_topic", "/vla/operator/heartbeat", "Operator heartbeat topic (std_msgs/Bool)"),
    ParamSpec("heartbeat_timeout", 0.5, "A heartbeat older than this (s, receive time) is lost", min=0.01, max=10.0),
    ParamSpec("teleop_topic", "/vla/teleop/joint_command", "Takeover: joint positions to follow (JointState, "
              "e.g. a leader arm relayed to the controller's joint names) while teleop_engage_topic says true"),
    ParamSpec("teleop_engage_topic", "/vla/teleop/engage", "Takeover: true takes the arm from the policy, false "
              "hands it back (std_msgs/Bool)"),
    ParamSpec("teleop_timeout", 0.2, "Takeover: a teleop target older than this (s) brakes the arm to a hold",
              min=0.01, max=10.0),
    ParamSpec("dry_run", False, "Plan and publish /vla/controller/state as usual but send no command (try a "
              "policy without moving the arm)", dynamic=True),
    ParamSpec("thread_priority", 50, "SCHED_FIFO priority of the control thread (0: normal scheduling); "
              "falls back to normal scheduling with a warning where not permitted", min=0, max=99),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages", min=0.05, max=60.0),
]

SIM_PARAMS: list[ParamSpec] = [
    ROBOT,
    ParamSpec("seed", 0, "Seed of the object placement used by the reset service", min=0, max=2**31 - 1,
              dynamic=True),
    ParamSpec("start_spread", 0.0, "Reset moves each arm joint from home by up to this much (rad, uniform, "
              "drawn from the seed): varied start poses for demonstrations", min=0.0, max=1.0, dynamic=True),
    ParamSpec("start_spread_joints", "", "Per-joint start_spread overrides, 'JOINT=RAD,...' (e.g. "
              "'wrist_rotate=0.6': demonstrations that turn the wrist either way to a cube near 45 degrees)",
              dynamic=True),
    ParamSpec("command_noise", 0.0, "Std of a slowly varying offset (0.5 s correlation) added to every arm servo "
              "target from the next reset (rad, drawn from the seed): demonstrations that show recoveries",
              min=0.0, max=0.5, dynamic=True),
    ParamSpec("driver", "", "The driver stack the sim plays (empty: the preset's driver.kind); the controller must "
              "speak the same one", choices=DRIVER_CHOICES),
    ParamSpec("joint_state_rate", 100.0, "Joint-state rate of the ros2_control driver (Hz; the emulated xs_sdk "
              "publishes at 100 Hz, franka_ros2 at 30 Hz, as the real ones)", min=1.0, max=1000.0),
    ParamSpec("servo_command_in_type", "speed_units", "The emulated MoveIt Servo's moveit_servo.command_in_type "
              "(unitless scales twists by 0.4 / 0.8, as Servo does)", choices=("speed_units", "unitless")),
    ParamSpec("camera_rate", 10.0, "Camera frame rate (Hz, every camera)", min=0.1, max=120.0),
    ParamSpec("object_rate", 50.0, "/sim/objects and /sim/task_success rate (Hz)", min=0.1, max=500.0),
    ParamSpec("publish_clock", False, "Publish /clock from simulated time and stamp with it"),
    ParamSpec("real_time_factor", 1.0, "Simulated seconds per wall second", min=0.01, max=100.0),
    ParamSpec("perturb", "nominal", "Evaluation condition drawn at every reset from the seed (vla_ros.sim.perturb): "
              "camera pose +-2 cm / 3 deg, lighting +-30 % and direction, table colour, two distractor objects, "
              "50 ms camera latency; randomized (training data): the visual ones at once",
              choices=CONDITIONS + TRAINING),
]

# controller_node parameter -> ControlConfig field: the one mapping, used at start-up and for run-time changes
CONTROL_CONFIG_FIELDS: dict[str, str] = {
    "control_rate": "rate", "interpolation": "interpolation", "merge": "merge", "ensemble_k": "ensemble_k",
    "rtc_schedule": "rtc_schedule", "execution_horizon": "execution_horizon", "use_motion_limits": "use_motion_limits",
    "unblended_joints": "unblended", "chunk_timeout": "chunk_timeout", "state_timeout": "state_timeout",
    "max_chunk_age": "max_chunk_age", "max_deviation": "max_deviation",
}


def control_config(params: dict[str, Any], grippers: list[str]):
    """The ControlConfig for controller-node ``params`` (missing ones: their defaults); ``grippers`` are the
    preset's gripper joints, unblended unless ``unblended_joints`` names others."""
    from .core.control import ControlConfig

    defaults = {p.name: p.default for p in CONTROLLER_PARAMS}
    values = {f: params.get(name, defaults[name]) for name, f in CONTROL_CONFIG_FIELDS.items()}
    values["unblended"] = tuple(values["unblended"] or grippers)
    return ControlConfig(**values, deviation_exempt=tuple(grippers))


def config_change(config, name: str, value: Any) -> bool:
    """Apply a run-time change of controller parameter ``name`` to ``config``; False if it maps to none."""
    field = CONTROL_CONFIG_FIELDS.get(name)
    if field is None:
        return False
    setattr(config, field, tuple(value) if field == "unblended" else value)
    return True


RECORDER_PARAMS: list[ParamSpec] = [
    ROBOT,
    ParamSpec("output_dir", "recordings", "Folder of the episode bags (episode_NNNNNN, rosbag2 with MCAP storage)"),
    ParamSpec("output_interface", "", "The controller's output interface, whose command topics are recorded "
              "(empty: the driver's own)", choices=("", "forward_position", "joint_trajectory", "ee_pose", "ee_twist")),
    ParamSpec("driver", "", "The robot's driver stack (empty: the preset's)", choices=DRIVER_CHOICES),
    ParamSpec("record_commands", False, "Also record every command message to the robot's controllers (500 Hz "
              "each; /vla/controller/state always holds the commanded positions at 100 Hz)"),
    ParamSpec("instruction", "", "Instruction stored with an episode when none was published on /vla/instruction",
              dynamic=True),
    ParamSpec("episode_info", "{}", "JSON stored with the next episode (seed, operator, ...)", dynamic=True),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages", min=0.05, max=60.0),
]

RELAY_PARAMS: list[ParamSpec] = [
    ROBOT,
    ParamSpec("max_age", 0.1, "Merged joint states are published only while every source's newest message is "
              "at most this old (s)", min=0.001, max=10.0),
    ParamSpec("input_timeout", 5.0, "Sources missing after start-up are awaited quietly (INFO) this long, then "
              "reported as errors (s)", min=0.0, max=600.0),
    ParamSpec("diagnostics_period", 1.0, "Seconds between /diagnostics messages", min=0.05, max=60.0),
]

NODE_PARAMS: dict[str, list[ParamSpec]] = {
    "policy_node": POLICY_PARAMS,
    "controller_node": CONTROLLER_PARAMS,
    "sim_node": SIM_PARAMS,
    "recorder_node": RECORDER_PARAMS,
    "joint_state_relay": RELAY_PARAMS,
}
