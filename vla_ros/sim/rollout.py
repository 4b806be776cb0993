"""ROS-free closed loop: sim physics + control core + a policy, in simulated time.

Used by tests and benchmarks to check the task and execution strategies without DDS timing noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..core.control import ControlConfig, ControlCore
from ..core.observation import Observation
from ..policies.base import Policy
from .physics import ArmSim


@dataclass
class Rollout:
    success: bool
    duration: float
    chunks: int
    times: list[float] = field(default_factory=list)
    commands: list[np.ndarray] = field(default_factory=list)
    measured: list[np.ndarray] = field(default_factory=list)


def objects_input(sim: ArmSim) -> dict[str, dict[str, np.ndarray]]:
    """The sim's object poses in the form the policy node builds from /sim/objects."""
    return {n: {"position": p.position, "orientation": p.quat_wxyz, "size": p.size, "rgba": p.rgba}
            for n, p in sim.object_poses().items()}


def run_closed_loop(sim: ArmSim, policy: Policy, seed: int, instruction: str, *, control_rate: float = 200.0,
                    inference_period: float = 0.25, timeout: float = 20.0,
                    config: ControlConfig | None = None, record: bool = False) -> Rollout:
    """Reset the sim with ``seed`` and run until success or ``timeout`` simulated seconds."""
    robot = sim.robot
    sim.reset(seed)
    policy.reset()
    limits = robot.limits(robot.action_joints)
    core = ControlCore(limits, config or ControlConfig(rate=control_rate))
    period = 1.0 / control_rate
    substeps = max(1, int(round(period / sim.dt)))
    groups = {c.name: [limits.names.index(j) for j in c.joints if j in limits.names] for c in robot.controllers}
    state_index = [sim.joint_names.index(j) for j in robot.state_joints]
    action_index = [sim.joint_names.index(j) for j in limits.names]
    t0 = sim.time
    next_inference = t0
    out = Rollout(False, 0.0, 0)
    while sim.time - t0 < timeout:
        now = sim.time
        q = sim.positions()
        core.update_state(q[action_index], now)
        if now >= next_inference - 1e-9:
            obs = Observation(now, q[state_index], {}, instruction, {"objects": objects_input(sim)})
            core.add_chunk(policy.infer(obs), now)
            out.chunks += 1
            next_inference += inference_period
        tick = core.tick(now)
        for name, idx in groups.items():
            sim.set_forward_command(name, tick.command[idx])
        if record:
            out.times.append(now - t0)
            out.commands.append(tick.command.copy())
            out.measured.append(q[action_index])
        sim.step(substeps)
        if sim.task.success:
            out.success = True
            break
    out.duration = sim.time - t0
    return out
