"""joint_state_relay: per-arm driver joint states -> the preset's one joint_states topic (names prefixed).

Runs in the graph when the preset lists ``joint_state_sources`` (ALOHA: /follower_left/joint_states and
/follower_right/joint_states, unprefixed names). A merged message goes out on each source message while
every source is fresh (``max_age``); a silent or stale source stops the output (the policy and controller
nodes then see stale joint states and hold), reported on /diagnostics.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import JointState

from .. import interfaces as io
from ..core.joint_merge import JointStateMerger
from ..core.problems import ProblemTracker
from ..params import RELAY_PARAMS
from ..robots import load_robot
from . import diagnostics as diag
from .conversions import to_sec, to_time
from .inputs import sized_subscription
from .node_main import QuietLogger, run
from .param_util import choice_guard, declare


class JointStateRelay(Node):
    def __init__(self) -> None:
        super().__init__("joint_state_relay")
        p = self.p = declare(self, RELAY_PARAMS)
        self.add_on_set_parameters_callback(choice_guard(RELAY_PARAMS))
        self.robot = load_robot(p["robot"])
        sources = self.robot.joint_state_sources
        if not sources:
            raise ValueError(f"robot {self.robot.name!r} lists no joint_state_sources to relay")
        self.log = QuietLogger(self)
        self.problems = ProblemTracker(self.log.error, self.log.info)
        self.merger = JointStateMerger([s.prefix for s in sources], p["max_age"])
        self.counts = {"published": 0, "malformed": 0, "waiting": 0}
        self.pub = self.create_publisher(JointState, self.robot.joint_states_topic, QoSProfile(depth=10))
        for i, source in enumerate(sources):
            sized_subscription(self, JointState, source.topic, lambda msg, i=i: self._on_part(i, msg),
                               qos_profile_sensor_data, io.MAX_JOINT_STATE_BYTES, self.problems,
                               f"size:{source.topic}")
        self.started = self.now()  # missing sources are awaited (INFO) until input_timeout, then an ERROR
        self._told_waiting = False
        self.diag_pub = self.create_publisher(DiagnosticArray, io.DIAGNOSTICS, QoSProfile(depth=10))
        self.create_timer(p["diagnostics_period"], self._publish_diagnostics)
        self.get_logger().info(f"relaying {[s.topic for s in sources]} into {self.robot.joint_states_topic} "
                               f"(prefixes {[s.prefix for s in sources]})")

    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_part(self, index: int, msg: JointState) -> None:
        topic = self.robot.joint_state_sources[index].topic
        try:
            self.merger.update(index, to_sec(msg.header.stamp), list(msg.name), msg.position, msg.velocity,
                               msg.effort)
        except ValueError as exc:
            self.counts["malformed"] += 1
            self.problems.report(f"malformed:{topic}", f"{topic}: message dropped: {exc}", self.now())
            return
        now = self.now()
        merged = self.merger.merged(now)
        if merged is None:
            self.counts["waiting"] += 1
            return
        out = JointState(name=merged.names, position=merged.position, velocity=merged.velocity,
                         effort=merged.effort)
        out.header.stamp = to_time(merged.stamp)
        self.pub.publish(out)
        self.counts["published"] += 1

    def _publish_diagnostics(self) -> None:
        now = self.now()
        sources = self.robot.joint_state_sources
        missing = [sources[i].topic for i in self.merger.missing(now)]
        if missing and now - self.started < self.p["input_timeout"]:  # the drivers are still starting
            if not self._told_waiting:
                self.log.info(f"waiting for joint states from {missing}")
                self._told_waiting = True
        elif missing:
            self.problems.report("stale", f"no fresh joint states from {missing} (max_age {self.p['max_age']} s): "
                                 f"nothing relayed", now)
        else:
            self.problems.resolve("stale")
        self.diag_pub.publish(diag.node_report(to_time(now), f"{self.get_name()}: relay", self.robot.name,
                                               self.problems, now, "relaying", {**self.counts,
                                                                                "stale_sources": len(missing)}))


def main(args: list[str] | None = None) -> int:
    return run(JointStateRelay, args=args)


if __name__ == "__main__":
    raise SystemExit(main())
