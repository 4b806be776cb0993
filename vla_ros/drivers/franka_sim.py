"""The emulated franka_ros2 bring-up the MuJoCo sim runs: ``franka_gripper``'s ``move``, ``grasp`` and
``homing`` actions (the gap moves at the goal's speed; a grasp stops where the fingers stall and succeeds
when the gap lies within its epsilon of the goal's width) and ``/joint_states`` at 30 Hz, as
joint_state_publisher merges the arm and the gripper. The arm's joint_trajectory_controller is the sim's
JTC (vla_ros.core.trajectory), fed by the sim node."""

from __future__ import annotations

import threading
from functools import partial

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.task import Future

from ..robots import FrankaDriverSpec, GripperSpec
from ..sim.physics import ArmSim
from .franka import action_name

JOINT_STATE_RATE = 30.0  # Hz (franka_bringup: joint_state_publisher's rate)
MAX_WIDTH = 0.08  # m: the Franka Hand's largest gap
STALL_SPEED = 0.002  # m/s: a finger slower than this (after STALL_TIME) has stopped
STALL_TIME = 0.1  # s


class _Motion:
    """A gripper goal in progress: the finger target moves toward ``target`` at ``speed`` (per finger)."""

    def __init__(self, kind: str, target: float, speed: float, future: Future, start: float, width: float = 0.0,
                 inner: float = 0.0, outer: float = 0.0):
        self.kind, self.target, self.speed, self.future, self.start = kind, target, speed, future, start
        self.width, self.inner, self.outer = width, inner, outer
        self.slow_since: float | None = None
        self.result: tuple[bool, str] | None = None


class FrankaGripperEmulation:
    """franka_gripper's actions over the sim's finger (``fr3_finger_joint1``; joint2 mirrors it)."""

    def __init__(self, node: Node, sim: ArmSim, spec: FrankaDriverSpec, gripper: GripperSpec, lock: threading.Lock):
        from franka_msgs.action import Grasp, Homing, Move

        self.Move, self.Grasp, self.Homing = Move, Grasp, Homing
        self.sim, self.joint, self.lock = sim, gripper.joint, lock
        self.motion: _Motion | None = None
        self.finished: list[_Motion] = []
        self.counts = {"goals": 0, "succeeded": 0, "failed": 0}
        self.goal = sim.joint(gripper.joint)
        group = ReentrantCallbackGroup()
        self._wake = node.create_guard_condition(self._complete, callback_group=group)
        for kind, action in (("move", Move), ("grasp", Grasp), ("homing", Homing)):
            ActionServer(node, action, action_name(spec.gripper_node, kind),
                         execute_callback=partial(self._execute, kind),  # (a coroutine function, awaited)
                         goal_callback=lambda _goal: GoalResponse.ACCEPT,
                         cancel_callback=lambda _handle: CancelResponse.ACCEPT, callback_group=group)
        sim.step_hooks.append(self._step)
        sim.reset_hooks.append(self._reset)

    async def _execute(self, kind: str, handle):
        goal = handle.request
        future = Future()
        with self.lock:
            if kind == "move":
                motion = _Motion(kind, goal.width / 2.0, goal.speed / 2.0, future, self.sim.time)
            elif kind == "grasp":
                motion = _Motion(kind, goal.width / 2.0, goal.speed / 2.0, future, self.sim.time, goal.width,
                                 goal.epsilon.inner, goal.epsilon.outer)
            else:
                motion = _Motion(kind, MAX_WIDTH / 2.0, 0.05, future, self.sim.time)
            if self.motion is not None:  # a new goal ends the running one
                self.motion.result = (False, "preempted by a new goal")
                self.finished.append(self.motion)
            self.motion = motion
            self.counts["goals"] += 1
        if not 0.0 <= goal_width(kind, goal) <= MAX_WIDTH or (kind != "homing" and goal.speed <= 0.0):
            motion.result = (False, f"goal out of range (width {goal_width(kind, goal):.3f} m, 0..{MAX_WIDTH})")
            with self.lock:
                self.motion = None
            future.set_result(motion.result)
        success, error = await future
        self.counts["succeeded" if success else "failed"] += 1
        if success:
            handle.succeed()
        else:
            handle.abort()
        action = {"move": self.Move, "grasp": self.Grasp, "homing": self.Homing}[kind]
        return action.Result(success=success, error=error)

    def _complete(self) -> None:
        """(executor thread) hand finished motions' results to their waiting goals."""
        with self.lock:
            done, self.finished = self.finished, []
        for motion in done:
            if not motion.future.done():
                motion.future.set_result(motion.result)

    def _reset(self) -> None:
        self.goal = self.sim.joint(self.joint)
        if self.motion is not None:
            self.motion.result = (False, "the sim was reset")
            self.finished.append(self.motion)
            self.motion = None
            self._wake.trigger()

    def _step(self, t: float, dt: float) -> None:
        m = self.motion
        if m is not None:
            step = m.speed * dt
            self.goal += min(max(m.target - self.goal, -step), step)
            finger, speed = self.sim.joint(self.joint), abs(self.sim.velocity(self.joint))
            slow = speed < STALL_SPEED and t - m.start > STALL_TIME
            m.slow_since = (m.slow_since if m.slow_since is not None else t) if slow else None
            stopped = m.slow_since is not None and t - m.slow_since > STALL_TIME
            if m.kind == "grasp" and stopped:
                gap = 2.0 * finger
                ok = m.width - m.inner <= gap <= m.width + m.outer
                m.result = (ok, "" if ok else f"grasp stopped at a gap of {gap:.4f} m, outside "
                            f"[{m.width - m.inner:.4f}, {m.width + m.outer:.4f}]")
                self.goal = finger - 0.005 if ok else finger  # keep squeezing what it holds
            elif m.kind != "grasp" and abs(finger - m.target) < 5e-4 and stopped:
                m.result = (True, "")
            elif m.kind != "grasp" and stopped and abs(self.goal - m.target) < 1e-9:
                m.result = (False, f"the fingers stopped at {2.0 * finger:.4f} m, short of {2.0 * m.target:.4f} m")
            if m.result is not None:
                self.finished.append(m)
                self.motion = None
                self._wake.trigger()
        self.sim.set_target(self.joint, self.goal)


def goal_width(kind: str, goal) -> float:
    return MAX_WIDTH if kind == "homing" else float(goal.width)
