"""Per-arm joint states merged into the preset's one topic: the merger, and the relay node over DDS."""

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from vla_ros.core.joint_merge import JointStateMerger
from vla_ros.graph import GraphArgs, build_graph
from vla_ros.robots import load_robot

ARM = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper", "left_finger",
       "right_finger"]


def test_the_merger_prefixes_each_source_and_waits_for_all_of_them_fresh():
    merger = JointStateMerger(["left_", "right_"], max_age=0.1)
    merger.update(0, 10.00, ["waist", "left_finger"], [0.1, 0.05], [1.0, 0.0])
    assert merger.merged(10.01) is None and merger.missing(10.01) == [1]
    merger.update(1, 10.02, ["waist", "left_finger"], [-0.2, 0.04])
    m = merger.merged(10.03)
    assert m.names == ["left_waist", "left_left_finger", "right_waist", "right_left_finger"]
    assert m.position == [0.1, 0.05, -0.2, 0.04] and m.velocity == [1.0, 0.0, 0.0, 0.0]
    assert m.stamp == 10.00  # as old as its oldest part
    assert merger.merged(10.105) is None and merger.missing(10.105) == [0]  # the left part is stale
    with pytest.raises(ValueError, match="non-finite"):
        merger.update(1, 10.2, ["waist"], [float("nan")])
    assert merger.parts[1].stamp == 10.02  # a malformed message leaves the last good part


def test_the_aloha_graph_runs_the_relay_for_its_per_arm_drivers():
    names = [n.name for n in build_graph(GraphArgs(robot="aloha", sim="none", policy="pi0"), check=False)]
    assert names == ["joint_state_relay", "policy_node", "controller_node"]
    assert "joint_state_relay" not in [n.name for n in build_graph(GraphArgs(robot="widowx", policy="scripted"))]


def _relay(*params: str) -> subprocess.Popen:
    args = [a for p in ("robot:=aloha", *params) for a in ("-p", p)]
    return subprocess.Popen([sys.executable, "-m", "vla_ros.ros.entry", "joint_state_relay", "--ros-args", *args],
                            env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.integration
def test_the_relay_waits_quietly_for_the_drivers_then_reports_them_missing(ros):
    """Start-up: sources not there yet are awaited (INFO) until input_timeout, as the other nodes do."""
    from support import Probe, record_diagnostics

    probe = Probe("relay_start_probe")
    record_diagnostics(probe)
    proc = _relay("input_timeout:=3.0")
    try:
        probe.wait_for(lambda: probe.diagnostics("joint_state_relay"), 30, "the relay")
        first = probe.now()
        time.sleep(1.0)
        assert all(d["_level"] == 0 for d in probe.diagnostics("joint_state_relay")), "an error while starting"
        probe.wait_for(lambda: any("no fresh joint states" in d["_message"]
                                   for d in probe.diagnostics("joint_state_relay", first)), 6, "the missing report")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        probe.close()
    lines = out.splitlines()
    stamp = {key: next(float(x.split("] [")[1]) for x in lines if key in x)
             for key in ("relaying", "waiting for joint states from", "[ERROR]")}
    assert stamp["relaying"] <= stamp["waiting for joint states from"] < stamp["[ERROR]"], out
    assert stamp["[ERROR]"] - stamp["relaying"] >= 2.5, out  # not before input_timeout (3 s, checked every 1 s)


@pytest.mark.integration
def test_the_relay_node_merges_both_followers_and_stops_when_one_goes_quiet(ros):
    from support import Probe, record_diagnostics

    robot = load_robot("aloha")
    probe = Probe("relay_probe")
    record_diagnostics(probe)
    probe.record("/joint_states", JointState, 200)
    pubs = [probe.create_publisher(JointState, s.topic, 10) for s in robot.joint_state_sources]
    proc = _relay("input_timeout:=0.0")
    try:
        def publish(arms: list[int], seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for k in arms:
                    msg = JointState(name=ARM, position=[0.1 * (k + 1)] * len(ARM))
                    msg.header.stamp = probe.get_clock().now().to_msg()
                    pubs[k].publish(msg)
                time.sleep(0.02)

        probe.wait_for(lambda: probe.diagnostics("joint_state_relay") or publish([0, 1], 0.2), 30, "the relay")
        since = probe.now()
        publish([0, 1], 1.0)
        merged = probe.messages("/joint_states", since)
        assert len(merged) > 20
        msg = merged[-1].msg
        assert set(robot.state_joints) <= set(msg.name)
        pos = dict(zip(msg.name, msg.position))
        assert pos["left_waist"] == pytest.approx(0.1) and pos["right_left_finger"] == pytest.approx(0.2)
        publish([0], 0.5)  # the right follower goes quiet: once its last state is 0.1 s old, nothing is relayed
        quiet = probe.now()
        publish([0], 1.5)
        assert len(probe.messages("/joint_states", quiet + 0.2, sent=True)) == 0
        probe.wait_for(lambda: any("no fresh joint states from ['/follower_right/joint_states']" in d["_message"]
                                   for d in probe.diagnostics("joint_state_relay", quiet)), 5, "the stale report")
        assert np.all(np.isfinite(msg.position))
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        probe.close()
    assert proc.returncode == 0, out
