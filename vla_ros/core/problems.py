"""Report each kind of bad input once (not a flood), count repeats, and tell when it clears."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
MESSAGES_PER_KEY = 8  # distinct messages logged for one key while it is active; more are only counted
MAX_KEYS = 64  # keys tracked separately; any further key is counted under OTHER
MAX_MESSAGE = 300  # characters of a message kept and logged
OTHER = "other"
LINES_PER_WINDOW = 8  # log lines per key (problems and recoveries together) per window
WINDOW = 10.0  # seconds (monotonic)


class LogBudget:
    """At most ``lines`` log lines per key per ``window`` seconds; the first line after a quiet spell
    says how many were held back. Bounds a problem that comes and goes (each time new, then recovered)."""

    def __init__(self, lines: int = LINES_PER_WINDOW, window: float = WINDOW, clock=time.monotonic):
        self.lines, self.window, self.clock = lines, window, clock
        self._spent: dict[str, tuple[float, int, int]] = {}  # key -> (window start, lines, held back)
        self._lock = threading.Lock()

    def take(self, key: str) -> str | None:
        """None when ``key`` has no line left in this window; else a suffix for the line ('' or the count
        of lines held back since the last one)."""
        now = self.clock()
        with self._lock:
            start, used, held = self._spent.get(key, (now, 0, 0))
            if now - start >= self.window:
                start, used = now, 0
            if used >= self.lines:
                self._spent[key] = (start, used, held + 1)
                return None
            if len(self._spent) >= 4 * MAX_KEYS and key not in self._spent:
                self._spent.clear()  # (bounded: forgetting windows only lets a few more lines through)
            self._spent[key] = (start, used + 1, 0)
        return f" [{held} similar line(s) not logged]" if held else ""


def signature(message: str) -> str:
    """A message with its numbers masked: one log per kind of problem, not per value."""
    return _NUMBER.sub("#", message)


@dataclass
class Problem:
    message: str
    count: int
    first: float
    last: float
    seen: set[str] = field(default_factory=set)


class ProblemTracker:
    """Keyed problems, logged on the first occurrence of each kind of message and on recovery.

    Bounded whatever the input: at most ``MESSAGES_PER_KEY`` lines per key until it clears (messages that
    differ in their words, e.g. a list of joint names, are new kinds only up to that cap), ``MAX_KEYS``
    keys, messages cut to ``MAX_MESSAGE`` characters.

    Thread-safe: inputs, worker threads and the diagnostics timer report and read concurrently.
    """

    def __init__(self, log_error: Callable[[str], None], log_info: Callable[[str], None] | None = None,
                 clear_after: float = 2.0):
        self._log_error = log_error
        self._log_info = log_info or log_error
        self.clear_after = clear_after
        self.active: dict[str, Problem] = {}
        self.totals: dict[str, int] = {}
        self.budget = LogBudget()
        self._lock = threading.RLock()

    def report(self, key: str, message: str, now: float) -> bool:
        """Record a problem; returns True (and logs) when this kind of message is new for the key."""
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "..."
        with self._lock:
            if key not in self.totals and len(self.totals) >= MAX_KEYS:
                key = OTHER
            self.totals[key] = self.totals.get(key, 0) + 1
            prob = self.active.setdefault(key, Problem(message, 0, now, now))
            prob.count += 1
            prob.last = now
            prob.message = message
            sig = signature(message)
            if sig in prob.seen or len(prob.seen) >= MESSAGES_PER_KEY:
                return False
            prob.seen.add(sig)
        suffix = self.budget.take(key)
        if suffix is not None:
            self._log_error(f"{message} (reported once; see /diagnostics for counts){suffix}")
        return True

    def resolve(self, key: str) -> None:
        with self._lock:
            prob = self.active.pop(key, None)
        if prob is not None:
            suffix = self.budget.take(key)
            if suffix is not None:
                self._log_info(f"recovered: {key} after {prob.count} occurrence(s){suffix}")

    def expire(self, now: float) -> None:
        """Clear problems not seen for ``clear_after`` seconds."""
        with self._lock:
            stale = [k for k, p in self.active.items() if now - p.last > self.clear_after]
        for key in stale:
            self.resolve(key)

    def messages(self) -> list[str]:
        with self._lock:
            return [f"{k}: {p.message} (x{p.count})" for k, p in self.active.items()]

    def counts(self) -> dict[str, int]:
        """Occurrences of every key ever reported (a snapshot)."""
        with self._lock:
            return dict(self.totals)
