"""The built-in VLA: tokenizer, model heads, checkpoint loading and actions computed by hand."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vla_ros.core.instructions import HELD_OUT, phrasings, target_object  # noqa: E402
from vla_ros.core.normalize import NormStats, Stats  # noqa: E402
from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.learning.dataset import Samples  # noqa: E402
from vla_ros.learning.model import ModelConfig, TinyVLA, spatial_softmax  # noqa: E402
from vla_ros.learning.tokenizer import WordTokenizer  # noqa: E402
from vla_ros.learning.train import (  # noqa: E402
    brighten,
    drop_words,
    first_frames,
    grasp_goals,
    holding_frames,
    jitter_grip,
    load_init,
    save_checkpoint,
    still_frames,
)
from vla_ros.policies import PolicyError, create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

ROBOT = load_robot("widowx")
ARM = ROBOT.arm_joints
STATE = np.array([0.1, -0.5, 0.4, 0.0, 1.2, 0.1, 0.03])


def test_tokenizer_words_unknowns_and_padding(tmp_path):
    tok = WordTokenizer.build(["Pick up the RED cube!", "grab the blue block"])
    assert tok.encode("pick up the red cube") == [tok.index[w] for w in ("pick", "up", "the", "red", "cube")]
    assert tok.encode("pick up the purple cube")[3] == 1  # a colour it does not know stays unknown
    # filler and polite words are left out, synonyms map to the demonstrations' words
    assert tok.encode("could you please grasp the red one for me") == tok.encode("grab the red cube")
    assert tok.encode("please pick up the red box thanks") == tok.encode("pick up the red block")
    assert tok.ignored("could you please pick up the red one") == ["could", "you", "please"]
    assert tok.encode("hello there") == [1]
    batch = tok.batch(["grab", "grab the blue block"])
    assert batch.shape == (2, 12) and batch[0, 1:].eq(0).all() and batch[1, :4].ne(0).all()
    tok.save(tmp_path)
    assert WordTokenizer.load(tmp_path).vocab == tok.vocab


def test_instruction_phrasings_hold_out_verb_noun_pairs_but_no_word():
    train, held = phrasings("red"), phrasings("red", held_out=True)
    assert held and not set(train) & set(held)
    assert all(f"{v} the red {n}" in held for v, n in HELD_OUT)
    assert {w for p in held for w in p.split()} <= {w for p in train for w in p.split()}
    assert target_object("grab the GREEN block", ["red_cube", "green_cube"]) == "green_cube"
    assert target_object("wave", ["red_cube"]) is None


def test_spatial_softmax_finds_the_peak():
    maps = torch.full((1, 1, 5, 9), -50.0)
    maps[0, 0, 4, 0] = 50.0  # bottom-left
    np.testing.assert_allclose(spatial_softmax(maps).numpy(), [[-1.0, 1.0]], atol=1e-4)


@pytest.mark.parametrize("head", ["regression", "flow"])
def test_model_heads_shapes_loss_and_determinism(head):
    torch.manual_seed(0)
    cfg = ModelConfig(["image_0"], ROBOT.state_joints, ROBOT.action_joints, head=head, image_size=32)
    model = TinyVLA(cfg).eval()
    images = torch.randint(0, 255, (2, 1, 3, 32, 32), dtype=torch.uint8)
    state, tokens = torch.zeros(2, 7), torch.tensor([[2, 3, 0], [4, 0, 0]])
    noise = torch.randn(2, 10, 7)
    out = model.predict(images, state, tokens, noise)
    assert out.shape == (2, 10, 7) and torch.isfinite(out).all()
    torch.testing.assert_close(model.predict(images, state, tokens, noise), out)
    loss = model.loss(images, state, tokens, torch.zeros(2, 10, 7))
    loss.backward()
    assert loss.item() > 0 and model.embed.weight.grad is not None



def test_the_grasp_pose_head_sees_image_and_instruction_but_not_the_joint_state():
    torch.manual_seed(0)
    cfg = ModelConfig(["image_0"], ROBOT.state_joints, ROBOT.action_joints, image_size=32)
    model = TinyVLA(cfg).eval()
    images = torch.randint(0, 255, (1, 1, 3, 32, 32), dtype=torch.uint8)
    tokens = torch.tensor([[2, 3, 0]])
    a, b = (model.encode(images, state, tokens) for state in (torch.zeros(1, 7), torch.ones(1, 7)))
    goal = slice(cfg.hidden, None)
    torch.testing.assert_close(a[:, goal], b[:, goal])  # the grasp pose: not from the state
    assert not torch.allclose(a[:, :cfg.hidden], b[:, :cfg.hidden])  # the trunk: from the state too
    other = model.encode(images, torch.zeros(1, 7), torch.tensor([[4, 3, 0]]))
    assert not torch.allclose(a[:, goal], other[:, goal])  # ... and from the instruction
    actions, goals = torch.zeros(1, 10, 7), torch.full((1, 7), 0.5)
    extra = model.loss(images, torch.zeros(1, 7), tokens, actions, goals) - model.loss(
        images, torch.zeros(1, 7), tokens, actions)
    torch.testing.assert_close(extra, cfg.goal_weight * (a[0, goal] - 0.5).abs().mean())


def test_colour_attention_finds_the_pixels_of_the_colour_the_instruction_chooses():
    """With the instruction's colour direction set by hand to red (normalised R up, G and B down), the
    attention's expected position is the red patch's, not the blue one's, on a grey-brown floor."""
    cfg = ModelConfig(["image_0"], ROBOT.state_joints, ROBOT.action_joints, image_size=32, attention_heads=1)
    model = TinyVLA(cfg).eval()
    image = torch.zeros(1, 3, 32, 32)
    image[0, :] = torch.tensor([0.55, 0.4, 0.3]).view(3, 1, 1)  # floor
    image[0, :, 24:27, 4:7] = torch.tensor([0.9, 0.05, 0.05]).view(3, 1)[:, :, None]  # red: row 25, column 5
    image[0, :, 4:7, 24:27] = torch.tensor([0.05, 0.05, 0.9]).view(3, 1)[:, :, None]  # blue, top right
    x = (image - model.vision.mean) / model.vision.std
    with torch.no_grad():
        model.vision.colours.weight.zero_()
        model.vision.colours.bias.copy_(torch.tensor([1.0, -1.0, -1.0]))
        out = model.vision.attend(x, torch.zeros(1, cfg.text_dim))
    np.testing.assert_allclose(out[0, :2].numpy(), [2 * 5 / 31 - 1, 2 * 25 / 31 - 1], atol=0.02)  # on [-1, 1]
    np.testing.assert_allclose(out[0, 2:].numpy(), x[0, :, 25, 5].numpy(), atol=0.05)  # the colour there
    assert model.vision.out_dim == TinyVLA(ModelConfig(["image_0"], ROBOT.state_joints, ROBOT.action_joints,
                                                       image_size=32)).vision.out_dim + 5


def test_still_frames_are_those_before_the_arm_moved_and_weigh_the_grasp_loss():
    state = np.zeros((6, 7))
    state[:, 0] = [0.0, 0.05, 0.2, 0.3, 0.3, 0.3]  # episode 0 moves at sample 2; episode 1 starts at 0.3
    state[4, 1] = 0.15
    samples = Samples(None, state, None, ["x"] * 6, np.array([0, 0, 0, 1, 1, 1]))
    np.testing.assert_array_equal(still_frames(samples, [0, 1], 0.1), [1, 1, 0, 1, 0, 1])
    torch.manual_seed(0)
    cfg = ModelConfig(["image_0"], ROBOT.state_joints, ROBOT.action_joints, image_size=32)
    model = TinyVLA(cfg).eval()
    images = torch.randint(0, 255, (2, 1, 3, 32, 32), dtype=torch.uint8)
    args = (images, torch.zeros(2, 7), torch.tensor([[2, 3], [4, 0]]), torch.zeros(2, 10, 7), torch.zeros(2, 7))
    base = model.loss(*args[:4])  # the chunk loss alone
    goal = model.encode(*args[:3])[:, cfg.hidden:].abs().mean(1)
    weighted = model.loss(*args, goal_weights=torch.tensor([3.0, 1.0]))
    torch.testing.assert_close(weighted - base, cfg.goal_weight * (3 * goal[0] + goal[1]) / 4, atol=1e-5, rtol=1e-4)


def test_grip_jitter_widens_only_the_finger_reading_of_frames_that_close_or_hold():
    # commanded gripper (first target) and measured finger per sample: open/open, closing (cmd 0.02 < 0.026,
    # finger 0.035), holding (0.015 / 0.0267), commanded closed but the finger at its closed limit, reopening
    cmd = [0.037, 0.02, 0.015, 0.015, 0.037]
    finger = [0.037, 0.035, 0.0267, 0.015, 0.0267]
    state = np.zeros((5, 7))
    state[:, 6] = finger
    targets = np.zeros((5, 10, 7))
    targets[:, 0, 6] = cmd
    samples = Samples(None, state, targets, ["x"] * 5, np.zeros(5, int))
    holding = holding_frames(samples, 6, 6, closed=0.015, opened=0.037)
    np.testing.assert_array_equal(holding, [0, 1, 1, 0, 0])
    std = 0.004
    normalised = torch.from_numpy(state / std).float()
    out = jitter_grip(normalised, torch.from_numpy(holding), 6, 0.0065, std, torch.Generator().manual_seed(0))
    added = (out - normalised).numpy() * std  # metres
    assert np.all(added[:, :6] == 0) and np.all(added[~holding, 6] == 0)
    assert np.all((added[holding, 6] > 0) & (added[holding, 6] <= 0.0065 + 1e-6))
    assert torch.equal(normalised, torch.from_numpy(state / std).float())  # the input is not modified
    assert jitter_grip(normalised, torch.from_numpy(holding), 6, 0.0, std, None) is normalised  # off


def test_grasp_goals_are_the_command_when_the_gripper_closed_halfway():
    # episode 0: gripper 0.015 (closed) -> opens to 0.037 -> closes; halfway (0.026) is first crossed at
    # sample 4 (0.02); episode 1 never closes: its last command
    grip = [0.015, 0.037, 0.037, 0.03, 0.02, 0.015, 0.037, 0.037]
    first = np.zeros((8, 7))
    first[:, 0] = np.arange(8) * 0.1  # waist: a different value per sample
    first[:, 6] = grip
    targets = np.repeat(first[:, None], 10, axis=1)
    samples = Samples(None, first.copy(), targets, ["x"] * 8, np.array([0] * 6 + [1] * 2))
    goals = grasp_goals(samples, gripper=6)
    assert goals[:6, 0] == pytest.approx([0.4] * 6) and goals[6:, 0] == pytest.approx([0.7] * 2)
    assert goals[0, 6] == pytest.approx(0.02)



def test_grasp_goals_of_two_grippers_are_taken_when_the_first_one_closed():
    # a transfer: the giver (column 1) closes at sample 2, the receiver (column 0) later at sample 4
    first = np.zeros((6, 3))
    first[:, 2] = np.arange(6)  # a joint: a different value per sample
    first[:, 0] = [0.05, 0.05, 0.05, 0.05, 0.01, 0.01]
    first[:, 1] = [0.0, 0.05, 0.01, 0.01, 0.01, 0.05]
    samples = Samples(None, first.copy(), np.repeat(first[:, None], 10, axis=1), ["x"] * 6, np.zeros(6, int))
    assert grasp_goals(samples, [0, 1])[:, 2] == pytest.approx([2.0] * 6)
    assert grasp_goals(samples, [0])[:, 2] == pytest.approx([4.0] * 6)
    assert grasp_goals(samples, [])[:, 2] == pytest.approx([5.0] * 6)  # no gripper: the last command

@pytest.fixture
def checkpoint(tmp_path):
    """A checkpoint saved as training saves one; the head outputs zeros (normalised), so every action is
    the statistics' mean and the chunk can be computed by hand."""
    torch.manual_seed(0)
    cfg = ModelConfig(["image_0"], ROBOT.state_joints, ROBOT.action_joints, delta_joints=ARM, image_size=32,
                      vocab_size=8)
    model = TinyVLA(cfg)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    mean = np.array([0.01, -0.02, 0.03, 0.0, 0.05, -0.01, 0.05])  # gripper mean 0.05 m: above "open"
    stats = NormStats("zscore", Stats(mean=np.zeros(7), std=np.ones(7)), Stats(mean=mean, std=np.full(7, 0.1)))
    return save_checkpoint(tmp_path / "ckpt", model, stats, WordTokenizer.build(["pick up the red cube"]))


def make(checkpoint, **node):
    params = {"backend": "builtin", "builtin.model_path": str(checkpoint), **node}
    return create_policy("builtin", policy_context(ROBOT, params))


def observation(**kw):
    rng = np.random.default_rng(0)
    return Observation(5.0, STATE.copy(), {"image_0": rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)},
                       "pick up the red cube", **kw)


def test_actions_are_deltas_on_the_state_and_an_absolute_clamped_gripper(checkpoint):
    chunk = make(checkpoint).infer(observation())
    assert chunk.values.shape == (10, 7) and chunk.stamp == 5.0 and list(chunk.names) == ROBOT.action_joints
    np.testing.assert_allclose(chunk.times, 0.1 * np.arange(1, 11))
    expected = STATE[:6] + np.array([0.01, -0.02, 0.03, 0.0, 0.05, -0.01])
    np.testing.assert_allclose(chunk.values[:, :6], np.tile(expected, (10, 1)), atol=1e-6)
    np.testing.assert_allclose(chunk.values[:, 6], ROBOT.gripper.open)  # 0.05 clamped to the finger range
    order = list(reversed(ROBOT.action_joints))
    reordered = make(checkpoint, action_joints=order).infer(observation())
    np.testing.assert_allclose(reordered.values, chunk.select(order), atol=1e-9)


def test_bad_input_and_mismatched_configuration_are_clear_errors(checkpoint):
    policy = make(checkpoint)
    obs = observation()
    obs.images["image_0"] = np.zeros((224, 224), np.uint8)
    with pytest.raises(PolicyError, match="expected HxWx3 uint8"):
        policy.infer(obs)
    obs = observation()
    obs.state[1] = np.nan
    with pytest.raises(PolicyError, match="finite"):
        policy.infer(obs)
    with pytest.raises(PolicyError, match="chunk_dt 0.2 differs"):
        make(checkpoint, chunk_dt=0.2)
    with pytest.raises(PolicyError, match="needs camera"):
        make(checkpoint, image_keys=["wrist"], image_topics=["/wrist"])
    with pytest.raises(PolicyError, match="no built-in VLA checkpoint"):
        make(checkpoint.parent / "missing")


def test_word_dropout_hides_words_at_its_rate_and_keeps_one_per_instruction():
    tokens = torch.zeros(4000, 12, dtype=torch.long)
    tokens[:, :5] = torch.arange(2, 7)
    tokens[:2000, :1] = torch.tensor([3])  # half the rows: one word
    tokens[:2000, 1:] = 0
    out = drop_words(tokens, 0.3, torch.Generator().manual_seed(0))
    assert ((out == 0) | (out == tokens)).all()  # words only hidden, never changed or moved
    assert (out[:, 5:] == 0).all()
    assert ((out > 0).sum(1) >= 1).all()
    assert (out[:2000, 0] == 3).all()  # a one-word instruction keeps its word
    hidden = ((out[2000:, :5] == 0).sum() / (2000 * 5)).item()
    assert 0.27 < hidden < 0.33, hidden
    assert torch.equal(drop_words(tokens, 0.0, torch.Generator()), tokens)
    kept = drop_words(tokens, 0.9, torch.Generator().manual_seed(1), kept=[4])
    assert (kept[2000:, 2] == 4).all()  # a kept word (the colour) is never hidden
    assert ((kept[2000:, [0, 1, 3, 4]] == 0).sum() / (2000 * 4)).item() > 0.85  # the others still are


def test_brightness_scales_each_sample_by_one_factor_within_the_spread():
    images = torch.full((2000, 1, 3, 8, 8), 100, dtype=torch.uint8)
    images[:, :, :, 0, 0] = 250  # saturates when brightened: clipped, not wrapped
    out = brighten(images, 0.3, torch.Generator().manual_seed(0))
    factor = out[:, 0, 0, 4, 4].float() / 100.0
    assert out.dtype == torch.uint8 and (out[:, :, :, 1:, :] == out[:, :1, :1, 4:5, 4:5]).all()  # one per sample
    assert factor.min() >= 0.695 and factor.max() <= 1.305 and factor.min() < 0.75 and factor.max() > 1.25
    assert (out[:, 0, 0, 0, 0] == 255).sum() > 300 and (out[:, 0, 0, 0, 0] >= 174).all()
    assert torch.equal(brighten(images, 0.0, torch.Generator()), images)


def test_a_model_without_the_gripper_state_drives_the_gripper_from_the_image(tmp_path):
    """A model trained without the gripper's position (--no-gripper-state): the backend feeds the arm joints
    only and the chunk still holds every action joint, the gripper absolute."""
    torch.manual_seed(0)
    cfg = ModelConfig(["image_0"], ARM, ROBOT.action_joints, delta_joints=ARM, image_size=32, vocab_size=8)
    model = TinyVLA(cfg)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    mean = np.array([0.01, -0.02, 0.03, 0.0, 0.05, -0.01, 0.02])
    stats = NormStats("zscore", Stats(mean=np.zeros(6), std=np.ones(6)), Stats(mean=mean, std=np.full(7, 0.1)))
    folder = save_checkpoint(tmp_path / "ckpt", model, stats, WordTokenizer.build(["pick up the red cube"]))
    chunk = make(folder).infer(observation())
    np.testing.assert_allclose(chunk.values[:, :6], np.tile(STATE[:6] + mean[:6], (10, 1)), atol=1e-6)
    np.testing.assert_allclose(chunk.values[:, 6], 0.02)  # (within the finger's 0.015 .. 0.037 m)
    assert model.state[0].in_features == 6


def test_first_frames_marks_each_episodes_first_sample():
    """The grasp head is also scored on these alone: only the instruction tells the target there."""
    np.testing.assert_array_equal(first_frames(np.array([0, 0, 0, 3, 3, 7])), [1, 0, 0, 1, 0, 1])
    assert first_frames(np.array([], int)).shape == (0,)


def test_training_can_start_from_a_checkpoint_of_the_same_config_only(checkpoint):
    """``vla-ros train --init``: the weights are those of the checkpoint; another architecture is refused."""
    import dataclasses  # noqa: PLC0415

    from safetensors.torch import load_file  # noqa: PLC0415

    cfg = ModelConfig.load(checkpoint)
    model = TinyVLA(cfg)
    load_init(model, cfg, checkpoint)
    saved = load_file(str(checkpoint / "model.safetensors"))
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())
    other = dataclasses.replace(cfg, hidden=128)
    with pytest.raises(ValueError, match=r"differs in \['hidden'\]"):
        load_init(TinyVLA(other), other, checkpoint)


def test_samples_concat_renumbers_episodes_and_releases_each_part():
    def part(n: int, episodes: int, seed: int, glimpses: bool = True) -> Samples:
        rng = np.random.default_rng(seed)
        return Samples(rng.integers(0, 255, (n, 1, 3, 4, 4), dtype=np.uint8),
                       rng.normal(size=(n, 7)).astype(np.float32),
                       rng.normal(size=(n, 10, 7)).astype(np.float32), [f"i{seed}"] * n,
                       np.sort(rng.integers(0, episodes, n)), rng.random(n) < 0.5,
                       rng.integers(0, 255, (n, 1, 3, 8, 8), dtype=np.uint8) if glimpses else None)

    a, b, c = part(5, 2, 1), part(3, 3, 2), part(4, 1, 3)
    parts = [a, b, c]
    out = Samples.concat(parts)
    assert parts == [] and len(out) == 12
    np.testing.assert_array_equal(out.glimpses, np.concatenate([a.glimpses, b.glimpses, c.glimpses]))
    np.testing.assert_array_equal(out.images[5:8], b.images)
    np.testing.assert_array_equal(out.targets[8:], c.targets)
    np.testing.assert_array_equal(out.intervention, np.concatenate([a.intervention, b.intervention, c.intervention]))
    offset_b, offset_c = a.episode.max() + 1, a.episode.max() + b.episode.max() + 2
    np.testing.assert_array_equal(out.episode, np.concatenate([a.episode, b.episode + offset_b, c.episode + offset_c]))
    assert out.instructions == ["i1"] * 5 + ["i2"] * 3 + ["i3"] * 4
    assert Samples.concat([part(2, 1, 4), part(2, 1, 5, glimpses=False)]).glimpses is None  # not every part has them


def test_episodes_away_from_the_usual_start_are_found_by_their_first_state():
    from vla_ros.learning.train import away_from_usual_start  # noqa: PLC0415

    state = np.zeros((9, 7), np.float32)
    state[[3, 4], 5] = 0.4  # episode 1 starts with the wrist turned (and moves on)
    state[5, 0] = 0.02  # episode 2 starts a little off: within the tolerance
    state[[7, 8], 2] = 1.0  # later frames of episode 2 move far: only the start counts
    samples = Samples(np.zeros((9, 1, 3, 2, 2), np.uint8), state, np.zeros((9, 10, 7), np.float32), ["x"] * 9,
                      np.array([0, 0, 0, 1, 1, 2, 2, 2, 2]))
    away = away_from_usual_start(samples, [0, 1, 2, 3, 4, 5], 0.05)
    np.testing.assert_array_equal(away, [False] * 3 + [True] * 2 + [False] * 4)
    assert not away_from_usual_start(samples, [0, 1, 2, 3, 4], 0.05).any()  # the wrist not among the joints
