"""Execution strategies of other projects, for comparison in the chunk-execution benchmark.

* openpi-client's ``ActionChunkBroker`` (the real class): synchronous, the robot waits for every
  inference, then executes ``action_horizon`` actions at the policy rate (zero-order hold).
* A LeRobot-style asynchronous action queue (written from LeRobot's documented behaviour, not its
  code): one action per policy step; a new observation is sent when the queue is at most ``threshold``
  full; on arrival, actions already executed are dropped, overlapping steps are aggregated with
  ``weighted_average`` (0.3 old + 0.7 new) and the rest appended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from vla_ros.core.chunk import ActionChunk
from vla_ros.core.observation import Observation
from vla_ros.policies.base import Policy
from vla_ros.sim.rollout import StepOut


class DelayedPolicy:
    """The baselines' own inference: the k-th request gets latency ``latencies[k]`` and perturbation
    ``perturb(k, chunk)`` (the same sequences as this package's loop in the benchmark)."""

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


class _PolicyAdapter:
    """openpi BasePolicy over a DelayedPolicy: infer() returns {"actions": (H, D)} and notes the latency."""

    def __init__(self, delayed: DelayedPolicy):
        self.delayed = delayed
        self.last_latency: float | None = None

    def infer(self, obs: dict) -> dict:
        self.delayed.request(obs["observation"], obs["now"])
        chunk, latency = self.delayed.poll(np.inf)
        self.last_latency = latency
        return {"actions": chunk.values}

    def reset(self) -> None:
        self.delayed.reset()


class OpenpiBrokerExecutor:
    name = "openpi ActionChunkBroker"

    def __init__(self, delayed: DelayedPolicy, action_horizon: int, dt: float, limits):
        from openpi_client.action_chunk_broker import ActionChunkBroker

        self.adapter = _PolicyAdapter(delayed)
        self.broker = ActionChunkBroker(self.adapter, action_horizon)
        self.dt, self.limits = dt, limits

    def reset(self, measured: np.ndarray, now: float) -> None:
        self.broker.reset()
        self.command = self.limits.clip(measured)
        self.next_step = now
        self.waiting_until: float | None = None
        self.pending_action: np.ndarray | None = None

    def step(self, now: float, measured: np.ndarray, observe: Callable[[], Observation]) -> StepOut:
        if self.waiting_until is not None:  # the runtime is blocked inside infer()
            if now < self.waiting_until - 1e-9:
                return StepOut(self.command.copy(), False, False)
            self.waiting_until = None
            self.command = self.limits.clip(self.pending_action)
            self.next_step = now + self.dt
            return StepOut(self.command.copy(), True, True)
        if now < self.next_step - 1e-9:
            return StepOut(self.command.copy(), True, False)
        self.adapter.last_latency = None
        action = self.broker.infer({"observation": observe(), "now": now})["actions"]
        if self.adapter.last_latency is not None:  # a new chunk was computed: the robot waited for it
            self.waiting_until, self.pending_action = now + self.adapter.last_latency, action
            return StepOut(self.command.copy(), False, False)
        self.command = self.limits.clip(action)
        self.next_step = now + self.dt
        return StepOut(self.command.copy(), True, False)


class LerobotQueueExecutor:
    name = "LeRobot-style queue (weighted_average, 0.5)"

    def __init__(self, delayed: DelayedPolicy, dt: float, horizon: int, limits, threshold: float = 0.5,
                 old_weight: float = 0.3):
        self.delayed, self.dt, self.horizon, self.limits = delayed, dt, horizon, limits
        self.threshold, self.old_weight = threshold, old_weight

    def reset(self, measured: np.ndarray, now: float) -> None:
        self.delayed.reset()
        self.command = self.limits.clip(measured)
        self.queue: dict[int, np.ndarray] = {}  # timestep -> action (timestep j runs from t0 + j dt)
        self.next_index = 0
        self.t0 = now
        self.stalled = False

    def step(self, now: float, measured: np.ndarray, observe: Callable[[], Observation]) -> StepOut:
        switched = False
        delivered = self.delayed.poll(now)
        if delivered is not None:
            chunk, _ = delivered
            for due, action in zip(chunk.absolute_times, chunk.values):
                j = int(round((due - self.t0) / self.dt)) - 1  # the step whose target is due at `due`
                if j < self.next_index:
                    continue  # already executed
                old = self.queue.get(j)
                self.queue[j] = action if old is None else self.old_weight * old + (1 - self.old_weight) * action
            switched = True
        if now >= self.t0 + self.next_index * self.dt - 1e-9:  # a step of the policy-rate loop
            action = self.queue.pop(self.next_index, None)
            self.stalled = action is None  # queue empty: the robot holds its last command
            if action is not None:
                self.command = self.limits.clip(action)
            self.next_index += 1
            self.queue = {j: a for j, a in self.queue.items() if j >= self.next_index}
        if not self.delayed.busy and len(self.queue) / self.horizon <= self.threshold:
            self.delayed.request(observe(), now)
        return StepOut(self.command.copy(), not self.stalled, switched)
