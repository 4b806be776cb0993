"""Checks every node applies to incoming joint states (one message per kind of problem, then counts)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from rclpy.subscription import Subscription
from sensor_msgs.msg import JointState

from ..core.problems import ProblemTracker
from .conversions import joint_positions, to_sec


def checked_joint_state(msg: JointState, names: list[str], problems: ProblemTracker, now: float,
                        zero_stamp_is_now: bool) -> tuple[np.ndarray, float] | None:
    """Positions in ``names`` order and the stamp, or None (reported) when joints are missing or not
    finite. A zero stamp is replaced by the receive time when ``zero_stamp_is_now``, else rejected."""
    q, missing = joint_positions(msg, names)
    if missing:
        problems.report("joint_states:missing", f"joint_states lack joints {missing}", now)
        return None
    if not np.all(np.isfinite(q)):
        bad = [n for n, v in zip(names, q) if not np.isfinite(v)]
        problems.report("joint_states:nan", f"joint_states contain NaN/inf for {bad}; ignored", now)
        return None
    stamp = to_sec(msg.header.stamp)
    if stamp <= 0:
        if not zero_stamp_is_now:
            problems.report("joint_states:stamp", "joint_states have a zero stamp; ignored", now)
            return None
        problems.report("joint_states:stamp", "joint_states have a zero stamp; using receive time", now)
        stamp = now
    return q, stamp


def sized_subscription(node: Node, msg_type, topic: str, callback: Callable, qos, max_bytes: int,
                       problems: ProblemTracker, key: str) -> Subscription:
    """A subscription that drops (and reports under ``key``) any message whose serialized size exceeds
    ``max_bytes`` before deserializing it; the rest reach ``callback`` as messages."""

    def on_raw(data: bytes) -> None:
        if len(data) > max_bytes:
            problems.report(key, f"{topic}: a message of {len(data)} bytes dropped unread (max {max_bytes})",
                            node.get_clock().now().nanoseconds * 1e-9)
            return
        callback(deserialize_message(data, msg_type))

    return node.create_subscription(msg_type, topic, on_raw, qos, raw=True)
