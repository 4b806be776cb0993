"""pi0 backend on a tiny PI0ForConditionalGeneration built from a config and saved locally."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from vla_ros.core.merge import rtc_weights  # noqa: E402
from vla_ros.core.normalize import NormStats  # noqa: E402
from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.policies import PolicyContext, PolicyError, create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.policies.tiny_models import build_tiny_pi0  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

ROBOT = load_robot("widowx")
KEYS = ["image_0", "wrist"]


@pytest.fixture
def tiny_variants():
    """The tiny model's sizes standing in for the Gemma variants a LeRobot config.json names."""
    from vla_ros.policies import paligemma_sizes as sizes

    saved = (dict(sizes.GEMMA_VARIANTS), dict(sizes.VISION), sizes.VOCAB)
    tiny = sizes.Gemma(64, 2, 128, 2, 1, 32)
    sizes.GEMMA_VARIANTS.update(gemma_2b=tiny, gemma_300m=tiny)
    sizes.VISION.update(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                        patch_size=14)
    sizes.VOCAB = 300
    yield
    sizes.GEMMA_VARIANTS.update(saved[0])
    sizes.VISION.update(saved[1])
    sizes.VOCAB = saved[2]


def lerobot_config(cfg: dict) -> dict:
    """A LeRobot pi0 config.json for the tiny model: no model_type, variants instead of sizes."""
    out = {k: v for k, v in cfg.items() if k not in ("model_type", "vlm_config", "dit_config")}
    return {**out, "type": "pi0", "paligemma_variant": "gemma_2b", "action_expert_variant": "gemma_300m"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_pi0(tmp_path_factory.mktemp("pi0"), state_dim=7, action_dim=7, chunk_size=20)


def make(model_dir, node: dict | None = None, **options):
    """A pi0 backend built the way the policy node builds it (``node``: extra policy-node parameters)."""
    backend = {"model_path": str(model_dir), "device": "cpu", "seed": 0, "num_steps": 4, **options}
    params = {"backend": "pi0", "image_keys": KEYS, "image_topics": [f"/{k}" for k in KEYS], "chunk_dt": 0.1,
              "horizon": 10, **(node or {}), **{f"pi0.{k}": v for k, v in backend.items()}}
    return create_policy("pi0", policy_context(ROBOT, params))


def observation(seed=0, **extras):
    rng = np.random.default_rng(seed)
    images = {k: rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for k in KEYS}
    state = np.array([0.1, -0.5, 0.4, 0.0, 1.2, 0.1, 0.03])
    return Observation(123.4, state, images, "pick up the red cube", dict(extras))


def test_chunk_shape_stamp_and_determinism_with_fixed_noise(model_dir):
    policy = make(model_dir)
    a = policy.infer(observation())
    b = policy.infer(observation())
    assert a.values.shape == (10, 7) and a.names == tuple(ROBOT.action_joints) and a.stamp == 123.4
    np.testing.assert_allclose(a.times, 0.1 * np.arange(1, 11))
    np.testing.assert_array_equal(a.values, b.values)
    other = make(model_dir, seed=1).infer(observation())
    assert not np.allclose(other.values, a.values)
    changed = policy.infer(observation(seed=5))  # different images: different actions
    assert not np.allclose(changed.values, a.values)


def test_actions_are_the_models_unnormalised_output(model_dir):
    policy = make(model_dir)
    obs = observation()
    raw = policy.sample(policy.preprocess(obs))[0].numpy()
    stats = NormStats.load(model_dir)
    expected = stats.actions.unnormalize(raw[:10, :7], "zscore")
    grip = ROBOT.gripper
    expected[:, 6] = np.clip(expected[:, 6], grip.closed, grip.open)
    np.testing.assert_allclose(policy.infer(obs).values, expected, rtol=1e-5, atol=1e-6)
    # the state goes in z-scored and zero-padded to max_state_dim
    state = policy.preprocess(obs)["state"][0].numpy()
    np.testing.assert_allclose(state[:7], (obs.state - stats.state.mean) / (stats.state.std + 1e-6), rtol=1e-5)
    assert np.all(state[7:] == 0) and state.shape == (32,)


def test_reordered_action_joints_keep_each_joints_target(model_dir):
    """Chunks follow the node's action_joints order; the model's columns keep the preset's meaning."""
    obs = observation()
    default = make(model_dir).infer(obs)
    order = list(reversed(ROBOT.action_joints))
    reordered = make(model_dir, node={"action_joints": order}).infer(observation())
    assert list(reordered.names) == order
    np.testing.assert_allclose(reordered.values, default.select(order))
    subset = make(model_dir, node={"action_joints": ROBOT.action_joints[:6]}).infer(observation())
    np.testing.assert_allclose(subset.values, default.values[:, :6])


def test_quantile_statistics_are_used_when_asked(model_dir):
    z = make(model_dir).infer(observation()).values
    q = make(model_dir, norm_mode="quantile").infer(observation()).values
    assert not np.allclose(z, q)


def test_bad_input_raises_a_clear_error(model_dir):
    policy = make(model_dir)
    obs = observation()
    del obs.images["wrist"]
    with pytest.raises(PolicyError, match=r"lacks camera\(s\) \['wrist'\]"):
        policy.infer(obs)
    obs = observation()
    obs.images["wrist"] = np.zeros((224, 224), np.uint8)
    with pytest.raises(PolicyError, match="expected HxWx3 uint8"):
        policy.infer(obs)
    obs = observation()
    obs.state[2] = np.nan
    with pytest.raises(PolicyError, match="finite"):
        policy.infer(obs)
    with pytest.raises(PolicyError, match="horizon 30 exceeds"):
        PolicyContext_ = PolicyContext(ROBOT, ROBOT.state_joints, ROBOT.action_joints, KEYS, (224, 224), 0.1, 30,
                                       {"model_path": str(model_dir)})
        create_policy("pi0", PolicyContext_)
    with pytest.raises(ValueError, match="model_path is empty"):
        make(model_dir, model_path="")


def test_nan_model_output_is_an_error_not_a_chunk(model_dir):
    policy = make(model_dir)
    with torch.no_grad():
        policy.model.action_out_proj.bias.fill_(float("nan"))
    with pytest.raises(PolicyError, match="NaN"):
        policy.infer(observation())


def test_guided_rtc_follows_the_previous_chunk(model_dir):
    policy = make(model_dir, num_steps=8)
    obs = observation()
    free = policy.infer(obs).values
    prefix_values = free + 0.05  # a previous chunk that disagrees with this one
    prefix = {"values": prefix_values, "valid": np.ones(10, bool), "delay": 3, "execution_horizon": 3}
    guided = policy.infer(observation(prefix=prefix)).values
    head = slice(0, 3)
    assert np.abs(guided[head, :6] - prefix_values[head, :6]).mean() < 0.5 * np.abs(
        free[head, :6] - prefix_values[head, :6]).mean()
    off = make(model_dir, num_steps=8, rtc_guidance=False).infer(observation(prefix=prefix)).values
    np.testing.assert_allclose(off, free)
    assert rtc_weights(20, 3, 3)[:3].tolist() == [1.0, 1.0, 1.0]


def test_prompts_are_cleaned_and_cut_as_openpi_does(model_dir):
    """openpi's PaligemmaTokenizer: strip, '_' and newlines as spaces, <bos> + text + newline, cut to
    max_token_len (48 for pi0)."""
    from vla_ros.core.instructions import clean_prompt

    assert clean_prompt("  pick_up the\nred cube \n") == "pick up the red cube"
    policy = make(model_dir, max_token_len=8)
    tok = policy.tokenizer
    plain = policy._text_ids("pick up the red cube")
    assert plain == list(tok(f"{tok.bos_token or ''}pick up the red cube\n", add_special_tokens=False)["input_ids"])
    assert policy._text_ids("  pick_up the\nred cube ") == plain
    long = "pick up the red cube and then put it down next to the green block on the left"
    full = list(tok(f"{tok.bos_token or ''}{long}\n", add_special_tokens=False)["input_ids"])
    assert len(full) > 8 and policy._text_ids(long) == full[:8]
    assert policy.diagnostics()["pi0_prompt_truncations"] == 1
    assert make(model_dir, max_token_len=0)._text_ids(long) == full


def test_openpi_aloha_transforms_in_process(tmp_path):
    """pi0.transforms openpi_aloha: three cameras as openpi feeds them (cam_low is not a model input), the
    model's state in openpi's pi space, its actions through AbsoluteActions + AlohaOutputs."""
    from vla_ros.core.aloha import OpenpiAloha
    from vla_ros.robots import load_robot

    aloha = load_robot("aloha")
    folder = build_tiny_pi0(tmp_path, state_dim=14, action_dim=14, chunk_size=10)
    keys = [c.key for c in aloha.cameras]
    params = {"backend": "pi0", "image_keys": keys, "image_topics": [f"/{k}" for k in keys], "chunk_dt": 0.02,
              "horizon": 10, "pi0.model_path": str(folder), "pi0.device": "cpu", "pi0.seed": 0,
              "pi0.num_steps": 2, "pi0.transforms": "openpi_aloha"}
    policy = create_policy("pi0", policy_context(aloha, params))
    assert policy.cameras == ["cam_high", "cam_left_wrist", "cam_right_wrist"]
    rng = np.random.default_rng(0)
    state = np.array([0.1, -0.9, 1.1, 0.0, -0.3, 0.2, 0.05, -0.1, -0.8, 1.0, 0.1, -0.2, 0.0, 0.03])
    obs = Observation(5.0, state, {k: rng.integers(0, 255, (224, 224, 3), dtype=np.uint8) for k in keys}, "fold")
    inputs = policy.preprocess(obs)
    expected = policy.stats.state.normalize(OpenpiAloha((0.021, 0.057)).state(state), policy.stats.mode)
    np.testing.assert_allclose(inputs["state"][0, :14].float().numpy(), expected, atol=1e-5)
    raw = np.random.default_rng(1).normal(size=(10, 32))
    chunk = policy.postprocess(raw, obs)
    values = policy.stats.actions.unnormalize(raw[:, :14], policy.stats.mode)
    np.testing.assert_allclose(chunk.values, OpenpiAloha((0.021, 0.057)).targets(values, state), atol=1e-9)
    prefix = {"values": chunk.values, "valid": np.ones(10, bool), "delay": 2, "execution_horizon": 3}
    target, _ = policy._guidance(Observation(5.0, state, obs.images, "fold", {"prefix": prefix}))
    model = policy.stats.actions.normalize(OpenpiAloha((0.021, 0.057)).model_actions(chunk.values, state),
                                          policy.stats.mode)  # guided RTC's prefix: back in the model's space
    np.testing.assert_allclose(target[0, :, :14].float().numpy(), model, atol=1e-5)
    with pytest.raises(PolicyError, match="14 ALOHA joints"):
        create_policy("pi0", policy_context(ROBOT, {**params, "image_keys": KEYS,
                                                     "image_topics": [f"/{k}" for k in KEYS]}))


def test_guidance_weights_follow_the_node_chunk_the_controller_schedule_and_real_columns(model_dir):
    """RTC weights over the node's 10-step chunk (not the model's 20), with the controller's default exp
    schedule, on the 7 action columns only (the padding up to max_action_dim is never executed)."""
    policy = make(model_dir)
    values = np.tile([0.1, -0.5, 0.4, 0.0, 1.2, 0.1, 0.03], (10, 1))
    prefix = {"values": values, "valid": np.ones(10, bool), "delay": 2, "execution_horizon": 3}
    _, weights = policy._guidance(observation(prefix=prefix))
    w = weights.float().numpy()
    expected = rtc_weights(10, 2, 3, "exp")  # 1, 1, then c e^c-ish decay to 0 at step 7 (10 - 3)
    np.testing.assert_allclose(w[:10, :7], np.tile(expected[:, None], (1, 7)), atol=1e-6)
    assert w.shape == (20, policy.max_action_dim) and not w[10:].any() and not w[:, 7:].any()
    assert expected[6] > 0 and expected[7] == 0 and 0 < expected[4] < (7 - 4) / (7 - 2 + 1)  # exp below linear


def test_a_checkpoint_that_does_not_fit_is_refused_naming_the_keys(model_dir, tmp_path):
    """Weights a parameter does not take, or a parameter no weight fills, would leave random layers running: a
    pi0.5 checkpoint (adaRMS time conditioning) loaded into pi0 did so without an error."""
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "pi05_like"
    shutil.copytree(model_dir, bad)
    weights = next(bad.glob("*.safetensors"))
    tensors = load_file(weights)
    dropped = next(k for k in sorted(tensors) if k.startswith("action_out_proj"))
    tensors.pop(dropped)
    tensors["model.time_mlp_in.weight"] = torch.zeros(4, 4)
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(PolicyError) as err:
        make(bad)
    text = str(err.value)
    assert "does not fit PI0ForConditionalGeneration" in text and dropped in text and "time_mlp_in" in text
    assert "pi0.5 checkpoint" in text


def test_a_checkpoint_without_a_tokenizer_asks_for_tokenizer_path(model_dir, tmp_path):
    """LeRobot saves no tokenizer beside a pi0's weights: the error names the parameter to set."""
    import shutil

    bare = tmp_path / "lerobot_like"
    shutil.copytree(model_dir, bare)
    for f in bare.iterdir():
        if "token" in f.name or f.name == "special_tokens_map.json":
            f.unlink()
    with pytest.raises(PolicyError, match="set pi0.tokenizer_path"):
        make(bare)
    assert make(bare, tokenizer_path=str(model_dir)).infer(observation()).values.shape == (10, 7)


def test_lerobot_checkpoints_of_another_kind_are_refused_and_pi0_takes_their_camera_order(model_dir, tmp_path,
                                                                                          tiny_variants):
    """A LeRobot config.json (``type``, no ``model_type``) names the policy: a pi0.5 or SmolVLA checkpoint is
    refused before its weights load; a pi0's cameras come in its input_features order."""
    import json
    import shutil

    lerobot = tmp_path / "lerobot_pi0"
    shutil.copytree(model_dir, lerobot)
    cfg = lerobot_config(json.loads((lerobot / "config.json").read_text()))
    features = {"observation.state": {"type": "STATE", "shape": [7]},
                "observation.images.wrist": {"type": "VISUAL", "shape": [3, 224, 224]},
                "observation.images.image_0": {"type": "VISUAL", "shape": [3, 224, 224]}}
    cfg.update(type="pi0", input_features=features, output_features={"action": {"type": "ACTION", "shape": [7]}})
    (lerobot / "config.json").write_text(json.dumps(cfg))
    assert make(lerobot).cameras == ["wrist", "image_0"]
    (lerobot / "config.json").write_text(json.dumps({**cfg, "type": "pi05"}))
    with pytest.raises(PolicyError, match="LeRobot 'pi05' checkpoint, not 'pi0'"):
        make(lerobot)
    (lerobot / "config.json").write_text(json.dumps({**cfg, "type": "smolvla"}))
    with pytest.raises(PolicyError, match="run it with policy:=smolvla"):
        make(lerobot)


def test_a_lerobot_pi0_from_before_0_4_reads_its_statistics_from_the_weights(model_dir, tmp_path, tiny_variants):
    """LeRobot < 0.4 kept mean/std as buffers in model.safetensors: they are read (modes from config.json's
    normalization_mapping) and are not counted as weights no parameter takes."""
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    old = tmp_path / "pre_0_4"
    shutil.copytree(model_dir, old)
    stats = NormStats.load(old)
    (old / NormStats.FILE).unlink()
    cfg = lerobot_config(json.loads((old / "config.json").read_text()))
    cfg.update(normalization_mapping={"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
               input_features={"observation.state": {"type": "STATE", "shape": [7]},
                               **{f"observation.images.{k}": {"type": "VISUAL", "shape": [3, 224, 224]} for k in KEYS}},
               output_features={"action": {"type": "ACTION", "shape": [7]}})
    (old / "config.json").write_text(json.dumps(cfg))
    weights = next(old.glob("*.safetensors"))
    tensors = load_file(weights)
    for prefix, part, feature in (("normalize_inputs", stats.state, "observation_state"),
                                  ("unnormalize_outputs", stats.actions, "action")):
        tensors[f"{prefix}.buffer_{feature}.mean"] = torch.tensor(part.mean, dtype=torch.float32)
        tensors[f"{prefix}.buffer_{feature}.std"] = torch.tensor(part.std, dtype=torch.float32)
    save_file(tensors, weights, metadata={"format": "pt"})
    policy = make(old)
    assert policy.stats.mode == policy.stats.action_mode == "mean_std"
    np.testing.assert_allclose(policy.stats.actions.std, stats.actions.std, rtol=1e-6)
    assert policy.infer(observation()).values.shape == (10, 7)


def test_an_openpi_checkpoint_takes_its_chunk_length_and_the_assets_statistics(model_dir, tmp_path):
    """openpi's PyTorch converter writes config.json {action_dim, action_horizon, ...} and copies
    assets/<asset_id>/norm_stats.json: the chunk is action_horizon long (not transformers' default 50), states and
    actions pad to action_dim, the statistics come from the assets."""
    import json
    import shutil

    conv = tmp_path / "openpi"
    shutil.copytree(model_dir, conv)
    cfg = json.loads((conv / "config.json").read_text())
    cfg.update(action_dim=32, action_horizon=12, paligemma_variant="gemma_2b", action_expert_variant="gemma_300m",
               precision="float32", chunk_size=50)
    (conv / "config.json").write_text(json.dumps(cfg))
    (conv / "assets" / "trossen").mkdir(parents=True)
    shutil.move(conv / NormStats.FILE, conv / "assets" / "trossen" / NormStats.FILE)
    policy = make(conv)
    assert policy.chunk_size == 12 and policy.max_state_dim == 32
    assert policy.infer(observation()).values.shape == (10, 7)
    np.testing.assert_allclose(policy.stats.actions.std, NormStats.load(model_dir).actions.std)
    (conv / "assets" / "other").mkdir()
    shutil.copy(conv / "assets" / "trossen" / NormStats.FILE, conv / "assets" / "other" / NormStats.FILE)
    with pytest.raises(PolicyError, match="several .*choose one with asset_id"):
        make(conv)
    assert make(conv, asset_id="other").chunk_size == 12
    bare = {k: v for k, v in cfg.items() if k not in ("vlm_config", "dit_config")}  # as the converter writes it
    (conv / "config.json").write_text(json.dumps({**bare, "paligemma_variant": "dummy"}))
    with pytest.raises(PolicyError, match="paligemma_variant 'dummy'"):
        make(conv, asset_id="other")


def test_lerobot_image_preprocessing_matches_lerobots_own_function():
    """LeRobot 0.4.4's resize_with_pad_torch + *2-1 on frames of several sizes (test/fixtures/lerobot_pi0_images,
    made by tools/lerobot_pi0_images.py with LeRobot's code): centred padding at -3, bilinear without antialias."""
    from pathlib import Path

    from vla_ros.policies.lerobot_format import pi0_pixels

    ref = np.load(Path(__file__).parent / "fixtures" / "lerobot_pi0_images" / "reference.npz")
    n = len([k for k in ref.files if k.startswith("frame_")])
    assert n == 5
    for i in range(n):
        frame = torch.from_numpy(ref[f"frame_{i}"]).permute(2, 0, 1)[None].float() / 255.0
        ours = pi0_pixels(frame, 56, 56, "0.4")[0].numpy()
        np.testing.assert_allclose(ours, ref[f"model_{i}"], atol=1e-6)
    wide = torch.from_numpy(ref["frame_2"]).permute(2, 0, 1)[None].float() / 255.0  # 25x75: padded rows
    assert pi0_pixels(wide, 56, 56, "0.4")[0, :, 0].max() == -3.0
    assert pi0_pixels(wide, 56, 56, "0.5")[0, :, 0].max() == -1.0


def test_lerobot_checkpoints_take_the_task_as_given(model_dir, tmp_path):
    """openpi cleans the prompt (underscores to spaces); LeRobot feeds the task + newline unchanged."""
    policy = make(model_dir)
    assert policy.conventions == "openpi"
    cleaned = policy._text_ids("pick_up the red cube")
    assert cleaned == policy._text_ids("pick up the red cube")
    lerobot = make(model_dir, conventions="lerobot_0.4")
    assert lerobot._text_ids("pick_up the red cube") != cleaned
    assert lerobot._text_ids("pick up the red cube") == cleaned
