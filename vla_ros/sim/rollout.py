"""ROS-free closed loop: sim physics + a chunk-execution strategy + a policy, in simulated time.

Tests and benchmarks use it to compare execution strategies without DDS timing noise. Inference
latency is simulated: a chunk requested at time t (from the observation at t) is delivered at t + L.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..core.chunk import ActionChunk
from ..core.control import ControlConfig, ControlCore
from ..core.inference import InferenceLoop, Request
from ..core.instructions import target_object
from ..core.observation import Observation
from ..core.scheduling import InferenceScheduler
from ..params import control_config
from ..policies.base import Policy
from .physics import ArmSim


def objects_input(sim: ArmSim) -> dict[str, dict[str, np.ndarray]]:
    """The sim's object poses in the form the policy node builds from /sim/objects."""
    return {n: {"position": p.position, "orientation": p.quat_wxyz, "size": p.size, "rgba": p.rgba}
            for n, p in sim.object_poses().items()}


class PerturbedPolicy:
    """A backend whose k-th chunk passes through ``perturb(k, chunk)`` (model inconsistency between chunks)."""

    def __init__(self, policy: Policy, perturb: Callable[[int, ActionChunk], ActionChunk]):
        self.policy, self.perturb = policy, perturb
        self.context, self.supports_prefix = policy.context, policy.supports_prefix
        self.calls = 0

    def infer(self, observation: Observation) -> ActionChunk:
        chunk = self.perturb(self.calls, self.policy.infer(observation))
        self.calls += 1
        return chunk

    def reset(self) -> None:
        self.policy.reset()


@dataclass
class StepOut:
    command: np.ndarray
    fresh: bool  # a target from a chunk was due (False: stalled / holding)
    switched: bool  # a new chunk took effect at this tick


class Executor(Protocol):
    name: str

    def reset(self, measured: np.ndarray, now: float) -> None: ...

    def step(self, now: float, measured: np.ndarray, observe: Callable[[], Observation]) -> StepOut: ...


class ControllerExecutor:
    """This package's inference loop and controller core, with inference latency in simulated time: the
    k-th inference starts when the loop says so and its chunk is delivered ``latency(k)`` seconds later."""

    def __init__(self, name: str, robot, loop: InferenceLoop, config: ControlConfig,
                 latency: Callable[[int], float]):
        self.name = name
        self.loop, self.config, self.latency = loop, config, latency
        self.limits = robot.limits_for(robot.action_joints)
        self.core: ControlCore | None = None
        self.requests = 0
        self._pending: tuple[float, float, Request, ActionChunk | None, str] | None = None

    def reset(self, measured: np.ndarray, now: float) -> None:
        self.loop.reset()
        self.loop.resume()
        self._pending = None
        self.requests = 0
        self.core = ControlCore(self.limits, self.config)
        self.core.update_state(measured, now)

    def step(self, now: float, measured: np.ndarray, observe: Callable[[], Observation]) -> StepOut:
        core = self.core
        core.update_state(measured, now)
        if self._pending is None and self.loop.delay(now) <= 0:
            request = self.loop.begin(observe(), now)
            if request is not None:
                chunk, error = self.loop.call(request)
                latency = float(self.latency(self.requests))
                self.requests += 1
                self._pending = (now + latency, latency, request, chunk, error)
        if self._pending is not None and now >= self._pending[0] - 1e-9:
            _, latency, request, chunk, error = self._pending
            self._pending = None
            outcome = self.loop.finish(request, chunk, latency, error)
            if outcome.chunk is not None:
                core.add_chunk(outcome.chunk, now)
        tick = core.tick(now)
        return StepOut(tick.command, tick.fresh, tick.new_chunk_stamp is not None)


@dataclass
class Rollout:
    success: bool
    duration: float
    chunks: int
    times: list[float] = field(default_factory=list)
    commands: list[np.ndarray] = field(default_factory=list)
    measured: list[np.ndarray] = field(default_factory=list)
    fresh: list[bool] = field(default_factory=list)
    switched: list[bool] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)  # with record and images: what the policy saw


def run_closed_loop(sim: ArmSim, executor: Executor, seed: int, instruction: str, *, control_rate: float = 500.0,
                    timeout: float = 20.0, record: bool = False, images: bool = False) -> Rollout:
    """Reset the sim with ``seed`` and run until success or ``timeout`` simulated seconds. The task's target
    is the object the instruction names (as the sim node does); ``images``: observations carry every
    camera's frame, rendered when an inference starts."""
    robot = sim.robot
    sim.reset(seed)
    target = target_object(instruction, sim.task.names)
    if target is not None:
        sim.task.target = target
    cameras = [c for c in robot.cameras if c.sim] if images else []
    names = robot.action_joints
    period = 1.0 / control_rate
    substeps = max(1, int(round(period / sim.dt)))
    groups = {c.name: [names.index(j) for j in c.joints if j in names] for c in robot.controllers}
    state_index = [sim.joint_names.index(j) for j in robot.state_joints]
    action_index = [sim.joint_names.index(j) for j in names]
    t0 = sim.time
    executor.reset(sim.positions()[action_index], t0)
    out = Rollout(False, 0.0, 0)
    while sim.time - t0 < timeout:
        now = sim.time
        q = sim.positions()

        def observe(now=now, q=q) -> Observation:
            frames = {c.key: sim.render(c.name, c.width, c.height) for c in cameras}
            if record and frames:
                out.frames.append(next(iter(frames.values())))
            return Observation(now, q[state_index], frames, instruction, {"objects": objects_input(sim)})

        step = executor.step(now, q[action_index], observe)
        out.chunks += int(step.switched)
        for name, idx in groups.items():
            sim.set_forward_command(name, step.command[idx])
        if record:
            out.times.append(now - t0)
            out.commands.append(step.command.copy())
            out.measured.append(q[action_index])
            out.fresh.append(step.fresh)
            out.switched.append(step.switched)
        sim.step(substeps)
        if sim.task.success:
            out.success = True
            break
    out.duration = sim.time - t0
    return out


def controller_executor(robot, policy: Policy, latency: float | Callable[[int], float] = 0.0,
                        config: ControlConfig | None = None, trigger: str = "latency_aware",
                        execution_horizon: int = 3, chunk_dt: float = 0.1, horizon: int = 10,
                        name: str = "controller") -> ControllerExecutor:
    """A ControllerExecutor over ``policy``: the node's inference loop and the preset's controller defaults
    (grippers unblended), a constant or per-request simulated latency."""
    latency_of = latency if callable(latency) else (lambda k, value=float(latency): value)
    scheduler = InferenceScheduler(trigger, 0.25, chunk_dt, horizon, execution_horizon,
                                   initial_latency=float(latency_of(0)))
    loop = InferenceLoop(policy, scheduler, policy.context.action_joints, chunk_dt, horizon)
    config = config or control_config({}, [g.joint for g in robot.grippers])
    return ControllerExecutor(name, robot, loop, config, latency_of)
