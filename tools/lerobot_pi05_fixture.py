"""Golden fixtures for a native pi0.5 backend, made with LeRobot 0.4.4's own PI05Policy (run in a scratch venv).

LeRobot 0.4.4's pi0/pi05 only run on transformers 4.53.2 with openpi's `transformers_replace/` files copied over it
(PI05Pytorch.__init__ checks `transformers.models.siglip.check`; the model calls `layernorm(x, cond=...)` and
`modeling_gemma._gated_residual`). Neither the project venv (transformers 5.x) nor the LeRobot side venv
(tools/lerobot_venv.sh: transformers 4.57.6) can run it, so this script runs in a third, scratch venv prepared BY HAND,
outside the repository (this script never copies or patches transformers; it only imports what is installed):

  python3 -m venv /tmp/pi05venv
  /tmp/pi05venv/bin/pip install torch==2.9.1 torchvision==0.24.1
  /tmp/pi05venv/bin/pip install lerobot==0.4.4 torch==2.9.1 torchvision==0.24.1 transformers==4.53.2 \\
      torchcodec==0.9.1
  # openpi (github.com/Physical-Intelligence/openpi), README "PyTorch Support": copy its patched files over transformers
  cp -r <openpi>/src/openpi/models_pytorch/transformers_replace/* \\
      /tmp/pi05venv/lib/python3.11/site-packages/transformers/
  /tmp/pi05venv/bin/python tools/lerobot_pi05_fixture.py --out test/fixtures/pi05

(details, versions and the openpi commit: test/fixtures/pi05/README.md). Offline, CPU, one torch thread.

It rebuilds, deterministically (fixed seeds), inside OUT (README.md there is kept, everything else is replaced):
  tokenizer/      a tiny word-level PreTrainedTokenizerFast (vocabulary VOCAB_SIZE) that adds <bos> like PaliGemma's.
  checkpoint/     a TINY PI05Policy with random (perturbed) weights saved by LeRobot itself (config.json,
                  model.safetensors, policy_{pre,post}processor.json + normaliser stats). The tokenizer step's
                  tokenizer_name is rewritten to "google/paligemma-3b-pt-224", as in real checkpoints.
  reference.npz   per case c<i>_...: inputs, what the preprocessor made of them, model internals and outputs.
  cases.json      versions, seeds, tiny sizes, stats, per case the task, the exact prompt and the summary numbers.

Tiny sizes come from monkeypatching, in `lerobot.policies.pi05.modeling_pi05` only, `get_gemma_config` (variant ->
sizes) and the two names `PaliGemmaForConditionalGeneration` / `GemmaForCausalLM` the module calls (wrappers that
shrink the hard-coded vocabulary 257152 and the SigLIP sizes in the config LeRobot built, then build the real class).
config.json still says paligemma_variant "gemma_2b" / action_expert_variant "gemma_300m": a loader must be told the
tiny sizes (cases.json "architecture"). The reference outputs come from the policy and pipelines reloaded from the
saved files. Nothing of LeRobot's or openpi's source is copied here: their classes are imported and used as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

HUB_TOKENIZER = "google/paligemma-3b-pt-224"
MODEL_SEED = 20260701
PERTURB_SEED = 20260702
DATA_SEED = 20260703
NOISE_SEED = 20260704
TOP = "observation.images.top"
WRIST = "observation.images.wrist"
STATE = "observation.state"
DIM = 7  # state and action dimensions

VOCAB_SIZE = 320  # replaces PaliGemma's 257152 (model) and is the tokenizer's vocabulary size
# GemmaConfig(width, depth, mlp_dim, num_heads, num_kv_heads, head_dim) per variant name LeRobot asks for.
# Both towers must share depth, num_kv_heads and head_dim (the expert attends to the VLM's cached K/V per layer).
TINY_GEMMA = {
    "gemma_2b": {"width": 64, "depth": 2, "mlp_dim": 128, "num_heads": 4, "num_kv_heads": 1, "head_dim": 16},
    "gemma_300m": {"width": 32, "depth": 2, "mlp_dim": 64, "num_heads": 4, "num_kv_heads": 1, "head_dim": 16},
}
# SigLIP: image_size stays 224 (= config.image_resolution, LeRobot sets it) and patch 14 -> 256 tokens per camera.
TINY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}

POLICY = {"chunk_size": 10, "n_action_steps": 10, "max_state_dim": 32, "max_action_dim": 32,
          "num_inference_steps": 10, "dtype": "float32", "device": "cpu", "tokenizer_max_length": 200}

SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"]  # the ids PaliGemma's tokenizer uses: pad 0, eos 1, bos 2, unk 3
PIECES = [" ", "\n", *"0123456789", ":", ",", ";", "-", ".",
          "Task", "State", "Action", "pick", "up", "the", "red", "green", "blue", "cube", "block", "put", "spoon",
          "in", "bowl", "on", "stack", "place", "it", "and"]
# one piece per word, per digit, per punctuation mark and per whitespace character (like SentencePiece's split_digits)
PRE_TOKENIZER_REGEX = r"[A-Za-z]+|[0-9]|\s|[^A-Za-z0-9\s]"

# Made-up dataset statistics of a 7-D arm (6 joints + gripper). Dim 3 is constant in the data (q01 == q99, std 0)
# to exercise the normaliser's "denominator == 0 -> eps" branch, in the state and in the action.
STATE_STATS = {"mean": [0.10, -0.40, 0.80, 0.25, 1.20, -0.50, 0.04], "std": [0.30, 0.50, 0.20, 0.0, 0.40, 0.25, 0.02]}
ACTION_STATS = {"mean": [0.05, -0.35, 0.75, 0.60, 1.10, -0.45, 0.03],
                "std": [0.35, 0.45, 0.25, 0.0, 0.50, 0.30, 0.02]}
CONST_DIM = 3

# u: per-dimension position inside [q01, q99] (0 -> q01, 1 -> q99; outside [0, 1] -> outside the quantile range;
# None -> the constant dim's value + const_offset). No u lands a normalised value on a bin edge by accident (0.5 would
# give 0.0 +- 1 ulp); u 0 and 1 give exactly -1 and 1. Image sizes (HxW): 180x240 -> 168x224 + 28/28 rows of padding;
# 130x109 -> 224x187 (int(187.8): truncated, not rounded) + 18 left / 19 right columns.
CASES = [
    {"name": "square_images", "task": "pick up the red cube", "sizes": {"top": (224, 224), "wrist": (224, 224)},
     "u": [0.30, 0.55, 0.80, None, 0.10, 0.65, 0.45], "const_offset": 0.0},
    {"name": "letterbox_and_cleaning", "task": "  put_the spoon\nin the bowl  ",
     "sizes": {"top": (180, 240), "wrist": (224, 224)},
     "u": [0.70, 0.20, 0.52, None, 0.95, 0.05, 0.60], "const_offset": 0.0},
    {"name": "out_of_range_state_unknown_word", "task": "Stack the green block on the blue block gently",
     "sizes": {"top": (224, 224), "wrist": (130, 109)},
     "u": [-0.20, 1.30, 0.52, None, 0.999, 0.0, 1.0], "const_offset": 0.01},
]
PIXELS_CASES = {1: "top", 2: "wrist"}  # the non-224 cameras whose model-ready pixels are stored
KV_CASE = 0  # the case whose prefix KV cache is stored


def stats_for(spec: dict[str, list[float]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    mean = np.asarray(spec["mean"], np.float32)
    std = np.asarray(spec["std"], np.float32)
    out = {"mean": mean, "std": std, "min": mean - 3 * std - 0.01 * (std > 0), "max": mean + 3 * std + 0.01 * (std > 0),
           "count": np.array([1500], np.int64)}
    for q, z in (("q01", -2.33), ("q10", -1.28), ("q50", 0.0), ("q90", 1.28), ("q99", 2.33)):
        out[q] = (mean + z * std + rng.normal(0, 0.01, mean.shape) * (std > 0)).astype(np.float32)
    return {k: v.astype(np.float32) if k != "count" else v for k, v in out.items()}


def smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A seeded random low-resolution pattern, bilinearly upsampled to h x w, plus a gradient (uint8 HxWx3)."""
    coarse = rng.uniform(0, 255, (5, 6, 3))
    ys, xs = np.linspace(0, 4, h), np.linspace(0, 5, w)
    rows = np.stack([np.stack([np.interp(xs, np.arange(6), coarse[r, :, c]) for c in range(3)], -1)
                     for r in range(5)])
    img = np.stack([np.stack([np.interp(ys, np.arange(5), rows[:, x, c]) for c in range(3)], -1)
                    for x in range(w)], 1)
    img = img + 20 * np.linspace(-1, 1, w)[None, :, None]
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def build_tokenizer(tok_dir: Path, vocab_size: int = VOCAB_SIZE, pieces: list[str] = PIECES) -> dict:
    """A word-level PaliGemma stand-in of ``vocab_size`` tokens (specials, ``pieces``, <unusedN> fillers)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tokens = SPECIALS + pieces
    tokens += [f"<unused{i}>" for i in range(vocab_size - len(tokens))]
    vocab = {t: i for i, t in enumerate(tokens)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(PRE_TOKENIZER_REGEX), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B",
                                                        special_tokens=[("<bos>", vocab["<bos>"])])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
                                  pad_token="<pad>", clean_up_tokenization_spaces=False, model_max_length=8192)
    tok.save_pretrained(tok_dir)

    loaded = AutoTokenizer.from_pretrained(tok_dir)
    text = "Task: pick up the red cube, State: 128 -1 255;\nAction: "
    ids = loaded(text)["input_ids"]
    assert ids[0] == vocab["<bos>"] and vocab["<unk>"] not in ids, ids
    assert loaded.decode(ids[1:]) == text, loaded.decode(ids[1:])
    assert len(loaded) == vocab_size and loaded.pad_token_id == 0
    return {"tokenizer_class": type(loaded).__name__, "vocab_size": len(loaded), "pad_token_id": loaded.pad_token_id,
            "eos_token_id": loaded.eos_token_id, "bos_token_id": loaded.bos_token_id,
            "unk_token_id": loaded.unk_token_id, "pieces": tokens[: len(SPECIALS) + len(pieces)],
            "pre_tokenizer_regex": PRE_TOKENIZER_REGEX,
            "example": {"text": text, "ids": ids}}


def shrunk_paligemma(real_paligemma, vocab: int):
    """A stand-in for the PaliGemma class LeRobot/openpi build: their code sets vocab 257152, image_token_index
    257152, SigLIP intermediate 4304 and projection_dim 2048 (the gemma_2b width) after building the config; the
    stand-in shrinks them to match the tiny towers, then builds the real class."""

    def paligemma(config):
        config._vocab_size = vocab  # noqa: SLF001  (LeRobot sets this attribute too; nothing reads it)
        config.image_token_index = vocab
        config.text_config.vocab_size = vocab
        width = config.text_config.hidden_size
        config.projection_dim = config.hidden_size = width
        vision = config.vision_config
        for key, value in TINY_VISION.items():
            setattr(vision, key, value)
        vision.projection_dim = width
        return real_paligemma(config=config)

    return paligemma


def install_tiny_patches() -> None:
    """Shrink what lerobot.policies.pi05.modeling_pi05 builds (module globals only; LeRobot's code is untouched)."""
    from lerobot.policies.pi05 import modeling_pi05 as m

    if getattr(m, "_tiny_fixture_patched", False):
        return
    real_paligemma, real_gemma_lm = m.PaliGemmaForConditionalGeneration, m.GemmaForCausalLM

    def get_gemma_config(variant: str):
        return m.GemmaConfig(**TINY_GEMMA[variant])

    paligemma = shrunk_paligemma(real_paligemma, VOCAB_SIZE)

    def gemma_lm(config):
        config.vocab_size = VOCAB_SIZE  # the expert's lm_head (its embed_tokens is dropped by LeRobot)
        return real_gemma_lm(config=config)

    m.get_gemma_config = get_gemma_config
    m.PaliGemmaForConditionalGeneration = paligemma
    m.GemmaForCausalLM = gemma_lm
    m._tiny_fixture_patched = True  # noqa: SLF001


def make_config():
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.pi05.configuration_pi05 import PI05Config

    inputs = {STATE: PolicyFeature(type=FeatureType.STATE, shape=(DIM,)),
              TOP: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 224, 224)),
              WRIST: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 224, 224))}
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(DIM,))}
    return PI05Config(input_features=inputs, output_features=outputs, **POLICY)


def make_processors(config, dataset_stats, tok_dir: Path):
    """make_pi05_pre_post_processors' steps, with the tokenizer loaded from tok_dir instead of the gated Hub repo."""
    from lerobot.policies.pi05.processor_pi05 import Pi05PrepareStateTokenizerProcessorStep
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
        NormalizerProcessorStep(features={**config.input_features, **config.output_features},
                                norm_map=config.normalization_mapping, stats=dataset_stats),
        Pi05PrepareStateTokenizerProcessorStep(max_state_dim=config.max_state_dim),
        TokenizerProcessorStep(tokenizer_name=str(tok_dir), max_length=config.tokenizer_max_length,
                               padding_side="right", padding="max_length"),
        DeviceProcessorStep(device=config.device),
    ], name=POLICY_PREPROCESSOR_DEFAULT_NAME)
    post = PolicyProcessorPipeline(steps=[
        UnnormalizerProcessorStep(features=config.output_features, norm_map=config.normalization_mapping,
                                  stats=dataset_stats),
        DeviceProcessorStep(device="cpu"),
    ], name=POLICY_POSTPROCESSOR_DEFAULT_NAME, to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action)
    return pre, post


def perturb(policy) -> dict:
    """Add seeded noise N(0, 1/fan_in) (vectors: N(0, 0.01)) to every parameter: none stays zero/one-initialised
    (adaRMS dense layers start at 0) and attention is not uniform (each prompt token changes the chunk by ~1e-2)."""
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


def rewrite_json(path: Path, fix) -> None:
    """Edit a JSON file LeRobot wrote, keeping its indentation and final newline."""
    text = path.read_text()
    second = text.splitlines()[1]
    data = json.loads(text)
    fix(data)
    end = "\n" if text.endswith("\n") else ""
    path.write_text(json.dumps(data, indent=len(second) - len(second.lstrip())) + end)


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

    rewrite_json(ckpt / "policy_preprocessor.json", fix_pre)
    for f in sorted(ckpt.glob("*.json")):
        assert str(root) not in f.read_text() and "/tmp" not in f.read_text(), f"local path left in {f}"
    return rewritten


def reload(ckpt: Path, tok_dir: Path):
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.pi05.modeling_pi05 import PI05Policy
    from lerobot.processor import PolicyProcessorPipeline
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

    cfg = PreTrainedConfig.from_pretrained(ckpt)
    policy = PI05Policy.from_pretrained(ckpt, config=cfg, strict=True)
    pre = PolicyProcessorPipeline.from_pretrained(
        ckpt, config_filename="policy_preprocessor.json",
        overrides={"tokenizer_processor": {"tokenizer_name": str(tok_dir)}})
    post = PolicyProcessorPipeline.from_pretrained(
        ckpt, config_filename="policy_postprocessor.json", to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action)
    return policy, pre, post


def check_reloaded_weights(built_sd: dict, policy, ckpt: Path) -> dict:
    """PI05Policy.from_pretrained swallows load errors (prints a warning): compare every tensor ourselves."""
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
    q01, q99 = stats[STATE]["q01"], stats[STATE]["q99"]
    out = []
    for case in CASES:
        images = {cam: smooth_image(rng, h, w) for cam, (h, w) in case["sizes"].items()}
        state = np.zeros(DIM, np.float32)
        for d, u in enumerate(case["u"]):
            state[d] = q01[d] if u is None else np.float32(q01[d] + np.float32(u) * (q99[d] - q01[d]))
        state[CONST_DIM] = np.float32(q01[CONST_DIM] + np.float32(case["const_offset"]))
        noise = torch.randn((1, POLICY["chunk_size"], POLICY["max_action_dim"]), generator=gen, dtype=torch.float32)
        out.append({"images": images, "state": state.astype(np.float32), "noise": noise})
    return out


def run_case(policy, pre, post, task: str, inputs: dict, via_lerobot_helper: bool = False) -> dict:
    """batch -> preprocessor -> predict_action_chunk(batch, noise=...) -> postprocessor, recording internals."""
    import torch

    seen: dict = {"embeds": [], "v_t": [], "cond": [], "t": []}
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

    def embed_suffix(noisy_actions, timestep):
        res = orig["suffix"](noisy_actions, timestep)
        seen["cond"].append(res[3].clone())
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
        return outs, kv

    seen_pre: dict = {}

    def after_step(idx, transition):
        from lerobot.processor.core import TransitionKey
        if type(pre.steps[idx]).__name__ == "Pi05PrepareStateTokenizerProcessorStep":
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
    return {"batch_keys": sorted(k for k in batch if isinstance(k, str)), "prompt": seen_pre["prompts"][0],
            "lang_tokens": batch["observation.language.tokens"].numpy(),
            "lang_mask": batch["observation.language.attention_mask"].numpy(),
            "state_norm": batch[STATE].numpy(), "state_dtype": str(batch[STATE].dtype),
            "image_dtype": str(batch[TOP].dtype), "image_shape": list(batch[TOP].shape),
            "embeds": [e.numpy() for e in seen["embeds"]], "pixels": [p.numpy() for p in seen["pixels"]],
            "img_masks": [m.numpy() for m in seen["img_masks"]], "prefix_len": seen["prefix_len"],
            "kv": [(k.numpy(), v.numpy()) for k, v in seen["kv"]],
            "v_t": torch.stack(seen["v_t"]).numpy(), "adarms_cond": torch.stack(seen["cond"]).numpy(),
            "times": seen["t"], "x_t": seen["x_t"].numpy(), "chunk": chunk.numpy(), "actions": actions.numpy()}


def expected_prompt(task: str, state_norm: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """The prompt as we understand LeRobot 0.4.4 builds it (asserted equal to what its step produced)."""
    padded = np.zeros(POLICY["max_state_dim"], np.float32)
    padded[: state_norm.shape[-1]] = state_norm.reshape(-1)
    bins = np.digitize(padded, bins=np.linspace(-1, 1, 256 + 1)[:-1]) - 1
    cleaned = task.strip().replace("_", " ").replace("\n", " ")
    return f"Task: {cleaned}, State: {' '.join(map(str, bins))};\nAction: ", padded, bins


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
                "state[0] + 0.1 (changes the prompt)": (CASES[0]["task"], {**inputs, "state": state})}
    out = {}
    for name, (task, inp) in variants.items():
        out[name] = float(np.abs(run_case(policy, pre, post, task, inp)["chunk"] - base).max())
        assert out[name] > 1e-3, f"the output hardly depends on: {name} ({out[name]})"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="test/fixtures/pi05", help="fixture folder (all but README.md rebuilt)")
    ns = parser.parse_args()

    import lerobot
    import tokenizers
    import torch
    import transformers
    from transformers.models.siglip import check

    if not check.check_whether_transformers_replace_is_installed_correctly():
        raise SystemExit("needs transformers 4.53.2 with openpi's transformers_replace (see the docstring)")
    from lerobot.policies.pi05.modeling_pi05 import PI05Policy

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

    tok_info = build_tokenizer(tok_dir)
    install_tiny_patches()

    rng = np.random.default_rng(DATA_SEED)
    dataset_stats = {STATE: stats_for(STATE_STATS, rng), "action": stats_for(ACTION_STATS, rng)}
    for key in dataset_stats:
        s = dataset_stats[key]
        s["q01"][CONST_DIM] = s["q10"][CONST_DIM] = s["q50"][CONST_DIM] = s["q90"][CONST_DIM] = \
            s["q99"][CONST_DIM] = s["mean"][CONST_DIM]
    config = make_config()
    torch.manual_seed(MODEL_SEED)
    policy = PI05Policy(config)
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
    tok = pre.steps[4].input_tokenizer

    arrays: dict[str, np.ndarray] = {}
    summary = []
    for i, (case, inp) in enumerate(zip(CASES, inputs)):
        res = run_case(policy, pre, post, case["task"], inp)
        again = run_case(policy, pre, post, case["task"], inp)
        for key in ("x_t", "chunk", "actions", "v_t", "lang_tokens", "state_norm"):
            assert np.array_equal(res[key], again[key]), f"case {i} is not deterministic ({key})"
        if i == 0:
            helper = run_case(policy, pre, post, case["task"], inp, via_lerobot_helper=True)
            for key in ("x_t", "chunk", "actions", "v_t", "lang_tokens"):
                assert np.array_equal(res[key], first_built[key]), f"reloaded policy differs from the built ({key})"
                assert np.array_equal(res[key], helper[key]), f"prepare_observation_for_inference path differs ({key})"
        prompt, padded, bins = expected_prompt(case["task"], res["state_norm"])
        assert res["prompt"] == prompt, (res["prompt"], prompt)
        n_valid = int(res["lang_mask"].sum())
        valid_ids = res["lang_tokens"][0, :n_valid]
        assert res["lang_mask"][0, :n_valid].all() and not res["lang_mask"][0, n_valid:].any()
        assert (res["lang_tokens"][0, n_valid:] == tok.pad_token_id).all()
        assert valid_ids.tolist() == tok(prompt)["input_ids"], "token ids differ from tokenizing the prompt"
        decoded = tok.decode(valid_ids.tolist(), skip_special_tokens=False)
        cams = list(case["sizes"])
        assert [bool(m.all()) for m in res["img_masks"]] == [True, True]
        p = f"c{i}_"
        arrays.update({p + f"img_{c}": inp["images"][c] for c in cams})
        arrays.update({p + "state": inp["state"], p + "noise": inp["noise"].numpy(),
                       p + "lang_tokens": res["lang_tokens"], p + "lang_mask": res["lang_mask"],
                       p + "state_norm": res["state_norm"], p + "state_norm_padded": padded[None],
                       p + "state_bins": bins[None].astype(np.int64), p + "adarms_cond": res["adarms_cond"],
                       p + "v_t": res["v_t"], p + "x_t": res["x_t"], p + "chunk": res["chunk"],
                       p + "actions": res["actions"]})
        arrays.update({p + f"img_emb_{c}": e for c, e in zip(cams, res["embeds"])})
        if i in PIXELS_CASES:
            c = PIXELS_CASES[i]
            arrays[p + f"pixels_{c}"] = res["pixels"][cams.index(c)]
        if i == KV_CASE:
            for layer, (k, v) in enumerate(res["kv"]):
                arrays[p + f"prefix_k_l{layer}"], arrays[p + f"prefix_v_l{layer}"] = k, v
        assert np.isfinite(res["actions"]).all()
        pixels_ranges = {c: [float(px.min()), float(px.max())] for c, px in zip(cams, res["pixels"])}
        summary.append({
            "name": case["name"], "task": case["task"], "prompt": res["prompt"], "decoded_tokens": decoded,
            "camera_keys": [f"observation.images.{c}" for c in cams],
            "image_shapes_hwc": {c: list(inp["images"][c].shape) for c in cams},
            "pixels_fed_to_model_range": pixels_ranges,
            "n_lang_tokens_valid": n_valid, "lang_tokens_valid": valid_ids.tolist(),
            "prefix_len": res["prefix_len"], "prefix_valid_len": 2 * 256 + n_valid,
            "state": inp["state"].tolist(), "state_norm": res["state_norm"][0].tolist(),
            "state_bins": bins.tolist(), "denoise_times": res["times"],
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
                       "use_adarms": exp_cfg.use_adarms, "adarms_cond_dim": exp_cfg.adarms_cond_dim},
            "vision": {"image_size": vis_cfg.image_size, "patch_size": vis_cfg.patch_size,
                       "hidden_size": vis_cfg.hidden_size, "intermediate_size": vis_cfg.intermediate_size,
                       "num_hidden_layers": vis_cfg.num_hidden_layers,
                       "num_attention_heads": vis_cfg.num_attention_heads, "layer_norm_eps": vis_cfg.layer_norm_eps,
                       "hidden_act": vis_cfg.hidden_act, "vision_use_head": vis_cfg.vision_use_head,
                       "projection_dim": vis_cfg.projection_dim,
                       "attn_implementation": vis_cfg._attn_implementation},  # noqa: SLF001
            "tokens_per_image": (vis_cfg.image_size // vis_cfg.patch_size) ** 2,
        },
        "policy": POLICY, "tokenizer": tok_info, "stats": {k: {s: v.tolist() for s, v in d.items()}
                                                           for k, d in dataset_stats.items()},
        "const_dim": CONST_DIM, **perturb_info, "checkpoint": {"rewritten_to_hub_name": rewritten, **load_info},
        "pixels_cases": {f"c{k}": v for k, v in PIXELS_CASES.items()}, "kv_case": f"c{KV_CASE}",
        "case0_sensitivity_max_abs_chunk_change": sens, "cases": summary,
        "npz_keys": {k: [list(v.shape), str(v.dtype)] for k, v in arrays.items()},
    }
    (out / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    for s in summary:
        print(s["name"], repr(s["prompt"]), "chunk", s["chunk_range"], "actions", s["actions_range"])
    print("wrote", out)


if __name__ == "__main__":
    main()
