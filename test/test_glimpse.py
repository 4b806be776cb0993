"""The built-in model's glimpse: a full-resolution crop around the object the colour attention finds."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from vla_ros.core.normalize import NormStats, Stats  # noqa: E402
from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.learning.model import Glimpse, ModelConfig, TinyVLA  # noqa: E402
from vla_ros.learning.tokenizer import WordTokenizer  # noqa: E402
from vla_ros.learning.train import load_init, save_checkpoint  # noqa: E402
from vla_ros.policies import create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

ROBOT = load_robot("widowx")


def test_the_glimpse_is_cut_around_the_pixel_the_attention_points_at():
    """Attention coordinates are the model image's pixel centres (-1: first, 1: last); the crop is taken from
    the same frame at the source size, one source pixel per crop pixel, centred there."""
    glimpse = Glimpse(size=32, source=224, model_size=96)
    rows, cols = torch.meshgrid(torch.arange(224.0), torch.arange(224.0), indexing="ij")
    frames = torch.stack([cols, rows, torch.zeros_like(rows)])[None]  # pixel (r, c) holds (c, r)
    i, j = 30, 60  # model pixel column 30, row 60
    centre = torch.tensor([[2 * i / 95 - 1, 2 * j / 95 - 1]])
    crop = F.grid_sample(frames, glimpse.grid(centre), align_corners=False)[0]
    expected = [(k + 0.5) * 224 / 96 - 0.5 for k in (i, j)]  # that pixel's centre in source pixels
    np.testing.assert_allclose([crop[0].mean(), crop[1].mean()], expected, atol=1e-3)
    np.testing.assert_allclose(torch.diff(crop[0], dim=1).numpy(), 1.0, atol=1e-3)  # one source pixel apart
    np.testing.assert_allclose(crop[0, 0, 0].item(), expected[0] - 15.5, atol=1e-3)


def config(**kw) -> ModelConfig:
    return ModelConfig(["image_0"], ROBOT.state_joints, ROBOT.action_joints, delta_joints=ROBOT.arm_joints,
                       image_size=32, vocab_size=8, attention_heads=2, **kw)


def test_a_glimpse_added_to_a_checkpoint_starts_as_it_and_then_reads_the_full_frame(tmp_path):
    torch.manual_seed(0)
    base = TinyVLA(config())
    stats = NormStats("zscore", Stats(mean=np.zeros(7), std=np.ones(7)), Stats(mean=np.zeros(7), std=np.ones(7)))
    folder = save_checkpoint(tmp_path / "base", base, stats, WordTokenizer.build(["pick up the red cube"]))
    cfg = dataclasses.replace(config(), glimpse=16, glimpse_source=64, glimpse_head=1)
    model = TinyVLA(cfg)
    load_init(model, cfg, folder)
    images, state, tokens = torch.rand(2, 1, 3, 32, 32), torch.randn(2, 7), torch.tensor([[1, 2, 3], [1, 2, 0]])
    frames = torch.rand(2, 1, 3, 64, 64)
    torch.testing.assert_close(model.predict(images, state, tokens, glimpses=frames),
                               base.predict(images, state, tokens))
    with pytest.raises(ValueError, match="takes glimpses"):
        model.predict(images, state, tokens)
    with torch.no_grad():  # as training makes it: the glimpse feeds the trunk and the grasp pose
        model.glimpse_trunk.weight.normal_()
        model.glimpse_goal.weight.normal_()
    other = frames.clone()
    other[:, :, :, 20:44, 20:44] = 1.0 - other[:, :, :, 20:44, 20:44]  # only the full-resolution frame differs
    assert not torch.allclose(model.predict(images, state, tokens, glimpses=frames),
                              model.predict(images, state, tokens, glimpses=other))
    changed = dataclasses.replace(cfg, glimpse_head=0)  # a glimpse checkpoint: its glimpse must match
    save_checkpoint(tmp_path / "glimpse", model, stats, WordTokenizer.build(["pick up the red cube"]))
    with pytest.raises(ValueError, match=r"differs in \['glimpse_head'\]"):
        load_init(TinyVLA(changed), changed, tmp_path / "glimpse")
    with pytest.raises(ValueError, match="not one of the 2 attention heads"):
        config(glimpse=16, glimpse_head=2)


def test_the_builtin_backend_feeds_a_glimpse_model_the_frame_at_its_source_size(tmp_path):
    torch.manual_seed(0)
    cfg = dataclasses.replace(config(), glimpse=16, glimpse_source=64, glimpse_head=1)
    model = TinyVLA(cfg)
    with torch.no_grad():
        model.glimpse_goal.weight.normal_()
    stats = NormStats("zscore", Stats(mean=np.zeros(7), std=np.ones(7)),
                      Stats(mean=np.zeros(7), std=np.full(7, 0.1)))
    folder = save_checkpoint(tmp_path / "ckpt", model, stats, WordTokenizer.build(["pick up the red cube"]))
    policy = create_policy("builtin", policy_context(ROBOT, {"backend": "builtin", "builtin.model_path": str(folder)}))
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
    state = np.array([0.1, -0.5, 0.4, 0.0, 1.2, 0.1, 0.03])
    chunk = policy.infer(Observation(5.0, state, {"image_0": frame}, "pick up the red cube"))
    assert chunk.values.shape == (10, 7) and np.all(np.isfinite(chunk.values))
    images, norm, tokens, _, glimpses = policy.preprocess(Observation(5.0, state, {"image_0": frame}, "pick up"))
    assert images.shape == (1, 1, 3, 32, 32) and glimpses.shape == (1, 1, 3, 64, 64)


def test_the_crop_cut_from_a_window_equals_the_crop_of_the_whole_frame():
    """The glimpse normalises only a window around the point; the crop is the whole frame's, edges included."""
    glimpse = Glimpse(size=32, source=224, model_size=96)
    generator = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (6, 3, 224, 224), dtype=torch.uint8, generator=generator)
    centre = torch.tensor([[0.1, -0.3], [-1.0, -1.0], [1.0, 0.95], [0.999, -0.99], [-0.5, 0.7], [0.33, 0.0]])
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.3, 0.25]).view(1, 3, 1, 1)

    def normalise(x):
        return (x.float() / 255.0 - mean) / std

    whole = F.grid_sample(normalise(frames), glimpse.grid(centre), align_corners=False)
    torch.testing.assert_close(glimpse.crop(frames, centre, normalise), whole, atol=1e-5, rtol=1e-5)


def test_a_glimpse_of_one_camera_of_two_reads_only_that_cameras_frame(tmp_path):
    franka = load_robot("franka")
    keys = [c.key for c in franka.cameras]
    torch.manual_seed(0)
    cfg = ModelConfig(keys, franka.state_joints, franka.action_joints, delta_joints=franka.arm_joints,
                      image_size=32, vocab_size=8, attention_heads=2, glimpse=16, glimpse_source=64, glimpse_head=1,
                      glimpse_cameras=[keys[0]])
    assert cfg.glimpse_keys == keys[:1] and dataclasses.replace(cfg, glimpse_cameras=[]).glimpse_keys == keys
    with pytest.raises(ValueError, match=r"glimpse_cameras \['top'\] are not among"):
        dataclasses.replace(cfg, glimpse_cameras=["top"])
    model = TinyVLA(cfg)
    assert model.glimpse_trunk.in_features == model.glimpse.out_dim  # one camera's glimpse
    with torch.no_grad():
        model.glimpse_goal.weight.normal_()
    images, state, tokens = torch.rand(1, 2, 3, 32, 32), torch.randn(1, 8), torch.tensor([[1, 2, 3]])
    frames = torch.rand(1, 1, 3, 64, 64)
    assert not torch.allclose(model.predict(images, state, tokens, glimpses=frames),
                              model.predict(images, state, tokens, glimpses=1.0 - frames))
    stats = NormStats("zscore", Stats(mean=np.zeros(8), std=np.ones(8)), Stats(mean=np.zeros(8), std=np.ones(8)))
    folder = save_checkpoint(tmp_path / "ckpt", model, stats, WordTokenizer.build(["pick up the red cube"]))
    policy = create_policy("builtin", policy_context(franka, {"backend": "builtin", "builtin.model_path": str(folder)}))
    frame = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    obs = Observation(5.0, np.array([0.0, -0.7, 0.0, -2.3, 0.0, 1.6, 0.8, 0.04]), dict.fromkeys(keys, frame),
                      "pick up the red cube")
    images, _, _, _, glimpses = policy.preprocess(obs)
    assert images.shape == (1, 2, 3, 32, 32) and glimpses.shape == (1, 1, 3, 64, 64)
    assert np.all(np.isfinite(policy.infer(obs).values))


def test_a_model_with_a_crop_view_gets_that_box_of_its_camera_and_the_node_subscribes_the_camera(tmp_path):
    from vla_ros.policies.builtin import BuiltinPolicy

    franka = load_robot("franka")
    wide = franka.cameras[0].key
    crops = {"table": [wide, 0.25, 0.5, 0.75, 1.0]}
    cfg = ModelConfig([wide, "table"], franka.state_joints, franka.action_joints, delta_joints=franka.arm_joints,
                      image_size=32, vocab_size=8, crops=crops)
    assert cfg.cameras == [wide]
    with pytest.raises(ValueError, match="must be among image_keys"):
        ModelConfig([wide], franka.state_joints, franka.action_joints, crops=crops)
    stats = NormStats("zscore", Stats(mean=np.zeros(8), std=np.ones(8)), Stats(mean=np.zeros(8), std=np.ones(8)))
    folder = save_checkpoint(tmp_path / "ckpt", TinyVLA(cfg), stats, WordTokenizer.build(["pick up the red cube"]))
    options = {"backend": "builtin", "builtin.model_path": str(folder)}
    assert BuiltinPolicy.cameras({"model_path": str(folder)}, franka) == [wide]
    policy = create_policy("builtin", policy_context(franka, options))
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[32:, 16:48] = 200  # the box, bright; the rest dark
    obs = Observation(5.0, np.array([0.0, -0.7, 0.0, -2.3, 0.0, 1.6, 0.8, 0.04]), {wide: frame}, "pick up the red cube")
    images = policy.preprocess(obs)[0]
    assert images.shape == (1, 2, 3, 32, 32)
    assert float(images[0, 1].float().mean()) == 200.0 and float(images[0, 0].float().mean()) == 50.0
    assert np.all(np.isfinite(policy.infer(obs).values))
