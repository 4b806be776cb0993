"""Helpers for diagnostic_msgs."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from ..core.problems import ProblemTracker

OK, WARN, ERROR, STALE = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE)


def status(name: str, hardware_id: str, level: int, message: str, values: dict[str, object]) -> DiagnosticStatus:
    """A status with float values printed to 4 significant digits."""

    def fmt(v: object) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=fmt(v)) for k, v in values.items()])


def values_of(msg: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in msg.values}


def level_of(msg: DiagnosticStatus) -> int:
    """The status level as an int (rclpy gives the byte field as bytes)."""
    return int.from_bytes(msg.level, "little") if isinstance(msg.level, bytes) else int(msg.level)


def node_report(stamp: Time, name: str, hardware_id: str, problems: ProblemTracker, now: float, healthy_message: str,
                values: dict[str, object], error: bool = False) -> DiagnosticArray:
    """One node's status: WARN with the active problems (cleared after a quiet period), their counts,
    and ``values``; OK with ``healthy_message`` otherwise; ERROR with ``error`` (what is wrong stops the robot)."""
    problems.expire(now)
    values = {**values, **{f"problem_count.{k}": c for k, c in problems.counts().items()}}
    active = problems.messages()
    level = ERROR if error else WARN if active else OK
    msg = DiagnosticArray()
    msg.header.stamp = stamp
    msg.status = [status(name, hardware_id, level, "; ".join(active) or healthy_message, values)]
    return msg
