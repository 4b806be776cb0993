"""LeRobot's normaliser files read as LeRobot applies them: fixtures written by LeRobot 0.4.4's own
NormalizerProcessorStep / UnnormalizerProcessorStep (test/fixtures/lerobot_norm/README.md), one folder per mode."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("safetensors")

from vla_ros.core.normalize import NormStats  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot_norm"
MODES = ["mean_std", "min_max", "quantiles", "quantile10", "identity"]


@pytest.mark.parametrize("mode", MODES)
def test_states_and_actions_go_through_lerobots_formulas(mode):
    folder = FIXTURES / mode
    expected = json.loads((folder / "expected.json").read_text())
    stats = NormStats.from_lerobot(folder)
    assert stats.mode == stats.action_mode == mode
    state = np.array(expected["state"])
    np.testing.assert_allclose(stats.normalize_state(state), expected["normalized_state"], rtol=2e-5, atol=2e-5)
    actions = stats.unnormalize_actions(np.array(expected["model_actions"]))
    np.testing.assert_allclose(actions, expected["actions"], rtol=2e-5, atol=2e-5)
    if mode != "identity":  # and back (but the constant dimension 2, which no normaliser can recover)
        keep = [0, 1, 3, 4, 5]
        np.testing.assert_allclose(stats.normalize_actions(actions)[:, keep],
                                   np.array(expected["model_actions"])[:, keep], atol=1e-4)


def test_files_without_the_normaliser_are_refused_naming_it(tmp_path):
    shutil.copytree(FIXTURES / "mean_std", tmp_path / "ckpt")
    pipeline = json.loads((tmp_path / "ckpt" / "policy_postprocessor.json").read_text())
    pipeline["steps"] = [s for s in pipeline["steps"] if s["registry_name"] != "unnormalizer_processor"]
    (tmp_path / "ckpt" / "policy_postprocessor.json").write_text(json.dumps(pipeline))
    with pytest.raises(ValueError, match="policy_postprocessor.json has no unnormalizer_processor step"):
        NormStats.from_lerobot(tmp_path / "ckpt")
