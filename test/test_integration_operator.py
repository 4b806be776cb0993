"""The operator's deadman through the graph: no heartbeat, no motion; a lost heartbeat brakes the arm to a hold
within its limits; a returning heartbeat alone does not move it, an explicit enable with one does."""

import time

import numpy as np
import pytest
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import SetBool
from support import Probe, assert_no_violation, limit_monitor, record_diagnostics, start_graph, wait_for_nodes

from vla_ros.core.deadman import Deadman
from vla_ros.robots import load_robot

pytestmark = pytest.mark.integration
ROBOT = load_robot("widowx")
ARM = "/arm_controller/commands"


def test_the_deadman_is_present_only_while_true_heartbeats_are_fresh():
    d = Deadman(0.5)
    assert not d.present(0.0)
    d.beat(True, 10.0)
    assert d.present(10.5) and not d.present(10.51)
    d.beat(False, 10.6)  # a released pedal: absent at once
    assert not d.present(10.6)
    with pytest.raises(ValueError):
        Deadman(0.0)


def _steps(probe: Probe, since: float) -> np.ndarray:
    got = probe.messages(ARM, since, sent=True)
    q = np.array([r.msg.data for r in got])
    return np.abs(np.diff(q, axis=0)).max(axis=1) if len(q) > 1 else np.zeros(0)


def test_a_lost_heartbeat_brakes_to_a_hold_and_only_an_explicit_enable_resumes(ros, tmp_path):
    probe = Probe("operator_probe")
    record_diagnostics(probe)
    probe.record(ARM, Float64MultiArray, 2000)
    monitor = limit_monitor(probe, ROBOT)
    beats = probe.create_publisher(Bool, "/vla/operator/heartbeat", 10)
    beating = {"on": False}
    timer = probe.create_timer(0.05, lambda: beats.publish(Bool(data=True)) if beating["on"] else None)
    graph = start_graph(tmp_path, params={"controller_node": {"operator_heartbeat": True, "heartbeat_timeout": 0.3},
                                          "sim_node": {"seed": 3}})
    enable = SetBool.Request(data=True)
    try:
        wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node"])
        time.sleep(1.0)
        assert "operator" in probe.diagnostics("controller_node")[-1]["halts"]
        assert _steps(probe, probe.now() - 0.8).max(initial=0.0) < 1e-9  # no heartbeat yet: held still
        refused = probe.call(SetBool, "/vla/controller/enable", enable)
        assert not refused.success and "no fresh operator heartbeat" in refused.message
        beating["on"] = True
        time.sleep(0.3)
        assert probe.call(SetBool, "/vla/controller/enable", enable).success
        probe.wait_for(lambda: _steps(probe, probe.now() - 0.3).max(initial=0.0) > 1e-4, 10.0, "the arm moving")
        time.sleep(0.5)
        beating["on"] = False
        lost = probe.now()  # (the last heartbeat went out up to 50 ms before)
        time.sleep(1.5)
        steps = _steps(probe, lost)
        assert steps[:20].max() > 1e-5  # still moving when the heartbeat was lost ...
        rest = _steps(probe, lost + 0.3 + 2 * 0.002 + 0.6)  # ... at rest after the timeout, 2 ticks, and braking
        assert len(rest) > 100 and rest.max() < 1e-7, rest.max()
        ctrl = probe.diagnostics("controller_node")[-1]
        assert "operator" in ctrl["halts"] and "operator heartbeat lost" in graph.log_path.read_text()
        beating["on"] = True  # back: still held until the explicit resume
        time.sleep(0.8)
        assert _steps(probe, probe.now() - 0.6).max(initial=0.0) < 1e-7
        assert probe.call(SetBool, "/vla/controller/enable", enable).success
        probe.wait_for(lambda: _steps(probe, probe.now() - 0.3).max(initial=0.0) > 1e-5, 10.0, "moving again")
    finally:
        probe.destroy_timer(timer)
        code = graph.stop()
        probe.close()
    assert_no_violation(monitor, 500)
    assert code == 0, graph.log_path.read_text()[-3000:]
