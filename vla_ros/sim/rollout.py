"""ROS-free closed loop: sim physics + a chunk-execution strategy + a policy, in simulated time.

Tests and benchmarks use it to compare execution strategies without DDS timing noise. Inference
latency is simulated: a chunk requested at time t (from the observation at t) is delivered at t + L.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..core.chunk import ActionChunk
from ..core.control import ControlConfig, ControlCore
from ..core.observation import Observation
from ..core.scheduling import InferenceScheduler
from ..policies.base import Policy
from .physics import ArmSim


def objects_input(sim: ArmSim) -> dict[str, dict[str, np.ndarray]]:
    """The sim's object poses in the form the policy node builds from /sim/objects."""
    return {n: {"position": p.position, "orientation": p.quat_wxyz, "size": p.size, "rgba": p.rgba}
            for n, p in sim.object_poses().items()}


class DelayedPolicy:
    """Wraps a policy: the k-th request gets latency ``latencies[k]`` and perturbation ``perturb(k, chunk)``."""

    def __init__(self, policy: Policy, latencies: Iterator[float] | Callable[[int], float],
                 perturb: Callable[[int, ActionChunk], ActionChunk] | None = None):
        self.policy = policy
        self._latency = latencies if callable(latencies) else (lambda k, it=iter(latencies): next(it))
        self.perturb = perturb
        self.requests = 0
        self._pending: tuple[float, float, ActionChunk] | None = None  # (deliver_at, latency, chunk)

    @property
    def busy(self) -> bool:
        return self._pending is not None

    def request(self, observation: Observation, now: float) -> None:
        chunk = self.policy.infer(observation)
        if self.perturb is not None:
            chunk = self.perturb(self.requests, chunk)
        latency = float(self._latency(self.requests))
        self.requests += 1
        self._pending = (now + latency, latency, chunk)

    def poll(self, now: float) -> tuple[ActionChunk, float] | None:
        """The chunk and its latency once delivered."""
        if self._pending is not None and now >= self._pending[0] - 1e-9:
            _, latency, chunk = self._pending
            self._pending = None
            return chunk, latency
        return None

    def reset(self) -> None:
        self.policy.reset()
        self._pending = None


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
    """This package's controller core and inference scheduler."""

    def __init__(self, name: str, robot, delayed: DelayedPolicy, config: ControlConfig,
                 scheduler: InferenceScheduler):
        self.name = name
        self.delayed, self.config, self.scheduler = delayed, config, scheduler
        self.limits = robot.limits(robot.action_joints)
        self.core: ControlCore | None = None

    def reset(self, measured: np.ndarray, now: float) -> None:
        self.delayed.reset()
        self.scheduler.reset()
        self.core = ControlCore(self.limits, self.config)
        self.core.update_state(measured, now)

    def step(self, now: float, measured: np.ndarray, observe: Callable[[], Observation]) -> StepOut:
        core = self.core
        core.update_state(measured, now)
        if self.scheduler.should_start(now, self.delayed.busy):
            self.scheduler.started(now)
            self.delayed.request(observe(), now)
        delivered = self.delayed.poll(now)
        if delivered is not None:
            chunk, latency = delivered
            core.add_chunk(chunk, now)
            self.scheduler.finished(latency, chunk.stamp)
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


def run_closed_loop(sim: ArmSim, executor: Executor, seed: int, instruction: str, *, control_rate: float = 500.0,
                    timeout: float = 20.0, record: bool = False) -> Rollout:
    """Reset the sim with ``seed`` and run until success or ``timeout`` simulated seconds."""
    robot = sim.robot
    sim.reset(seed)
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
            return Observation(now, q[state_index], {}, instruction, {"objects": objects_input(sim)})

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


def controller_executor(robot, policy: Policy, latency: float = 0.0, config: ControlConfig | None = None,
                        trigger: str = "latency_aware", execution_horizon: int = 3, chunk_dt: float = 0.1,
                        horizon: int = 10, name: str = "controller") -> ControllerExecutor:
    """A ControllerExecutor with a constant simulated latency (the common case in tests)."""
    delayed = DelayedPolicy(policy, lambda k: latency)
    scheduler = InferenceScheduler(trigger, 0.25, chunk_dt, horizon, execution_horizon, initial_latency=latency)
    return ControllerExecutor(name, robot, delayed, config or ControlConfig(), scheduler)
