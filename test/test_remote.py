"""The openpi WebSocket protocol: wire format, server, client, layouts, and interop with openpi-client."""

import time
import urllib.error
import urllib.request

import msgpack
import numpy as np
import pytest

from vla_ros.core.observation import Observation
from vla_ros.policies import PolicyContext, PolicyError, create_policy
from vla_ros.remote import msgpack_numpy
from vla_ros.remote.client import PolicyClient, RemoteError
from vla_ros.remote.layouts import LayoutContext, LayoutError, get_layout
from vla_ros.remote.server import PolicyServer
from vla_ros.robots import load_robot
from vla_ros.serving import BackendService

WIDOWX, ALOHA, FRANKA = load_robot("widowx"), load_robot("aloha"), load_robot("franka")


def serve(infer, metadata=None, **kw) -> PolicyServer:
    return PolicyServer(infer, metadata or {"name": "test"}, "127.0.0.1", 0, **kw).start()


def test_wire_format_interoperates_with_openpi_client():
    openpi = pytest.importorskip("openpi_client.msgpack_numpy")
    data = {"state": np.arange(14, dtype=np.float32), "images": {"cam": np.zeros((3, 4, 5), np.uint8)},
            "n": np.int64(7), "x": np.float32(0.5), "prompt": "hi", "nested": [np.ones(2)]}
    for pack, unpack in ((msgpack_numpy.packb, openpi.unpackb), (openpi.packb, msgpack_numpy.unpackb)):
        back = unpack(pack(data))
        np.testing.assert_array_equal(back["state"], data["state"])
        assert back["state"].dtype == np.float32 and back["images"]["cam"].shape == (3, 4, 5)
        assert back["n"] == 7 and type(back["n"]) is np.int64 and back["x"] == np.float32(0.5)
        assert back["prompt"] == "hi" and back["nested"][0].tolist() == [1.0, 1.0]
    with pytest.raises(TypeError):
        msgpack_numpy.packb({"bad": np.zeros(2, dtype=complex)})
    # what arrives is never turned into Python objects: object and void dtypes are refused, not unpickled
    for dtype in ("|O", "|V8", "<c16"):
        raw = msgpack.packb({b"__ndarray__": True, b"data": bytes(16), b"dtype": dtype, b"shape": (2,)})
        with pytest.raises(ValueError, match="refused dtype"):
            msgpack_numpy.unpackb(raw)


@pytest.fixture(scope="module")
def tiny_pi0(tmp_path_factory):
    pytest.importorskip("torch")
    from vla_ros.policies.tiny_models import build_tiny_pi0

    return {"widowx": build_tiny_pi0(tmp_path_factory.mktemp("pi0_w"), 7, 7, 10),
            "aloha": build_tiny_pi0(tmp_path_factory.mktemp("pi0_a"), 14, 14, 10)}


def pi0_policy(robot, folder, keys):
    ctx = PolicyContext(robot, robot.state_joints, robot.action_joints, keys, (224, 224), 0.02, 10,
                        {"model_path": str(folder), "seed": 0, "num_steps": 3})
    return create_policy("pi0", ctx)


def widowx_obs(seed=0):
    rng = np.random.default_rng(seed)
    return Observation(10.0, np.array([0.1, -0.5, 0.4, 0.0, 1.2, 0.1, 0.03]),
                       {"image_0": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)}, "pick up the red cube")


def test_our_client_gets_the_backends_actions_from_our_server(tiny_pi0):
    policy = pi0_policy(WIDOWX, tiny_pi0["widowx"], ["image_0"])
    service = BackendService(policy, "vla_ros")
    server = serve(service, service.metadata())
    client = PolicyClient("127.0.0.1", server.port, timeout=10.0)
    try:
        obs = widowx_obs()
        layout, ctx = get_layout("vla_ros"), service.ctx
        reply = client.infer(layout.observation(obs, ctx))
        assert client.metadata["backend"] == "pi0" and client.metadata["action_joints"] == WIDOWX.action_joints
        np.testing.assert_allclose(layout.targets(reply, obs, ctx), policy.infer(obs).values, atol=1e-9)
        assert reply["server_timing"]["infer_ms"] > 0
        second = client.infer(layout.observation(obs, ctx))
        assert "prev_total_ms" in second["server_timing"]
    finally:
        client.close()
        server.stop()


def test_a_request_without_a_prompt_gets_the_servers_default_prompt(tiny_pi0):
    """As openpi's serve_policy --default_prompt: injected only where the request has no "prompt" key."""
    policy = pi0_policy(WIDOWX, tiny_pi0["widowx"], ["image_0"])
    service = BackendService(policy, "vla_ros", default_prompt="pick up the red cube")
    obs = widowx_obs()
    request = get_layout("vla_ros").observation(obs, service.ctx)
    del request["prompt"]
    given = service({**request, "prompt": "pick up the red cube"})["actions"]
    np.testing.assert_allclose(service(request)["actions"], given, atol=1e-9)
    assert "prompt" not in request  # the decoded request is not changed
    assert not np.allclose(service({**request, "prompt": "wave at the camera"})["actions"], given)


def test_openpi_websocket_client_policy_talks_to_our_server(tiny_pi0):
    """The observation exactly as openpi's examples/aloha_real builds it: ``state`` is the real env's float64
    qpos (14: joints in rad, grippers normalised), four CHW uint8 224x224 frames, and no prompt (the server's
    default prompt fills it in, as ``serve_policy --default_prompt``)."""
    wcp = pytest.importorskip("openpi_client.websocket_client_policy")
    policy = pi0_policy(ALOHA, tiny_pi0["aloha"], [c.key for c in ALOHA.cameras])
    service = BackendService(policy, "aloha", ALOHA.openpi.cameras, default_prompt="fold the towel")
    server = serve(service, service.metadata())
    try:
        client = wcp.WebsocketClientPolicy(host="127.0.0.1", port=server.port)
        assert client.get_server_metadata()["layout"] == "aloha"
        rng = np.random.default_rng(0)
        arm = [0.0, -0.96, 1.16, 0.0, -0.3, 0.0]
        qpos = np.concatenate([arm, [0.8], arm, [0.8]])  # float64, as np.concatenate of the arms' readings
        obs = {"state": qpos, "images": {c: rng.integers(0, 255, (3, 224, 224), dtype=np.uint8)
                                         for c in ("cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist")}}
        assert obs["state"].dtype == np.float64 and "prompt" not in obs
        reply = client.infer(obs)
        assert reply["actions"].shape == (10, 14) and np.all(np.isfinite(reply["actions"]))
        # the default prompt was used: the same request with it spelled out gets the same actions
        np.testing.assert_allclose(client.infer({**obs, "prompt": "fold the towel"})["actions"], reply["actions"],
                                   atol=1e-5)
        grip = reply["actions"][:, [6, 13]]
        assert np.all((grip >= -1e-6) & (grip <= 1 + 1e-6))  # normalised grippers
        assert set(reply["server_timing"]) >= {"infer_ms"}
    finally:
        server.stop()


def test_openpi_websocket_client_policy_gets_droid_actions_from_our_server(tmp_path):
    """The DROID example's request as openpi's examples/droid/main.py builds it (224x224 HWC uint8 frames,
    float joint and gripper positions, a prompt); the reply is what its loop executes: (10, 8) actions."""
    wcp = pytest.importorskip("openpi_client.websocket_client_policy")
    from vla_ros.policies.tiny_models import build_tiny_pi0

    folder = build_tiny_pi0(tmp_path, 8, 8, 10)
    keys = [c.key for c in FRANKA.cameras]
    ctx = PolicyContext(FRANKA, FRANKA.state_joints, FRANKA.action_joints, keys, (224, 224), 1 / 15, 10,
                        {"model_path": str(folder), "seed": 0, "num_steps": 3})
    service = BackendService(create_policy("pi0", ctx), "droid", FRANKA.openpi.cameras)
    server = serve(service, service.metadata())
    try:
        client = wcp.WebsocketClientPolicy(host="127.0.0.1", port=server.port)
        rng = np.random.default_rng(0)
        request = {"observation/exterior_image_1_left": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
                   "observation/wrist_image_left": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
                   "observation/joint_position": np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785]),
                   "observation/gripper_position": np.array([0.25]), "prompt": "open the drawer"}
        actions = client.infer(request)["actions"]
        assert actions.shape == (10, 8) and np.all(np.isfinite(actions))
        assert np.abs(actions[:, :7]).max() <= 1.0 + 1e-6  # velocities the client's clip keeps as they are
        assert np.all((actions[:, 7] >= 0) & (actions[:, 7] <= 1))
    finally:
        server.stop()


def test_healthz_and_api_key():
    server = serve(lambda obs: {"actions": np.zeros((2, 3))}, api_key="s3cret")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=5) as r:
            assert r.status == 200 and r.read() == b"OK\n"
        with pytest.raises(RemoteError, match="cannot connect"):
            PolicyClient("127.0.0.1", server.port).infer({})
        with pytest.raises(RemoteError, match="cannot connect"):
            PolicyClient("127.0.0.1", server.port, api_key="wrong").infer({})
        client = PolicyClient("127.0.0.1", server.port, api_key="s3cret")
        assert client.infer({"x": 1})["actions"].shape == (2, 3)
        client.close()
    finally:
        server.stop()


def test_timeout_drops_the_request_and_the_client_recovers():
    delays = iter([1.0, 0.0, 0.0])

    def slow(obs):
        time.sleep(next(delays))
        return {"actions": np.full((1, 2), obs["k"])}

    server = serve(slow)
    client = PolicyClient("127.0.0.1", server.port, timeout=0.3, backoff=(0.05, 0.1))
    try:
        with pytest.raises(RemoteError, match="no answer .* within 0.3 s"):
            client.infer({"k": 1})
        assert not client.connected
        time.sleep(1.0)  # the server finishes the abandoned request
        assert client.infer({"k": 2})["actions"][0, 0] == 2  # not the late answer to k=1
    finally:
        client.close()
        server.stop()


def test_server_gone_then_back():
    server = serve(lambda obs: {"actions": np.ones((1, 1))})
    port = server.port
    client = PolicyClient("127.0.0.1", port, timeout=1.0, backoff=(0.1, 0.2))
    assert client.infer({})["actions"][0, 0] == 1
    server.stop()
    with pytest.raises(RemoteError):
        client.infer({})
    with pytest.raises(RemoteError):  # refused, or too soon after the failure
        client.infer({})
    server = PolicyServer(lambda obs: {"actions": np.full((1, 1), 2.0)}, {}, "127.0.0.1", port).start()
    try:
        time.sleep(0.3)
        assert client.infer({})["actions"][0, 0] == 2.0
        assert client.reconnects >= 2
    finally:
        client.close()
        server.stop()


def test_message_size_limit_and_server_errors():
    server = serve(lambda obs: {"actions": obs["missing"]}, max_size=2**20)
    try:
        client = PolicyClient("127.0.0.1", server.port, timeout=5.0)
        with pytest.raises(RemoteError, match="server error: KeyError: 'missing'"):
            client.infer({"present": 1})
        with pytest.raises(RemoteError, match="lost|failed"):
            client.infer({"blob": np.zeros(2 * 2**20, np.uint8)})
        client.close()
    finally:
        server.stop()


def aloha_ctx():
    return LayoutContext(ALOHA, ALOHA.state_joints, ALOHA.action_joints, 0.02, ALOHA.openpi.cameras)


def test_aloha_layout_uses_openpis_gripper_units():
    """openpi ALOHA: state gripper = finger normalised over 0.01844-0.05800 m; action gripper = motor angle
    normalised over -0.6213-1.4910 rad, the finger position following from the Interbotix linkage
    (h = 0.022, a = 0.036 m): x = h sin(t) + sqrt(a^2 - h^2 cos(t)^2). Numbers computed by hand."""
    layout, ctx = get_layout("aloha"), aloha_ctx()
    rng = np.random.default_rng(1)
    state = np.array([0.1, -0.9, 1.1, 0.0, -0.3, 0.2, 0.05, -0.1, -0.8, 1.0, 0.1, -0.2, 0.0, 0.03])
    images = {c.key: rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for c in ALOHA.cameras}
    obs = Observation(3.0, state, images, "fold")
    wire = layout.observation(obs, ctx)
    assert wire["state"].dtype == np.float32 and wire["images"]["cam_high"].shape == (3, 224, 224)
    assert wire["state"][6] == pytest.approx(0.797775, abs=1e-6)  # (0.05 - 0.01844) / 0.03956
    assert wire["state"][13] == pytest.approx(0.292214, abs=1e-6)  # (0.03 - 0.01844) / 0.03956
    np.testing.assert_array_equal(wire["state"][:6], state[:6].astype(np.float32))  # joints as they are
    back = layout.parse_observation(wire, ctx, 3.0)
    np.testing.assert_allclose(back.state, state, atol=1e-6)
    np.testing.assert_array_equal(back.images["cam_low"], images["cam_low"])
    actions = np.tile(state, (3, 1))
    actions[:, 6] = [0.0, 0.5, 1.0]  # motor -0.6213, 0.43485, 1.4910 rad
    targets = layout.targets({"actions": actions}, obs, ctx)
    # fingers 0.018435 (below the joint's 0.021 m limit: clipped), 0.039233, 0.057887 (above 0.057: clipped)
    np.testing.assert_allclose(targets[:, 6], [0.021, 0.039233, 0.057], atol=2e-6)
    np.testing.assert_allclose(targets[:, :6], actions[:, :6])
    targets = np.tile(state, (5, 1))
    np.testing.assert_allclose(layout.targets(layout.response(targets, obs, ctx), obs, ctx), targets, atol=1e-6)
    with pytest.raises(LayoutError, match="14 values"):
        layout.parse_observation({"state": np.zeros(7)}, ctx, 0.0)


def test_droid_layout_follows_upstream_velocity_scale():
    """DROID: a velocity of 1 is 0.2 rad per 15 Hz step, columns clipped to [-1, 1], gripper > 0.5 closes
    (openpi examples/droid/main.py + DROID RobotIKSolver); numbers computed by hand."""
    layout = get_layout("droid")
    ctx = LayoutContext(FRANKA, FRANKA.state_joints, FRANKA.action_joints, 1 / 15, FRANKA.openpi.cameras)
    state = np.array([0.0, -0.78, 0.0, -2.35, 0.0, 1.57, 0.78, 0.03])
    img = np.zeros((224, 224, 3), np.uint8)
    obs = Observation(1.0, state, {"exterior_image_1_left": img, "wrist_image_left": img}, "open the drawer")
    wire = layout.observation(obs, ctx)
    assert wire["observation/joint_position"].shape == (7,)
    assert wire["observation/gripper_position"][0] == pytest.approx(0.25)  # 0.03 of 0.04 open: 1 = closed
    actions = np.zeros((4, 8))
    actions[:, 0] = 0.3  # joint 1: 0.06 rad per step
    actions[:, 1] = [2.5, -3.0, 0.5, 0.0]  # joint 2: clipped to 1, -1 -> +0.2, -0.2, +0.1, 0
    actions[:, 7] = [0.6, 0.5, 0.4, 1.3]  # closed, open (not above 0.5), open, closed
    targets = layout.targets({"actions": actions}, obs, ctx)
    np.testing.assert_allclose(targets[:, 0], [0.06, 0.12, 0.18, 0.24], atol=1e-12)
    np.testing.assert_allclose(targets[:, 1], [-0.58, -0.78, -0.68, -0.68], atol=1e-12)
    np.testing.assert_allclose(targets[:, 2], 0.0)
    np.testing.assert_array_equal(targets[:, 7], [0.0, 0.04, 0.04, 0.0])
    back = layout.response(targets, obs, ctx)["actions"]  # the server direction: positions -> DROID actions
    np.testing.assert_allclose(back[:, 0], 0.3, atol=1e-9)
    np.testing.assert_allclose(back[:, 1], [1.0, -1.0, 0.5, 0.0], atol=1e-9)
    np.testing.assert_array_equal(back[:, 7], [1.0, 0.0, 0.0, 1.0])
    # a step beyond 0.2 rad is scaled as a whole row (direction kept): 0.3 and 0.1 rad -> 1 and 1/3
    fast = np.tile(state, (1, 1))
    fast[0, :2] += [0.3, 0.1]
    np.testing.assert_allclose(layout.response(fast, obs, ctx)["actions"][0, :3], [1.0, 1 / 3, 0.0], atol=1e-9)
    back = layout.parse_observation(wire, ctx, 1.0)
    np.testing.assert_allclose(back.state, state, atol=1e-9)
    slow = LayoutContext(FRANKA, FRANKA.state_joints, FRANKA.action_joints, 0.1, FRANKA.openpi.cameras)
    with pytest.raises(LayoutError, match="1/15 s apart"):
        layout.targets({"actions": actions}, obs, slow)


def test_franka_preset_executes_droid_actions_in_process():
    """pi0 in-process on a DROID checkpoint uses the preset's action space: the same numbers as the layout."""
    from vla_ros.core.action_space import from_preset

    space = from_preset(FRANKA, 1 / 15)
    state = np.array([0.0, -0.78, 0.0, -2.35, 0.0, 1.57, 0.78, 0.03])
    actions = np.zeros((3, 8))
    actions[:, 6] = [1.0, 2.0, -0.25]
    actions[:, 7] = [0.2, 0.9, 0.51]
    targets = space.to_targets(actions, state)
    np.testing.assert_allclose(targets[:, 6], [0.98, 1.18, 1.13], atol=1e-12)
    np.testing.assert_array_equal(targets[:, 7], [0.04, 0.0, 0.0])


def test_libero_layout_uses_the_end_effector():
    layout = get_layout("libero")
    ctx = LayoutContext(FRANKA, FRANKA.state_joints, FRANKA.action_joints, 0.05, {"image": "exterior_image_1_left",
                                                                                  "wrist_image": "wrist_image_left"})
    state = np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398, 0.04])
    img = np.arange(224 * 224 * 3, dtype=np.uint8).reshape(224, 224, 3)
    obs = Observation(1.0, state, {"exterior_image_1_left": img, "wrist_image_left": img}, "put the bowl away")
    wire = layout.observation(obs, ctx)
    np.testing.assert_allclose(wire["observation/state"][:3], [0.30689, 0.0, 0.48688], atol=1e-4)
    np.testing.assert_array_equal(wire["observation/image"], img[::-1, ::-1])
    actions = np.zeros((2, 7))
    actions[:, 2] = -1.0  # down 5 cm per step
    actions[:, 6] = -1.0  # open
    targets = layout.targets({"actions": actions}, obs, ctx)
    chain = FRANKA.chain()
    z = [chain.fk(t[:7])[2, 3] for t in targets]
    np.testing.assert_allclose(z, [0.48688 - 0.05, 0.48688 - 0.10], atol=1e-3)
    assert np.all(targets[:, 7] == 0.04)
    # served: the same observation back (the joints by inverse kinematics: FK reaches the sent pose)
    back = layout.parse_observation(wire, ctx, 0.0)
    pose = chain.fk(back.state[:7])
    np.testing.assert_allclose(pose[:3, 3], [0.30689, 0.0, 0.48688], atol=1e-4)
    np.testing.assert_allclose(pose[:3, :3], chain.fk(state[:7])[:3, :3], atol=1e-3)
    assert back.state[7] == pytest.approx(0.04)
    np.testing.assert_array_equal(back.images["exterior_image_1_left"], img)  # turned back upright
    assert back.instruction == "put the bowl away"


def test_libero_server_actions_are_the_deltas_a_libero_client_composes_back():
    """Hand-computed: from the franka 'ready' pose, 0.01 m along x and 0.05 rad about z is (0.2, 0, 0, 0, 0, 0.1)
    at 0.05 m / 0.5 rad per unit; the next step 0.12 m down is 2.4 units, scaled to 1 as a whole row (with
    its 0.1 rad about x: 0.2 -> 0.0833); gripper 0.04 m (open) -> -1, 0.0 -> +1, 0.01 m -> +0.5."""
    from vla_ros.core.transforms import make_transform, rotation_exp

    layout = get_layout("libero")
    ctx = LayoutContext(FRANKA, FRANKA.state_joints, FRANKA.action_joints, 0.05, {})
    chain = FRANKA.chain()
    state = np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398, 0.04])
    obs = Observation(1.0, state, {}, "")
    start = chain.fk(state[:7])
    first = make_transform(rotation_exp([0.0, 0.0, 0.05]) @ start[:3, :3], start[:3, 3] + [0.01, 0.0, 0.0])
    second = make_transform(rotation_exp([0.1, 0.0, 0.0]) @ first[:3, :3], first[:3, 3] + [0.0, 0.0, -0.12])
    q1 = chain.ik(first, state[:7]).q
    q2 = chain.ik(second, q1).q
    targets = np.array([[*q1, 0.04], [*q2, 0.0], [*q2, 0.01]])
    actions = layout.response(targets, obs, ctx)["actions"]
    np.testing.assert_allclose(actions[0], [0.2, 0.0, 0.0, 0.0, 0.0, 0.1, -1.0], atol=1e-4)
    np.testing.assert_allclose(actions[1], [0.0, 0.0, -1.0, 0.2 / 2.4, 0.0, 0.0, 1.0], atol=1e-4)
    np.testing.assert_allclose(actions[2], [0.0] * 6 + [0.5], atol=1e-4)
    # a LIBERO client composes them back onto the pose (the first step exactly; the second was scaled)
    back = layout.targets({"actions": actions[:1]}, obs, ctx)
    np.testing.assert_allclose(chain.fk(back[0, :7]), first, atol=1e-4)
    with pytest.raises(LayoutError, match="8 finite values"):
        layout.parse_observation({"observation/state": np.zeros(7)}, ctx, 0.0)
    with pytest.raises(LayoutError, match="cannot reach"):
        layout.parse_observation({"observation/state": np.r_[5.0, 0.0, 0.5, np.zeros(5)]}, ctx, 0.0)


def test_openpi_websocket_client_policy_gets_libero_actions_from_our_server(tmp_path):
    """The LIBERO example's request as openpi's examples/libero/main.py builds it (frames turned 180 degrees and
    padded to 224x224 HWC uint8; state = EE position, axis-angle of the quaternion, both finger positions, as
    float64; a prompt), for a preset whose base sits at (-0.6, 0, 0.9) in the world the poses are given in."""
    import copy

    wcp = pytest.importorskip("openpi_client.websocket_client_policy")
    from vla_ros.core.transforms import rotation_log
    from vla_ros.policies.tiny_models import build_tiny_pi0

    robot = copy.deepcopy(FRANKA)
    robot.openpi.base_position = [-0.6, 0.0, 0.9]
    folder = build_tiny_pi0(tmp_path, 8, 8, 10)
    keys = [c.key for c in robot.cameras]
    ctx = PolicyContext(robot, robot.state_joints, robot.action_joints, keys, (224, 224), 0.05, 10,
                        {"model_path": str(folder), "seed": 0, "num_steps": 3})
    service = BackendService(create_policy("pi0", ctx), "libero", {"image": keys[0], "wrist_image": keys[1]})
    server = serve(service, service.metadata())
    try:
        client = wcp.WebsocketClientPolicy(host="127.0.0.1", port=server.port)
        rng = np.random.default_rng(0)
        pose = robot.chain().fk(np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398]))
        state = np.concatenate([pose[:3, 3] + [-0.6, 0.0, 0.9], rotation_log(pose[:3, :3]), [0.039, -0.039]])
        request = {"observation/image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
                   "observation/wrist_image": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8),
                   "observation/state": state, "prompt": "put the bowl on the plate"}
        actions = client.infer(request)["actions"]
        assert actions.shape == (10, 7) and np.all(np.isfinite(actions))
        assert np.abs(actions).max() <= 1.0 + 1e-6  # what robosuite's controller accepts as it is
    finally:
        server.stop()


def test_libero_rotations_are_rotation_vectors_and_the_image_turn_is_optional():
    """robosuite OSC_POSE (LIBERO): the rotation columns x 0.5 rad are a rotation vector applied in the base
    frame, R = exp(v) R0; for v = 0.5 x (0.6, 0.8, 0) that differs from roll-pitch-yaw (0.3, 0.4, 0) by ~0.06 rad."""
    from vla_ros.core.transforms import rotation_exp, rotation_log, rpy_to_matrix

    layout = get_layout("libero")
    cams = {"image": "exterior_image_1_left", "wrist_image": "wrist_image_left"}
    ctx = LayoutContext(FRANKA, FRANKA.state_joints, FRANKA.action_joints, 0.05, cams)
    state = np.array([0.0, -0.785398, 0.0, -2.356194, 0.0, 1.570796, 0.785398, 0.04])
    img = np.arange(224 * 224 * 3, dtype=np.uint8).reshape(224, 224, 3)
    obs = Observation(1.0, state, {"exterior_image_1_left": img, "wrist_image_left": img}, "turn the knob")
    actions = np.zeros((1, 7))
    actions[0, 3:5] = [0.6, 0.8]
    chain = FRANKA.chain()
    start = chain.fk(state[:7])[:3, :3]
    reached = chain.fk(layout.targets({"actions": actions}, obs, ctx)[0, :7])[:3, :3]
    err = np.linalg.norm(rotation_log(reached @ (rotation_exp([0.3, 0.4, 0.0]) @ start).T))
    assert err < 2e-3, err
    assert np.linalg.norm(rotation_log(reached @ (rpy_to_matrix([0.3, 0.4, 0.0]) @ start).T)) > 0.05
    upright = LayoutContext(FRANKA, FRANKA.state_joints, FRANKA.action_joints, 0.05, cams, rotate_180=False)
    np.testing.assert_array_equal(layout.observation(obs, upright)["observation/image"], img)


def test_openpi_backend_holds_on_failure_and_recovers(tiny_pi0):
    policy = pi0_policy(WIDOWX, tiny_pi0["widowx"], ["image_0"])
    service = BackendService(policy, "vla_ros")
    server = serve(service, service.metadata())
    port = server.port
    ctx = PolicyContext(WIDOWX, WIDOWX.state_joints, WIDOWX.action_joints, ["image_0"], (224, 224), 0.1, 5,
                        {"port": port, "timeout": 5.0, "layout": "vla_ros"})
    remote = create_policy("openpi", ctx)
    remote.client.backoff_min = remote.client._delay = 0.05
    obs = widowx_obs()
    chunk = remote.infer(obs)
    assert chunk.values.shape == (5, 7) and chunk.stamp == obs.stamp
    np.testing.assert_allclose(chunk.values, policy.infer(obs).values[:5], atol=1e-9)
    server.stop()
    with pytest.raises(PolicyError):
        remote.infer(obs)
    server = PolicyServer(service, service.metadata(), "127.0.0.1", port).start()
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                assert remote.infer(obs).values.shape == (5, 7)
                break
            except PolicyError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        server.stop()


def test_registry_imports_backends_lazily():
    import subprocess
    import sys

    code = ("import sys; from vla_ros.policies import backend_class; backend_class('openpi'); "
            "backend_class('scripted'); print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]  # the remote backend runs without torch


def test_vla_ros_serve_command(tiny_pi0, tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "vla_ros", "serve", "robot:=widowx", "policy:=pi0", "--port", str(port),
           "--api-key", "k", "--set", f"pi0.model_path={tiny_pi0['widowx']}", "--set", "pi0.seed=0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read() == b"OK\n"
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.2)
        client = PolicyClient("127.0.0.1", port, api_key="k", timeout=30.0)
        layout = get_layout("vla_ros")
        ctx = LayoutContext(WIDOWX, WIDOWX.state_joints, WIDOWX.action_joints, 0.1, {})
        reply = client.infer(layout.observation(widowx_obs(), ctx))
        assert client.metadata == {**client.metadata, "backend": "pi0", "robot": "widowx", "layout": "vla_ros"}
        assert layout.targets(reply, widowx_obs(), ctx).shape == (10, 7)
        client.close()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "serving pi0 for widowx (vla_ros layout) on ws://127.0.0.1" in out and "API key required" in out


@pytest.mark.parametrize("name", ["aloha", "vla_ros"])
def test_layouts_never_write_into_decoded_input(name):
    """openpi's ALOHA client sends float64 state and no prompt; msgpack-decoded arrays are read-only."""
    from vla_ros.remote.msgpack_numpy import packb, unpackb

    layout, ctx = get_layout(name), aloha_ctx()
    state = np.array([0.1, -0.9, 1.1, 0.0, -0.3, 0.2, 0.5, -0.1, -0.8, 1.0, 0.1, -0.2, 0.0, 1.0])  # float64
    image = np.zeros((3, 224, 224), np.uint8)
    if name == "aloha":
        wire = {"state": state, "images": {"cam_high": image}}
    else:
        wire = layout.observation(Observation(1.0, state, {"cam_high": image.transpose(1, 2, 0)}, ""), ctx)
        wire["state"] = state
    decoded = unpackb(packb(wire))
    assert not decoded["state"].flags.writeable
    obs = layout.parse_observation(decoded, ctx, 1.0)
    np.testing.assert_array_equal(decoded["state"], state)  # the input is untouched
    assert obs.instruction == "" and obs.state.shape == (14,)


def test_jpeg_frames_cross_the_wire_smaller_and_come_back_in_their_layout():
    from vla_ros.remote import frames

    y, x = np.mgrid[0:224, 0:224]
    picture = np.stack([x, y, (x + y) // 2], axis=2).astype(np.uint8)  # smooth, as a camera sees
    request = {"state": np.zeros(14), "prompt": "hi", "images": {"cam_high": picture.transpose(2, 0, 1),
                                                                 "cam_left_wrist": picture, "tiny": picture[:8, :8]}}
    seen = {}

    def infer(obs):
        seen.update(obs)
        return {"actions": np.zeros((2, 14))}

    server = serve(infer)
    try:
        raw_client = PolicyClient("127.0.0.1", server.port, timeout=10.0)
        raw_client.infer(request)
        client = PolicyClient("127.0.0.1", server.port, timeout=10.0, jpeg_quality=90)
        client.infer(request)
        assert client.request_bytes < 0.1 * raw_client.request_bytes
        images = seen["images"]
        assert images["cam_high"].shape == (3, 224, 224) and images["cam_left_wrist"].shape == (224, 224, 3)
        assert np.array_equal(images["tiny"], picture[:8, :8])  # (too small to be a camera frame: sent raw)
        error = images["cam_left_wrist"].astype(float) - picture
        assert 10 * np.log10(255.0**2 / np.mean(error**2)) > 35.0
        # a frame the server cannot decode is the server's error for that request, not a crash
        broken = msgpack_numpy.packb({"images": {"cam": {frames.KEY: b"not a jpeg", "layout": "hwc"}}})
        with pytest.raises(frames.FrameError):
            frames.decode(msgpack_numpy.unpackb(broken))
        # an openpi server lists no frame encodings: JPEG is refused before anything is sent
        server.metadata.pop("frame_encodings")
        other = PolicyClient("127.0.0.1", server.port, timeout=10.0, jpeg_quality=90)
        with pytest.raises(RemoteError, match="does not accept JPEG frames"):
            other.infer(request)
    finally:
        server.stop()


def test_a_layout_that_cannot_serve_the_configuration_is_refused_at_start():
    """`vla-ros serve robot:=franka policy:=pi0` at the preset's 0.1 s: refused before serving, not per request."""
    from vla_ros.policies.context import policy_context

    policy = create_policy("scripted", policy_context(FRANKA, {"backend": "scripted", "chunk_dt": 0.1}))
    with pytest.raises(LayoutError, match="set the policy.s chunk_dt to 0.0667"):
        BackendService(policy, "droid", FRANKA.openpi.cameras)
    fitting = create_policy("scripted", policy_context(FRANKA, {"backend": "scripted", "chunk_dt": 1 / 15}))
    assert BackendService(fitting, "droid", FRANKA.openpi.cameras).layout.name == "droid"
