"""pi0 backend on a LeRobot pi0 checkpoint against LeRobot 0.4.4's own PI0Policy (openpi's patched transformers
4.53.2): a tiny random-weight checkpoint saved by LeRobot (test/fixtures/pi0_lerobot, made by
tools/lerobot_pi0_fixture.py in a scratch venv, recipe in its README) and the chunks LeRobot produced."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from parity import paligemma_sizes_of  # noqa: E402

from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.policies import create_policy  # noqa: E402
from vla_ros.policies.context import policy_context  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "pi0_lerobot"
META = json.loads((FIXTURE / "cases.json").read_text())
REF = np.load(FIXTURE / "reference.npz")
ROBOT = load_robot("widowx")
KEYS = ["top", "wrist"]
TOL = 1e-4


@pytest.fixture(scope="module")
def policy():
    """LeRobot's config.json names the Gemma variants; the fixture was built with them shrunk (its README)."""
    backend = {"model_path": str(FIXTURE / "checkpoint"), "tokenizer_path": str(FIXTURE / "tokenizer"),
               "device": "cpu", "seed": 0}
    params = {"backend": "pi0", "image_keys": KEYS, "image_topics": [f"/{k}" for k in KEYS], "chunk_dt": 0.1,
              "horizon": 10, **{f"pi0.{k}": v for k, v in backend.items()}}
    with paligemma_sizes_of(META["architecture"]):
        yield create_policy("pi0", policy_context(ROBOT, params))


@pytest.mark.parametrize("i", [0, 1, 2])
def test_action_chunks_match_lerobot(policy, i):
    c = f"c{i}_"
    obs = Observation(5.0, REF[c + "state"].astype(np.float64), {k: REF[c + f"img_{k}"] for k in KEYS},
                      META["cases"][i]["task"], {})
    assert policy.conventions == "lerobot_0.4" and policy.cameras == KEYS
    inputs = policy.preprocess(obs)
    valid = REF[c + "lang_mask"][0].astype(bool)
    assert inputs["text_ids"] == REF[c + "lang_tokens"][0][valid].tolist()
    x = policy.sample(inputs, None, torch.from_numpy(REF[c + "noise"]))[0].numpy()
    actions = policy.stats.unnormalize_actions(x[:, :7])
    error = np.abs(actions - REF[c + "actions"][0]).max()
    assert error <= TOL, error  # the goal: max abs action error <= 1e-4 (float32, CPU)
    # the normalised chunk reaches |7|: 2.6e-6 - 4.8e-6 with the flow time embedded in float64 as LeRobot does
    # (transformers' own float32 embedding gave 6e-5 - 1.2e-4)
    np.testing.assert_allclose(x, REF[c + "x_t"][0], atol=TOL)
