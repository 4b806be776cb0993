"""The built-in VLA's turn to the nearest face: the grasp's angle read modulo a quarter turn, the jaws turned to
the face nearest their current angle."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vla_ros.cli import parse_turn  # noqa: E402
from vla_ros.core.normalize import NormStats, Stats  # noqa: E402
from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.learning.model import ModelConfig, TinyVLA, wrap  # noqa: E402
from vla_ros.learning.tokenizer import WordTokenizer  # noqa: E402
from vla_ros.learning.train import save_checkpoint  # noqa: E402
from vla_ros.policies import create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

ROBOT = load_robot("widowx")
WRIST = ROBOT.action_joints.index("wrist_rotate")
TURN = {"waist": 1.0, "wrist_rotate": -1.0}  # the WidowX's jaws about the vertical (top-down, forearm_roll 0)


def tiny(turn: dict | None = None, **kw) -> ModelConfig:
    kw = {"horizon": 2, "image_size": 16, **kw}
    return ModelConfig(["image_0"], ROBOT.state_joints, ROBOT.action_joints, delta_joints=ROBOT.arm_joints,
                       channels=[4, 4, 4, 4], keypoints=2, text_dim=8, hidden=32, vocab_size=8, attention_heads=0,
                       turn=dict(turn or {}), turn_joint="wrist_rotate" if turn else "", **kw)


def test_wrap_and_the_nearest_face():
    angles = torch.tensor([0.0, 0.7, 0.8, -0.8, 1.6, -3.0])
    np.testing.assert_allclose(wrap(angles, math.pi / 2).numpy(),
                               [0.0, 0.7, 0.8 - math.pi / 2, -0.8 + math.pi / 2, 1.6 - math.pi / 2,
                                -3.0 + math.pi], atol=1e-6)
    model = TinyVLA(tiny(TURN))
    grasp = 0.75  # rad: a cube at 43 degrees, or at -47
    features = torch.zeros(3, 32 + 7 + 2)
    features[:, -2:] = torch.tensor([math.cos(4 * grasp), math.sin(4 * grasp)])
    turns = model.face_turn(features, torch.tensor([0.1, -0.1, 0.75])).numpy()
    # jaws already turning one way take that face; at the grasp angle, no turn is left
    np.testing.assert_allclose(turns, [0.65, 0.75 - math.pi / 2 + 0.1, 0.0], atol=1e-5)


def fit(turn: dict | None) -> tuple[TinyVLA, tuple]:
    """Three views, of cubes at 45, 20 and -20 degrees, the jaws starting within 6 degrees of 0 (the model's state
    input does not show it); the demonstrations turn the jaws to the face nearest them (a cube at 45 degrees is also
    one at -45: jaws starting below 0 take that face) and the wrist's chunk turns by minus that."""
    torch.manual_seed(0)
    model = TinyVLA(tiny(turn))
    n = 64
    images = torch.tensor([128, 40, 220], dtype=torch.uint8).repeat_interleave(n).view(-1, 1, 1, 1, 1)
    images = images.expand(-1, 1, 3, 16, 16).contiguous()
    cube = torch.tensor([45.0, 20.0, -20.0]).repeat_interleave(n).mul(math.pi / 180.0)
    now = torch.linspace(-0.1, 0.1, n).repeat(3)
    grasp = now + wrap(cube - now, math.pi / 2)
    state, tokens = torch.zeros(3 * n, 7), torch.tensor([[2, 3, 0]]).repeat(3 * n, 1)
    goals = torch.zeros(3 * n, 7)
    goals[:, WRIST] = -grasp
    actions = torch.zeros(3 * n, 2, 7)
    actions[:, :, WRIST] = -(grasp - now)[:, None]
    turns = torch.stack([now, grasp], dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        model.loss(images, state, tokens, actions, goals, turns=turns if turn else None).backward()
        optimizer.step()
    return model.eval(), (images[:1], state[:1], tokens[:1])


def test_the_chunk_turns_to_the_face_nearest_the_jaws():
    """As the demonstrations do: both grasps are square. Without the turn, the chunk for the 45-degree cube lies
    between the two faces (its input cannot tell which one a demonstration took): a diagonal grasp."""
    plain, inputs = fit(None)
    assert abs(float(plain.predict(*inputs)[0, 0, WRIST])) < math.radians(30.0)
    turned, _ = fit(TURN)
    near = math.radians(45.0)
    for now, turn in ((0.05, near - 0.05), (-0.05, near + 0.05 - math.pi / 2)):
        wrist = turned.predict(*inputs, turn_now=torch.tensor([now]))[0, :, WRIST].numpy()
        np.testing.assert_allclose(wrist, -turn, atol=0.05)  # wrist = waist - angle
    with torch.no_grad():
        angle = turned.face_turn(turned.encode(*inputs), torch.zeros(1))
    assert abs(abs(float(angle)) - near) < 0.05  # the grasp head reads the angle modulo the quarter turn (+-45)
    with pytest.raises(ValueError, match="turn_now"):
        turned.predict(*inputs)


def test_turn_configuration_errors():
    with pytest.raises(ValueError, match="turn joints"):
        tiny({"elbow_roll": 1.0})
    with pytest.raises(ValueError, match="turn_joint"):
        ModelConfig(["image_0"], ROBOT.state_joints, ROBOT.action_joints, delta_joints=ROBOT.arm_joints, turn=TURN,
                    turn_joint="left_finger")
    with pytest.raises(ValueError, match="regression head"):
        tiny(TURN, head="flow")
    assert parse_turn(["waist=1", "wrist_rotate=-1"]) == TURN
    for bad in (["waist"], ["waist=x"], ["waist=1", "waist=2"], ["=1"]):
        with pytest.raises(ValueError, match="JOINT=COEFFICIENT"):
            parse_turn(bad)


def test_the_builtin_backend_turns_the_wrist_to_the_face_nearest_the_jaws(tmp_path):
    """A checkpoint whose chunk is the statistics' mean plus the whole turn to the nearest face (share 1 per
    step) and whose grasp head reads 43 degrees: the wrist's targets are computed by hand from the state."""
    torch.manual_seed(0)
    model = TinyVLA(tiny(TURN, image_size=32))
    grasp = 0.75
    with torch.no_grad():
        for layer in (model.head, model.turn_share, model.goal[-1]):
            layer.weight.zero_()
            layer.bias.zero_()
        model.turn_share.bias.fill_(1.0)
        model.goal[-1].bias[-2:] = torch.tensor([math.cos(4 * grasp), math.sin(4 * grasp)])
    mean = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.02, 0.03])
    stats = NormStats("zscore", Stats(mean=np.zeros(7), std=np.ones(7)), Stats(mean=mean, std=np.full(7, 0.1)))
    folder = save_checkpoint(tmp_path / "ckpt", model, stats, WordTokenizer.build(["pick up the red cube"]))
    policy = create_policy("builtin", policy_context(ROBOT, {"backend": "builtin", "builtin.model_path": str(folder),
                                                             "horizon": 2}))
    image = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    for waist, wrist, turn in ((0.3, 0.2, 0.65), (0.1, 0.2, 0.75 - math.pi / 2 + 0.1)):
        state = np.array([waist, -0.5, 0.4, 0.0, 1.2, wrist, 0.03])
        chunk = policy.infer(Observation(1.0, state, {"image_0": image}, "pick up the red cube"))
        np.testing.assert_allclose(chunk.values[:, WRIST], wrist + 0.02 + 0.1 * turn, atol=1e-5)
        np.testing.assert_allclose(chunk.values[:, 0], waist, atol=1e-6)
