"""Model actions -> absolute targets in the robot's command space (what the controller executes).

Kinds: ``joint_absolute`` (ALOHA, pi0 on joint positions), ``joint_delta`` (relative to the state at
capture, openpi's delta actions), ``joint_velocity`` (integrated from the state at capture: ``velocity_step``
rad per chunk step per unit, DROID 0.2; 0 means a true velocity in rad/s, one chunk_dt per step),
``ee_delta`` (BridgeData / OpenVLA / LIBERO: end-effector deltas composed onto the pose at capture, the
rotation left-multiplied in the base frame: roll-pitch-yaw R = Rz Ry Rx for Bridge, a rotation vector for
LIBERO's robosuite OSC controller; then inverse kinematics). A gripper column is mapped linearly
from the model's [closed, open] values to the robot's joint values, optionally binarised first (DROID: > 0.5
is closed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kinematics import Chain
from .transforms import make_transform, matrix_to_rpy, rotation_exp, rotation_log, rpy_to_matrix

KINDS = ("joint_absolute", "joint_delta", "joint_velocity", "ee_delta")


@dataclass
class GripperMap:
    joint: str
    model_closed: float
    model_open: float
    closed: float
    open: float
    threshold: float | None = None  # binarise model values first: above it the larger of (closed, open)

    def to_joint(self, value: np.ndarray, binarise: bool = True) -> np.ndarray:
        """Model value -> joint value (``binarise=False`` for a state, which is never thresholded)."""
        value = np.asarray(value, float)
        if binarise and self.threshold is not None:
            hi, lo = max(self.model_closed, self.model_open), min(self.model_closed, self.model_open)
            value = np.where(value > self.threshold, hi, lo)
        s = (value - self.model_closed) / (self.model_open - self.model_closed)
        return self.closed + np.clip(s, 0.0, 1.0) * (self.open - self.closed)

    def to_model(self, joint_value: np.ndarray) -> np.ndarray:
        s = (np.asarray(joint_value, float) - self.closed) / (self.open - self.closed)
        return self.model_closed + s * (self.model_open - self.model_closed)


@dataclass
class ActionSpace:
    kind: str
    action_joints: list[str]  # targets produced, in order
    state_joints: list[str]
    dt: float
    grippers: list[GripperMap] = field(default_factory=list)
    chain: Chain | None = None  # ee_delta
    ee_scale: tuple[float, float] = (1.0, 1.0)  # ee_delta: (metres, radians) per unit of model action
    model_dims: list[str] = field(default_factory=list)  # joint per model column (joint kinds)
    velocity_step: float = 0.0  # joint_velocity: rad per chunk step per unit of model action (0: dt, rad/s)
    clip: float = 0.0  # > 0: arm columns clipped to [-clip, clip] before use (DROID: 1)
    ee_rotation: str = "rpy"  # ee_delta: rotation columns as roll-pitch-yaw (Bridge) or a rotation vector (LIBERO)
    rest: np.ndarray | None = None  # ee_delta: a redundant arm's posture for the IK's spare freedom (its home)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"action space kind must be one of {KINDS}, not {self.kind!r}")
        if self.kind == "ee_delta" and self.chain is None:
            raise ValueError("ee_delta actions need the robot's kinematic chain")
        if not self.model_dims:
            self.model_dims = list(self.action_joints)

    @property
    def gripper(self) -> GripperMap | None:
        return self.grippers[0] if self.grippers else None

    def gripper_of(self, joint: str) -> GripperMap | None:
        return next((g for g in self.grippers if g.joint == joint), None)

    @property
    def model_width(self) -> int:
        return 7 if self.kind == "ee_delta" else len(self.model_dims)

    def _state(self, state: np.ndarray, joints: list[str]) -> np.ndarray:
        missing = [j for j in joints if j not in self.state_joints]
        if missing:
            raise ValueError(f"the state lacks {missing} needed by {self.kind} actions")
        return np.array([state[self.state_joints.index(j)] for j in joints])

    def to_targets(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        """(H, model_width) model actions and the state at capture -> (H, len(action_joints)) targets."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] < self.model_width:
            raise ValueError(f"expected (H, >={self.model_width}) actions, got {actions.shape}")
        if not np.all(np.isfinite(actions)):
            raise ValueError("model actions contain NaN or infinite values")
        if self.kind == "ee_delta":
            return self._ee_targets(actions[:, :7], state)
        cols = {name: actions[:, k] for k, name in enumerate(self.model_dims)}
        grips = {g.joint for g in self.grippers}
        arm = [j for j in self.model_dims if j not in grips]
        if self.clip > 0.0:
            cols.update({j: np.clip(cols[j], -self.clip, self.clip) for j in arm})
        if self.kind == "joint_delta":
            base = self._state(state, arm)
            for k, j in enumerate(arm):
                cols[j] = cols[j] + base[k]
        elif self.kind == "joint_velocity":
            base = self._state(state, arm)
            for k, j in enumerate(arm):
                cols[j] = base[k] + self.step * np.cumsum(cols[j])
        for g in self.grippers:
            if g.joint in cols:
                cols[g.joint] = g.to_joint(cols[g.joint])
        missing = [j for j in self.action_joints if j not in cols]
        if missing:
            raise ValueError(f"model actions do not cover {missing}")
        return np.stack([cols[j] for j in self.action_joints], axis=1)

    @property
    def step(self) -> float:
        """joint_velocity: radians per chunk step for a model value of 1."""
        return self.velocity_step or self.dt

    def to_velocities(self, targets: np.ndarray, state: np.ndarray, joints: list[str]) -> np.ndarray:
        """The inverse of joint_velocity integration for ``joints``: (H, len(joints)) model velocities that
        reach ``targets`` (H, len(action_joints)) from the state at capture. A row whose largest value exceeds
        ``clip`` is scaled down as a whole (the direction kept, where a client's clip would bend it)."""
        pos = np.asarray(targets, float)[:, [self.action_joints.index(j) for j in joints]]
        vel = np.diff(np.vstack([self._state(state, joints), pos]), axis=0) / self.step
        if self.clip > 0.0:
            peak = np.abs(vel).max(axis=1, keepdims=True) / self.clip
            vel = vel / np.maximum(peak, 1.0)
        return vel

    def to_ee_deltas(self, targets: np.ndarray, state: np.ndarray) -> np.ndarray:
        """The inverse of ee_delta composition: (H, 7) model actions that lead from the pose at capture through
        the poses of ``targets`` (H, len(action_joints)), each step relative to the one before; the gripper in
        model units (clipped to its model range). A row whose largest arm value exceeds ``clip`` (> 0) is
        scaled down as a whole (the direction kept, where a per-column clip would bend it)."""
        joints = self.chain.joint_names
        pose = self.chain.fk(self._state(state, joints))
        lin, ang = self.ee_scale
        targets = np.asarray(targets, float)
        out = np.zeros((len(targets), 7))
        for i, row in enumerate(targets):
            reached = self.chain.fk(row[[self.action_joints.index(j) for j in joints]])
            turn = reached[:3, :3] @ pose[:3, :3].T  # left-multiplied: about the base axes
            rot = rotation_log(turn) if self.ee_rotation == "axis_angle" else matrix_to_rpy(turn)
            out[i, :6] = np.r_[(reached[:3, 3] - pose[:3, 3]) / lin, rot / ang]
            pose = reached
        if self.clip > 0.0:
            peak = np.abs(out[:, :6]).max(axis=1, keepdims=True) / self.clip
            out[:, :6] /= np.maximum(peak, 1.0)
        g = self.gripper
        if g is not None and g.joint in self.action_joints:
            lo, hi = sorted((g.model_closed, g.model_open))
            out[:, 6] = np.clip(g.to_model(targets[:, self.action_joints.index(g.joint)]), lo, hi)
        return out

    def _ee_targets(self, actions: np.ndarray, state: np.ndarray) -> np.ndarray:
        q = self._state(state, self.chain.joint_names)
        pose = self.chain.fk(q)
        out = np.zeros((actions.shape[0], len(self.action_joints)))
        lin, ang = self.ee_scale
        for i, a in enumerate(actions):
            delta = rotation_exp(a[3:6] * ang) if self.ee_rotation == "axis_angle" else rpy_to_matrix(a[3:6] * ang)
            rot = delta @ pose[:3, :3]  # about the base axes (rpy: R = Rz Ry Rx)
            pose = make_transform(rot, pose[:3, 3] + a[:3] * lin)  # composes onto the previous target
            q = self.chain.ik(pose, q, rest=self.rest).q
            for j, name in enumerate(self.action_joints):
                if name in self.chain.joint_names:
                    out[i, j] = q[self.chain.joint_names.index(name)]
                elif self.gripper is not None and name == self.gripper.joint:
                    out[i, j] = self.gripper.to_joint(a[6])
                else:
                    out[i, j] = self._state(state, [name])[0]
        return out


def from_preset(robot, dt: float, spec=None, action_joints: list[str] | None = None,
                state_joints: list[str] | None = None) -> ActionSpace:
    """The preset's ``action_space`` (or ``spec``, an ActionSpaceSpec) producing targets over
    ``action_joints`` from a state over ``state_joints`` (default: the preset's). Model columns follow
    the preset's ``model_dims`` (default its action_joints): the model's order, whatever order the
    chunks are published in."""
    spec = spec or robot.action_space
    g = spec.gripper
    if g.model_closed is None and g.model_open is None:  # joint values: passed through within the joint's limits
        grippers = [joint_gripper(robot, grip, g.threshold) for grip in robot.grippers]
    else:
        grippers = [GripperMap(grip.joint, grip.closed if g.model_closed is None else g.model_closed,
                               grip.open if g.model_open is None else g.model_open, grip.closed, grip.open,
                               g.threshold) for grip in robot.grippers]
    return ActionSpace(spec.kind, list(action_joints or robot.action_joints), list(state_joints or robot.state_joints),
                       dt, grippers, chain=robot.chain() if spec.kind == "ee_delta" else None,
                       ee_scale=tuple(spec.ee_scale), model_dims=list(spec.model_dims or robot.action_joints),
                       velocity_step=spec.velocity_step, clip=spec.clip, rest=home_posture(robot))


def joint_gripper(robot, grip, threshold: float | None = None) -> GripperMap:
    """A gripper whose model values are its joint's values, passed through over the joint's limits and the
    preset's closed..open together (not the preset's range alone: an expert squeezing past ``closed`` onto an
    object, as the transfer expert does to the ALOHA followers' lower limit, teaches a model to command that
    too); the preset's range where the description gives the joint no limits (its bounds are then infinite)."""
    joint = robot.urdf_model.joint(grip.joint)  # (load_robot checked that every gripper joint is described)
    lower, upper = joint.lower, joint.upper
    if not (np.isfinite(lower) and np.isfinite(upper) and upper > lower):
        return GripperMap(grip.joint, grip.closed, grip.open, grip.closed, grip.open, threshold)
    if grip.closed <= grip.open:
        closed, opened = min(lower, grip.closed), max(upper, grip.open)
    else:
        closed, opened = max(upper, grip.closed), min(lower, grip.open)
    return GripperMap(grip.joint, closed, opened, closed, opened, threshold)


def home_posture(robot) -> np.ndarray | None:
    """The arm's home (sim home, else the preset's), for the IK's rest posture; None if it has none."""
    home = robot.sim.home if robot.sim is not None and robot.sim.home else robot.home
    return np.array(home, float) if home and len(home) == len(robot.arm_joints) else None
