"""A scripted pick expert for the simulated tabletop task.

It is not a learned policy: it reads the simulator's object poses (the ``objects`` input, a sim
topic) and plans top-down grasps with inverse kinematics. It exists so that the whole ROS graph can
be exercised end to end until a learned backend is the default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.action_space import home_posture
from ..core.chunk import ActionChunk
from ..core.instructions import target_object as named_object
from ..core.interpolation import interp_rows
from ..core.observation import Observation
from ..core.transforms import axis_angle_to_matrix, make_transform, quat_wxyz_to_matrix, rotation_log
from ..params import ParamSpec
from .base import Policy, PolicyContext, PolicyError

APPROACH, DESCEND, CLOSE, LIFT = "approach", "descend", "close", "lift"


@dataclass
class _Plan:
    times: np.ndarray  # absolute due times
    joints: np.ndarray  # (H, n_arm)

    def at(self, t: float) -> np.ndarray | None:
        if t < self.times[0] - 1.0 or t > self.times[-1]:
            return None
        return interp_rows(t, self.times, self.joints)


def tool_rotation(direction: np.ndarray, closing: np.ndarray, approach_axis: str) -> np.ndarray:
    """Tool rotation whose ``approach_axis`` (x or z) points along ``direction`` and whose fingers close along
    ``closing`` (made orthogonal to ``direction``)."""
    y = closing - direction * (closing @ direction)
    y = y / np.linalg.norm(y)
    if approach_axis == "z":
        return np.column_stack([np.cross(y, direction), y, direction])
    return np.column_stack([direction, y, np.cross(direction, y)])


def plan_start(plan: _Plan | None, chain, t: float, q: np.ndarray) -> np.ndarray:
    """Where a new plan starts: the previous plan's target at ``t`` while the tool is within 2 cm of it (targets
    compose, not the lagging state), else the measured ``q``."""
    planned = plan.at(t) if plan is not None else None
    if planned is not None and np.linalg.norm(chain.fk(planned)[:3, 3] - chain.fk(q)[:3, 3]) < 0.02:
        return planned
    return q


def cartesian_path(chain, start_q: np.ndarray, goal: np.ndarray, times: np.ndarray, linear_speed: float,
                   angular_speed: float, rest: np.ndarray | None = None) -> np.ndarray:
    """Joint positions (len(times), n) at ``times`` along the straight line (and constant-axis rotation)
    from the tool pose at ``start_q`` to ``goal``, within both speeds, then holding the goal (IK seeded
    step to step)."""
    start = chain.fk(start_q)
    delta_p = goal[:3, 3] - start[:3, 3]
    rotvec = rotation_log(goal[:3, :3] @ start[:3, :3].T)
    ang = float(np.linalg.norm(rotvec))
    duration = max(np.linalg.norm(delta_p) / linear_speed, ang / angular_speed)
    joints = np.zeros((len(times), len(start_q)))
    seed = start_q
    for i, ti in enumerate(times):
        s = 1.0 if duration <= 1e-9 else min(1.0, ti / duration)
        r = axis_angle_to_matrix(rotvec / ang, s * ang) @ start[:3, :3] if ang > 1e-9 else start[:3, :3]
        joints[i] = seed = chain.ik(make_transform(r, start[:3, 3] + s * delta_p), seed, rest=rest).q
    return joints


def target_object(instruction: str, objects: dict) -> str:
    """The object an instruction names, e.g. 'pick up the red cube' -> 'red_cube' (PolicyError if none)."""
    name = named_object(instruction, objects)
    if name is None:
        raise PolicyError(f"instruction {instruction!r} names none of the objects {sorted(objects)}")
    return name


class ScriptedPickPolicy(Policy):
    """Scripted expert (privileged sim object poses): approach, descend, close, lift."""

    name = "scripted"
    description = "Scripted pick expert reading the sim's object poses (not a learned model)"
    uses_images = False
    extra_inputs = ("objects",)
    PARAMS = [
        ParamSpec("linear_speed", 0.12, "End-effector speed (m/s)", min=0.01, max=1.0),
        ParamSpec("angular_speed", 1.2, "End-effector rotation speed (rad/s)", min=0.05, max=6.0),
        ParamSpec("approach_height", 0.08, "Pre-grasp height above the object centre (m)", min=0.02, max=0.3),
        ParamSpec("grasp_offset", 0.002, "Fingertip frame height above the object centre at grasp (m)",
                  min=-0.05, max=0.05),
        ParamSpec("lift_height", 0.12, "Lift above the grasp pose (m)", min=0.02, max=0.4),
        ParamSpec("close_time", 0.6, "Seconds to close the gripper before lifting", min=0.05, max=5.0),
        ParamSpec("position_tolerance", 0.008, "Reach tolerance that ends approach/descend (m)", min=0.001,
                  max=0.05),
    ]

    def __new__(cls, context: PolicyContext):
        """A robot whose task is a hand-over gets the two-arm transfer expert (one backend name: scripted)."""
        task = context.robot.task
        if cls is ScriptedPickPolicy and task is not None and task.kind == "transfer_cube":
            from .scripted_transfer import ScriptedTransferPolicy
            return super().__new__(ScriptedTransferPolicy)
        return super().__new__(cls)

    def __init__(self, context: PolicyContext):
        super().__init__(context)
        robot = context.robot
        self.chain = robot.chain()
        grip = robot.gripper
        if not grip:
            raise PolicyError(f"robot {robot.name!r} has no gripper entry; the pick expert needs one")
        self.gripper_joint = grip.joint
        self.gripper_open, self.gripper_closed = grip.open, grip.closed
        needed = self.chain.joint_names + [self.gripper_joint]
        for label, joints in (("state_joints", context.state_joints), ("action_joints", context.action_joints)):
            missing = [j for j in needed if j not in joints]
            if missing:
                raise PolicyError(f"{label} lack {missing} needed by the scripted expert")
        self._state_index = [context.state_joints.index(j) for j in needed]
        # a redundant arm's spare freedom drifts back to home (else it wanders to its joint limits and sticks)
        self.rest = home_posture(robot)
        self.approach_axis = robot.approach_axis
        self.reset()

    def reset(self) -> None:
        self.phase = APPROACH
        self.phase_start: float | None = None
        self._plan: _Plan | None = None
        self._grasp_z: float | None = None

    def _set_phase(self, phase: str, t: float) -> None:
        self.phase, self.phase_start = phase, t

    def _grasp_rotation(self, cube_quat: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Top-down gripper rotation with the finger axis across the cube faces, nearest the current one."""
        cube_rot = quat_wxyz_to_matrix(cube_quat)
        yaw = np.arctan2(cube_rot[1, 0], cube_rot[0, 0])
        cur_y = current[:3, 1]
        cur_angle = np.arctan2(cur_y[1], cur_y[0])
        candidates = yaw + np.pi / 2 * np.arange(-4, 5)
        angle = candidates[np.argmin(np.abs(np.angle(np.exp(1j * (candidates - cur_angle)))))]
        # approaching straight down, the fingers closing across the faces
        return tool_rotation(np.array([0.0, 0.0, -1.0]), np.array([np.cos(angle), np.sin(angle), 0.0]),
                             self.approach_axis)

    def _update_phase(self, t: float, ee: np.ndarray, goals: dict, gripper: float, cube_z: float,
                      half: float) -> None:
        if self.phase_start is None:
            self.phase_start = t
        tol = self.options["position_tolerance"]
        elapsed = t - self.phase_start
        if self.phase == APPROACH:
            err = np.linalg.norm(ee[:3, 3] - goals[APPROACH][:3, 3])
            rot = np.linalg.norm(rotation_log(goals[APPROACH][:3, :3] @ ee[:3, :3].T))
            if err < 2 * tol and rot < 0.1:
                self._set_phase(DESCEND, t)
        elif self.phase == DESCEND:
            if np.linalg.norm(ee[:3, 3] - goals[DESCEND][:3, 3]) < tol or elapsed > 4.0:
                self._grasp_z = ee[2, 3]
                self._set_phase(CLOSE, t)
        elif self.phase == CLOSE:
            if elapsed >= self.options["close_time"]:
                self._set_phase(LIFT, t)
        elif self.phase == LIFT:
            empty = gripper < self.gripper_closed + 0.001  # closed on nothing
            dropped = self._grasp_z is not None and ee[2, 3] > self._grasp_z + 0.04 and cube_z < half + 0.01
            if empty or dropped:
                self._set_phase(APPROACH, t)

    def infer(self, observation: Observation) -> ActionChunk:
        objects = observation.extras.get("objects")
        if not objects:
            raise PolicyError("no object poses received (the scripted expert needs the sim's /sim/objects)")
        name = target_object(observation.instruction, objects)
        obj = objects[name]
        state = np.asarray(observation.state, dtype=float)
        q = state[self._state_index[:-1]]
        gripper = state[self._state_index[-1]]
        if not np.all(np.isfinite(state)):
            raise PolicyError("state contains NaN")
        t = observation.stamp
        ee = self.chain.fk(q)
        pos = np.asarray(obj["position"], dtype=float)
        half = float(obj["size"][2]) / 2.0
        rot = self._grasp_rotation(np.asarray(obj["orientation"]), ee)
        grasp = make_transform(rot, pos + [0.0, 0.0, self.options["grasp_offset"]])
        goals = {
            APPROACH: make_transform(rot, pos + [0.0, 0.0, self.options["approach_height"]]),
            DESCEND: grasp,
            CLOSE: grasp,
            LIFT: make_transform(rot, grasp[:3, 3] + [0.0, 0.0, self.options["lift_height"]]),
        }
        self._update_phase(t, ee, goals, gripper, pos[2], half)
        goal = goals[self.phase]
        if self.phase == LIFT and self._grasp_z is not None:
            goal = make_transform(rot, np.r_[goal[:2, 3], self._grasp_z + self.options["lift_height"]])
        grip_target = self.gripper_open if self.phase in (APPROACH, DESCEND) else self.gripper_closed

        start_q = plan_start(self._plan, self.chain, t, q)
        ctx = self.context
        times = ctx.chunk_dt * np.arange(1, ctx.horizon + 1)
        joints = cartesian_path(self.chain, start_q, goal, times, self.options["linear_speed"],
                                self.options["angular_speed"], self.rest)
        self._plan = _Plan(t + times, joints)
        values = np.zeros((ctx.horizon, len(ctx.action_joints)))
        for j, joint in enumerate(ctx.action_joints):
            if joint in self.chain.joint_names:
                values[:, j] = joints[:, self.chain.joint_names.index(joint)]
            elif joint == self.gripper_joint:
                values[:, j] = grip_target
            else:
                values[:, j] = state[ctx.state_joints.index(joint)] if joint in ctx.state_joints else 0.0
        return ActionChunk(t, tuple(ctx.action_joints), times, values)
