"""Golden fixtures for the native pi0 backend, made with LeRobot 0.4.4's own PI0Policy (run in a scratch venv).

The pi0 sibling of tools/lerobot_pi05_fixture.py (read its docstring and test/fixtures/pi05/README.md first): the same
scratch venv (LeRobot 0.4.4 + transformers 4.53.2 with openpi's `transformers_replace/` copied over it + torch 2.9.1),
the same tiny sizes and the same tokenizer (imported from that tool, so both fixtures share them by construction):

  OMP_NUM_THREADS=1 /tmp/pi05venv/bin/python tools/lerobot_pi0_fixture.py --out test/fixtures/pi0_lerobot

Offline, CPU, one torch thread. It rebuilds, deterministically (fixed seeds), inside OUT (README.md there is kept,
everything else is replaced):
  tokenizer/      the pi0.5 fixture's tiny word-level PreTrainedTokenizerFast (vocabulary 320, adds <bos>).
  checkpoint/     a TINY PI0Policy with random (perturbed) weights saved by LeRobot itself (config.json,
                  model.safetensors, policy_{pre,post}processor.json + normaliser stats). The tokenizer step's
                  tokenizer_name is rewritten to "google/paligemma-3b-pt-224", as in real checkpoints.
  reference.npz   per case c<i>_...: inputs, what the preprocessor made of them, model internals and outputs.
  cases.json      versions, seeds, tiny sizes, stats, per case the task, the exact prompt and the summary numbers.

Tiny sizes come from monkeypatching, in `lerobot.policies.pi0.modeling_pi0` only, `get_gemma_config` and the two names
`PaliGemmaForConditionalGeneration` / `GemmaForCausalLM` that module calls (the same wrappers as the pi0.5 tool).
config.json still says paligemma_variant "gemma_2b" / action_expert_variant "gemma_300m": a loader must be told the
tiny sizes (cases.json "architecture"). The reference outputs come from the policy and pipelines reloaded from the
saved files. Nothing of LeRobot's or openpi's source is copied here: their classes are imported and used as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lerobot_pi05_fixture as pi05  # noqa: E402  (tokenizer, tiny sizes, image/stat helpers shared with pi0.5)

HUB_TOKENIZER = pi05.HUB_TOKENIZER
MODEL_SEED = 20260711
PERTURB_SEED = 20260712
DATA_SEED = 20260713
NOISE_SEED = 20260714
TOP, WRIST, STATE = pi05.TOP, pi05.WRIST, pi05.STATE
DIM = pi05.DIM
VOCAB_SIZE = pi05.VOCAB_SIZE
TINY_GEMMA = pi05.TINY_GEMMA
TINY_VISION = pi05.TINY_VISION

# tokenizer_max_length 48 is PI0Config's default; MEAN_STD normalisation is its default for state and action.
POLICY = {"chunk_size": 10, "n_action_steps": 10, "max_state_dim": 32, "max_action_dim": 32,
          "num_inference_steps": 10, "dtype": "float32", "device": "cpu", "tokenizer_max_length": 48}

# Made-up dataset statistics (the pi0.5 tool's); dim 3 is constant in the data (std 0): MEAN_STD divides by
# std + 1e-8 (always adds eps) when normalising and multiplies by std (no eps) when unnormalising.
STATE_STATS, ACTION_STATS, CONST_DIM = pi05.STATE_STATS, pi05.ACTION_STATS, pi05.CONST_DIM

# z: per-dimension z-score of the state (state = mean + z * std; None -> the constant dim's mean + const_offset).
# Image sizes (HxW): 180x240 -> 168x224 + 28/28 rows of padding; 130x109 -> 224x187 (int(187.8)) + 18/19 columns.
CASES = [
    {"name": "square_images", "task": "pick up the red cube", "sizes": {"top": (224, 224), "wrist": (224, 224)},
     "z": [-0.8, 0.3, 1.1, None, -1.5, 0.6, 0.2], "const_offset": 0.0},
    # already ends with "\n": Pi0NewLineProcessor adds none; the inner newline and double spaces stay (no cleaning)
    {"name": "letterbox_and_newline", "task": "put the  spoon\nin the bowl\n",
     "sizes": {"top": (180, 240), "wrist": (224, 224)},
     "z": [1.2, -0.7, 0.05, None, 0.9, -1.9, -0.4], "const_offset": 0.0},
    # underscore kept (one <unk> piece here), unknown words "Stack"/"gently"; state far out (z 3.5 / -4) and the
    # constant dim 0.01 off its mean -> normalised 0.01 / 1e-8 = 1e6 (float32) into state_proj
    {"name": "wrist_letterbox_unknown_words_outlier_state", "task": "Stack the green_block on the blue block gently",
     "sizes": {"top": (224, 224), "wrist": (130, 109)},
     "z": [3.5, -4.0, 0.5, None, -0.25, 1.0, 2.2], "const_offset": 0.01},
]
PIXELS_CASES = {1: "top", 2: "wrist"}  # the non-224 cameras whose model-ready pixels are stored
KV_CASE = 0  # the case whose prefix KV cache is stored


def install_tiny_patches() -> None:
    """Shrink what lerobot.policies.pi0.modeling_pi0 builds (module globals only; LeRobot's code is untouched).

    PaliGemmaWithExpertModel.__init__ (modeling_pi0.py:335-387) builds the PaliGemmaConfig with vocabulary and
    image_token_index 257152, SigLIP intermediate 4304 and projection_dim 2048, and the expert's GemmaConfig with
    vocabulary 257152; the wrappers edit those configs before building the real classes."""
    from lerobot.policies.pi0 import modeling_pi0 as m

    if getattr(m, "_tiny_fixture_patched", False):
        return
    real_paligemma, real_gemma_lm = m.PaliGemmaForConditionalGeneration, m.GemmaForCausalLM

    def get_gemma_config(variant: str):
        return m.GemmaConfig(**TINY_GEMMA[variant])

    def paligemma(config):
        config._vocab_size = VOCAB_SIZE  # noqa: SLF001  (LeRobot sets this attribute too; nothing reads it)
        config.image_token_index = VOCAB_SIZE
        config.text_config.vocab_size = VOCAB_SIZE
        width = config.text_config.hidden_size
        config.projection_dim = config.hidden_size = width
        vision = config.vision_config
        for key, value in TINY_VISION.items():
            setattr(vision, key, value)
        vision.projection_dim = width
        return real_paligemma(config=config)

    def gemma_lm(config):
        config.vocab_size = VOCAB_SIZE  # the expert's lm_head (its embed_tokens is dropped by LeRobot)
        return real_gemma_lm(config=config)

    m.get_gemma_config = get_gemma_config
    m.PaliGemmaForConditionalGeneration = paligemma
    m.GemmaForCausalLM = gemma_lm
    m._tiny_fixture_patched = True  # noqa: SLF001


def make_config():
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.pi0.configuration_pi0 import PI0Config

    inputs = {STATE: PolicyFeature(type=FeatureType.STATE, shape=(DIM,)),
              TOP: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 224, 224)),
              WRIST: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 224, 224))}
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(DIM,))}
    return PI0Config(input_features=inputs, output_features=outputs, **POLICY)


def make_processors(config, dataset_stats, tok_dir: Path):
    """make_pi0_pre_post_processors' steps (processor_pi0.py:130-153), with the tokenizer loaded from tok_dir."""
    from lerobot.policies.pi0.processor_pi0 import Pi0NewLineProcessor
    from lerobot.processor import (
        AddBatchDimensionProcessorStep,
        DeviceProcessorStep,
        NormalizerProcessorStep,
        PolicyProcessorPipeline,
        RenameObservationsProcessorStep,
        TokenizerProcessorStep,
        UnnormalizerProcessorStep,
    )
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action
    from lerobot.utils.constants import POLICY_POSTPROCESSOR_DEFAULT_NAME, POLICY_PREPROCESSOR_DEFAULT_NAME

    pre = PolicyProcessorPipeline(steps=[
        RenameObservationsProcessorStep(rename_map={}),
        AddBatchDimensionProcessorStep(),
        Pi0NewLineProcessor(),
        TokenizerProcessorStep(tokenizer_name=str(tok_dir), max_length=config.tokenizer_max_length,
                               padding_side="right", padding="max_length"),
        DeviceProcessorStep(device=config.device),
        NormalizerProcessorStep(features={**config.input_features, **config.output_features},
                                norm_map=config.normalization_mapping, stats=dataset_stats),
    ], name=POLICY_PREPROCESSOR_DEFAULT_NAME)
    post = PolicyProcessorPipeline(steps=[
        UnnormalizerProcessorStep(features=config.output_features, norm_map=config.normalization_mapping,
                                  stats=dataset_stats),
        DeviceProcessorStep(device="cpu"),
    ], name=POLICY_POSTPROCESSOR_DEFAULT_NAME, to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action)
    return pre, post


def perturb(policy) -> dict:
    """Add seeded noise N(0, 1/fan_in) (vectors: N(0, 0.01)) to every parameter (RMSNorm weights start at 0)."""
    import torch

    gen = torch.Generator().manual_seed(PERTURB_SEED)
    zero_before = [n for n, p in policy.named_parameters() if not torch.any(p)]
    with torch.no_grad():
        for _, p in policy.named_parameters():
            scale = 1.0 / np.sqrt(p[0].numel()) if p.ndim >= 2 else 0.1
            p.add_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)
    zero_after = [n for n, p in policy.named_parameters() if not torch.all(p != 0)]
    assert not zero_after, zero_after
    return {"zero_initialised_before_perturbation": zero_before,
            "parameters": int(sum(p.numel() for p in policy.parameters()))}


def save_checkpoint(ckpt: Path, policy, pre, post, tok_dir: Path, root: Path) -> list[str]:
    policy.save_pretrained(ckpt)
    pre.save_pretrained(ckpt)
    post.save_pretrained(ckpt)
    rewritten = []

    def fix_pre(data):
        for step in data["steps"]:
            if step.get("config", {}).get("tokenizer_name") == str(tok_dir):
                step["config"]["tokenizer_name"] = HUB_TOKENIZER
                rewritten.append(f"policy_preprocessor.json {step['registry_name']}.tokenizer_name")

    pi05.rewrite_json(ckpt / "policy_preprocessor.json", fix_pre)
    for f in sorted(ckpt.glob("*.json")):
        assert str(root) not in f.read_text() and "/tmp" not in f.read_text(), f"local path left in {f}"
    assert rewritten, "the tokenizer step's local path was not found"
    return rewritten


def reload(ckpt: Path, tok_dir: Path):
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.pi0.modeling_pi0 import PI0Policy
    from lerobot.processor import PolicyProcessorPipeline
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

    cfg = PreTrainedConfig.from_pretrained(ckpt)
    assert cfg.type == "pi0", cfg.type
    policy = PI0Policy.from_pretrained(ckpt, config=cfg, strict=True)
    pre = PolicyProcessorPipeline.from_pretrained(
        ckpt, config_filename="policy_preprocessor.json",
        overrides={"tokenizer_processor": {"tokenizer_name": str(tok_dir)}})
    post = PolicyProcessorPipeline.from_pretrained(
        ckpt, config_filename="policy_postprocessor.json", to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action)
    return policy, pre, post


def check_reloaded_weights(built_sd: dict, policy, ckpt: Path) -> dict:
    """PI0Policy.from_pretrained swallows load errors (prints a warning): compare every tensor ourselves."""
    import torch
    from safetensors import safe_open

    sd = policy.state_dict()
    assert sorted(sd) == sorted(built_sd)
    differ = [k for k in sd if not torch.equal(sd[k], built_sd[k])]
    assert not differ, f"reloaded weights differ from the built ones: {differ[:5]}"
    with safe_open(ckpt / "model.safetensors", "pt") as f:
        stored = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
    not_stored = sorted(set(sd) - set(stored))
    return {"stored_tensors": len(stored), "state_dict_tensors_not_stored": not_stored,
            "keys": {k: stored[k] for k in sorted(stored)}}


def case_inputs(rng: np.random.Generator, stats: dict) -> list[dict]:
    import torch

    gen = torch.Generator().manual_seed(NOISE_SEED)
    mean, std = stats[STATE]["mean"], stats[STATE]["std"]
    out = []
    for case in CASES:
        images = {cam: pi05.smooth_image(rng, h, w) for cam, (h, w) in case["sizes"].items()}
        state = np.zeros(DIM, np.float32)
        for d, z in enumerate(case["z"]):
            state[d] = mean[d] if z is None else np.float32(mean[d] + np.float32(z) * std[d])
        state[CONST_DIM] = np.float32(mean[CONST_DIM] + np.float32(case["const_offset"]))
        noise = torch.randn((1, POLICY["chunk_size"], POLICY["max_action_dim"]), generator=gen, dtype=torch.float32)
        out.append({"images": images, "state": state.astype(np.float32), "noise": noise})
    return out


def run_case(policy, pre, post, task: str, inputs: dict, via_lerobot_helper: bool = False) -> dict:
    """batch -> preprocessor -> predict_action_chunk(batch, noise=...) -> postprocessor, recording internals."""
    import torch

    seen: dict = {"embeds": [], "v_t": [], "suffix": [], "t": [], "state_in": []}
    model = policy.model
    pwe = model.paligemma_with_expert
    orig = {"sample": model.sample_actions, "denoise": model.denoise_step, "suffix": model.embed_suffix,
            "embed": pwe.embed_image, "prep": policy._preprocess_images, "fwd": pwe.forward}

    def sample_actions(*args, **kwargs):
        assert kwargs.get("noise") is not None, "predict_action_chunk did not forward the noise"
        seen["x_t"] = orig["sample"](*args, **kwargs).clone()
        return seen["x_t"]

    def denoise_step(*args, **kwargs):
        v_t = orig["denoise"](*args, **kwargs)
        seen["v_t"].append(v_t.clone())
        return v_t

    def embed_suffix(state, noisy_actions, timestep):
        res = orig["suffix"](state, noisy_actions, timestep)
        assert res[3] is None  # pi0: no adaRMS condition
        seen["suffix"].append(res[0].clone())
        seen["suffix_pad"], seen["suffix_att"] = res[1].clone(), res[2].clone()
        seen["state_in"].append(state.clone())
        seen["t"].append(float(timestep[0]))
        return res

    def embed_image(image):
        emb = orig["embed"](image)
        seen["embeds"].append(emb.clone())
        return emb

    def preprocess_images(batch):
        images, masks = orig["prep"](batch)
        seen["pixels"] = [i.clone() for i in images]
        seen["img_masks"] = [m.clone() for m in masks]
        return images, masks

    def forward(*args, **kwargs):
        outs, kv = orig["fwd"](*args, **kwargs)
        if kv is not None and "kv" not in seen:
            seen["prefix_len"] = kwargs["inputs_embeds"][0].shape[1]
            seen["kv"] = [(kv[i][0].clone(), kv[i][1].clone()) for i in range(len(kv))]
        if kwargs["inputs_embeds"][0] is None:  # an expert (suffix) pass
            seen.setdefault("suffix_positions", kwargs["position_ids"].clone())
            seen.setdefault("suffix_mask", kwargs["attention_mask"].clone())
        return outs, kv

    seen_pre: dict = {}

    def after_step(idx, transition):
        from lerobot.processor.core import TransitionKey
        if type(pre.steps[idx]).__name__ == "Pi0NewLineProcessor":
            seen_pre["prompts"] = list(transition[TransitionKey.COMPLEMENTARY_DATA]["task"])

    model.sample_actions, model.denoise_step, model.embed_suffix = sample_actions, denoise_step, embed_suffix
    pwe.embed_image, policy._preprocess_images, pwe.forward = embed_image, preprocess_images, forward
    pre.register_after_step_hook(after_step)
    try:
        if via_lerobot_helper:
            from lerobot.policies.utils import prepare_observation_for_inference
            obs = {STATE: inputs["state"].copy()}
            obs.update({f"observation.images.{c}": img.copy() for c, img in inputs["images"].items()})
            raw = prepare_observation_for_inference(obs, torch.device("cpu"), task, "")
        else:
            raw = {STATE: torch.from_numpy(inputs["state"].copy()), "task": task}
            for cam, img in inputs["images"].items():
                raw[f"observation.images.{cam}"] = torch.from_numpy(img).permute(2, 0, 1).float() / 255.0
        with torch.inference_mode():
            batch = pre(raw)
            chunk = policy.predict_action_chunk(batch, noise=inputs["noise"].clone())
            actions = post(chunk)
    finally:
        pre.unregister_after_step_hook(after_step)
        for name in ("sample_actions", "denoise_step", "embed_suffix"):
            delattr(model, name)
        for name in ("embed_image", "forward"):
            delattr(pwe, name)
        delattr(policy, "_preprocess_images")
    for s in seen["state_in"][1:]:
        assert torch.equal(s, seen["state_in"][0])
    return {"batch_keys": sorted(k for k in batch if isinstance(k, str)), "prompt": seen_pre["prompts"][0],
            "lang_tokens": batch["observation.language.tokens"].numpy(),
            "lang_mask": batch["observation.language.attention_mask"].numpy(),
            "state_norm": batch[STATE].numpy(), "state_dtype": str(batch[STATE].dtype),
            "state_padded": seen["state_in"][0].numpy(),
            "image_dtype": str(batch[TOP].dtype), "image_shape": list(batch[TOP].shape),
            "embeds": [e.numpy() for e in seen["embeds"]], "pixels": [p.numpy() for p in seen["pixels"]],
            "img_masks": [m.numpy() for m in seen["img_masks"]], "prefix_len": seen["prefix_len"],
            "kv": [(k.numpy(), v.numpy()) for k, v in seen["kv"]],
            "suffix_embs": torch.stack(seen["suffix"]).numpy(),
            "suffix_pad": seen["suffix_pad"].numpy(), "suffix_att": seen["suffix_att"].numpy(),
            "suffix_positions": seen["suffix_positions"].numpy(), "suffix_mask": seen["suffix_mask"].numpy(),
            "v_t": torch.stack(seen["v_t"]).numpy(),
            "times": seen["t"], "x_t": seen["x_t"].numpy(), "chunk": chunk.numpy(), "actions": actions.numpy()}


def expected_prompt(task: str) -> str:
    """Pi0NewLineProcessor (processor_pi0.py:61-80): the task as given, plus "\\n" unless it already ends with one."""
    return task if task.endswith("\n") else task + "\n"


def sensitivity(policy, pre, post, inputs: dict) -> dict[str, float]:
    """max |change| of case 0's chunk when one part of its input changes: the output must depend on each."""
    base = run_case(policy, pre, post, CASES[0]["task"], inputs)["chunk"]
    state = inputs["state"].copy()
    state[0] += 0.1
    variants = {"task word red->green": ("pick up the green cube", inputs),
                "top image inverted": (CASES[0]["task"], {**inputs, "images": {
                    **inputs["images"], "top": 255 - inputs["images"]["top"]}}),
                "wrist image inverted": (CASES[0]["task"], {**inputs, "images": {
                    **inputs["images"], "wrist": 255 - inputs["images"]["wrist"]}}),
                "state[0] + 0.1 (state_proj token)": (CASES[0]["task"], {**inputs, "state": state})}
    out = {}
    for name, (task, inp) in variants.items():
        out[name] = float(np.abs(run_case(policy, pre, post, task, inp)["chunk"] - base).max())
        assert out[name] > 1e-3, f"the output hardly depends on: {name} ({out[name]})"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="test/fixtures/pi0_lerobot", help="fixture folder (all but README.md rebuilt)")
    ns = parser.parse_args()

    import lerobot
    import tokenizers
    import torch
    import transformers
    from transformers.models.siglip import check

    if not check.check_whether_transformers_replace_is_installed_correctly():
        raise SystemExit("needs transformers 4.53.2 with openpi's transformers_replace (see the pi0.5 tool)")
    from lerobot.policies.pi0.modeling_pi0 import PI0Policy

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out = Path(ns.out).resolve()
    known = {"README.md", "tokenizer", "checkpoint", "reference.npz", "cases.json"}
    if out.exists() and not {p.name for p in out.iterdir()} <= known:
        raise SystemExit(f"{out} holds files this script did not make: refusing to replace it")
    tok_dir, ckpt = out / "tokenizer", out / "checkpoint"
    for p in (tok_dir, ckpt, out / "reference.npz", out / "cases.json"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    tok_dir.mkdir(parents=True)

    tok_info = pi05.build_tokenizer(tok_dir)
    install_tiny_patches()

    rng = np.random.default_rng(DATA_SEED)
    dataset_stats = {STATE: pi05.stats_for(STATE_STATS, rng), "action": pi05.stats_for(ACTION_STATS, rng)}
    for key in dataset_stats:
        s = dataset_stats[key]
        s["q01"][CONST_DIM] = s["q10"][CONST_DIM] = s["q50"][CONST_DIM] = s["q90"][CONST_DIM] = \
            s["q99"][CONST_DIM] = s["mean"][CONST_DIM]
        assert s["std"][CONST_DIM] == 0
    config = make_config()
    torch.manual_seed(MODEL_SEED)
    policy = PI0Policy(config)
    perturb_info = perturb(policy)
    built_sd = {k: v.clone() for k, v in policy.state_dict().items()}
    pre, post = make_processors(config, dataset_stats, tok_dir)
    rewritten = save_checkpoint(ckpt, policy, pre, post, tok_dir, out)

    inputs = case_inputs(rng, dataset_stats)
    first_built = run_case(policy, pre, post, CASES[0]["task"], inputs[0])
    del policy, pre, post
    policy, pre, post = reload(ckpt, tok_dir)
    load_info = check_reloaded_weights(built_sd, policy, ckpt)
    arch = policy.model.paligemma_with_expert
    tok_steps = [s for s in pre.steps if type(s).__name__ == "TokenizerProcessorStep"]
    tok = tok_steps[0].input_tokenizer
    step_names = [type(s).__name__ for s in pre.steps]

    arrays: dict[str, np.ndarray] = {}
    summary = []
    for i, (case, inp) in enumerate(zip(CASES, inputs)):
        res = run_case(policy, pre, post, case["task"], inp)
        again = run_case(policy, pre, post, case["task"], inp)
        for key in ("x_t", "chunk", "actions", "v_t", "suffix_embs", "lang_tokens", "state_norm"):
            assert np.array_equal(res[key], again[key]), f"case {i} is not deterministic ({key})"
        if i == 0:
            helper = run_case(policy, pre, post, case["task"], inp, via_lerobot_helper=True)
            for key in ("x_t", "chunk", "actions", "v_t", "lang_tokens"):
                assert np.array_equal(res[key], first_built[key]), f"reloaded policy differs from the built ({key})"
                assert np.array_equal(res[key], helper[key]), f"prepare_observation_for_inference path differs ({key})"
        # Cross-check with an independent run of the model: policy.model.sample_actions on the same inputs + noise.
        with torch.inference_mode():
            pixels = [torch.from_numpy(p) for p in res["pixels"]]
            masks = [torch.from_numpy(m) for m in res["img_masks"]]
            direct = policy.model.sample_actions(pixels, masks, torch.from_numpy(res["lang_tokens"]),
                                                 torch.from_numpy(res["lang_mask"]),
                                                 torch.from_numpy(res["state_padded"]), noise=inp["noise"].clone())
        assert np.array_equal(direct.numpy(), res["x_t"]), f"case {i}: direct sample_actions differs"
        assert np.array_equal(res["x_t"][..., :DIM], res["chunk"])
        prompt = expected_prompt(case["task"])
        assert res["prompt"] == prompt, (res["prompt"], prompt)
        n_valid = int(res["lang_mask"].sum())
        valid_ids = res["lang_tokens"][0, :n_valid]
        assert n_valid < POLICY["tokenizer_max_length"], "prompt truncated"
        assert res["lang_mask"][0, :n_valid].all() and not res["lang_mask"][0, n_valid:].any()
        assert (res["lang_tokens"][0, n_valid:] == tok.pad_token_id).all()
        assert valid_ids.tolist() == tok(prompt)["input_ids"], "token ids differ from tokenizing the prompt"
        decoded = tok.decode(valid_ids.tolist(), skip_special_tokens=False)
        pieces = tok.convert_ids_to_tokens(valid_ids.tolist())
        # the normalised state the model reads: (x - mean) / (std + 1e-8), then zero-padded to 32
        st = dataset_stats[STATE]
        assert np.array_equal(res["state_padded"][0, :DIM], res["state_norm"][0])
        assert not res["state_padded"][0, DIM:].any()
        np.testing.assert_allclose(res["state_norm"][0], (inp["state"] - st["mean"]) / (st["std"] + np.float32(1e-8)),
                                   rtol=1e-6)
        cams = list(case["sizes"])
        assert [bool(m.all()) for m in res["img_masks"]] == [True, True]
        p = f"c{i}_"
        arrays.update({p + f"img_{c}": inp["images"][c] for c in cams})
        arrays.update({p + "state": inp["state"], p + "noise": inp["noise"].numpy(),
                       p + "lang_tokens": res["lang_tokens"], p + "lang_mask": res["lang_mask"],
                       p + "state_norm": res["state_norm"], p + "state_padded": res["state_padded"],
                       p + "suffix_embs": res["suffix_embs"], p + "v_t": res["v_t"], p + "x_t": res["x_t"],
                       p + "chunk": res["chunk"], p + "actions": res["actions"]})
        arrays.update({p + f"img_emb_{c}": e for c, e in zip(cams, res["embeds"])})
        if i in PIXELS_CASES:
            c = PIXELS_CASES[i]
            arrays[p + f"pixels_{c}"] = res["pixels"][cams.index(c)]
        if i == KV_CASE:
            for layer, (k, v) in enumerate(res["kv"]):
                arrays[p + f"prefix_k_l{layer}"], arrays[p + f"prefix_v_l{layer}"] = k, v
            arrays[p + "suffix_mask_4d"] = res["suffix_mask"]
            arrays[p + "suffix_positions"] = res["suffix_positions"]
        assert np.isfinite(res["actions"]).all()
        prefix_valid = 2 * 256 + n_valid
        assert res["suffix_positions"][0].tolist() == list(range(prefix_valid, prefix_valid + 1 + POLICY["chunk_size"]))
        pixels_ranges = {c: [float(px.min()), float(px.max())] for c, px in zip(cams, res["pixels"])}
        summary.append({
            "name": case["name"], "task": case["task"], "prompt": res["prompt"], "decoded_tokens": decoded,
            "token_pieces": pieces,
            "camera_keys": [f"observation.images.{c}" for c in cams],
            "image_shapes_hwc": {c: list(inp["images"][c].shape) for c in cams},
            "pixels_fed_to_model_range": pixels_ranges,
            "n_lang_tokens_valid": n_valid, "lang_tokens_valid": valid_ids.tolist(),
            "prefix_len": res["prefix_len"], "prefix_valid_len": prefix_valid,
            "suffix_len": int(res["suffix_pad"].shape[1]), "suffix_att_masks": res["suffix_att"][0].tolist(),
            "suffix_positions": res["suffix_positions"][0].tolist(),
            "state": inp["state"].tolist(), "state_norm": res["state_norm"][0].tolist(),
            "denoise_times": res["times"],
            "chunk_range": [float(res["chunk"].min()), float(res["chunk"].max())],
            "actions_range": [float(res["actions"].min()), float(res["actions"].max())],
            "x_t_range": [float(res["x_t"].min()), float(res["x_t"].max())],
            "x_t_pad_range": [float(res["x_t"][..., DIM:].min()), float(res["x_t"][..., DIM:].max())],
            "actions_const_dim": sorted({float(a) for a in res["actions"][0, :, CONST_DIM]}),
            "batch_keys_after_preprocessor": res["batch_keys"],
            "dtypes": {"state": res["state_dtype"], "image": res["image_dtype"],
                       "lang_tokens": str(res["lang_tokens"].dtype), "chunk": str(res["chunk"].dtype)},
        })
    sens = sensitivity(policy, pre, post, inputs[0])
    np.savez_compressed(out / "reference.npz", **arrays)

    text_cfg = arch.paligemma.config.text_config
    vis_cfg = arch.paligemma.config.vision_config
    exp_cfg = arch.gemma_expert.config
    meta = {
        "versions": {"lerobot": lerobot.__version__, "transformers": transformers.__version__,
                     "transformers_replace": "openpi src/openpi/models_pytorch/transformers_replace (see README)",
                     "torch": torch.__version__, "numpy": np.__version__, "tokenizers": tokenizers.__version__},
        "seeds": {"model": MODEL_SEED, "perturb": PERTURB_SEED, "data": DATA_SEED, "noise": NOISE_SEED},
        "architecture": {
            "vocab_size": VOCAB_SIZE, "image_token_index": arch.paligemma.config.image_token_index,
            "vlm": {**TINY_GEMMA["gemma_2b"], "rms_norm_eps": text_cfg.rms_norm_eps, "rope_theta": text_cfg.rope_theta,
                    "hidden_act": text_cfg.hidden_act, "hidden_activation": text_cfg.hidden_activation,
                    "tie_word_embeddings": arch.paligemma.config.tie_word_embeddings},
            "expert": {**TINY_GEMMA["gemma_300m"], "rms_norm_eps": exp_cfg.rms_norm_eps,
                       "rope_theta": exp_cfg.rope_theta, "hidden_act": exp_cfg.hidden_act,
                       "hidden_activation": exp_cfg.hidden_activation,
                       "use_adarms": exp_cfg.use_adarms, "adarms_cond_dim": exp_cfg.adarms_cond_dim},
            "vision": {"image_size": vis_cfg.image_size, "patch_size": vis_cfg.patch_size,
                       "hidden_size": vis_cfg.hidden_size, "intermediate_size": vis_cfg.intermediate_size,
                       "num_hidden_layers": vis_cfg.num_hidden_layers,
                       "num_attention_heads": vis_cfg.num_attention_heads, "layer_norm_eps": vis_cfg.layer_norm_eps,
                       "hidden_act": vis_cfg.hidden_act, "vision_use_head": vis_cfg.vision_use_head,
                       "projection_dim": vis_cfg.projection_dim,
                       "attn_implementation": vis_cfg._attn_implementation},  # noqa: SLF001
            "tokens_per_image": (vis_cfg.image_size // vis_cfg.patch_size) ** 2,
            "projections": {n: list(getattr(policy.model, n).weight.shape) for n in
                            ("state_proj", "action_in_proj", "action_out_proj", "action_time_mlp_in",
                             "action_time_mlp_out")},
        },
        "policy": POLICY, "normalization_mapping": {k: v.value for k, v in config.normalization_mapping.items()},
        "preprocessor_steps": step_names, "tokenizer": tok_info,
        "stats": {k: {s: v.tolist() for s, v in d.items()} for k, d in dataset_stats.items()},
        "const_dim": CONST_DIM, **perturb_info, "checkpoint": {"rewritten_to_hub_name": rewritten, **load_info},
        "pixels_cases": {f"c{k}": v for k, v in PIXELS_CASES.items()}, "kv_case": f"c{KV_CASE}",
        "case0_sensitivity_max_abs_chunk_change": sens, "cases": summary,
        "npz_keys": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()},
    }
    (out / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    for s in summary:
        print(s["name"], repr(s["prompt"]), s["n_lang_tokens_valid"], "chunk", s["chunk_range"],
              "actions", s["actions_range"])
    print("sensitivity", sens)
    print("wrote", out)


if __name__ == "__main__":
    main()
