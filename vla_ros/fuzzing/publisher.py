"""The fuzz publisher, a process of its own (its Python loop must not slow the monitor that measures):
``python -m vla_ros.fuzzing.publisher --robot widowx --messages 10000 --seed 0 --rate 2000 --report r.json``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import rclpy
from rclpy.node import Node
from rclpy.qos import QoSProfile
from tqdm import tqdm

from ..robots import load_robot
from .messages import Fuzzer, serialized_pool


def publish(node: Node, robot_name: str, messages: int, seed: int, rate: float, progress: bool,
            pool_size: int = 5000, shuffle: bool = False) -> dict:
    """Send ``messages`` malformed messages at up to ``rate`` per second (0: as fast as possible): the first
    ``pool_size`` distinct, then drawn from them again (each with its stamp renewed)."""
    robot = load_robot(robot_name)
    limits = robot.limits_for(robot.action_joints)
    fuzzer = Fuzzer(robot.action_joints, limits.lower, limits.upper, [c.image_topic for c in robot.cameras],
                    robot.joint_states_topic, lambda: node.get_clock().now().nanoseconds * 1e-9,
                    np.random.default_rng(seed))
    pubs = {topic: node.create_publisher(kind, topic, QoSProfile(depth=10)) for topic, kind in fuzzer.topics().items()}
    pool = serialized_pool(fuzzer, min(messages, pool_size))
    rng = np.random.default_rng(seed + 1)
    time.sleep(1.0)  # discovery: the nodes' subscriptions match before the first message
    per_topic: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    start = time.monotonic()
    for i in tqdm(range(messages), desc="fuzz", unit="msg", disable=not progress, mininterval=1.0):
        item = pool[int(rng.integers(len(pool)))] if shuffle or i >= len(pool) else pool[i]
        pubs[item.topic].publish(item.restamped(node.get_clock().now().nanoseconds * 1e-9))
        per_topic[item.topic] += 1
        kinds[":".join(item.kind.split(":")[:2])] += 1  # (topic and first property: a bounded table)
        if rate > 0:
            ahead = start + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    seconds = time.monotonic() - start
    time.sleep(0.5)  # (reliable messages still in flight reach their readers before this node goes)
    return {"messages": messages, "distinct": len(pool), "seconds": seconds, "start_monotonic": start,
            "rate": messages / max(seconds, 1e-9), "per_topic": dict(per_topic), "kinds": dict(kinds.most_common())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vla_ros.fuzzing.publisher")
    parser.add_argument("--robot", default="widowx")
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--shuffle", action="store_true", help="draw every message at random from the pool")
    ns = parser.parse_args(argv)
    rclpy.init(args=[])  # the options above are ours, not ROS arguments
    node = Node("vla_fuzzer")
    try:
        report = publish(node, ns.robot, ns.messages, ns.seed, ns.rate, progress=not ns.quiet, shuffle=ns.shuffle)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    ns.report.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
