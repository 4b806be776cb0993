"""Observation and action layouts of openpi policy servers (ALOHA, DROID, LIBERO) and this package's own.

A layout turns this package's :class:`Observation` (images by key, state in the preset's joint order)
into the dictionary a server expects, and the server's ``actions`` back into absolute targets. The
server side (``vla-ros serve``) uses the reverse directions for the layouts where they exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import aloha
from ..core.action_space import ActionSpace, GripperMap, home_posture
from ..core.observation import Observation
from ..core.transforms import make_transform, rotation_exp, rotation_log

LAYOUTS = ("vla_ros", "aloha", "droid", "libero")


class LayoutError(ValueError):
    """An observation or action that does not fit the layout."""


@dataclass
class LayoutContext:
    robot: object  # RobotPreset
    state_joints: list[str]
    action_joints: list[str]
    dt: float
    cameras: dict[str, str]  # layout camera name -> this package's image key
    rotate_180: bool = True  # libero: frames turned as LIBERO's robosuite renders were stored (not for upright cameras)

    @property
    def base_position(self) -> np.ndarray:
        """libero: the robot base's position in the frame of the poses on the wire (the preset's)."""
        return np.asarray(self.robot.openpi.base_position, float)

    def image(self, obs: Observation, layout_name: str) -> np.ndarray:
        key = self.cameras.get(layout_name, layout_name)
        if key not in obs.images:
            raise LayoutError(f"observation lacks image {key!r} (layout camera {layout_name!r})")
        return obs.images[key]

    def grippers(self, model_closed: float, model_open: float, threshold: float | None = None) -> list[GripperMap]:
        return [GripperMap(g.joint, model_closed, model_open, g.closed, g.open, threshold)
                for g in self.robot.grippers]

    def space(self, kind: str, model_closed: float, model_open: float, threshold: float | None = None,
              **kw) -> ActionSpace:
        return ActionSpace(kind, self.action_joints, self.state_joints, self.dt,
                           self.grippers(model_closed, model_open, threshold), **kw)


def _chw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(img, (2, 0, 1)))


def _hwc(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    return np.ascontiguousarray(np.transpose(img, (1, 2, 0))) if img.shape[0] == 3 else img


class Layout:
    """What every layout has besides its wire format."""

    def check(self, ctx: LayoutContext) -> None:
        """Refuse at start a context the layout cannot serve (LayoutError saying what to set); most serve any."""


class NativeLayout(Layout):
    """This package's own: state by joint name, HWC images by key; absolute targets back."""

    name = "vla_ros"

    def observation(self, obs: Observation, ctx: LayoutContext) -> dict:
        return {"state": np.asarray(obs.state, np.float64), "state_names": list(ctx.state_joints),
                "images": dict(obs.images), "prompt": obs.instruction}

    def parse_observation(self, d: dict, ctx: LayoutContext, stamp: float) -> Observation:
        names = list(d.get("state_names") or ctx.state_joints)
        state = np.array(d["state"], np.float64)  # a copy: decoded arrays are read-only
        if len(names) != state.size:
            raise LayoutError(f"state has {state.size} values for {len(names)} names")
        missing = [j for j in ctx.state_joints if j not in names]
        if missing:
            raise LayoutError(f"state lacks joints {missing}")
        ordered = np.array([state[names.index(j)] for j in ctx.state_joints])
        return Observation(stamp, ordered, {k: np.asarray(v) for k, v in (d.get("images") or {}).items()},
                           str(d.get("prompt", "")))

    def targets(self, response: dict, obs: Observation, ctx: LayoutContext) -> np.ndarray:
        names = list(response.get("joint_names") or ctx.action_joints)
        actions = np.asarray(response["actions"], np.float64)
        missing = [j for j in ctx.action_joints if j not in names]
        if missing:
            raise LayoutError(f"server actions lack joints {missing}")
        return actions[:, [names.index(j) for j in ctx.action_joints]]

    def response(self, targets: np.ndarray, obs: Observation, ctx: LayoutContext) -> dict:
        return {"actions": np.asarray(targets, np.float64), "joint_names": list(ctx.action_joints)}


class AlohaLayout(Layout):
    """openpi ALOHA: 14-D state/actions [L 6, L gripper, R 6, R gripper], images cam_high/cam_low/
    cam_left_wrist/cam_right_wrist as CHW uint8. Grippers in openpi's units (:mod:`vla_ros.core.aloha`):
    state = finger position normalised over 0.01844-0.05800 m; action = motor angle normalised over
    -0.6213-1.4910 rad, which becomes the finger position that angle reaches (clipped to the joint's limits)."""

    name = "aloha"
    CAMERAS = ("cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist")

    def _grippers(self, ctx: LayoutContext, joints: list[str]) -> list[int]:
        if len(ctx.action_joints) != 14 or len(ctx.robot.grippers) != 2:
            raise LayoutError("the aloha layout needs a 14-joint preset with two grippers")
        return [joints.index(g.joint) for g in ctx.robot.grippers]

    def _to_model(self, values: np.ndarray, joints: list[str], ctx: LayoutContext) -> np.ndarray:
        out = np.array(values, np.float64, copy=True)
        for k in self._grippers(ctx, joints):
            out[..., k] = aloha.state_from_finger(out[..., k])
        return out

    def observation(self, obs: Observation, ctx: LayoutContext) -> dict:
        images = {c: _chw(ctx.image(obs, c)) for c in self.CAMERAS if ctx.cameras.get(c, c) in obs.images}
        state = self._to_model(obs.state, ctx.state_joints, ctx).astype(np.float32)
        return {"state": state, "images": images, "prompt": obs.instruction}

    def parse_observation(self, d: dict, ctx: LayoutContext, stamp: float) -> Observation:
        state = np.array(d["state"], np.float64)  # a copy: decoded arrays are read-only
        if state.shape != (14,):
            raise LayoutError(f"aloha state must have 14 values, got {state.shape}")
        for k in self._grippers(ctx, ctx.state_joints):
            state[k] = aloha.finger_from_state(state[k])
        inverse = {c: ctx.cameras.get(c, c) for c in self.CAMERAS}
        images = {inverse[c]: _hwc(v) for c, v in (d.get("images") or {}).items() if c in inverse}
        return Observation(stamp, state, images, str(d.get("prompt", "")))

    def targets(self, response: dict, obs: Observation, ctx: LayoutContext) -> np.ndarray:
        actions = np.array(response["actions"], np.float64)[:, :14]  # a copy: decoded arrays are read-only
        if actions.ndim != 2 or actions.shape[1] != 14 or not np.all(np.isfinite(actions)):
            raise LayoutError(f"aloha actions must be finite (H, 14), got {actions.shape}")
        for k in self._grippers(ctx, ctx.action_joints):  # (the preset's order is openpi's: L 6, L gripper, R ...)
            limits = ctx.robot.limits_for([ctx.action_joints[k]])
            actions[:, k] = np.clip(aloha.finger_from_action(actions[:, k]), limits.lower[0], limits.upper[0])
        return actions

    def response(self, targets: np.ndarray, obs: Observation, ctx: LayoutContext) -> dict:
        out = np.array(targets, np.float64, copy=True)
        for k in self._grippers(ctx, ctx.action_joints):
            out[:, k] = np.clip(aloha.action_from_finger(out[:, k]), 0.0, 1.0)
        return {"actions": out.astype(np.float32)}


class DroidLayout(Layout):
    """openpi DROID: exterior + wrist images (HWC), 7 joint positions + gripper position [0, 1];
    actions (H, 8) = 7 joint velocities + gripper position (1 = closed), one per 1/15 s.

    Upstream execution (openpi ``examples/droid/main.py`` + DROID's ``RobotIKSolver``): the gripper is
    binarised (> 0.5 closed), every column clipped to [-1, 1], a velocity row scaled so its largest value is
    at most 1 and turned into a joint delta of 0.2 rad x v per 15 Hz step. So target i = q0 + 0.2 x sum of
    the first i velocities, whatever the chunk's time spacing; it must be 1/15 s to run at the trained speed.
    """

    name = "droid"
    STEP = 0.2  # rad per step for a velocity of 1 (DROID relative_max_joint_delta)
    DT = 1.0 / 15.0  # DROID's control period

    def _space(self, ctx: LayoutContext) -> ActionSpace:
        if len(ctx.action_joints) != 8 or not ctx.robot.grippers:
            raise LayoutError("the droid layout needs a 7-joint arm and a gripper (8 action joints)")
        if abs(ctx.dt - self.DT) > 1e-3:
            raise LayoutError(f"DROID actions are 1/15 s apart: set the policy's chunk_dt to 0.0667, not {ctx.dt:g} "
                              "(vla-ros serve: --set chunk_dt=0.0667; a launch: in the policy config or params_file)")
        grip = ctx.robot.grippers[0].joint  # wire columns: 7 joint velocities, then the gripper
        dims = [j for j in ctx.action_joints if j != grip] + [grip]
        return ctx.space("joint_velocity", 1.0, 0.0, 0.5, model_dims=dims, velocity_step=self.STEP, clip=1.0)

    def check(self, ctx: LayoutContext) -> None:
        self._space(ctx)

    def observation(self, obs: Observation, ctx: LayoutContext) -> dict:
        grip = self._space(ctx).gripper
        k = ctx.state_joints.index(grip.joint)
        arm = [j for j in ctx.state_joints if j != grip.joint]
        joints = np.array([obs.state[ctx.state_joints.index(j)] for j in arm])
        return {
            "observation/exterior_image_1_left": ctx.image(obs, "exterior_image_1_left"),
            "observation/wrist_image_left": ctx.image(obs, "wrist_image_left"),
            "observation/joint_position": joints,
            "observation/gripper_position": np.array([grip.to_model(obs.state[k])]),
            "prompt": obs.instruction,
        }

    def parse_observation(self, d: dict, ctx: LayoutContext, stamp: float) -> Observation:
        grip = self._space(ctx).gripper
        joints = np.asarray(d["observation/joint_position"], np.float64).ravel()
        arm = [j for j in ctx.state_joints if j != grip.joint]
        if joints.size != len(arm):
            raise LayoutError(f"droid joint_position must have {len(arm)} values, got {joints.size}")
        state = np.zeros(len(ctx.state_joints))
        for j, v in zip(arm, joints):
            state[ctx.state_joints.index(j)] = v
        state[ctx.state_joints.index(grip.joint)] = grip.to_joint(
            np.asarray(d["observation/gripper_position"], np.float64).ravel()[0], binarise=False)
        cams = {"observation/exterior_image_1_left": "exterior_image_1_left",
                "observation/wrist_image_left": "wrist_image_left"}
        images = {ctx.cameras.get(v, v): np.asarray(d[k]) for k, v in cams.items() if k in d}
        return Observation(stamp, state, images, str(d.get("prompt", "")))

    def targets(self, response: dict, obs: Observation, ctx: LayoutContext) -> np.ndarray:
        return self._space(ctx).to_targets(np.asarray(response["actions"])[:, :8], obs.state)

    def response(self, targets: np.ndarray, obs: Observation, ctx: LayoutContext) -> dict:
        space = self._space(ctx)
        grip = space.gripper
        vel = space.to_velocities(targets, obs.state, [j for j in ctx.action_joints if j != grip.joint])
        g = np.clip(grip.to_model(np.asarray(targets)[:, ctx.action_joints.index(grip.joint)]), 0.0, 1.0)
        return {"actions": np.column_stack([vel, g])}


class LiberoLayout(Layout):
    """openpi LIBERO: state = EE position, axis-angle, two finger positions; images rotated 180 degrees
    (LIBERO's robosuite renders are stored upside down: ``rotate_180`` false for an upright camera);
    actions (H, 7) in [-1, 1] = EE deltas scaled by 0.05 m / 0.5 rad (robosuite OSC_POSE: the rotation a
    rotation vector, applied in the base frame; each step from the pose the one before reached), gripper
    -1 open .. +1 closed. Poses on the wire are the base frame's shifted by the preset's
    ``openpi.base_position``. Served, the joint state is the inverse kinematics of the received pose
    (seeded at the preset's home): one of the arm's configurations with that pose, not necessarily the
    robot's own."""

    name = "libero"
    CAMERAS = ("image", "wrist_image")

    @staticmethod
    def _space(ctx: LayoutContext) -> ActionSpace:
        return ctx.space("ee_delta", 1.0, -1.0, chain=ctx.robot.chain(), ee_scale=(0.05, 0.5),
                         ee_rotation="axis_angle", clip=1.0, rest=home_posture(ctx.robot))

    @staticmethod
    def _turn(img: np.ndarray, ctx: LayoutContext) -> np.ndarray:
        return np.ascontiguousarray(img[::-1, ::-1]) if ctx.rotate_180 else img

    def observation(self, obs: Observation, ctx: LayoutContext) -> dict:
        chain = ctx.robot.chain()
        q = np.array([obs.state[ctx.state_joints.index(j)] for j in chain.joint_names])
        pose = chain.fk(q)
        grip = ctx.robot.gripper
        g = obs.state[ctx.state_joints.index(grip.joint)] if grip else 0.0
        state = np.concatenate([pose[:3, 3] + ctx.base_position, rotation_log(pose[:3, :3]), [g, -g]])
        return {"observation/state": state.astype(np.float32),
                "observation/image": self._turn(ctx.image(obs, "image"), ctx),
                "observation/wrist_image": self._turn(ctx.image(obs, "wrist_image"), ctx),
                "prompt": obs.instruction}

    def parse_observation(self, d: dict, ctx: LayoutContext, stamp: float) -> Observation:
        state = np.array(d["observation/state"], np.float64)  # a copy: decoded arrays are read-only
        if state.shape != (8,) or not np.all(np.isfinite(state)):
            raise LayoutError(f"observation/state must be 8 finite values (EE position, axis-angle, two fingers), "
                              f"got shape {state.shape}")
        chain = ctx.robot.chain()
        pose = make_transform(rotation_exp(state[3:6]), state[:3] - ctx.base_position)
        home = home_posture(ctx.robot)
        result = chain.ik(pose, home if home is not None and len(home) == chain.dof else np.zeros(chain.dof))
        if not result.success:
            raise LayoutError(f"the arm cannot reach the received pose ({result.position_error * 1000:.1f} mm, "
                              f"{result.rotation_error:.3f} rad off): is openpi.base_position right?")
        grip = ctx.robot.gripper
        values = {**dict(zip(chain.joint_names, result.q)), **({grip.joint: abs(state[6])} if grip else {})}
        images = {}
        for camera in self.CAMERAS:
            if f"observation/{camera}" in d:
                images[ctx.cameras.get(camera, camera)] = self._turn(_hwc(d[f"observation/{camera}"]), ctx)
        return Observation(stamp, np.array([values.get(j, 0.0) for j in ctx.state_joints]), images,
                           str(d.get("prompt", "")))

    def targets(self, response: dict, obs: Observation, ctx: LayoutContext) -> np.ndarray:
        return self._space(ctx).to_targets(np.asarray(response["actions"])[:, :7], obs.state)

    def response(self, targets: np.ndarray, obs: Observation, ctx: LayoutContext) -> dict:
        return {"actions": self._space(ctx).to_ee_deltas(targets, obs.state)}


def get_layout(name: str):
    layouts = {c.name: c for c in (NativeLayout, AlohaLayout, DroidLayout, LiberoLayout)}
    if name not in layouts:
        raise LayoutError(f"unknown layout {name!r}; known: {sorted(layouts)}")
    return layouts[name]()
