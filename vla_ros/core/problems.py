"""Report each kind of bad input once (not a flood), count repeats, and tell when it clears."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class Problem:
    message: str
    count: int
    first: float
    last: float


class ProblemTracker:
    """Keyed problems with a log callback called only on the first occurrence and on recovery."""

    def __init__(self, log_error: Callable[[str], None], log_info: Callable[[str], None] | None = None,
                 clear_after: float = 2.0):
        self._log_error = log_error
        self._log_info = log_info or log_error
        self.clear_after = clear_after
        self.active: dict[str, Problem] = {}
        self.totals: dict[str, int] = {}

    def report(self, key: str, message: str, now: float) -> bool:
        """Record a problem; returns True (and logs) when it is new or had cleared."""
        self.totals[key] = self.totals.get(key, 0) + 1
        prob = self.active.get(key)
        if prob is not None:
            prob.count += 1
            prob.last = now
            prob.message = message
            return False
        self.active[key] = Problem(message, 1, now, now)
        self._log_error(f"{message} (reported once; see /diagnostics for counts)")
        return True

    def resolve(self, key: str) -> None:
        prob = self.active.pop(key, None)
        if prob is not None:
            self._log_info(f"recovered: {key} after {prob.count} occurrence(s)")

    def expire(self, now: float) -> None:
        """Clear problems not seen for ``clear_after`` seconds."""
        for key in [k for k, p in self.active.items() if now - p.last > self.clear_after]:
            self.resolve(key)

    def messages(self) -> list[str]:
        return [f"{k}: {p.message} (x{p.count})" for k, p in self.active.items()]
