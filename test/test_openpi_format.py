"""openpi checkpoints converted to PyTorch, against openpi's own inference: its create_trained_policy with the
pi0_droid and pi05_droid train configs (DroidInputs -> Normalize -> ResizeImages -> TokenizePrompt ->
PadStatesAndActions -> PI0Pytorch -> Unnormalize -> DroidOutputs) on tiny checkpoints laid out as its converter
writes them (test/fixtures/openpi, made by tools/openpi_pi0_fixture.py in a scratch venv; recipe in its README)."""

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

FIXTURE = Path(__file__).parent / "fixtures" / "openpi"
META = json.loads((FIXTURE / "cases.json").read_text())
REF = np.load(FIXTURE / "reference.npz")
ROBOT = load_robot("franka")
KEYS = ["exterior_image_1_left", "wrist_image_left"]
TOL = 1e-4  # the parity goal (float32, CPU)
BACKEND = {"pi0_droid": "pi0", "pi05_droid": "pi05"}


def make(config: str, model_path=None, **options):
    backend = BACKEND[config]
    opts = {"model_path": str(model_path or FIXTURE / config), "tokenizer_path": str(FIXTURE / "tokenizer"),
            "device": "cpu", **options}
    params = {"backend": backend, "image_keys": KEYS, "image_topics": [f"/{k}" for k in KEYS],
              "chunk_dt": 1 / 15, "horizon": 10, **{f"{backend}.{k}": v for k, v in opts.items()}}
    return create_policy(backend, policy_context(ROBOT, params))


@pytest.fixture(scope="module", params=list(BACKEND))
def loaded(request):
    with paligemma_sizes_of(META["architecture"]):
        yield request.param, make(request.param)


def observation(config: str, i: int) -> tuple[Observation, str]:
    p = f"{config}_c{i}_"
    images = {KEYS[0]: REF[p + "ext"], KEYS[1]: REF[p + "wrist"]}
    return Observation(5.0, REF[p + "state"].astype(np.float64), images,
                       META["configs"][config]["cases"][i]["task"], {}), p


@pytest.mark.parametrize("i", [0, 1, 2])
def test_chunks_match_openpi(loaded, i):
    """Prompt tokens, letterboxed pixels, the normalised (padded) state, the chunk and the DROID actions as
    openpi's own pipeline computed them, for the same noise."""
    config, policy = loaded
    obs, p = observation(config, i)
    inputs = policy.preprocess(obs)
    if config == "pi0_droid":
        assert policy.conventions == "openpi" and policy.chunk_size == 10
        assert inputs["text_ids"] == REF[p + "tokens"].tolist()
        np.testing.assert_allclose(inputs["state"][0].numpy(), REF[p + "state_model"], atol=1e-6)
        pixels = inputs["pixel_values"][0]
    else:
        assert policy.openpi and policy.chunk_size == 15 and policy.stats.mode == "quantile"
        assert inputs["tokens"][0].tolist() == REF[p + "tokens"].tolist()
        pixels = torch.cat(inputs["images"])
    for k, slot in enumerate(("base_0_rgb", "left_wrist_0_rgb")):
        np.testing.assert_allclose(pixels[k].numpy(), REF[p + f"pixels_{slot}"], atol=1e-6)
    x = policy.sample(inputs, None, torch.from_numpy(REF[p + "noise"])[None])[0].numpy()
    assert np.abs(x - REF[p + "x"]).max() <= TOL
    actions = policy.stats.unnormalize_actions(x[:, :8])
    assert np.abs(actions - REF[p + "actions"]).max() <= TOL


def test_openpi_masks_the_empty_third_camera():
    """DroidInputs feeds a zero right-wrist image with mask False: its tokens are padding (no position, never
    attended), so two cameras give the same chunk; the fixture records the masks."""
    for config in BACKEND:
        for case in META["configs"][config]["cases"]:
            assert case["image_masks"] == {"base_0_rgb": True, "left_wrist_0_rgb": True, "right_wrist_0_rgb": False}


def test_each_backend_refuses_the_other_kind(tmp_path):
    with paligemma_sizes_of(META["architecture"]):
        with pytest.raises(PolicyError, match="openpi pi0 checkpoint.*policy:=pi0"):
            make("pi05_droid", FIXTURE / "pi0_droid")
        with pytest.raises(PolicyError, match="policy:=pi05"):
            make("pi0_droid", FIXTURE / "pi05_droid")
