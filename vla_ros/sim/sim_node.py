"""MuJoCo sim node: a simulated arm that speaks the ros2_control topics, with cameras and a task."""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections import deque

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped, TwistStamped  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, JointState  # noqa: E402
from std_msgs.msg import Bool, Float64, Float64MultiArray, Int32, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from .. import interfaces as io  # noqa: E402
from ..core.instructions import target_object  # noqa: E402
from ..core.problems import ProblemTracker  # noqa: E402
from ..core.trajectory import TrajectoryRejected  # noqa: E402
from ..core.transforms import make_transform, quat_wxyz_to_matrix  # noqa: E402
from ..params import SIM_PARAMS  # noqa: E402
from ..robots import CameraSpec, JointStateSource, load_robot  # noqa: E402
from ..ros import diagnostics as diag  # noqa: E402
from ..ros.conversions import array_to_image, to_sec, to_time, trajectory_arrays  # noqa: E402
from ..ros.node_main import QuietLogger, fail, run  # noqa: E402
from ..ros.param_util import choice_guard, declare  # noqa: E402
from .physics import ArmSim  # noqa: E402


def camera_info(cam: CameraSpec, stamp) -> CameraInfo:
    """Pinhole intrinsics of a MuJoCo camera with vertical field of view ``fovy``."""
    fovy = np.radians(cam.sim.fovy)
    f = cam.height / (2.0 * np.tan(fovy / 2.0))
    cx, cy = (cam.width - 1) / 2.0, (cam.height - 1) / 2.0
    info = CameraInfo(width=cam.width, height=cam.height, distortion_model="plumb_bob")
    info.header.stamp, info.header.frame_id = stamp, cam.frame_id
    info.d = [0.0] * 5
    info.k = [f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_node")
        p = self.p = declare(self, SIM_PARAMS)
        self.add_on_set_parameters_callback(choice_guard(SIM_PARAMS))
        self.robot = load_robot(p["robot"])
        self.sim = ArmSim(self.robot, p["perturb"])
        self.delayed: deque = deque(maxlen=64)  # (publish at, camera, image, info): the latency condition
        self.cameras = [c for c in self.robot.cameras if c.sim]
        self.frame = self.robot.urdf_model.root
        self.lock = threading.Lock()
        self.log = QuietLogger(self)  # for lines from the node's own threads
        self.problems = ProblemTracker(self.log.error, self.log.info)
        self.clock_offset = 0.0  # simulated seconds elapsed before the current episode's data.time
        self.seed = p["seed"]
        self.sim.reset(self.seed)
        self.reset_wall_ns = 0  # time.time_ns() of the last sim_reset

        qos = QoSProfile(depth=10)
        self.img_pubs = {c.name: self.create_publisher(Image, c.image_topic, QoSProfile(depth=2)) for c in self.cameras}
        self.info_pubs = {c.name: self.create_publisher(CameraInfo, c.info_topic, qos) for c in self.cameras}
        self.obj_pub = self.create_publisher(MarkerArray, io.SIM_OBJECTS, qos)
        self.success_pub = self.create_publisher(Bool, io.SIM_TASK_SUCCESS, qos)
        self.grasp_pub = self.create_publisher(Float64, io.SIM_GRASP_WIDTH, qos)
        self.progress_pub = self.create_publisher(Int32, io.SIM_TASK_PROGRESS, qos)
        self.clock_pub = self.create_publisher(Clock, io.CLOCK, qos) if p["publish_clock"] else None
        self.driver = p["driver"] or self.robot.driver.kind
        self.js_streams = self._emulate_driver(qos)  # (period, publish(stamp)) per joint-state stream
        self.servo = None
        if self.robot.single_arm:  # Cartesian inputs, as MoveIt Servo takes them (single arm)
            from ..drivers.servo import pose_topic, twist_topic

            servo_node = self.robot.driver.servo.node
            try:
                from ..drivers.servo_sim import ServoEmulation

                self.servo = ServoEmulation(self, servo_node, p["servo_command_in_type"])
            except ImportError:  # (moveit_msgs not built or installed: Servo's inputs without its command type)
                self.get_logger().info("moveit_msgs is not importable: the Servo inputs take commands untyped")
            self.create_subscription(PoseStamped, pose_topic(servo_node), self._on_ee_pose, qos)
            self.create_subscription(TwistStamped, twist_topic(servo_node), self._on_ee_twist, qos)
        self.create_service(Trigger, io.SIM_RESET, self._on_reset)
        self.create_subscription(String, io.INSTRUCTION, self._on_instruction, qos)
        self.diag_pub = self.create_publisher(DiagnosticArray, io.DIAGNOSTICS, qos)
        self.create_timer(1.0, self._publish_diagnostics)
        self.stats = {"physics_steps": 0, "dropped_steps": 0, "frames": 0, "commands_before_reset": 0}
        self._rtf_window: list[tuple[float, int]] = []

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="physics", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"sim ready: {self.robot.name}, physics {1.0 / self.sim.dt:.0f} Hz, joints {self.sim.joint_names}, "
            f"driver {self.driver} (emulated), cameras {[c.name for c in self.cameras]}")

    def _emulate_driver(self, qos: QoSProfile) -> list:
        """The robot's driver stack, played by the sim: its command inputs and its joint-state streams."""
        rate = self.p["joint_state_rate"]
        if self.driver == "interbotix_xs":
            from ..drivers.interbotix_sim import JOINT_STATE_RATE, XsSdkEmulation

            self.xs = [XsSdkEmulation(self, self.sim, arm, self.lock, self.problems, self.now)
                       for arm in self.robot.driver.interbotix.arms]
            return [(1.0 / JOINT_STATE_RATE, e.publish_joint_states) for e in self.xs]
        if self.driver == "franka_ros2":
            from ..drivers.franka_sim import JOINT_STATE_RATE, FrankaGripperEmulation

            spec = self.robot.driver.franka
            self._subscribe_trajectory(spec.arm_controller, qos)
            self.hands = [FrankaGripperEmulation(self, self.sim, spec, g, self.lock) for g in self.robot.grippers]
            return [(1.0 / JOINT_STATE_RATE, self._joint_state_publisher(self.robot.joint_states_topic, "", qos))]
        for name in self.sim.controllers:  # ros2_control: forward position and JTC inputs per controller
            self.create_subscription(Float64MultiArray, io.commands_topic(name),
                                     lambda msg, info, c=name: self._on_commands(c, msg, info), qos)
            self._subscribe_trajectory(name, qos)
        # the robot's drivers publish per arm (ALOHA's followers, unprefixed names): the sim does the same, and
        # the graph's relay merges them, as on the real robot; else one joint state with every joint
        sources = self.robot.joint_state_sources or [JointStateSource(self.robot.joint_states_topic, "")]
        return [(1.0 / rate, self._joint_state_publisher(src.topic, src.prefix, qos)) for src in sources]

    def _subscribe_trajectory(self, controller: str, qos: QoSProfile) -> None:
        self.create_subscription(JointTrajectory, io.trajectory_topic(controller),
                                 lambda msg, info, c=controller: self._on_trajectory(c, msg, info), qos)

    def _joint_state_publisher(self, topic: str, prefix: str, qos: QoSProfile):
        """The sim's joints whose names start with ``prefix`` (stripped) on ``topic``."""
        pub = self.create_publisher(JointState, topic, qos)
        names = self.sim.joint_names
        idx = [i for i, n in enumerate(names) if n.startswith(prefix)]

        def publish(stamp: float) -> None:
            with self.lock:
                q, v, e = self.sim.positions(), self.sim.velocities(), self.sim.efforts()
            msg = JointState(name=[names[i][len(prefix):] for i in idx], position=q[idx].tolist(),
                             velocity=v[idx].tolist(), effort=e[idx].tolist())
            msg.header.stamp = to_time(stamp)
            pub.publish(msg)

        return publish

    # -- time --------------------------------------------------------------------------------
    def sim_clock(self) -> float:
        return self.clock_offset + self.sim.time

    def now(self) -> float:
        """The stamp clock: simulated time with publish_clock, else the node clock."""
        if self.clock_pub is not None:
            return self.sim_clock()
        return self.get_clock().now().nanoseconds * 1e-9

    # -- commands ----------------------------------------------------------------------------
    def _sent_before_reset(self, info: dict) -> bool:
        """A command published before the last reset (still queued in DDS when the reset ran) would drive the
        arm back to the previous episode's pose: dropped and counted. Uses the publisher's source timestamp
        (system clock; 0 where the middleware gives none)."""
        sent = int(info.get("source_timestamp") or 0)
        if 0 < sent < self.reset_wall_ns:
            self.stats["commands_before_reset"] += 1
            return True
        return False

    def _on_commands(self, controller: str, msg: Float64MultiArray, info: dict) -> None:
        if self._sent_before_reset(info):
            return
        try:
            with self.lock:
                self.sim.set_forward_command(controller, np.array(msg.data, dtype=float))
        except ValueError as exc:
            self.problems.report(f"commands:{controller}", f"{io.commands_topic(controller)} rejected: {exc}",
                                 self.now())

    def _on_trajectory(self, controller: str, msg: JointTrajectory, info: dict) -> None:
        if self._sent_before_reset(info):
            return
        now = self.now()
        try:
            times, pos, vel, acc = trajectory_arrays(msg)
            with self.lock:
                self.sim.set_trajectory(controller, list(msg.joint_names), to_sec(msg.header.stamp), now, times, pos,
                                        vel, acc)
        except (TrajectoryRejected, ValueError) as exc:
            self.problems.report(f"trajectory:{controller}", f"{io.trajectory_topic(controller)} rejected: {exc}", now)

    def _ee_frame_ok(self, frame: str, topic: str) -> bool:
        if frame in ("", self.robot.base_link):
            return True
        self.problems.report(f"frame:{topic}", f"{topic} rejected: frame {frame!r}, expected "
                             f"{self.robot.base_link!r}", self.now())
        return False

    def _servo_accepts(self, kind: int, topic: str) -> bool:
        why = self.servo.accepts(kind) if self.servo is not None else ""
        if why:
            self.problems.report(f"servo:{topic}", f"{topic} dropped (emulated MoveIt Servo): {why}", self.now())
        return not why

    def _on_ee_pose(self, msg: PoseStamped, info: dict) -> None:
        if self._sent_before_reset(info) or not self._ee_frame_ok(msg.header.frame_id, io.SERVO_POSE) \
                or not self._servo_accepts(2, io.SERVO_POSE):
            return
        p, o = msg.pose.position, msg.pose.orientation
        try:
            quat = np.array([o.w, o.x, o.y, o.z])
            norm = float(np.linalg.norm(quat))
            if not np.isfinite(norm) or abs(norm - 1.0) > 1e-3:
                raise ValueError(f"orientation is not a unit quaternion (norm {norm:.4g})")
            pose = make_transform(quat_wxyz_to_matrix(quat), [p.x, p.y, p.z])
            with self.lock:
                self.sim.set_ee_pose(pose)
        except ValueError as exc:
            self.problems.report("ee_pose", f"{io.SERVO_POSE} rejected: {exc}", self.now())

    def _on_ee_twist(self, msg: TwistStamped, info: dict) -> None:
        if self._sent_before_reset(info) or not self._ee_frame_ok(msg.header.frame_id, io.SERVO_TWIST) \
                or not self._servo_accepts(1, io.SERVO_TWIST):
            return
        v, w = msg.twist.linear, msg.twist.angular
        twist = np.array([v.x, v.y, v.z, w.x, w.y, w.z])
        try:
            with self.lock:
                self.sim.set_ee_twist(self.servo.twist(twist) if self.servo is not None else twist, self.now())
        except ValueError as exc:
            self.problems.report("ee_twist", f"{io.SERVO_TWIST} rejected: {exc}", self.now())

    def _on_instruction(self, msg: String) -> None:
        """The task's target follows the instruction the policy gets ('pick up the blue cube')."""
        target = target_object(msg.data, self.sim.task.names)
        if target is None:
            self.problems.report("instruction", f"instruction {msg.data[:80]!r} names none of the objects "
                                 f"{self.sim.task.names}; success is judged for {self.sim.task.target}", self.now())
            return
        with self.lock:
            self.sim.task.target = target
        self.problems.resolve("instruction")

    def _on_reset(self, _req, resp):
        seed = int(self.get_parameter("seed").value)
        spread = float(self.get_parameter("start_spread").value)
        try:  # checked before anything (the clock included) changes
            joint_spread = self.sim.parse_joint_spread(str(self.get_parameter("start_spread_joints").value),
                                                       self.robot.arm_joints)
        except ValueError as exc:
            resp.success, resp.message = False, f"reset refused: {exc}"
            self.get_logger().error(resp.message)
            return resp
        with self.lock:
            self.reset_wall_ns = time.time_ns()
            self.clock_offset += self.sim.time
            placed = self.sim.reset(seed, spread, float(self.get_parameter("command_noise").value), joint_spread)
        desc = ", ".join(f"{n} at ({v[0]:.3f}, {v[1]:.3f})" for n, v in placed.items())
        resp.success, resp.message = True, f"seed={seed}; {desc}"
        self.get_logger().info(f"reset: {resp.message}")
        return resp

    # -- physics loop ------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            self._run_physics()
        except Exception:  # the context goes away at shutdown, before close() stops this thread
            if self.context.ok():  # a dead physics loop is a dead simulator: end the node with an error
                fail(self, f"physics loop failed:\n{traceback.format_exc()}")
        finally:
            self.sim.close()  # the renderers' GL contexts belong to this thread

    def _run_physics(self) -> None:
        dt = self.sim.dt
        rtf = self.p["real_time_factor"]
        next_streams = [0.0] * len(self.js_streams)
        cam_period = 1.0 / self.p["camera_rate"]
        obj_period = 1.0 / self.p["object_rate"]
        next_cam = next_obj = 0.0
        wall0, sim_elapsed = time.monotonic(), 0.0
        max_batch = max(1, int(0.05 / dt))
        while not self._stop.is_set():
            due = int(((time.monotonic() - wall0) * rtf - sim_elapsed) / dt)
            if due > max_batch:  # fell behind (CPU starved): drop the backlog instead of racing
                wall0 += (due - max_batch) * dt / rtf
                self.stats["dropped_steps"] += due - max_batch
                due = max_batch
            if due > 0:
                now = self.now()
                with self.lock:
                    self.sim.step(due, now=now)
                sim_elapsed += due * dt
                self.stats["physics_steps"] += due
            t = sim_elapsed
            for k, (period, publish) in enumerate(self.js_streams):
                if t >= next_streams[k]:
                    next_streams[k] = max(next_streams[k] + period, t)
                    publish(self.now())
            if t >= next_cam:
                next_cam = max(next_cam + cam_period, t)
                self._publish_cameras()
            if self.delayed:
                self._publish_delayed()
            if t >= next_obj:
                next_obj = max(next_obj + obj_period, t)
                self._publish_objects()
            if self.clock_pub is not None:
                self.clock_pub.publish(Clock(clock=to_time(self.sim_clock())))
            sleep = (sim_elapsed + dt) / rtf - (time.monotonic() - wall0)
            if sleep > 0:
                time.sleep(sleep)

    def _publish_cameras(self) -> None:
        for cam in self.cameras:
            if self.img_pubs[cam.name].get_subscription_count() == 0:
                continue  # nobody watches it: no frame rendered (four 640x480 views cost ~40 ms)
            with self.lock:
                now = self.now()
                stamp = to_time(now)
                image = self.sim.render(cam.name, cam.width, cam.height)
            delay = self.sim.perturbation.camera_delay
            if delay > 0:
                self.delayed.append((now + delay, cam, array_to_image(image, stamp, cam.frame_id),
                                     camera_info(cam, stamp)))
                continue
            self.img_pubs[cam.name].publish(array_to_image(image, stamp, cam.frame_id))
            self.stats["frames"] += 1
            self.info_pubs[cam.name].publish(camera_info(cam, stamp))

    def _publish_delayed(self) -> None:
        """Frames of the latency condition whose delay has passed (stamped when they were rendered)."""
        now = self.now()
        while self.delayed and self.delayed[0][0] <= now:
            _, cam, image, info = self.delayed.popleft()
            self.img_pubs[cam.name].publish(image)
            self.stats["frames"] += 1
            self.info_pubs[cam.name].publish(info)

    def _publish_objects(self) -> None:
        with self.lock:
            poses = self.sim.object_poses()
            success, grasp, progress = self.sim.task.success, self.sim.task.grasp_width, self.sim.task.progress
            stamp = to_time(self.now())
        msg = MarkerArray()
        for i, (name, pose) in enumerate(poses.items()):
            m = Marker(ns=name, id=i, type=Marker.CUBE, action=Marker.ADD)
            m.header.stamp, m.header.frame_id = stamp, self.frame  # the sim's world: the description's root
            m.pose.position.x, m.pose.position.y, m.pose.position.z = (float(v) for v in pose.position)
            w, x, y, z = (float(v) for v in pose.quat_wxyz)
            m.pose.orientation.w, m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z = w, x, y, z
            m.scale.x, m.scale.y, m.scale.z = (float(v) for v in pose.size)
            m.color.r, m.color.g, m.color.b, m.color.a = (float(v) for v in pose.rgba)
            msg.markers.append(m)
        self.obj_pub.publish(msg)
        self.grasp_pub.publish(Float64(data=float(grasp)))  # before success: its reader sees both together
        self.progress_pub.publish(Int32(data=int(progress)))
        self.success_pub.publish(Bool(data=bool(success)))

    def _publish_diagnostics(self) -> None:
        wall = time.monotonic()
        self._rtf_window = (self._rtf_window + [(wall, self.stats["physics_steps"])])[-6:]
        (w0, s0), (w1, s1) = self._rtf_window[0], self._rtf_window[-1]
        rtf = (s1 - s0) * self.sim.dt / (w1 - w0) if w1 > w0 else float("nan")
        values = {"real_time_factor": rtf, "seed": self.get_parameter("seed").value,
                  "task_target": self.sim.task.target, "task_success": self.sim.task.success,
                  "sim_time": self.sim_clock(), **self.stats}
        self.diag_pub.publish(diag.node_report(to_time(self.now()), f"{self.get_name()}: physics", self.robot.name,
                                               self.problems, self.now(), "running", values))

    def close(self) -> None:
        """Stop the physics thread (also on a node whose __init__ did not finish)."""
        if hasattr(self, "_thread"):
            self._stop.set()
            self._thread.join(timeout=2.0)


def main(args: list[str] | None = None) -> int:
    return run(SimNode, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
