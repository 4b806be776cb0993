"""The policy node with the openpi backend against a server: server gone -> hold; server back -> resume."""

import time

import numpy as np
import pytest
from std_msgs.msg import Float64MultiArray
from support import (
    FakeRobot,
    Probe,
    assert_no_violation,
    limit_monitor,
    record_diagnostics,
    start_graph,
    wait_for_nodes,
)
from trajectory_msgs.msg import JointTrajectory

from vla_ros.policies import PolicyContext, create_policy
from vla_ros.remote.server import PolicyServer
from vla_ros.robots import load_robot
from vla_ros.serving import BackendService

pytestmark = pytest.mark.integration
ROBOT = load_robot("widowx")
HOME = [0.0, -0.55, 0.45, 0.0, 1.3, 0.0, 0.03]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    pytest.importorskip("torch")
    from vla_ros.policies.tiny_models import build_tiny_pi0

    folder = build_tiny_pi0(tmp_path_factory.mktemp("pi0"), 7, 7, 10)
    ctx = PolicyContext(ROBOT, ROBOT.state_joints, ROBOT.action_joints, ["image_0"], (224, 224), 0.1, 10,
                        {"model_path": str(folder), "seed": 0, "num_steps": 3})
    return BackendService(create_policy("pi0", ctx), "vla_ros")


def test_remote_policy_server_outage(ros, tmp_path, service):
    server = PolicyServer(service, service.metadata(), "127.0.0.1", 0).start()
    port = server.port
    probe = Probe("remote_probe")
    record_diagnostics(probe)
    probe.record("/vla/action_chunk", JointTrajectory)
    probe.record("/arm_controller/commands", Float64MultiArray, 500)
    monitor = limit_monitor(probe, ROBOT)
    robot = FakeRobot(probe, ROBOT.action_joints, HOME, camera_every=10)  # 100 Hz states, 10 Hz frames
    graph = start_graph(tmp_path, sim="none", policy="openpi",
                        params={"policy_node": {"openpi": {"port": port, "timeout": 3.0, "connect_timeout": 1.0}}})
    try:
        wait_for_nodes(probe, graph, ["policy_node", "controller_node"])
        probe.wait_for(lambda: len(probe.messages("/vla/action_chunk")) >= 3, 30, "chunks from the remote policy")
        chunk = probe.messages("/vla/action_chunk")[-1].msg
        assert list(chunk.joint_names) == ROBOT.action_joints and len(chunk.points) == 10

        server.stop()
        down = probe.now()

        def at_rest(window: float = 0.3) -> bool:  # every step < 1e-5 rad at 500 Hz: under 5 mrad/s
            cmds = np.array([r.msg.data for r in probe.messages("/arm_controller/commands", probe.now() - window)])
            return len(cmds) > 0.8 * 500 * window and np.abs(np.diff(cmds, axis=0)).max() < 1e-5

        # the last chunk in flight runs to its end (1 s), then the servo settles on its last target
        probe.wait_for(at_rest, 6.0, "the arm to come to rest after the server went away")
        rest = probe.now()
        time.sleep(1.0)
        assert at_rest(1.0), "the arm moved again while the server was down"
        assert len(probe.messages("/vla/action_chunk", down + 0.5)) == 0
        diag = [d for d in probe.diagnostics("policy_node", down) if "no chunk published" in d["_message"]]
        assert diag and int(diag[-1]["backend_errors"]) >= 1 and diag[-1]["_level"] == 1
        ctrl = probe.diagnostics("controller_node", rest)[-1]
        assert ctrl["hold_reason"] != "-"

        server = PolicyServer(service, service.metadata(), "127.0.0.1", port).start()
        up = probe.now()
        probe.wait_for(lambda: len(probe.messages("/vla/action_chunk", up)) >= 2, 20, "chunks after the server returns")
        assert not graph.failed()
    finally:
        robot.stop()
        server.stop()
        code = graph.stop()
        probe.close()
    assert code == 0, graph.log_path.read_text()
    assert_no_violation(monitor, 1000)


def test_pi0_backend_in_the_policy_node_with_guided_rtc(ros, tmp_path):
    """The node runs pi0 itself and passes the previous chunk as the RTC prefix: every inference succeeds."""
    pytest.importorskip("torch")
    from vla_ros.policies.tiny_models import build_tiny_pi0

    folder = build_tiny_pi0(tmp_path / "pi0", 7, 7, 10)
    probe = Probe("pi0_probe")
    record_diagnostics(probe)
    probe.record("/vla/action_chunk", JointTrajectory)
    robot = FakeRobot(probe, ROBOT.action_joints, HOME, camera_every=10)  # 100 Hz states, 10 Hz frames
    graph = start_graph(tmp_path, sim="none", policy="pi0",
                        params={"policy_node": {"pi0": {"model_path": str(folder), "num_steps": 3, "seed": 0}}})
    try:
        wait_for_nodes(probe, graph, ["policy_node", "controller_node"], timeout=90)
        probe.wait_for(lambda: len(probe.messages("/vla/action_chunk")) >= 4, 60, "four pi0 chunks")
        chunks = probe.messages("/vla/action_chunk")
        assert all(len(c.msg.points) == 10 and list(c.msg.joint_names) == ROBOT.action_joints for c in chunks)
        time.sleep(1.1)
        d = probe.diagnostics("policy_node")[-1]
        assert d["backend"] == "pi0" and d["backend_errors"] == "0" and int(d["published"]) >= 4
        assert float(d["inference_ms_p50"]) > 0
        ctrl = probe.diagnostics("controller_node")[-1]
        assert int(ctrl["chunks_accepted"]) >= 3 and ctrl["chunks_rejected"] == "0"
    finally:
        robot.stop()
        code = graph.stop()
        probe.close()
    assert code == 0, graph.log_path.read_text()
