"""The simulated arm without ROS: physics, ros2_control-style command inputs, cameras, task."""

from __future__ import annotations

from collections.abc import Callable

import mujoco
import numpy as np

from ..core.cartesian import TWIST_TIMEOUT, joint_step_for_twist
from ..core.trajectory import JtcTrajectory, accept_trajectory
from ..robots import RobotPreset
from .perturb import Perturbation, has_distractors
from .scene import build_mjcf
from .tasks import ObjectPose, make_task


class ArmSim:
    """A MuJoCo scene for a robot preset with position-servo actuators.

    Commands arrive per controller group (forward positions or JTC trajectories) and set the servo
    targets at each physics step. Joint state, object poses and camera frames are read back out.
    """

    def __init__(self, robot: RobotPreset, perturb: str = "nominal"):
        self.robot = robot
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(robot, distractors=has_distractors(perturb)))
        self.perturbation = Perturbation(self.model, perturb, robot.task)
        self.data = mujoco.MjData(self.model)
        self.dt = float(self.model.opt.timestep)
        kinds = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
        self.joint_names = [self.model.joint(i).name for i in range(self.model.njnt)
                            if int(self.model.jnt_type[i]) in kinds]
        self._qadr = np.array([self.model.joint(n).qposadr[0] for n in self.joint_names])
        self._vadr = np.array([self.model.joint(n).dofadr[0] for n in self.joint_names])
        self.actuated = [self.model.actuator(i).name for i in range(self.model.nu)]
        self._act_joint = {n: self.joint_names.index(n) for n in self.actuated}
        self.controllers = {c.name: c.joints for c in robot.controllers}
        for group in self.controllers.values():
            missing = [j for j in group if j not in self.actuated]
            if missing:
                raise ValueError(f"controller joints {missing} have no actuator in the sim config")
        self._trajectories: dict[str, JtcTrajectory | None] = {c: None for c in self.controllers}
        # Cartesian inputs (single-arm presets): a pose target solved by IK at most every IK_PERIOD, or a twist
        self._chain = robot.chain() if robot.single_arm else None
        self._arm_actuators = ([self.actuated.index(j) for j in self._chain.joint_names]
                               if self._chain is not None and all(j in self.actuated for j in self._chain.joint_names)
                               else None)
        arm = set(self._chain.joint_names) if self._chain is not None else set()
        self._arm_groups = [c for c, joints in self.controllers.items() if arm & set(joints)]
        self._ee_pose: np.ndarray | None = None
        self._ee_twist: tuple[np.ndarray, float] | None = None
        self._last_ik = -np.inf
        finger = robot.gripper.joint if robot.single_arm and robot.gripper else None
        self.task = make_task(self.model, robot.task, finger)
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        # emulated drivers: called before every physics step with (time, dt), and after every reset
        self.step_hooks: list[Callable[[float, float], None]] = []
        self.reset_hooks: list[Callable[[], None]] = []
        self.reset(0)

    # -- state -------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        return float(self.data.time)

    def positions(self) -> np.ndarray:
        return self.data.qpos[self._qadr].copy()

    def velocities(self) -> np.ndarray:
        return self.data.qvel[self._vadr].copy()

    def efforts(self) -> np.ndarray:
        eff = np.zeros(len(self.joint_names))
        for i, name in enumerate(self.actuated):
            eff[self._act_joint[name]] = self.data.actuator_force[i]
        return eff

    def joint(self, name: str) -> float:
        return float(self.data.qpos[self._qadr[self.joint_names.index(name)]])

    def velocity(self, name: str) -> float:
        return float(self.data.qvel[self._vadr[self.joint_names.index(name)]])

    def effort(self, name: str) -> float:
        """The actuator force on an actuated joint (0 for others)."""
        return float(self.data.actuator_force[self.actuated.index(name)]) if name in self.actuated else 0.0

    def object_poses(self) -> dict[str, ObjectPose]:
        return self.task.object_poses(self.data)

    def targets(self) -> dict[str, float]:
        return {n: float(self.data.ctrl[i]) for i, n in enumerate(self.actuated)}

    @staticmethod
    def parse_joint_spread(text: str, arm_joints: list[str] | None = None) -> dict[str, float]:
        """``'wrist_rotate=0.6,waist=0.1'`` -> {joint: rad} (ValueError saying the form, or naming the joints
        that are not among ``arm_joints`` when given; '' -> {})."""
        spread: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, _, value = item.partition("=")
            try:
                spread[name.strip()] = float(value)
            except ValueError:
                raise ValueError(f"start_spread_joints item {item!r}: expected JOINT=RAD") from None
            if not name.strip() or not 0.0 <= spread[name.strip()] <= 1.0:
                raise ValueError(f"start_spread_joints item {item!r}: expected JOINT=RAD with RAD in 0..1")
        if arm_joints is not None:
            ArmSim.check_spread_joints(spread, arm_joints)
        return spread

    @staticmethod
    def check_spread_joints(spread: dict[str, float], arm_joints: list[str]) -> None:
        """ValueError naming the joints of ``spread`` that are not among ``arm_joints``."""
        unknown = sorted(set(spread) - set(arm_joints))
        if unknown:
            raise ValueError(f"start_spread_joints names {unknown}, not arm joints ({', '.join(arm_joints)})")

    # -- episode -----------------------------------------------------------------------------
    NOISE_TIME_CONSTANT = 0.5  # s: the correlation time of the command noise's offsets

    def reset(self, seed: int, start_spread: float = 0.0, command_noise: float = 0.0,
              joint_spread: dict[str, float] | None = None) -> dict[str, list[float]]:
        """Home pose (each arm joint moved by up to ``start_spread`` rad, or its own ``joint_spread`` entry,
        uniform, drawn from ``seed``; within its limits), open gripper, objects placed from ``seed`` (the same
        with or without the spread); returns object placements. ``command_noise`` (rad): every arm servo
        target is offset by a slowly varying random amount of this standard deviation (an Ornstein-Uhlenbeck
        process drawn from ``seed``) for the episode: the arm strays from what it is commanded, as
        demonstrations that show recoveries need."""
        self.check_spread_joints(joint_spread or {}, self.robot.arm_joints)
        mujoco.mj_resetData(self.model, self.data)
        arm = [self.actuated.index(j) for j in self.robot.arm_joints if j in self.actuated]
        self._noise = (np.random.default_rng((seed, 2)), float(command_noise), np.array(arm, int),
                       np.zeros(len(arm)))
        sim = self.robot.sim
        home = dict(zip(self.robot.arm_joints, sim.home or [0.0] * len(self.robot.arm_joints)))
        spreads = np.array([(joint_spread or {}).get(name, start_spread) for name in home], dtype=float)
        if np.any(spreads > 0.0):
            offsets = -spreads + 2.0 * spreads * np.random.default_rng((seed, 1)).random(len(home))
            limits = {j.name: j for j in self.robot.urdf_model.joints}
            for (name, value), offset in zip(list(home.items()), offsets):
                home[name] = float(np.clip(value + offset, limits[name].lower, limits[name].upper))
        if sim.gripper_home is not None:
            for grip in self.robot.grippers:
                home[grip.joint] = sim.gripper_home
        for name, value in home.items():
            self.data.qpos[self._qadr[self.joint_names.index(name)]] = value
        for mimic in (j for j in self.robot.urdf_model.joints if j.mimic and j.name in self.joint_names):
            src, mult, off = mimic.mimic
            self.data.qpos[self._qadr[self.joint_names.index(mimic.name)]] = off + mult * home.get(src, 0.0)
        for i, name in enumerate(self.actuated):
            self.data.ctrl[i] = home.get(name, 0.0)
        self._trajectories = {c: None for c in self.controllers}
        self._ee_pose, self._ee_twist, self._last_ik = None, None, -np.inf
        placed = self.task.reset(self.data, np.random.default_rng(seed))
        self.perturbation.apply(self.model, self.data, seed, placed)
        mujoco.mj_forward(self.model, self.data)
        for _ in range(int(0.2 / self.dt)):  # let the objects settle
            mujoco.mj_step(self.model, self.data)
        for hook in self.reset_hooks:
            hook()
        return placed

    # -- commands ----------------------------------------------------------------------------
    def set_forward_command(self, controller: str, values: np.ndarray) -> None:
        """Forward position command for a controller group (``~/commands``); cancels its trajectory."""
        joints = self.controllers[controller]
        values = np.asarray(values, dtype=float)
        if values.shape != (len(joints),):
            raise ValueError(f"{controller} expects {len(joints)} values, got {values.size}")
        if not np.all(np.isfinite(values)):
            raise ValueError("non-finite command")
        self._trajectories[controller] = None
        for name, value in zip(joints, values):
            self.set_target(name, value)

    def set_target(self, name: str, value: float) -> None:
        """One actuated joint's servo target (clipped to its control range): an emulated driver's motor goal."""
        i = self.actuated.index(name)
        lo, hi = self.model.actuator_ctrlrange[i]
        self.data.ctrl[i] = float(np.clip(value, lo, hi))

    def set_trajectory(self, controller: str, joint_names: list[str], stamp: float, now: float, times: np.ndarray,
                       positions: np.ndarray, velocities: np.ndarray | None,
                       accelerations: np.ndarray | None) -> None:
        """JTC-style trajectory for a controller group (raises TrajectoryRejected)."""
        joints = self.controllers[controller]
        idx = [self.joint_names.index(j) for j in joints]
        self._trajectories[controller] = accept_trajectory(
            joints, joint_names, stamp, now, times, positions, velocities, accelerations,
            self.positions()[idx], self.velocities()[idx])

    IK_PERIOD = 0.01  # s of sim time between pose-target solves (a Cartesian controller's update rate)

    def _take_arm(self) -> None:
        """A Cartesian command takes the arm over: its joint trajectories are cancelled."""
        if self._arm_actuators is None:
            raise ValueError("end-effector commands need a single-arm preset whose arm joints are actuated")
        for c in self._arm_groups:
            self._trajectories[c] = None

    def set_ee_pose(self, pose: np.ndarray) -> None:
        """A tool pose target (4x4, base frame) for the arm's servos (through IK); cancels arm trajectories
        and any twist."""
        pose = np.asarray(pose, float)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise ValueError("pose target must be a finite 4x4 transform")
        self._take_arm()
        self._ee_pose, self._ee_twist = pose, None

    def set_ee_twist(self, twist: np.ndarray, now: float) -> None:
        """A tool twist (linear m/s then angular rad/s, base frame) received at ``now``: integrated into the
        arm's servo targets until it is TWIST_TIMEOUT old; cancels arm trajectories and any pose target."""
        twist = np.asarray(twist, float)
        if twist.shape != (6,) or not np.all(np.isfinite(twist)):
            raise ValueError("twist must be 6 finite values")
        self._take_arm()
        self._ee_pose, self._ee_twist = None, (twist, now)

    def _apply_ee(self, now: float, dt: float) -> None:
        idx = self._arm_actuators
        lo, hi = self.model.actuator_ctrlrange[idx].T
        if self._ee_pose is not None and self.time - self._last_ik >= self.IK_PERIOD:
            result = self._chain.ik(self._ee_pose, self.data.ctrl[idx])
            self.data.ctrl[idx] = np.clip(result.q, lo, hi)  # (the nearest it gets where out of reach)
            self._ee_pose, self._last_ik = None, self.time
        if self._ee_twist is not None:
            twist, stamp = self._ee_twist
            valid = min(dt, stamp + TWIST_TIMEOUT - now)  # the part of this step before the twist is stale
            if valid > 0.0:
                step = joint_step_for_twist(self._chain, self.data.ctrl[idx], twist, valid)
                self.data.ctrl[idx] = np.clip(self.data.ctrl[idx] + step, lo, hi)
            if valid < dt:
                self._ee_twist = None  # stale: the servos hold the last target

    def _apply_trajectories(self, now: float) -> None:
        for controller, traj in self._trajectories.items():
            if traj is None:
                continue
            for name, value in zip(self.controllers[controller], traj.sample(now)):
                self.set_target(name, value)

    def step(self, count: int = 1, now: float | None = None) -> None:
        """Advance ``count`` physics steps; ``now`` is the command clock at the first step."""
        t = self.time if now is None else now
        if self._ee_pose is not None or self._ee_twist is not None:
            self._apply_ee(t, count * self.dt)
        rng, sigma, arm, offset = self._noise
        if sigma > 0.0:  # (exact OU update over this call's span; held within it)
            decay = np.exp(-count * self.dt / self.NOISE_TIME_CONSTANT)
            offset[:] = decay * offset + sigma * np.sqrt(1.0 - decay**2) * rng.standard_normal(len(arm))
        lo, hi = self.model.actuator_ctrlrange[arm].T
        for k in range(count):
            self._apply_trajectories(t + k * self.dt)
            for hook in self.step_hooks:
                hook(self.time, self.dt)
            if sigma > 0.0:
                commanded = self.data.ctrl[arm].copy()
                self.data.ctrl[arm] = np.clip(commanded + offset, lo, hi)
                mujoco.mj_step(self.model, self.data)
                self.data.ctrl[arm] = commanded
            else:
                mujoco.mj_step(self.model, self.data)
        self.task.update(self.data, self.time)

    # -- cameras -----------------------------------------------------------------------------
    def render(self, camera: str, width: int, height: int) -> np.ndarray:
        """HxWx3 uint8 RGB from a named camera (call from one thread only)."""
        key = (width, height)
        if key not in self._renderers:
            renderer = mujoco.Renderer(self.model, height, width)
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            self._renderers[key] = renderer
        renderer = self._renderers[key]
        renderer.update_scene(self.data, camera=camera)
        return renderer.render().copy()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
