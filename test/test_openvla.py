"""OpenVLA backend on a tiny local image-text-to-text model with a 32000-token vocabulary."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from vla_ros.core.observation import Observation  # noqa: E402
from vla_ros.policies import PolicyContext, PolicyError, create_policy  # noqa: E402
from vla_ros.policies.openvla import prompt_for  # noqa: E402
from vla_ros.policies.tiny_models import build_tiny_openvla  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

ROBOT = load_robot("widowx")
STATE = np.array([0.0, -0.5, 0.4, 0.0, 1.2, 0.0, 0.03])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_openvla(tmp_path_factory.mktemp("openvla"))


def make(model_dir, **options):
    ctx = PolicyContext(ROBOT, ROBOT.state_joints, ROBOT.action_joints, ["image_0"], (224, 224), 0.2, 1,
                        {"model_path": str(model_dir), **options})
    return create_policy("openvla", ctx)


def obs(seed=0, instruction="Pick up the RED cube"):
    img = np.random.default_rng(seed).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    return Observation(50.0, STATE.copy(), {"image_0": img}, instruction)


def test_prompt_format():
    assert prompt_for("Pick Up The Cube") == "In: What action should the robot take to pick up the cube?\nOut:"


def test_action_is_the_greedy_tokens_decoded_and_unnormalised(model_dir):
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    policy = make(model_dir)
    o = obs()
    # an independent greedy generation with the plain transformers classes
    model = LlavaForConditionalGeneration.from_pretrained(model_dir).eval()
    proc = AutoProcessor.from_pretrained(model_dir)
    inputs = proc(text="<image>" + prompt_for(o.instruction), images=Image.fromarray(o.images["image_0"]),
                  return_tensors="pt")
    with torch.no_grad():
        tokens = model.generate(**inputs, max_new_tokens=7, min_new_tokens=7, do_sample=False)[0, -7:].numpy()
    np.testing.assert_array_equal(policy.generate_tokens(o), tokens)
    bins = np.linspace(-1, 1, 256)
    centers = (bins[:-1] + bins[1:]) / 2
    normalized = centers[np.clip(32000 - tokens - 1, 0, 254)]
    stats = model.config.norm_stats["bridge_orig"]["action"]
    q01, q99, mask = np.array(stats["q01"]), np.array(stats["q99"]), np.array(stats["mask"])
    expected = np.where(mask, 0.5 * (normalized + 1) * (q99 - q01) + q01, normalized)
    np.testing.assert_allclose(policy.predict_action(o), expected, rtol=1e-12)
    chunk = policy.infer(o)
    assert chunk.values.shape == (1, 7) and chunk.stamp == 50.0 and chunk.times.tolist() == [0.2]
    np.testing.assert_array_equal(policy.infer(o).values, chunk.values)  # greedy: deterministic


def test_end_effector_delta_becomes_joint_targets(model_dir):
    policy = make(model_dir)
    chain = ROBOT.chain()
    action = policy.predict_action(obs())
    targets = policy.infer(obs()).values[0]
    moved = chain.fk(targets[:6])[:3, 3] - chain.fk(STATE[:6])[:3, 3]
    np.testing.assert_allclose(moved, action[:3], atol=2e-3)
    # BridgeData's gripper column: 1 open, 0 closed, not normalised; onto the WidowX finger (0.015-0.037 m)
    assert ROBOT.gripper.closed == 0.015 and ROBOT.gripper.open == 0.037
    assert targets[6] == pytest.approx(0.015 + np.clip(action[6], 0.0, 1.0) * 0.022, abs=1e-12)
    space = policy.action_space
    for model_value, finger in ((1.0, 0.037), (0.0, 0.015), (0.5, 0.026), (0.996, 0.036912), (-0.3, 0.015)):
        row = np.r_[np.zeros(6), model_value][None, :]
        assert space.to_targets(row, STATE)[0, 6] == pytest.approx(finger, abs=1e-9), model_value


def test_unnorm_key_is_required_with_several_datasets(tmp_path):
    folder = build_tiny_openvla(tmp_path / "multi", datasets=("bridge_orig", "fractal"))
    with pytest.raises(PolicyError, match=r"statistics for 2 datasets \(\['bridge_orig', 'fractal'\]\).*unnorm_key"):
        make(folder)
    with pytest.raises(PolicyError, match="unnorm_key 'libero' not in"):
        make(folder, unnorm_key="libero")
    assert make(folder, unnorm_key="fractal").infer(obs()).values.shape == (1, 7)


def test_bad_input(model_dir):
    policy = make(model_dir)
    o = obs()
    o.images = {}
    with pytest.raises(PolicyError, match="lacks camera 'image_0'"):
        policy.infer(o)
    o = obs()
    o.images["image_0"] = np.zeros((224, 224, 4), np.uint8)
    with pytest.raises(PolicyError, match="HxWx3"):
        policy.infer(o)
    o = obs()
    o.state[0] = np.nan
    with pytest.raises(PolicyError, match="NaN"):
        policy.infer(o)


def test_frames_are_stretched_not_letterboxed_and_optionally_centre_cropped(model_dir):
    from PIL import Image

    from vla_ros.core.image import center_crop

    plain, cropped = make(model_dir), make(model_dir, center_crop=True)
    assert plain.resize == "stretch"  # the policy node squashes frames to the model size for OpenVLA (pi0: "pad")
    o = obs()
    image = o.images[plain.camera]
    text = (plain.processor.image_token or "") + "x"
    expected = plain.processor(text=text, images=Image.fromarray(center_crop(image, 0.9)), return_tensors="pt")
    got = cropped._inputs(o)["pixel_values"].float().cpu().numpy()
    np.testing.assert_allclose(got, expected["pixel_values"].float().numpy(), atol=1e-6)
    assert not np.allclose(plain._inputs(o)["pixel_values"].float().cpu().numpy(), got)


def test_action_dim_comes_from_the_checkpoints_statistics(model_dir):
    assert make(model_dir).action_dim == 7  # bridge_orig: 7 q01/q99 values
    with pytest.raises(PolicyError, match="does not match the 7 dimensions"):
        make(model_dir, action_dim=6)


def test_cached_greedy_decoding_sees_the_image_and_equals_recomputing_every_step(model_dir):
    """The backend decodes token by token with the cache (OpenVLA's remote generate ignores the image under
    transformers >= 4.50, openvla issue #346): the tokens equal a full forward pass per step, and depend on the
    image."""
    policy = make(model_dir)
    o = obs(3)
    inputs = policy._inputs(o)
    ids, expected = inputs["input_ids"], []
    with torch.no_grad():
        for _ in range(policy.action_dim):
            logits = policy.model(**{**inputs, "input_ids": ids,
                                     "attention_mask": torch.ones_like(ids)}).logits[:, -1].float()
            logits[:, policy.model.generation_config.eos_token_id] = float("-inf")
            expected.append(int(logits.argmax()))
            ids = torch.cat([ids, torch.tensor([[expected[-1]]])], dim=1)
    assert policy.generate_tokens(o).tolist() == expected
    others = {tuple(policy.generate_tokens(obs(s)).tolist()) for s in (4, 5, 6)}
    assert len(others | {tuple(expected)}) > 1


def test_remote_code_written_for_transformers_4_loads_under_5():
    """OpenVLA's remote classes: a ``_supports_sdpa`` property that reads a submodule __init__ has not made yet,
    and a ``tie_weights()`` without the arguments transformers 5 passes. Both fail at construction unpatched."""
    from torch import nn
    from transformers import PretrainedConfig, PreTrainedModel

    from vla_ros.policies.openvla import alias_tokenization_names, remote_compat

    def classes():
        class Config(PretrainedConfig):
            model_type = "prismatic_like"

        class Base(PreTrainedModel):
            config_class = Config

            @property
            def _supports_sdpa(self):
                return self.language_model._supports_sdpa

        class Model(Base):
            def __init__(self, config):
                super().__init__(config)
                self.language_model = nn.Linear(2, 2)
                self.post_init()

            def tie_weights(self):
                self.tied = True

        return Config, Model

    config_cls, model_cls = classes()
    with pytest.raises((AttributeError, TypeError)):
        model_cls(config_cls())
    config_cls, model_cls = classes()
    model = remote_compat(model_cls)(config_cls())
    assert model.tied and isinstance(model.language_model, nn.Linear)
    alias_tokenization_names()
    from transformers.tokenization_utils import PaddingStrategy, TruncationStrategy  # noqa: F401
