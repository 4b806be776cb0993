"""Tabletop tasks: spawn objects from a seed and decide success from physics state."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from ..robots import TASK_KINDS, TaskSpec


@dataclass
class ObjectPose:
    position: np.ndarray  # (3,) in the robot base frame
    quat_wxyz: np.ndarray  # (4,)
    size: np.ndarray  # (3,) full extents
    rgba: np.ndarray  # (4,)


def extent_along(size: float, quat_wxyz: np.ndarray, direction: np.ndarray) -> float:
    """Width of a cube of edge ``size`` (orientation ``quat_wxyz``) measured along ``direction`` (world): what
    jaws closing along it must span (``size`` when they meet two faces square, up to ``size * sqrt(2)`` across
    a vertical edge, the diagonal)."""
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, np.asarray(quat_wxyz, float))
    u = np.asarray(direction, float) / np.linalg.norm(direction)
    return float(size * np.abs(rot.reshape(3, 3).T @ u).sum())


def draw_placements(spec: TaskSpec, rng: np.random.Generator) -> dict[str, list[float]]:
    """Each object's [x, y, yaw] in the task's region, at least ``min_spacing`` apart (what a reset with this
    generator places; no physics needed)."""
    region, spacing = spec.region, spec.min_spacing
    placed: dict[str, list[float]] = {}
    for name in spec.objects:
        for _ in range(1000):
            x, y = rng.uniform(*region.x), rng.uniform(*region.y)
            if all(np.hypot(x - p[0], y - p[1]) >= spacing for p in placed.values()):
                break
        else:
            raise RuntimeError("could not place the objects apart; widen task.region or lower min_spacing")
        yaw = rng.uniform(-1.0, 1.0) * spec.yaw  # (one draw whatever the range: seeds place alike)
        placed[name] = [float(x), float(y), float(yaw)]
    return placed


ALOFT = 0.02  # m: the target's bottom this far above the table counts as off it (progress stages)


class PickCubeTask:
    """Cubes at random non-overlapping positions; success = the target cube held lifted for a while.
    ``progress``: how many of the task's stages (vla_ros.robots.TASK_STAGES) the episode has reached.

    ``finger``: the gripper's finger joint (slide): at success, ``grasp_width`` is the held cube's width along
    the jaws' closing axis (cube_size for a square grasp); NaN before success or without a finger joint."""

    def __init__(self, model: mujoco.MjModel, spec: TaskSpec, finger: str | None = None):
        self.spec = spec
        self.target = spec.target
        self.names = list(spec.objects)
        self.half = spec.cube_size / 2.0
        self.lift_height = spec.lift_height
        self.hold_time = spec.hold_time
        self._qpos = {n: model.jnt_qposadr[model.joint(n).id] for n in self.names}
        self._qvel = {n: model.jnt_dofadr[model.joint(n).id] for n in self.names}
        self._geom = {n: model.geom(n).id for n in self.names}
        self._model = model
        self.success = False
        self.progress = 0
        self._lifted_since: float | None = None
        joints = {model.joint(j).name for j in range(model.njnt)}
        self._finger = model.joint(finger).id if finger in joints else None
        self.grasp_width = float("nan")

    def jaw_width(self, data: mujoco.MjData, name: str | None = None) -> float:
        """Cube ``name``'s (default: the target's) width along the finger joint's axis now (NaN: no finger)."""
        if self._finger is None:
            return float("nan")
        adr = self._qpos[name or self.target]
        return extent_along(2.0 * self.half, data.qpos[adr + 3: adr + 7], data.xaxis[self._finger])

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> dict[str, list[float]]:
        """Place the cubes; returns name -> [x, y, yaw]."""
        placed = draw_placements(self.spec, rng)
        for name, (x, y, yaw) in placed.items():
            adr = self._qpos[name]
            data.qpos[adr : adr + 3] = [x, y, self.half + 0.0005]
            data.qpos[adr + 3 : adr + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
            data.qvel[self._qvel[name] : self._qvel[name] + 6] = 0.0
        self.success = False
        self._lifted_since = None
        self.grasp_width = float("nan")
        self.progress = 0
        return placed

    def object_poses(self, data: mujoco.MjData) -> dict[str, ObjectPose]:
        poses = {}
        for name in self.names:
            adr = self._qpos[name]
            gid = self._geom[name]
            poses[name] = ObjectPose(data.qpos[adr : adr + 3].copy(), data.qpos[adr + 3 : adr + 7].copy(),
                                     2.0 * self._model.geom_size[gid].copy(), self._model.geom_rgba[gid].copy())
        return poses

    def held(self, data: mujoco.MjData) -> bool:
        """Whether the lifted target counts as held (any grasp does for a pick)."""
        return True

    def stage(self, data: mujoco.MjData, aloft: bool) -> int:
        """The stages reached now: 1 with the target off the table."""
        return int(aloft)

    def update(self, data: mujoco.MjData, now: float) -> bool:
        """Latch success once the target has stayed lifted (and held) for hold_time seconds."""
        if self.success or not self.names:
            return self.success
        z = data.qpos[self._qpos[self.target] + 2]
        self.progress = max(self.progress, self.stage(data, z > self.half + ALOFT))
        if z > self.half + self.lift_height and self.held(data):
            if self._lifted_since is None:
                self._lifted_since = now
            elif now - self._lifted_since >= self.hold_time:
                self.success = True
                self.grasp_width = self.jaw_width(data)
        else:
            self._lifted_since = None
        return self.success


class TransferCubeTask(PickCubeTask):
    """ACT's transfer: one hand (``giver``) picks the cube up and passes it to the other (``receiver``).
    Success = the cube lifted, touching a receiver finger and no giver finger, for hold_time seconds."""

    def __init__(self, model: mujoco.MjModel, spec: TaskSpec, finger: str | None = None):
        super().__init__(model, spec)  # (two hands: no single closing axis)
        def geoms(links: list[str]) -> set[int]:
            bodies = {model.body(link).id for link in links}
            return {g for g in range(model.ngeom) if int(model.geom_bodyid[g]) in bodies}
        self._giver, self._receiver = geoms(spec.giver), geoms(spec.receiver)

    def touching(self, data: mujoco.MjData) -> tuple[bool, bool]:
        """Whether the target cube touches (the giver, the receiver)."""
        cube = self._geom[self.target]
        giver = receiver = False
        for c in data.contact[: data.ncon]:
            other = c.geom2 if c.geom1 == cube else c.geom1 if c.geom2 == cube else None
            if other is not None:
                giver |= other in self._giver
                receiver |= other in self._receiver
        return giver, receiver

    def held(self, data: mujoco.MjData) -> bool:
        giver, receiver = self.touching(data)
        return receiver and not giver

    def stage(self, data: mujoco.MjData, aloft: bool) -> int:
        """1: off the table in the giver's fingers; 2: off the table touching the receiver's."""
        if not aloft:
            return 0
        giver, receiver = self.touching(data)
        return 2 if receiver else int(giver)


TASKS = {"pick_cube": PickCubeTask, "transfer_cube": TransferCubeTask}
assert set(TASKS) == set(TASK_KINDS), "vla_ros.robots.TASK_KINDS lists the task kinds implemented here"


def make_task(model: mujoco.MjModel, spec: TaskSpec | None, finger: str | None = None):
    """The task ``spec.kind`` names (a pick task without objects when the preset has no task); ``finger``: the
    gripper's finger joint, for the grasp width at success."""
    spec = spec or TaskSpec()
    return TASKS[spec.kind](model, spec, finger)
