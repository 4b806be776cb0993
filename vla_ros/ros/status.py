"""``vla-ros status``: the running graph's state, read from /diagnostics (rates, latencies, holds and
their reasons, problem counts), printed for people."""

from __future__ import annotations

import time

LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}


def collect(seconds: float = 3.0) -> dict[str, dict]:
    """The newest status of every diagnostic name heard within ``seconds``: level, message, values."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile

    from .. import interfaces as io
    from .diagnostics import level_of, values_of

    rclpy.init(args=[])
    latest: dict[str, dict] = {}
    try:
        node = rclpy.create_node("vla_ros_status")

        def on_diagnostics(msg: DiagnosticArray) -> None:
            for st in msg.status:
                level = level_of(st)
                latest[st.name] = {"level": LEVELS.get(level, str(level)), "message": st.message,
                                   "values": values_of(st)}

        node.create_subscription(DiagnosticArray, io.DIAGNOSTICS, on_diagnostics, QoSProfile(depth=50))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.try_shutdown()
    return latest


def render(statuses: dict[str, dict], width: int = 100) -> str:
    """One block per status: level, name and message, then its values (problem counts last)."""
    lines = []
    for name in sorted(statuses):
        st = statuses[name]
        lines.append(f"[{st['level']}] {name}: {st['message']}")
        values = st["values"]
        plain = [f"{k}={v}" for k, v in values.items() if not k.startswith("problem_count.")]
        problems = [f"{k.split('.', 1)[1]}={v}" for k, v in values.items() if k.startswith("problem_count.")]
        for label, items in (("", plain), ("problems: ", problems)):
            line = "    " + label
            for item in items:
                if len(line) + len(item) > width and line.strip():
                    lines.append(line.rstrip())
                    line = "    " + " " * len(label)
                line += item + "  "
            if items:
                lines.append(line.rstrip())
    return "\n".join(lines)
