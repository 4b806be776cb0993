"""A scripted two-arm expert for ACT's transfer task (ALOHA): one arm picks the cube up and hands it over.

Like the pick expert it reads the sim's object poses (privileged) and plans with inverse kinematics,
one chain per arm (from the description's world). The giver grasps the cube top-down, lifts it and
holds it out level toward the hand-over point; the receiver comes in level from its side with its
fingers closing across the other pair of faces, closes, and the giver lets go and backs away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.action_space import home_posture
from ..core.chunk import ActionChunk
from ..core.observation import Observation
from ..core.transforms import make_transform, quat_wxyz_to_matrix, rotation_log
from .base import PolicyError
from .scripted import ScriptedPickPolicy, _Plan, cartesian_path, plan_start, target_object, tool_rotation

REACH, DESCEND, GRASP, LIFT, CARRY, HANDOVER, REGRASP, RELEASE, RETREAT = (
    "reach", "descend", "grasp", "lift", "carry", "handover", "regrasp", "release", "retreat")
MEET_HEIGHT = 0.25  # m: the hand-over point's height (its x: the cube's; its y: between the arms)
WAIT = 0.12  # m: a hand's distance back from the hand-over point (along its heading) before and after it
RECEIVE = 0.006  # m: how far short of the cube's centre the receiver's tool frame stops
FREE = ("above", "wait", "hold")  # goals reached through free space: a joint-space move, not a tool line


@dataclass
class _Arm:
    name: str
    chain: object
    index: list[int]  # chain joints in the state vector
    gripper: int  # gripper joint in the state vector
    open: float
    squeeze: float  # the finger joint's lower limit: closing on the cube squeezes it
    rest: np.ndarray | None
    plan: _Plan | None = None
    solved: dict = field(default_factory=dict)  # free-space goal name -> (pose, IK result)


class ScriptedTransferPolicy(ScriptedPickPolicy):
    """Scripted transfer expert: the giver (the arm nearer the cube) picks, the other receives."""

    def __init__(self, context):  # (ScriptedPickPolicy.__new__ picks this class for transfer tasks)
        super(ScriptedPickPolicy, self).__init__(context)
        robot = context.robot
        if len(robot.arms) != 2:
            raise PolicyError(f"robot {robot.name!r}: the transfer expert needs two arms, the preset has "
                              f"{len(robot.arms)}")
        chains = robot.arm_chains()
        joints = {j.name: j for j in robot.urdf_model.joints}
        home = home_posture(robot)
        grippers = {g.joint: g for g in robot.grippers}
        self.approach_axis = robot.approach_axis
        self.arms: dict[str, _Arm] = {}
        for spec in robot.arms:
            chain = chains[spec.name]
            needed = chain.joint_names + [spec.gripper]
            for label, names in (("state_joints", context.state_joints), ("action_joints", context.action_joints)):
                missing = [j for j in needed if j not in names]
                if missing:
                    raise PolicyError(f"{label} lack {missing} needed by the transfer expert")
            rest = (home[[robot.arm_joints.index(j) for j in chain.joint_names]] if home is not None else None)
            grip = grippers.get(spec.gripper)
            self.arms[spec.name] = _Arm(spec.name, chain, [context.state_joints.index(j) for j in chain.joint_names],
                                        context.state_joints.index(spec.gripper),
                                        min(grip.open if grip else np.inf, joints[spec.gripper].upper),
                                        joints[spec.gripper].lower, rest)
        self.reset()

    def reset(self) -> None:
        self.phase, self.phase_start = REACH, None
        self.giver: str | None = None
        self.meet: np.ndarray | None = None
        self.heading: list[np.ndarray] = []
        self._grasp_pos: np.ndarray | None = None  # the giver's tool position when it closed on the cube
        for arm in getattr(self, "arms", {}).values():
            arm.plan, arm.solved = None, {}

    # -- geometry ------------------------------------------------------------------------------
    def _roles(self, q: dict[str, np.ndarray], cube: np.ndarray) -> tuple[_Arm, _Arm]:
        if self.giver is None:  # the arm whose tool is nearer the cube gives
            self.giver = min(self.arms, key=lambda n: np.linalg.norm(self.arms[n].chain.fk(q[n])[:3, 3] - cube))
        giver = self.arms[self.giver]
        return giver, next(a for a in self.arms.values() if a is not giver)

    @staticmethod
    def _horizontal(v: np.ndarray) -> np.ndarray:
        h = np.array([v[0], v[1], 0.0])
        return h / np.linalg.norm(h)

    def _nearest(self, rotations: list[np.ndarray], current: np.ndarray) -> np.ndarray:
        """Of ``rotations``, each also turned half a turn about the approach axis, the nearest ``current``."""
        col = 0 if self.approach_axis == "x" else 2
        flip = -np.eye(3)
        flip[col, col] = 1.0
        options = [r for rot in rotations for r in (rot, rot @ flip)]
        return min(options, key=lambda r: np.linalg.norm(rotation_log(r @ current[:3, :3].T)))

    # -- phases --------------------------------------------------------------------------------
    def _reached(self, arm: _Arm, q: np.ndarray, goal: np.ndarray, scale: float = 1.0) -> bool:
        ee = arm.chain.fk(q)
        tol = self.options["position_tolerance"] * scale
        return (np.linalg.norm(ee[:3, 3] - goal[:3, 3]) < tol
                and np.linalg.norm(rotation_log(goal[:3, :3] @ ee[:3, :3].T)) < 0.1)

    def infer(self, observation: Observation) -> ActionChunk:
        objects = observation.extras.get("objects")
        if not objects:
            raise PolicyError("no object poses received (the scripted expert needs the sim's /sim/objects)")
        obj = objects[target_object(observation.instruction, objects)]
        state = np.asarray(observation.state, dtype=float)
        if not np.all(np.isfinite(state)):
            raise PolicyError("state contains NaN")
        t = observation.stamp
        if self.phase_start is None:
            self.phase_start = t
        q = {n: state[a.index] for n, a in self.arms.items()}
        cube = np.asarray(obj["position"], dtype=float)
        half = float(obj["size"][2]) / 2.0
        giver, receiver = self._roles(q, cube)
        if self.meet is None:  # halfway between the arms' bases at the cube's depth, MEET_HEIGHT high
            bases = [a.chain.origin for a in (giver, receiver)]
            self.meet = np.array([cube[0], (bases[0][1] + bases[1][1]) / 2.0, MEET_HEIGHT])
            self.heading = [self._horizontal(self.meet - b) for b in bases]  # each arm's base toward it
        along_g, along_r = self.heading
        up = np.array([0.0, 0.0, 1.0])
        ee_g, ee_r = giver.chain.fk(q[giver.name]), receiver.chain.fk(q[receiver.name])
        # the giver: top-down across a pair of the cube's faces; then holding it out level from its base, fingers
        # closing sideways (their plates on the cube's sides, the top and bottom faces free)
        cube_rot = quat_wxyz_to_matrix(np.asarray(obj["orientation"], float))
        faces = [self._horizontal(cube_rot[:, 0]), self._horizontal(cube_rot[:, 1])]
        pick = self._nearest([tool_rotation(-up, f, self.approach_axis) for f in faces], ee_g)
        hold = self._nearest([tool_rotation(along_g, np.cross(up, along_g), self.approach_axis)], ee_g)
        # the receiver: level from its base, fingers closing vertically on the top and bottom faces
        give = self._nearest([tool_rotation(along_r, up, self.approach_axis)], ee_r)
        grasp_pos = cube + [0.0, 0.0, self.options["grasp_offset"]]
        goals = {
            "above": make_transform(pick, cube + [0.0, 0.0, self.options["approach_height"]]),
            "grasp": make_transform(pick, grasp_pos),
            "lift": make_transform(pick, (self._grasp_pos if self._grasp_pos is not None else grasp_pos)
                                   + [0.0, 0.0, self.options["lift_height"]]),
            "hold": make_transform(hold, self.meet),
            "back": make_transform(hold, self.meet - WAIT * along_g),
            "wait": make_transform(give, self.meet - WAIT * along_r),
            "take": make_transform(give, self.meet - RECEIVE * along_r),
        }
        self._advance(t, q, giver, receiver, goals, cube, half)
        targets = {  # (giver pose, giver gripper open?), (receiver pose, receiver gripper open?)
            REACH: (("above", True), ("wait", True)),
            DESCEND: (("grasp", True), ("wait", True)),
            GRASP: (("grasp", False), ("wait", True)),
            LIFT: (("lift", False), ("wait", True)),
            CARRY: (("hold", False), ("wait", True)),
            HANDOVER: (("hold", False), ("take", True)),
            REGRASP: (("hold", False), ("take", False)),
            RELEASE: (("hold", True), ("take", False)),
            RETREAT: (("back", True), ("take", False)),
        }[self.phase]
        ctx = self.context
        times = ctx.chunk_dt * np.arange(1, ctx.horizon + 1)
        values = np.zeros((ctx.horizon, len(ctx.action_joints)))
        for arm, (goal, opened) in zip((giver, receiver), targets):
            start_q = plan_start(arm.plan, arm.chain, t, q[arm.name])
            joints = self._path(arm, start_q, goal, goals[goal], times)
            arm.plan = _Plan(t + times, joints)
            for k, name in enumerate(arm.chain.joint_names):
                values[:, ctx.action_joints.index(name)] = joints[:, k]
            gripper = ctx.state_joints[arm.gripper]
            values[:, ctx.action_joints.index(gripper)] = arm.open if opened else arm.squeeze
        return ActionChunk(t, tuple(ctx.action_joints), times, values)

    def _path(self, arm: _Arm, start_q: np.ndarray, name: str, goal: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Free-space moves (FREE) go in joint space to the IK solution nearest the arm's home posture (a
        straight tool line from home can wander into a flipped-wrist branch); the others in straight lines."""
        if name in FREE:
            cached = arm.solved.get(name)
            if cached is None or not np.allclose(cached[0], goal, atol=1e-3):  # (IK once per goal, not per call)
                seed = arm.rest if arm.rest is not None else start_q
                cached = arm.solved[name] = (goal, arm.chain.ik(goal, seed, restarts=4, rest=arm.rest))
            solved = cached[1]
            if solved.success:
                delta = solved.q - start_q
                duration = float(np.abs(delta).max()) / self.options["angular_speed"]
                s = np.minimum(1.0, times / duration) if duration > 1e-9 else np.ones(len(times))
                return start_q + s[:, None] * delta
        return cartesian_path(arm.chain, start_q, goal, times, self.options["linear_speed"],
                              self.options["angular_speed"], arm.rest)

    def _advance(self, t: float, q: dict, giver: _Arm, receiver: _Arm, goals: dict, cube: np.ndarray,
                 half: float) -> None:
        elapsed = t - self.phase_start
        close = self.options["close_time"]
        qg, qr = q[giver.name], q[receiver.name]
        nxt = None
        if self.phase == REACH:
            nxt = DESCEND if self._reached(giver, qg, goals["above"], 2.0) else None
        elif self.phase == DESCEND:
            if self._reached(giver, qg, goals["grasp"]) or elapsed > 4.0:
                self._grasp_pos = giver.chain.fk(qg)[:3, 3]
                nxt = GRASP
        elif self.phase == GRASP:
            nxt = LIFT if elapsed >= close else None
        elif self.phase in (LIFT, CARRY):
            if cube[2] < half + 0.01 and giver.chain.fk(qg)[2, 3] > self._grasp_pos[2] + 0.04:
                nxt = REACH  # dropped: pick it up again
            elif self.phase == LIFT:
                nxt = CARRY if self._reached(giver, qg, goals["lift"], 2.0) else None
            else:
                nxt = HANDOVER if (self._reached(giver, qg, goals["hold"])
                                   and self._reached(receiver, qr, goals["wait"], 3.0)) else None
        elif self.phase == HANDOVER:
            nxt = REGRASP if self._reached(receiver, qr, goals["take"]) or elapsed > 4.0 else None
        elif self.phase == REGRASP:
            nxt = RELEASE if elapsed >= close else None
        elif self.phase == RELEASE:
            nxt = RETREAT if elapsed >= close else None
        if nxt is not None:
            self.phase, self.phase_start = nxt, t
