"""Topic and service names and types: the one place they are spelled."""

from __future__ import annotations

from dataclasses import dataclass

JOINT_STATES = "/joint_states"
ACTION_CHUNK = "/vla/action_chunk"
PLANNED_PATH = "/vla/planned_path"  # (several arms: PLANNED_PATH/<arm>)
INSTRUCTION = "/vla/instruction"
DIAGNOSTICS = "/diagnostics"
POLICY_PAUSE = "/vla/pause"
POLICY_RESUME = "/vla/resume"
POLICY_RESET = "/vla/reset"
CONTROLLER_ENABLE = "/vla/controller/enable"
CONTROLLER_RESET = "/vla/controller/reset"
CONTROLLER_PAUSE = "/vla/controller/pause"
CONTROLLER_ESTOP = "/vla/controller/estop"
ESTOP = "/vla/estop"
OPERATOR_HEARTBEAT = "/vla/operator/heartbeat"
TELEOP_COMMAND = "/vla/teleop/joint_command"
TELEOP_ENGAGE = "/vla/teleop/engage"
INTERVENTION = "/vla/controller/intervention"
RUN_TASK = "/vla/run_task"
CONTROLLER_STATE = "/vla/controller/state"
SIM_OBJECTS = "/sim/objects"
SIM_TASK_SUCCESS = "/sim/task_success"
SIM_GRASP_WIDTH = "/sim/grasp_width"
SIM_TASK_PROGRESS = "/sim/task_progress"
SIM_RESET = "/sim/reset"
RECORDER_START = "/vla/recorder/start"
RECORDER_STOP = "/vla/recorder/stop"
EPISODE = "/vla/episode"
CLOCK = "/clock"
SERVO_POSE = "/servo_node/pose_target_cmds"  # ee_pose output (PoseStamped; MoveIt Servo, Cartesian controllers)
SERVO_TWIST = "/servo_node/delta_twist_cmds"  # ee_twist output (TwistStamped; MoveIt Servo)

# Reliable command streams keep this many commands (0.2 s at 500 Hz) for the middleware to resend to a
# subscriber that missed some (a loaded driver process): with 10, repairs came too late and were lost.
COMMAND_QOS_DEPTH = 100

MAX_INSTRUCTION_CHARS = 1000  # a longer instruction is rejected (policy node: topic and parameter)
# Serialized sizes above which an input is dropped before it is deserialized (a cheap rejection that keeps a
# flood of huge messages from holding the GIL and the allocator): generous for any real robot.
MAX_CHUNK_BYTES = 2**17  # ~1,500 points x 7 joints; a pi0 chunk (50 points x 14 joints) is ~10 kB
MAX_JOINT_STATE_BYTES = 2**16  # ~1,000 joints with names, positions, velocities and efforts
MAX_IMAGE_BYTES = 4096 * 4096 * 4 + 2**16  # the largest image accepted (4096 x 4096, 4 bytes per pixel)
MAX_INSTRUCTION_BYTES = 4 * MAX_INSTRUCTION_CHARS + 64  # UTF-8


def commands_topic(controller: str) -> str:
    """forward_command_controller input (std_msgs/Float64MultiArray)."""
    return f"/{controller}/commands"


def trajectory_topic(controller: str) -> str:
    """joint_trajectory_controller input (trajectory_msgs/JointTrajectory)."""
    return f"/{controller}/joint_trajectory"


def image_topic(camera: str) -> str:
    return f"/{camera}/image_raw"


def camera_info_topic(camera: str) -> str:
    return f"/{camera}/camera_info"


@dataclass(frozen=True)
class Endpoint:
    name: str
    type: str
    kind: str  # topic | service | action
    publisher: str  # node that publishes / serves
    subscriber: str  # node(s) that subscribe / call
    description: str


ENDPOINTS: list[Endpoint] = [
    Endpoint(JOINT_STATES, "sensor_msgs/JointState", "topic", "sim_node (or the robot, or joint_state_relay)",
             "policy_node, controller_node", "Measured joint positions"),
    Endpoint("<source>/joint_states", "sensor_msgs/JointState", "topic", "per-arm drivers (preset's "
             "joint_state_sources)", "joint_state_relay", "Unprefixed joint states of one arm (ALOHA followers)"),
    Endpoint(image_topic("<camera>"), "sensor_msgs/Image", "topic", "sim_node (or camera driver)", "policy_node",
             "Camera frames (rgb8/bgr8/rgba8/bgra8/mono8)"),
    Endpoint(camera_info_topic("<camera>"), "sensor_msgs/CameraInfo", "topic", "sim_node", "-",
             "Pinhole intrinsics of simulated cameras"),
    Endpoint(INSTRUCTION, "std_msgs/String", "topic", "user", "policy_node", "Language instruction"),
    Endpoint(ACTION_CHUNK, "trajectory_msgs/JointTrajectory", "topic", "policy_node", "controller_node",
             "Action chunk: header.stamp = observation capture time, points due at stamp + time_from_start"),
    Endpoint("/<ns>/commands/joint_group", "interbotix_xs_msgs/JointGroupCommand", "topic", "controller_node "
             "(driver interbotix_xs)", "xs_sdk (or the sim's emulation)", "Group 'arm' joint positions (rad) at the "
             "driver's command_rate (WidowX 100 Hz, ALOHA 50 Hz)"),
    Endpoint("/<ns>/commands/joint_single", "interbotix_xs_msgs/JointSingleCommand", "topic", "controller_node "
             "(driver interbotix_xs)", "xs_sdk (or the sim's emulation)", "'gripper' in its operating mode's units "
             "(current_based_position: motor rad), sent when the finger target changes"),
    Endpoint("/<ns>/joint_states", "sensor_msgs/JointState", "topic", "xs_sdk (or the sim's emulation)",
             "policy_node, controller_node (WidowX), joint_state_relay (ALOHA)", "100 Hz, unprefixed: the arm, "
             "gripper (rad), left_finger / right_finger (m)"),
    Endpoint("/<ns>/set_operating_modes, reboot_motors, set_motor_registers, torque_enable",
             "interbotix_xs_msgs/srv/*", "service", "xs_sdk (or the sim's emulation)", "controller_node (set-up)",
             "Streaming modes at start (driver_setup)"),
    Endpoint(RUN_TASK, "vla_ros_interfaces/action/RunTask", "action", "policy_node", "vla-ros run, user code",
             "Run an instruction until success (task_success_topic), its time limit or a cancel; feedback: state, "
             "chunks, latency; result: outcome, reason, duration"),
    Endpoint("/franka_gripper/move, /franka_gripper/grasp", "franka_msgs/action/Move, Grasp", "action",
             "franka_gripper (or the sim's emulation)", "controller_node (driver franka_ros2)",
             "One goal per open/close change of the commanded finger"),
    Endpoint("/servo_node/switch_command_type", "moveit_msgs/srv/ServoCommandType", "service",
             "MoveIt Servo (or the sim's emulation)", "controller_node (ee_pose / ee_twist set-up)",
             "POSE or TWIST before the first command"),
    Endpoint(commands_topic("<controller>"), "std_msgs/Float64MultiArray", "topic", "controller_node",
             "sim_node (or ros2_control)", "Forward position commands at the control rate (driver ros2_control)"),
    Endpoint(trajectory_topic("<controller>"), "trajectory_msgs/JointTrajectory", "topic", "controller_node",
             "sim_node (or ros2_control)", "Short look-ahead trajectories (stamp 0 = now, with velocities)"),
    Endpoint(SERVO_POSE, "geometry_msgs/PoseStamped", "topic", "controller_node (output_interface ee_pose)",
             "sim_node (or MoveIt Servo, a Cartesian controller)", "Tool pose of the commanded joints, base frame, "
             "every control tick (ee_topic renames it)"),
    Endpoint(SERVO_TWIST, "geometry_msgs/TwistStamped", "topic", "controller_node (output_interface ee_twist)",
             "sim_node (or MoveIt Servo)", "Tool twist of the commanded motion, base frame (a hold brakes it to zero)"),
    Endpoint(CONTROLLER_STATE, "sensor_msgs/JointState", "topic", "controller_node", "demo, rosbag, plots",
             "Commanded positions and velocities, decimated to state_publish_rate"),
    Endpoint(DIAGNOSTICS, "diagnostic_msgs/DiagnosticArray", "topic", "all nodes", "rqt_robot_monitor, demo",
             "Latency, rates, jitter, input problems"),
    Endpoint(SIM_OBJECTS, "visualization_msgs/MarkerArray", "topic", "sim_node", "policy_node (scripted backend)",
             "Object poses in the robot base frame (ns = object name)"),
    Endpoint(ESTOP, "std_msgs/Bool", "topic", "user (latched: transient local)", "controller_node",
             "Software e-stop, latched: true engages, false releases (same as the estop service)"),
    Endpoint(OPERATOR_HEARTBEAT, "std_msgs/Bool", "topic", "operator device (pedal, joystick button, web page)",
             "controller_node (operator_heartbeat)", "True at >= 1/heartbeat_timeout Hz while an operator is there; "
             "missing or False brakes the arm to a hold until a fresh heartbeat and /vla/controller/enable"),
    Endpoint(PLANNED_PATH, "nav_msgs/Path", "topic", "policy_node (publish_path)", "RViz, Foxglove",
             "Each chunk's tool path by forward kinematics, in the arm's base frame (several arms: "
             "/vla/planned_path/<arm>)"),
    Endpoint(TELEOP_COMMAND, "sensor_msgs/JointState", "topic", "a leader arm, a teleop node",
             "controller_node (teleop_topic)", "Joint positions to follow while a takeover is engaged (names: "
             "the controller's joints, any subset)"),
    Endpoint(TELEOP_ENGAGE, "std_msgs/Bool", "topic", "operator device (pedal, button)",
             "controller_node (teleop_engage_topic)", "true: the teleoperator takes the arm (chunks refused); "
             "false: hand back to the policy (only chunks stamped after it)"),
    Endpoint(INTERVENTION, "vla_ros_interfaces/msg/Intervention", "topic", "controller_node (latched)",
             "recorder_node, user", "Each takeover and hand-back, stamped when it took effect"),
    Endpoint(SIM_TASK_SUCCESS, "std_msgs/Bool", "topic", "sim_node", "demo", "Task success of the current episode"),
    Endpoint(SIM_GRASP_WIDTH, "std_msgs/Float64", "topic", "sim_node", "eval",
             "The held cube's width along the jaws' closing axis at success (m; cube size when square, NaN before)"),
    Endpoint(SIM_TASK_PROGRESS, "std_msgs/Int32", "topic", "sim_node", "eval",
             "How many of the task's stages the episode has reached (pick: lifted; transfer: lifted by the giver, "
             "touched by the receiver aloft)"),
    Endpoint(CLOCK, "rosgraph_msgs/Clock", "topic", "sim_node (publish_clock)", "nodes with use_sim_time",
             "Simulated time"),
    Endpoint(POLICY_PAUSE, "std_srvs/Trigger", "service", "policy_node", "user", "Stop starting inferences"),
    Endpoint(POLICY_RESUME, "std_srvs/Trigger", "service", "policy_node", "user", "Resume inference"),
    Endpoint(POLICY_RESET, "std_srvs/Trigger", "service", "policy_node", "user", "Reset the backend's episode state"),
    Endpoint(CONTROLLER_ENABLE, "std_srvs/SetBool", "service", "controller_node", "user",
             "Start (re-synced to the measured state) or stop streaming commands"),
    Endpoint(CONTROLLER_RESET, "std_srvs/Trigger", "service", "controller_node", "user",
             "Drop the plan and hold the measured position"),
    Endpoint(CONTROLLER_PAUSE, "std_srvs/SetBool", "service", "controller_node", "user",
             "true: brake to rest within the acceleration limits and hold (commands keep streaming); false: "
             "resume from the measured state"),
    Endpoint(CONTROLLER_ESTOP, "std_srvs/SetBool", "service", "controller_node", "user",
             "Software e-stop: true engages (as pause, and chunks are dropped until released), false releases"),
    Endpoint(SIM_RESET, "std_srvs/Trigger", "service", "sim_node", "demo, user",
             "New episode from the sim's `seed` parameter"),
]
