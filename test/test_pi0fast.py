"""pi0-FAST backend against LeRobot 0.4.4's own PI0FastPolicy (openpi's patched transformers 4.53.2): a tiny
checkpoint trained and saved by LeRobot, its FAST tokenizer fitted by physical-intelligence/fast's own code
(test/fixtures/pi0fast, made by tools/lerobot_pi0fast_fixture.py in a scratch venv, recipe in its README), the
tokens LeRobot decoded greedily and the chunks it made of them."""

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

FIXTURE = Path(__file__).parent / "fixtures" / "pi0fast"
CKPT, TOKENIZER, FAST = FIXTURE / "checkpoint", FIXTURE / "tokenizer", FIXTURE / "fast_tokenizer"
META = json.loads((FIXTURE / "cases.json").read_text())
REF = np.load(FIXTURE / "reference.npz")
ROBOT = load_robot("widowx")
KEYS = ["top", "wrist"]
TOL = 1e-4  # the parity goal (float32, CPU)


@pytest.fixture(scope="module")
def tiny_sizes():
    with paligemma_sizes_of(META["architecture"]):
        yield


def make(model_path=CKPT, **options):
    backend = {"model_path": str(model_path), "tokenizer_path": str(TOKENIZER), "action_tokenizer_path": str(FAST),
               "device": "cpu", **options}
    params = {"backend": "pi0fast", "image_keys": KEYS, "image_topics": [f"/{k}" for k in KEYS], "chunk_dt": 0.1,
              "horizon": 10, **{f"pi0fast.{k}": v for k, v in backend.items()}}
    return create_policy("pi0fast", policy_context(ROBOT, params))


@pytest.fixture(scope="module")
def policy(tiny_sizes):
    return make()


def case(i: int) -> tuple[Observation, str]:
    c = f"c{i}_"
    images = {k: REF[c + f"img_{k}"] for k in KEYS}
    return Observation(5.0, REF[c + "state"].astype(np.float64), images, META["cases"][i]["task"], {}), c


@pytest.mark.parametrize("i", [0, 1, 2, 3])
def test_tokens_and_chunks_match_lerobot(policy, i):
    """Prompt tokens (+ the BOS LeRobot appends), the greedy action tokens up to the end marker, the decoded
    normalised chunk and the actions, on the three trained observations and one it never saw."""
    obs, c = case(i)
    inputs = policy.preprocess(obs)
    tokens = inputs["tokens"][0].tolist()
    assert tokens[:-1] == REF[c + "lang_tokens"].tolist() and tokens[-1] == policy.tokenizer.bos_token_id
    x = policy.sample(inputs)[0].numpy()
    n = META["cases"][i]["n_generated_until_end"]
    assert policy.last_tokens == REF[c + "tokens"][:n].tolist()
    assert np.abs(x - REF[c + "chunk"][0]).max() <= TOL
    np.testing.assert_allclose(policy.stats.unnormalize_actions(x), REF[c + "actions"][0], atol=TOL, rtol=1e-5)


@pytest.mark.parametrize("name", ["as_generated", "junk_after_end", "prefix_repeated_inside", "short_padded",
                                  "long_cut", "no_end_marker"])
def test_detokenisation_matches_lerobot(policy, name):
    """LeRobot's cleaning (cut at '|', every 'Action: ' removed) and relaxed decoding (zeros padded, excess cut)."""
    x = policy.decode(REF[f"d_{name}_ids"].tolist())
    np.testing.assert_allclose(x, REF[f"d_{name}_chunk"], atol=1e-6)


def test_tokens_that_do_not_decode_are_refused(policy):
    """Where LeRobot decodes around a token outside the FAST vocabulary (silently dropped by the BPE decoder) or
    asserts on a missing 'Action:' prefix, the backend refuses the chunk: the node holds."""
    ids = REF["d_word_token_inside_ids"].tolist()
    assert np.abs(REF["d_word_token_inside_chunk"]).max() > 0  # what LeRobot made of it
    with pytest.raises(PolicyError, match="outside the FAST vocabulary"):
        policy.decode(ids)
    with pytest.raises(PolicyError, match="does not start with 'Action:'"):
        policy.decode(ids[3:])
    with pytest.raises(PolicyError, match="no action tokens"):
        policy.decode(ids[:3] + [policy.stop])
    assert policy.diagnostics()["pi0fast_undecodable_chunks"] >= 3


def test_infer_gives_a_chunk_of_targets(policy):
    obs, c = case(0)
    chunk = policy.infer(obs)
    assert chunk.values.shape == (10, 7) and chunk.names == tuple(ROBOT.action_joints)
    np.testing.assert_array_equal(policy.infer(obs).values, chunk.values)
    other = Observation(5.0, obs.state, obs.images, META["cases"][1]["task"], {})
    assert not np.allclose(policy.infer(other).values, chunk.values)


def test_what_does_not_fit_is_refused_at_start(tiny_sizes, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from vla_ros.policies.registry import backend_class

    bad = tmp_path / "bad"
    shutil.copytree(CKPT, bad)
    tensors = load_file(bad / "model.safetensors")
    dropped = next(k for k in tensors if k.endswith("layers.1.mlp.up_proj.weight"))
    tensors.pop(dropped)
    save_file(tensors, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(PolicyError, match="does not fit pi0-FAST.*layers.1.mlp.up_proj.weight"):
        make(bad)
    with pytest.raises(PolicyError, match="processor_config.json"):
        make(action_tokenizer_path=str(TOKENIZER))
    cfg = json.loads((CKPT / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**cfg, "type": "pi05"}))
    with pytest.raises(PolicyError, match="LeRobot 'pi05' checkpoint, not 'pi0_fast'.*policy:=pi05"):
        make(bad)
    assert "action_tokenizer_path" in backend_class("pi0fast").preflight(
        {"model_path": str(CKPT), "tokenizer_path": "x", "action_tokenizer_path": ""}, ROBOT)


def test_idct_inverts_the_orthonormal_dct():
    from vla_ros.policies.fast_tokens import idct_ortho

    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 7))
    n = np.arange(10)
    dct = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 20) * np.sqrt(2 / 10)  # rows k, columns n
    dct[0] /= np.sqrt(2)
    np.testing.assert_allclose(idct_ortho(dct @ x), x, atol=1e-12)
