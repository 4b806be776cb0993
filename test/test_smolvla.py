"""SmolVLA backend against LeRobot 0.4.4's own SmolVLAPolicy: a tiny random-weight checkpoint saved by LeRobot
(test/fixtures/smolvla, made by tools/lerobot_smolvla_fixture.py in LeRobot's side venv) and the action chunks
LeRobot produced for fixed images, states, tasks and noise."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.policies import PolicyError, create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "smolvla"
CKPT, VLM = FIXTURE / "checkpoint", FIXTURE / "vlm"
ROBOT = load_robot("widowx")
KEYS = ["top", "wrist"]
REF = np.load(FIXTURE / "reference.npz")
CASES = json.loads((FIXTURE / "cases.json").read_text())["cases"]
TOL = 1e-4  # the parity goal (float32, CPU)


def make(model_path=CKPT, keys=KEYS, **options):
    backend = {"model_path": str(model_path), "vlm_path": str(VLM), "device": "cpu", "seed": 0, **options}
    params = {"backend": "smolvla", "image_keys": keys, "image_topics": [f"/{k}" for k in keys], "chunk_dt": 0.1,
              "horizon": 10, **{f"smolvla.{k}": v for k, v in backend.items()}}
    return create_policy("smolvla", policy_context(ROBOT, params))


@pytest.fixture(scope="module")
def policy():
    return make()


def case(i: int) -> tuple[Observation, dict]:
    c = f"c{i}_"
    images = {k: REF[c + f"img_{k}"] for k in KEYS if c + f"img_{k}" in REF}
    return Observation(5.0, REF[c + "state"].astype(np.float64), images, CASES[i]["task"], {}), c


@pytest.mark.parametrize("i", [0, 2, 3])
def test_action_chunks_match_lerobot(policy, i):
    """Tokens, normalised state, letterboxed pixels and the sampled chunk as LeRobot computed them."""
    obs, c = case(i)
    inputs = policy.preprocess(obs)
    assert inputs["tokens"].tolist() == REF[c + "lang_tokens"].tolist()
    np.testing.assert_allclose(inputs["state"][0, :7].numpy(), REF[c + "state_norm"][0], atol=1e-5, rtol=1e-6)
    if c + "pixels_top" in REF:
        for k, img in zip(KEYS, inputs["images"], strict=True):
            np.testing.assert_allclose(img.numpy(), REF[c + f"pixels_{k}"], atol=1e-6)
    x = policy.sample(inputs, None, torch.from_numpy(REF[c + "noise"]))[0].numpy()
    error = np.abs(x - REF[c + "x_t"][0]).max()
    assert error <= TOL, error
    actions = policy.stats.unnormalize_actions(x[:, :7])
    np.testing.assert_allclose(actions, REF[c + "actions"][0], atol=TOL * 5)


def test_a_dropped_camera_matches_lerobot_at_the_model(policy):
    """LeRobot drops a camera absent from the batch (no placeholder): the model on the remaining one."""
    obs, c = case(1)
    policy.cameras = ["top"]
    try:
        inputs = policy.preprocess(obs)
    finally:
        policy.cameras = KEYS
    x = policy.sample(inputs, None, torch.from_numpy(REF[c + "noise"]))[0].numpy()
    assert np.abs(x - REF[c + "x_t"][0]).max() <= TOL


def test_chunks_are_targets_for_the_arm_and_depend_on_the_inputs(policy):
    obs, _ = case(0)
    a, b = policy.infer(obs), policy.infer(obs)
    assert a.values.shape == (10, 7) and a.names == tuple(ROBOT.action_joints) and a.stamp == 5.0
    np.testing.assert_array_equal(a.values, b.values)  # seeded noise
    other = Observation(5.0, obs.state, {k: 255 - v for k, v in obs.images.items()}, obs.instruction, {})
    assert not np.allclose(policy.infer(other).values, a.values)
    prefix = {"values": a.values + 0.2, "valid": np.ones(10, bool), "delay": 2, "execution_horizon": 5}
    guided = policy.infer(Observation(5.0, obs.state, obs.images, obs.instruction, {"prefix": prefix}))
    # guidance pulls the first (executed-while-inferring) steps towards the previous chunk's targets
    assert np.abs(guided.values[:2] - prefix["values"][:2]).mean() < np.abs(a.values[:2] - prefix["values"][:2]).mean()


def test_bad_input_is_an_error_not_a_chunk(policy):
    obs, _ = case(0)
    with pytest.raises(PolicyError, match="lacks camera 'wrist'"):
        policy.infer(Observation(1.0, obs.state, {"top": obs.images["top"]}, "pick", {}))
    with pytest.raises(PolicyError, match="finite"):
        policy.infer(Observation(1.0, np.full(7, np.nan), obs.images, "pick", {}))


def test_checkpoints_that_do_not_fit_are_refused_at_start(tmp_path):
    from safetensors.torch import load_file, save_file

    bad = tmp_path / "missing"
    shutil.copytree(CKPT, bad)
    tensors = load_file(bad / "model.safetensors")
    tensors.pop("model.action_time_mlp_in.weight")
    tensors["model.time_mlp_in.weight"] = torch.zeros(2, 2)
    save_file(tensors, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(PolicyError) as err:
        make(bad)
    assert "action_time_mlp_in.weight" in str(err.value) and "time_mlp_in.weight" in str(err.value)

    other = tmp_path / "pi05"
    shutil.copytree(CKPT, other)
    cfg = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**cfg, "type": "pi05"}))
    with pytest.raises(PolicyError, match="LeRobot 'pi05' checkpoint, not 'smolvla'"):
        make(other)
    with pytest.raises(PolicyError, match="set smolvla.vlm_path"):
        make(vlm_path=str(tmp_path))
    with pytest.raises(PolicyError, match="map them with smolvla.camera_keys"):
        make(keys=["image_0", "wrist"])
    assert make(keys=["image_0", "wrist"], camera_keys=["image_0", "wrist"]).cameras == ["image_0", "wrist"]


def test_preflight_names_the_vlm_folder_to_set():
    from vla_ros.policies.registry import backend_class

    cls = backend_class("smolvla")
    assert "set smolvla.vlm_path" in cls.preflight({"model_path": str(CKPT), "vlm_path": ""}, ROBOT)
    assert cls.preflight({"model_path": str(CKPT), "vlm_path": str(VLM)}, ROBOT) == ""


def test_patch_positions_follow_the_transformers_generation_the_checkpoint_was_trained_with(policy):
    """transformers 4.x (LeRobot 0.4) put image patches at rows/columns 0, 0, 1, ...; transformers 5 at 0, 1, 2:
    lerobot_version 0.5 is transformers 5's own vision model, 0.4 reproduces LeRobot 0.4.4 (the test above)."""
    from vla_ros.policies.smolvla_model import patch_positions

    assert patch_positions(4, legacy=True).tolist()[:8] == [0, 0, 1, 2, 0, 0, 1, 2]
    assert patch_positions(32, legacy=True).reshape(32, 32)[0].tolist() == [0, *range(31)]
    assert patch_positions(32, legacy=False).reshape(32, 32)[0].tolist() == list(range(32))
    obs, _ = case(0)
    image = policy.preprocess(obs)["images"][0]
    vision = policy.model.core.vlm.model.vision_model
    policy.model.legacy_positions = False
    try:
        np.testing.assert_allclose(policy.model.embed_image(image).numpy(),
                                   vision(pixel_values=image).last_hidden_state.numpy(), atol=1e-5)
    finally:
        policy.model.legacy_positions = True
    assert not np.allclose(policy.model.embed_image(image).numpy(), vision(pixel_values=image).last_hidden_state)


def test_a_checkpoint_from_before_lerobot_0_4_reads_its_statistics_from_the_weights(tmp_path):
    """LeRobot < 0.4 saved no normaliser files: mean/std lived as buffers in model.safetensors
    (normalize_inputs.buffer_observation_state.mean, ...). Same checkpoint, same chunk."""
    from safetensors.numpy import load_file as load_np
    from safetensors.torch import load_file, save_file

    old = tmp_path / "pre_0_4"
    shutil.copytree(CKPT, old)
    pre = load_np(next(old.glob("policy_preprocessor_step_*.safetensors")))
    post = load_np(next(old.glob("policy_postprocessor_step_*.safetensors")))
    for f in old.glob("policy_*"):
        f.unlink()
    tensors = load_file(old / "model.safetensors")
    for prefix, stats, feature in (("normalize_inputs", pre, "observation.state"),
                                   ("unnormalize_outputs", post, "action"), ("normalize_targets", post, "action")):
        for stat in ("mean", "std"):
            key = f"{prefix}.buffer_{feature.replace('.', '_')}.{stat}"
            tensors[key] = torch.from_numpy(stats[f"{feature}.{stat}"]).clone()
    save_file(tensors, old / "model.safetensors", metadata={"format": "pt"})
    policy = make(old)
    assert policy.stats.mode == policy.stats.action_mode == "mean_std"
    obs, c = case(0)
    x = policy.sample(policy.preprocess(obs), None, torch.from_numpy(REF[c + "noise"]))[0].numpy()
    np.testing.assert_allclose(policy.stats.unnormalize_actions(x[:, :7]), REF[c + "actions"][0], atol=5e-4)
    tensors = {k: v for k, v in tensors.items() if "buffer_" not in k}
    save_file(tensors, old / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(PolicyError, match="no statistics buffers"):
        make(old)


def test_bfloat16_weights_give_a_chunk_near_float32(policy):
    """bfloat16 (CUDA's default dtype): the expert's output meets the bfloat16 action projection in its dtype
    (it was fed float32 and raised) and the chunk stays near the float32 chunk for the same seed."""
    obs, _ = case(0)
    half = make(dtype="bfloat16").infer(obs).values
    full = make().infer(obs).values
    assert np.isfinite(half).all()
    assert np.abs(half - full).max() <= 0.2 * np.abs(full).max()
