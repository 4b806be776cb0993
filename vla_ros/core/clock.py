"""Clock jumps: ROS time stepping back (a simulator or bag restarted under ``use_sim_time``, a system clock
set back) or leaping forward. Stamped plans and inputs from before a jump mean nothing after it."""

from __future__ import annotations

FORWARD_JUMP = 1.0  # s between two reads of a clock read every few ms: not time passing, a jump
BACKWARD_JUMP = 1e-3  # s: time never runs backwards; more than rounding is a jump


class ClockJumps:
    """Compares each read of a clock with the previous one."""

    def __init__(self, forward: float = FORWARD_JUMP, backward: float = BACKWARD_JUMP):
        self.forward, self.backward = forward, backward
        self.last: float | None = None
        self.count = 0

    def check(self, now: float) -> float:
        """The jump since the previous read (s, signed), or 0.0 where time ran normally. A zero time is no
        time: ROS time under use_sim_time before the first /clock (its arrival is not a jump)."""
        last, self.last = self.last, now
        if last is None or last <= 0.0 or now <= 0.0 or -self.backward <= now - last <= self.forward:
            return 0.0
        self.count += 1
        return now - last
