"""A teleoperator takes the arm mid-episode and hands it back, through the graph: the arm follows the teleop target
within its limits, the policy finishes the task after the hand-back, and the recorded bag marks the takeover span
at the times the operator engaged and released (a scripted operator in the test's process)."""

import threading
import time

import numpy as np
import pytest
from nav_msgs.msg import Path
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from support import Probe, record_diagnostics, start_graph, wait_for_nodes

from vla_ros.core.chunk import ActionChunk, HaltedError
from vla_ros.core.control import ControlConfig, ControlCore
from vla_ros.episodes import EpisodeClient, run_episode
from vla_ros.recording.bag import episode_info, read_topics
from vla_ros.robots import load_robot

pytestmark = pytest.mark.integration
ROBOT = load_robot("widowx")


def test_the_core_follows_a_teleop_target_then_only_chunks_planned_after_the_hand_back():
    limits = ROBOT.limits_for(ROBOT.action_joints)
    core = ControlCore(limits, ControlConfig(rate=500.0))
    home = np.array([0.0, -0.5, 0.4, 0.0, 1.2, 0.0, 0.03])
    t = 10.0
    core.update_state(home, t)
    assert core.set_takeover(True, t) and not core.set_takeover(True, t)
    assert core.tick(t).reason.startswith("teleop: no fresh target")  # engaged, nothing to follow: hold
    target = home + np.array([0.3, 0, 0, 0, 0, 0, 0])
    core.teleop(["waist"], np.array([0.3]), t)  # a subset: the others keep their command
    with pytest.raises(HaltedError, match="teleoperator"):
        core.add_chunk(ActionChunk.uniform(t, ROBOT.action_joints, np.tile(home, (5, 1)), 0.1), t)
    steps = []
    for k in range(1, 1001):
        now = t + k / 500.0
        core.update_state(core.command, now)
        core.teleop(["waist"], np.array([0.3]), now)
        before = core.command.copy()
        result = core.tick(now)
        steps.append(np.abs(result.command - before) / limits.velocity * 500.0)
    assert result.reason == "teleop" and np.allclose(core.command, target, atol=1e-4)
    assert max(s.max() for s in steps) <= 1.0 + 1e-9  # never above one tick of the velocity limit
    t += 2.0
    assert core.set_takeover(False, t)
    with pytest.raises(HaltedError, match="before the hand-back"):  # planned while the operator drove
        core.add_chunk(ActionChunk.uniform(t - 0.05, ROBOT.action_joints, np.tile(home, (5, 1)), 0.1), t)
    core.add_chunk(ActionChunk.uniform(t + 0.001, ROBOT.action_joints, np.tile(home, (5, 1)), 0.1), t + 0.002)
    assert not core.tick(t + 0.004).holding


def test_a_takeover_mid_episode_is_followed_handed_back_and_recorded(ros, tmp_path):
    probe = Probe("takeover_probe")
    record_diagnostics(probe)
    probe.record("/vla/controller/state", JointState, 4000)
    probe.record("/arm_controller/commands", Float64MultiArray, 20000)
    probe.record("/vla/planned_path", Path, 200)
    engage = probe.create_publisher(Bool, "/vla/teleop/engage", 10)
    teleop = probe.create_publisher(JointState, "/vla/teleop/joint_command", 10)
    bags = tmp_path / "bags"
    graph = start_graph(tmp_path, policy="scripted", record="true", record_dir=str(bags),
                        overrides={"policy_node": {"start_paused": True}})
    operator: dict = {}

    def operate() -> None:
        """Take the arm 0.3 s after the policy has moved it 0.05 rad, lift the shoulder 0.25 rad from where it was,
        hand back after 1 s."""
        began = time.time()
        home = None
        while time.time() - began < 15.0:
            got = probe.messages("/vla/controller/state", began)
            if got:
                q = np.array(got[-1].msg.position)
                home = q if home is None else home
                if np.abs(q - home).max() > 0.05:
                    break
            time.sleep(0.01)
        time.sleep(0.3)
        start = probe.messages("/vla/controller/state")[-1].msg
        q = dict(zip(start.name, start.position))
        operator["engaged"] = time.time()
        engage.publish(Bool(data=True))
        for k in range(50):  # 50 Hz, a leader arm's rate
            target = JointState(name=["shoulder"], position=[q["shoulder"] - 0.25 * min(1.0, k / 25)])
            target.header.stamp = probe.get_clock().now().to_msg()  # (a leader arm stamps its samples)
            teleop.publish(target)
            time.sleep(0.02)
        operator["target"] = q["shoulder"] - 0.25
        operator["released"] = time.time()
        engage.publish(Bool(data=False))

    try:
        with probe.guest(EpisodeClient(ROBOT.action_joints, None, max_frames=0)) as client:
            wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node", "recorder_node"])
            others = probe.get_publishers_info_by_topic("/vla/controller/state")
            assert len(others) == 1, [(i.node_name, i.node_namespace) for i in others]  # (no other graph's)
            # the operator's devices are matched with the controller and the recorder before anyone touches them
            probe.wait_for(lambda: engage.get_subscription_count() >= 2 and teleop.get_subscription_count() >= 2,
                           10.0, "the teleop topics matched")
            thread = threading.Thread(target=operate)
            thread.start()
            episode = run_episode(client, 0, seed=4, timeout=20.0, instruction="pick up the red cube", record=True)
            thread.join(5.0)
            assert "released" in operator, "the scripted operator did not finish"
    finally:
        code = graph.stop()
        probe.close()
    assert code == 0 and episode.success, graph.log_path.read_text()[-3000:]
    # the arm followed the operator: at the release its commanded shoulder was at the operator's target
    states = [(r.msg.header.stamp.sec + r.msg.header.stamp.nanosec * 1e-9, r.msg)  # (stamped when commanded)
              for r in probe.messages("/vla/controller/state")]
    at_release = [m for t, m in states if t <= operator["released"]][-1]
    teleop_lines = [x for x in graph.log_path.read_text().splitlines() if "teleop" in x or "ERROR" in x]
    shoulder = [(round(t - operator["engaged"], 3), round(dict(zip(m.name, m.position))["shoulder"], 3))
                for t, m in states if operator["engaged"] - 0.1 <= t <= operator["released"] + 0.1][::10]
    assert dict(zip(at_release.name, at_release.position))["shoulder"] == pytest.approx(operator["target"], abs=0.02), \
        (teleop_lines, shoulder, operator)
    # every command, tick by tick (500 Hz): no step above one tick of the controller's velocity limit, in the
    # takeover, the hand-back and the rest of the episode (the hand-back's figure printed below)
    sent = probe.messages("/arm_controller/commands")
    per_tick = ROBOT.limits_for(ROBOT.arm_joints).velocity / 500.0
    steps = [(b.source, np.max(np.abs(np.subtract(b.msg.data, a.msg.data)) / per_tick))
             for a, b in zip(sent, sent[1:]) if b.seq == a.seq + 1]
    assert len(steps) > 500 and max(r for _, r in steps) <= 1.0 + 1e-6, max(steps, key=lambda x: x[1])
    ratios = [r for t, r in steps if operator["released"] - 0.2 <= t <= operator["released"] + 1.5]
    # the bag: one takeover span at the operator's times (DDS and one control tick apart)
    info = episode_info(episode.bag)
    (start_ns, end_ns), = info["interventions_ns"]
    assert start_ns * 1e-9 == pytest.approx(operator["engaged"], abs=0.05)
    assert end_ns * 1e-9 == pytest.approx(operator["released"], abs=0.05)
    marks = read_topics(episode.bag, ["/vla/controller/intervention"])["/vla/controller/intervention"]
    assert [m.active for _, m in marks] == [True, False]
    assert [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for _, m in marks] == [start_ns, end_ns]
    print(f"takeover: span starts {(start_ns * 1e-9 - operator['engaged']) * 1e3:+.1f} ms and ends "
          f"{(end_ns * 1e-9 - operator['released']) * 1e3:+.1f} ms from the operator's engage/release; shoulder "
          f"{abs(dict(zip(at_release.name, at_release.position))['shoulder'] - operator['target']):.4f} rad from "
          f"the target at release; hand-back steps at most {max(ratios, default=0):.3f} of one tick's velocity limit")
    # the policy's planned tool paths (RViz / Foxglove): in the base frame, the start and each target of a chunk
    paths = [r.msg for r in probe.messages("/vla/planned_path")]
    assert paths and all(p.header.frame_id == ROBOT.base_link and len(p.poses) == 11 for p in paths)
    reach = [np.linalg.norm([q.pose.position.x, q.pose.position.y]) for p in paths for q in p.poses]
    assert 0.05 < min(reach) and max(reach) < 0.7  # (a WidowX 250's reach)
    counts = probe.diagnostics("controller_node")[-1]
    assert counts["takeovers"] == "1" and counts["handbacks"] == "1"
