"""What every output adapter shares: the driver's command rate, "is anyone listening", and start-up set-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile

from .. import interfaces as io
from ..core.control import ControlCore, TickResult

COMMAND_QOS = QoSProfile(depth=io.COMMAND_QOS_DEPTH)


class Output:
    """An output adapter: ``publish`` is called every control tick and sends one command every ``divider``
    control periods of time (a late loop does not lower the driver's rate); ``joints`` are the controller joints
    it commands; ``missing`` names the endpoints nobody serves (a topic without a subscriber, an absent action
    server)."""

    divider = 1
    joints: list[str] = []
    publishers: list = []
    _due: float | None = None

    def publish(self, result: TickResult, core: ControlCore, now: float, tick: int) -> None:
        if self.divider > 1:
            period = core.period * self.divider
            due = self._due
            if due is not None and now < due - 0.5 * core.period and due - now < 2.0 * period:
                return
            self._due = due + period if due is not None and abs(now - due) < period else now + period
        self.send(result, core, now)

    def send(self, result: TickResult, core: ControlCore, now: float) -> None:
        raise NotImplementedError

    def missing(self) -> list[str]:
        return [f"{p.topic_name} (no subscriber)" for p in self.publishers if p.get_subscription_count() == 0]


@dataclass
class SetupStep:
    """One service call of a driver's start-up set-up: ``what`` it does, for the log."""

    service: str
    srv_type: type
    request: Any
    what: str
    check: Callable[[Any], str] | None = None  # the response -> "" if fine, else why not


class DriverSetup:
    """Runs set-up steps in order from a timer, one call at a time, never blocking the executor.

    A service absent for ``timeout`` s is reported in ``failed`` (the controller refuses to stream, with an
    ERROR) while the set-up keeps waiting for it; a failed call or a refused response fails the set-up for
    good. Each step is logged as it completes."""

    def __init__(self, node: Node, steps: list[SetupStep], log: Callable[[str], None], timeout: float = 5.0):
        self.node, self.steps, self.log, self.timeout = node, list(steps), log, timeout
        self.index = 0
        self.failed = ""
        self.final = False  # failed for good (a refused call), not just waiting for a service
        self._future = None
        self._client = None
        self._waiting_since: float | None = None
        self._timer = node.create_timer(0.05, self._step) if steps else None

    @property
    def done(self) -> bool:
        return self.index >= len(self.steps) and not self.failed

    @property
    def running(self) -> bool:
        return not self.done and not self.final

    def _now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def _fail(self, why: str) -> None:
        self.failed, self.final = why, True
        self._timer.cancel()

    def _step(self) -> None:
        if self.final or self.index >= len(self.steps):
            if self._timer is not None:
                self._timer.cancel()
            return
        step = self.steps[self.index]
        if self._future is None:
            if self._client is None:
                self._client = self.node.create_client(step.srv_type, step.service)
                self._waiting_since = self._now()
            if not self._client.service_is_ready():
                if self._now() - self._waiting_since > self.timeout:
                    self.failed = (f"driver set-up: service {step.service} is not available after "
                                   f"{self.timeout:.0f} s (to {step.what}): is the driver running? "
                                   "(driver_setup:=false skips the set-up)")
                return
            self.failed = ""
            self._future = self._client.call_async(step.request)
            return
        if not self._future.done():
            return
        try:
            response = self._future.result()
            why = step.check(response) if step.check else ""
        except Exception as exc:  # noqa: BLE001 (a failed call fails the set-up, with its reason)
            why = f"{type(exc).__name__}: {exc}"
        self.node.destroy_client(self._client)
        self._client = self._future = None
        if why:
            self._fail(f"driver set-up: {step.service} refused to {step.what}: {why}")
            return
        self.log(f"driver set-up {self.index + 1}/{len(self.steps)}: {step.what} ({step.service})")
        self.index += 1
