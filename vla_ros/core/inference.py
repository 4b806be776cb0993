"""The inference loop without ROS: when to infer, from which inputs, and what to do with the result.

The policy node, the closed-loop rollout in ``vla_ros.sim`` and the benchmarks all drive this class:

* **when**: :meth:`InferenceLoop.delay` asks the :class:`InferenceScheduler` (latency-aware or fixed);
* **which inputs**: :meth:`begin` claims an observation only if it is newer than the last one used
  (a second chunk from the same inputs adds nothing), and attaches the RTC prefix (the previous chunk's
  still-to-run targets, the measured delay and the execution horizon) for backends that take one;
* **the result**: :meth:`finish` checks the chunk (shape, stamp, joint names), records the latency for
  scheduling, and drops results that a pause or reset made stale (their epoch is over).

Inference itself runs wherever the caller likes: :meth:`run` calls the backend and times it (the
node's worker thread); the simulated-latency rollout calls :meth:`call` now and :meth:`finish` when
the simulated latency has passed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .chunk import ActionChunk
from .merge import prefix_for
from .observation import Observation
from .scheduling import InferenceScheduler
from .stats import RollingStats


class Backend(Protocol):
    supports_prefix: bool

    def infer(self, observation: Observation) -> ActionChunk: ...

    def reset(self) -> None: ...


@dataclass
class Request:
    """An observation claimed for one inference."""

    observation: Observation
    epoch: int
    started: float


@dataclass
class Outcome:
    """What came of a request: a chunk to publish, or why not."""

    chunk: ActionChunk | None
    latency: float
    error: str = ""  # the backend failed or its chunk was malformed
    discarded: bool = False  # paused or reset while it ran: the result belongs to an ended epoch


def call_backend(backend: Backend, observation: Observation, action_joints: list[str]) -> ActionChunk:
    """``backend.infer`` with the chunk checks every result must pass (raises ValueError/RuntimeError)."""
    chunk = backend.infer(observation)
    chunk.validate()
    if chunk.stamp != observation.stamp:
        raise ValueError(f"backend stamped its chunk {chunk.stamp} instead of the observation's {observation.stamp}")
    if list(chunk.names) != list(action_joints):
        raise ValueError(f"backend chunk names {list(chunk.names)} != action_joints {list(action_joints)}")
    return chunk


def describe(exc: BaseException) -> str:
    """A one-line reason: the message of an expected error, the type too for anything else (a bug)."""
    if isinstance(exc, (ValueError, RuntimeError)):
        return str(exc)
    return f"backend raised {type(exc).__name__}: {exc}"


class InferenceLoop:
    """Scheduling, input freshness, RTC prefix and result checks around one backend. Thread-safe."""

    def __init__(self, backend: Backend, scheduler: InferenceScheduler, action_joints: list[str],
                 chunk_dt: float, horizon: int, paused: bool = False):
        self.backend, self.scheduler = backend, scheduler
        self.action_joints = list(action_joints)
        self.times = chunk_dt * np.arange(1, horizon + 1)  # the prefix is sampled where the new chunk's targets are
        self.paused = paused
        self.epoch = 0  # bumped by pause/reset: results of an earlier epoch are discarded
        self.last_chunk: ActionChunk | None = None  # the newest published chunk (the RTC prefix source)
        self.last_stamp: float | None = None  # capture stamp of the last observation inferred from
        self.latency = RollingStats(500)
        self.counts = {"published": 0, "waited_for_new_input": 0, "skipped_busy": 0, "backend_errors": 0,
                       "discarded": 0}
        self._lock = threading.Lock()

    # -- when --------------------------------------------------------------------------------
    def delay(self, now: float) -> float:
        """Seconds until the next inference should start (<= 0: now; inf while paused)."""
        return np.inf if self.paused else self.scheduler.next_start() - now

    # -- which inputs ------------------------------------------------------------------------
    def begin(self, observation: Observation, now: float) -> Request | None:
        """Claim ``observation`` for an inference starting ``now``; None if nothing is new since the last."""
        with self._lock:
            if self.last_stamp is not None and observation.stamp <= self.last_stamp:
                self.counts["waited_for_new_input"] += 1
                return None
            self.last_stamp = observation.stamp
            previous, epoch = self.last_chunk, self.epoch
            due = self.scheduler.next_start()
            if self.scheduler.mode == "fixed" and np.isfinite(due):  # periods that passed while the backend ran
                self.counts["skipped_busy"] += max(int((now - due) / self.scheduler.period), 0)
        self.scheduler.started(now)
        if getattr(self.backend, "supports_prefix", False) and previous is not None:
            values, valid = prefix_for(previous, observation.stamp, self.times, self.action_joints)
            observation.extras["prefix"] = {"values": values, "valid": valid, "delay": self.scheduler.delay_steps(),
                                            "execution_horizon": self.scheduler.execution_horizon}
        return Request(observation, epoch, now)

    # -- the result --------------------------------------------------------------------------
    def call(self, request: Request) -> tuple[ActionChunk | None, str]:
        """Run the backend on the request: (checked chunk, "") or (None, reason). Never raises."""
        try:
            return call_backend(self.backend, request.observation, self.action_joints), ""
        except Exception as exc:  # a backend bug must not end the loop: nothing is published
            return None, describe(exc)

    def finish(self, request: Request, chunk: ActionChunk | None, latency: float, error: str = "") -> Outcome:
        """Record a finished inference; the outcome's chunk is set when it should be published."""
        with self._lock:
            current = not self.paused and request.epoch == self.epoch
            publish = chunk is not None and current
            if chunk is None:
                self.counts["backend_errors"] += 1
            elif not current:
                self.counts["discarded"] += 1
            else:
                self.last_chunk = chunk
                self.counts["published"] += 1
        if chunk is not None:
            self.latency.add(latency)
        self.scheduler.finished(latency, chunk.stamp if publish else None)
        return Outcome(chunk if publish else None, latency, error, chunk is not None and not current)

    def run(self, request: Request) -> Outcome:
        """Infer now on the calling thread, timed with the wall clock."""
        start = time.perf_counter()
        chunk, error = self.call(request)
        return self.finish(request, chunk, time.perf_counter() - start, error)

    # -- episode control ---------------------------------------------------------------------
    def pause(self) -> None:
        with self._lock:
            self.paused = True
            self.epoch += 1
        self.scheduler.reset()

    def resume(self) -> None:
        with self._lock:
            self.paused = False

    def reset(self) -> None:
        """Forget the episode: backend state, prefix, input stamps, schedule; in-flight results are dropped."""
        with self._lock:
            self.epoch += 1
            self.last_chunk = None
            self.last_stamp = None
        self.backend.reset()
        self.scheduler.reset()

    def summary(self) -> dict[str, Any]:
        """Counts and the scheduler's estimates, for diagnostics."""
        with self._lock:
            counts = dict(self.counts)
        return {**counts, "trigger": self.scheduler.mode,
                "latency_estimate_ms": self.scheduler.latency_estimate() * 1e3,
                "delay_steps": self.scheduler.delay_steps()}
