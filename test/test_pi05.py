"""pi0.5 backend against LeRobot 0.4.4's own PI05Policy (openpi's patched transformers 4.53.2): a tiny
random-weight checkpoint saved by LeRobot (test/fixtures/pi05, made by tools/lerobot_pi05_fixture.py in a scratch
venv, recipe in its README) and the chunks LeRobot produced for fixed images, states, tasks and noise."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from parity import paligemma_sizes_of  # noqa: E402

from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.policies import PolicyError, create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "pi05"
CKPT, TOKENIZER = FIXTURE / "checkpoint", FIXTURE / "tokenizer"
META = json.loads((FIXTURE / "cases.json").read_text())
REF = np.load(FIXTURE / "reference.npz")
ROBOT = load_robot("widowx")
KEYS = ["top", "wrist"]
TOL = 1e-4  # the parity goal (float32, CPU)


@pytest.fixture(scope="module")
def tiny_sizes():
    """LeRobot's config.json names the Gemma variants only: the fixture was built with them shrunk (as its
    README says), so the same sizes stand in for the variants here."""
    with paligemma_sizes_of(META["architecture"]):
        yield


def make(model_path=CKPT, **options):
    backend = {"model_path": str(model_path), "tokenizer_path": str(TOKENIZER), "device": "cpu", "seed": 0,
               **options}
    params = {"backend": "pi05", "image_keys": KEYS, "image_topics": [f"/{k}" for k in KEYS], "chunk_dt": 0.1,
              "horizon": 10, **{f"pi05.{k}": v for k, v in backend.items()}}
    return create_policy("pi05", policy_context(ROBOT, params))


@pytest.fixture(scope="module")
def policy(tiny_sizes):
    return make()


def case(i: int) -> tuple[Observation, str]:
    c = f"c{i}_"
    images = {k: REF[c + f"img_{k}"] for k in KEYS}
    return Observation(5.0, REF[c + "state"].astype(np.float64), images, META["cases"][i]["task"], {}), c


@pytest.mark.parametrize("i", [0, 1, 2])
def test_action_chunks_match_lerobot(policy, i):
    """Prompt (state bins included), tokens, letterboxed pixels and the sampled chunk as LeRobot computed them."""
    obs, c = case(i)
    inputs = policy.preprocess(obs)
    assert inputs["prompt"] == META["cases"][i]["prompt"]
    valid = REF[c + "lang_mask"][0].astype(bool)
    assert inputs["tokens"][0].tolist() == REF[c + "lang_tokens"][0][valid].tolist()
    for k, img in zip(KEYS, inputs["images"], strict=True):
        if c + f"pixels_{k}" in REF:
            np.testing.assert_allclose(img[0].numpy(), REF[c + f"pixels_{k}"].reshape(img[0].shape), atol=1e-6)
    x = policy.sample(inputs, None, torch.from_numpy(REF[c + "noise"]))[0].numpy()
    error = np.abs(x - REF[c + "x_t"][0]).max()
    assert error <= TOL, error
    actions = policy.stats.unnormalize_actions(x[:, :7])
    np.testing.assert_allclose(actions, REF[c + "actions"][0], atol=TOL * 10, rtol=1e-5)


def test_chunks_are_targets_and_guidance_pulls_towards_the_previous_chunk(policy):
    obs, _ = case(0)
    a, b = policy.infer(obs), policy.infer(obs)
    assert a.values.shape == (10, 7) and a.names == tuple(ROBOT.action_joints)
    np.testing.assert_array_equal(a.values, b.values)
    other = Observation(5.0, obs.state, obs.images, "put the spoon in the bowl", {})
    assert not np.allclose(policy.infer(other).values, a.values)
    prefix = {"values": a.values + 0.2, "valid": np.ones(10, bool), "delay": 2, "execution_horizon": 5}
    guided = policy.infer(Observation(5.0, obs.state, obs.images, obs.instruction, {"prefix": prefix}))
    assert np.abs(guided.values[:2] - prefix["values"][:2]).mean() < np.abs(a.values[:2] - prefix["values"][:2]).mean()


def test_lerobot_0_5_writes_the_state_unpadded(policy):
    """LeRobot 0.4.4 pads the normalised state to max_state_dim before discretising it into the prompt; 0.5
    does not (git diff v0.4.4 v0.5.0 -- processor_pi05.py)."""
    from vla_ros.policies.pi05 import prompt

    obs, c = case(0)
    normalised = REF[c + "state_norm"][0]
    assert prompt(obs.instruction, normalised, 32) == META["cases"][0]["prompt"]
    short = prompt(obs.instruction, normalised, 0)
    assert short.count(" 128") < META["cases"][0]["prompt"].count(" 128")
    assert len(short.split("State: ")[1].split(";")[0].split()) == 7


def test_what_does_not_fit_is_refused_at_start(tiny_sizes, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from vla_ros.policies.registry import backend_class

    bad = tmp_path / "bad"
    shutil.copytree(CKPT, bad)
    tensors = load_file(bad / "model.safetensors")
    dropped = next(k for k in tensors if k.endswith("input_layernorm.dense.weight"))
    tensors.pop(dropped)
    save_file(tensors, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(PolicyError, match="input_layernorm.dense.weight"):
        make(bad)
    cfg = json.loads((CKPT / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "type": "pi0"}))
    with pytest.raises(PolicyError, match="LeRobot 'pi0' checkpoint, not 'pi05'.*policy:=pi0"):
        make(bad)
    with pytest.raises(PolicyError, match="set pi05.tokenizer_path"):
        make(tokenizer_path=str(tmp_path))
    assert "pi05.tokenizer_path" in backend_class("pi05").preflight({"model_path": str(CKPT)}, ROBOT)


def test_empty_cameras_are_masked_so_leaving_them_out_is_the_same(tiny_sizes, tmp_path):
    """LeRobot feeds each of ``empty_cameras`` as a -1 image with mask 0: its tokens get no position and are never
    attended. The backend loads such a checkpoint and leaves them out; feeding one masked gives the same chunk."""
    import shutil

    ckpt = tmp_path / "empty"
    shutil.copytree(CKPT, ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["empty_cameras"] = 1
    cfg["input_features"]["observation.images.empty_camera_0"] = {"type": "VISUAL", "shape": [3, 224, 224]}
    (ckpt / "config.json").write_text(json.dumps(cfg))
    policy = make(ckpt)
    assert policy.cameras == KEYS
    obs, c = case(0)
    inputs = policy.preprocess(obs)
    noise = torch.from_numpy(REF[c + "noise"])
    x = policy.sample(inputs, None, noise)[0].numpy()
    assert np.abs(x - REF[c + "x_t"][0]).max() <= TOL
    inputs["images"].append(-torch.ones_like(inputs["images"][0]))
    inputs["image_masks"].append(torch.zeros(1, dtype=torch.bool))
    np.testing.assert_allclose(policy.sample(inputs, None, noise)[0].numpy(), x, atol=1e-5)


def test_static_path_equals_the_eager_path(policy, tiny_sizes):
    """``pi05.compile: on`` (on the CPU: the static buffers uncaptured, prompt padded to 200 and masked) gives the
    eager path's chunk for the same noise, plain and RTC-guided; on CUDA the same code replays as graphs."""
    fast = make(compile="on")
    assert policy.fast is None and fast.fast is not None and fast.timing["fast_path"]
    assert fast.fast.shape.prompt_tokens == 200 and not fast.fast.graphs
    obs, c = case(1)
    noise = torch.from_numpy(REF[c + "noise"])
    for guidance in (None, policy._guidance(Observation(5.0, obs.state, obs.images, obs.instruction, {"prefix": {
            "values": policy.infer(obs).values + 0.1, "valid": np.ones(10, bool), "delay": 2,
            "execution_horizon": 5}}))):
        ref = policy.sample(policy.preprocess(obs), guidance, noise)
        out = fast.sample(fast.preprocess(obs), guidance, noise)
        assert out.data_ptr() != fast.fast.result.data_ptr()
        np.testing.assert_allclose(out.numpy(), ref.numpy(), atol=1e-5)
    assert np.abs(out.numpy()[0] - REF[c + "x_t"][0]).max() > 1e-3  # guidance moved it


def test_static_path_runs_in_bfloat16(tiny_sizes):
    """The weights in bfloat16 (CUDA's default): the static path's time embedding takes the model's dtype (it
    met the bfloat16 time MLP as float32 on an H200) and its chunk stays near the eager bfloat16 chunk's."""
    eager, fast = make(dtype="bfloat16"), make(dtype="bfloat16", compile="on")
    obs, c = case(0)
    noise = torch.from_numpy(REF[c + "noise"]).to(torch.bfloat16)
    ref = eager.sample(eager.preprocess(obs), None, noise).float().numpy()
    out = fast.sample(fast.preprocess(obs), None, noise).float().numpy()
    assert np.isfinite(out).all()
    assert np.abs(out - ref).max() <= 0.05 * max(np.abs(ref).max(), 1.0)


def test_rename_map_names_the_robots_cameras(tiny_sizes, tmp_path):
    """A checkpoint trained on a dataset whose camera LeRobot renamed (pre-processor ``rename_map``
    observation.images.cam_high -> observation.images.top) takes the robot's cam_high as its top camera."""
    import shutil

    ckpt = tmp_path / "renamed"
    shutil.copytree(CKPT, ckpt)
    pre = json.loads((ckpt / "policy_preprocessor.json").read_text())
    pre["steps"][0]["config"]["rename_map"] = {"observation.images.cam_high": "observation.images.top"}
    (ckpt / "policy_preprocessor.json").write_text(json.dumps(pre))
    keys = ["cam_high", "wrist"]
    params = {"backend": "pi05", "image_keys": keys, "image_topics": [f"/{k}" for k in keys], "chunk_dt": 0.1,
              "horizon": 10, "pi05.model_path": str(ckpt), "pi05.tokenizer_path": str(TOKENIZER), "pi05.device": "cpu"}
    policy = create_policy("pi05", policy_context(ROBOT, params))
    assert policy.cameras == keys
    obs, c = case(0)
    obs = Observation(5.0, obs.state, {"cam_high": obs.images["top"], "wrist": obs.images["wrist"]},
                      obs.instruction, {})
    x = policy.sample(policy.preprocess(obs), None, torch.from_numpy(REF[c + "noise"]))[0].numpy()
    assert np.abs(x - REF[c + "x_t"][0]).max() <= TOL
