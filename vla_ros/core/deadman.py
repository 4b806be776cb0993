"""An operator's deadman: the arm may move only while a heartbeat says someone is there (ROS-free)."""

from __future__ import annotations

import math


class Deadman:
    """Present while the last heartbeat was ``True`` and at most ``timeout`` s old (receive times: a stale or
    future stamp from the operator's device cannot keep the arm going). ``False`` (a released pedal) is absent
    at once."""

    def __init__(self, timeout: float):
        if not timeout > 0.0:
            raise ValueError(f"heartbeat timeout {timeout} must be > 0")
        self.timeout = timeout
        self.last = -math.inf  # receive time of the last True heartbeat
        self.beats = 0

    def beat(self, pressed: bool, now: float) -> None:
        self.beats += 1
        self.last = now if pressed else -math.inf

    def present(self, now: float) -> bool:
        return now - self.last <= self.timeout
