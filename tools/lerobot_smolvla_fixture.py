"""Golden fixtures for the SmolVLA parity test, made with LeRobot's own SmolVLA code (run in the LeRobot venv).

This runs outside `make test`, with the python of the LeRobot side venv built by tools/lerobot_venv.sh
(LeRobot 0.4.4, transformers 4.57.6, torch 2.9.1, num2words), offline and on the CPU:

  /work/lerobot-venv/bin/python tools/lerobot_smolvla_fixture.py --out test/fixtures/smolvla

It rebuilds OUT from scratch, deterministically (fixed seeds, one torch thread):
  vlm/            a tiny SmolVLM "VLM directory" (what SmolVLAConfig.vlm_model_name points at): config.json, a
                  word-level tokenizer and the SmolVLM processor files; no weights (load_vlm_weights is False).
  checkpoint/     a SmolVLA checkpoint with random (perturbed) weights, saved by LeRobot itself: config.json,
                  model.safetensors, policy_preprocessor.json / policy_postprocessor.json and their normaliser
                  stats. vlm_model_name and the tokenizer step's tokenizer_name are rewritten to the Hub name that
                  real checkpoints carry; the loader must be given the local vlm/ directory.
  reference.npz   per case c<i>_...: the inputs (uint8 HxWx3 images, state, noise) and what LeRobot made of them
                  (token ids and mask, normalised state, image embeddings, letterboxed pixels for one case,
                  per-step velocities, the full 32-wide x_t, the cut chunk and the unnormalised actions).
  cases.json      tasks, cameras present, shapes, and the summary numbers.
  README.md       how it was made and the conventions observed.
The reference outputs come from the policy and processors reloaded from the saved files. Nothing of LeRobot's
source is copied here: its classes are imported from the venv and used as they are.
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

HUB_VLM = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
MODEL_SEED = 20260601
PERTURB_SEED = 20260602
DATA_SEED = 20260603
NOISE_SEED = 20260604
TOP = "observation.images.top"
WRIST = "observation.images.wrist"
STATE = "observation.state"

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<image>", "<global-img>",
            "<end_of_utterance>"]
WORDS = ["\n", "pick", "up", "the", "red", "green", "blue", "cube", "block", "place", "it", "in", "on", "bowl",
         "please"]
EXTRA_TOKENS = {"fake_image_token": "<fake_token_around_image>", "image_token": "<image>",
                "global_image_token": "<global-img>", "end_of_utterance_token": "<end_of_utterance>"}

VISION = {"model_type": "smolvlm_vision", "image_size": 64, "patch_size": 16, "hidden_size": 32,
          "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "num_channels": 3,
          "hidden_act": "gelu_pytorch_tanh", "layer_norm_eps": 1e-6}
TEXT = {"model_type": "llama", "vocab_size": len(SPECIALS) + len(WORDS), "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2,
        "head_dim": 16, "hidden_act": "silu", "max_position_embeddings": 512, "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
        "tie_word_embeddings": False}
SCALE_FACTOR = 2
DIM = 7  # state and action dimensions
IMAGE_SEQ_LEN = (VISION["image_size"] // VISION["patch_size"]) ** 2 // SCALE_FACTOR**2

POLICY = {"num_vlm_layers": 4, "num_expert_layers": -1, "self_attn_every_n_layers": 2,
          "expert_width_multiplier": 0.75, "attention_mode": "cross_attn", "chunk_size": 10, "n_action_steps": 10,
          "max_state_dim": 32, "max_action_dim": 32, "resize_imgs_with_padding": (64, 64),
          "tokenizer_max_length": 48, "num_steps": 10, "load_vlm_weights": False, "device": "cpu"}

# Made-up dataset statistics of a 7-D arm (6 joints + gripper, as WidowX/Bridge); state dim 3 has std 0
# (a constant joint) to exercise the normaliser's eps.
STATE_STATS = {"mean": [0.10, -0.40, 0.80, 0.25, 1.20, 0.50, 0.60], "std": [0.30, 0.50, 0.20, 0.0, 0.40, 0.25, 0.35]}
ACTION_STATS = {"mean": [0.05, -0.35, 0.75, 0.25, 1.10, 0.45, 0.55],
                "std": [0.35, 0.45, 0.25, 0.02, 0.50, 0.30, 0.40]}

CASES = [
    {"name": "both_cameras", "task": "pick up the red cube", "cameras": {"top": (48, 64), "wrist": (40, 40)},
     "state_offset": 0.0},
    {"name": "wrist_absent", "task": "place the green block in the bowl please", "cameras": {"top": (48, 64)},
     "state_offset": 0.0},
    {"name": "unknown_word_eps", "task": "pick up the blue block and place it on the bowl",
     "cameras": {"top": (48, 64), "wrist": (40, 40)}, "state_offset": 2.0**-20},
    {"name": "other_sizes", "task": "place it in the bowl", "cameras": {"top": (96, 120), "wrist": (50, 30)},
     "state_offset": 0.0},
]
PIXELS_CASE = 3  # the case whose letterboxed pixels are stored (resize down + top pad, resize up + left pad)


def stats_for(spec: dict[str, list[float]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    mean = np.asarray(spec["mean"], np.float32)
    std = np.asarray(spec["std"], np.float32)
    out = {"mean": mean, "std": std, "min": mean - 3 * std - 0.01, "max": mean + 3 * std + 0.01,
           "count": np.array([1200], np.int64)}
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


def build_vlm(vlm_dir: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SmolVLMConfig
    from transformers.models.smolvlm import SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    vocab = {t: i for i, t in enumerate(SPECIALS + WORDS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    # words split on spaces; a newline is a token of its own (like byte-level BPE's "Ċ")
    core.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(" ", behavior="removed"),
                                                  pre_tokenizers.Split("\n", behavior="isolated")])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<|endoftext|>", bos_token="<|im_start|>",
                                        eos_token="<end_of_utterance>", pad_token="<|im_end|>",
                                        additional_special_tokens=SPECIALS[3:], extra_special_tokens=EXTRA_TOKENS,
                                        model_max_length=512)
    image_processor = SmolVLMImageProcessor(do_resize=True, size={"longest_edge": VISION["image_size"]},
                                            max_image_size={"longest_edge": VISION["image_size"]},
                                            do_image_splitting=False)
    video_processor = SmolVLMVideoProcessor(size={"longest_edge": VISION["image_size"]},
                                            max_image_size={"longest_edge": VISION["image_size"]})
    processor = SmolVLMProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                 video_processor=video_processor, image_seq_len=IMAGE_SEQ_LEN)
    processor.save_pretrained(vlm_dir)
    config = SmolVLMConfig(vision_config=dict(VISION), text_config=dict(TEXT), scale_factor=SCALE_FACTOR,
                           image_token_id=vocab["<image>"], pad_token_id=TEXT["pad_token_id"],
                           tie_word_embeddings=False)
    config.save_pretrained(vlm_dir)


def check_vlm(vlm_dir: Path) -> dict:
    from transformers import AutoConfig, AutoProcessor, AutoTokenizer

    cfg = AutoConfig.from_pretrained(vlm_dir)
    proc = AutoProcessor.from_pretrained(vlm_dir)
    tok = AutoTokenizer.from_pretrained(vlm_dir)
    ids = tok("pick up the red cube\n")["input_ids"]
    assert ids == [tok.convert_tokens_to_ids(w) for w in ["pick", "up", "the", "red", "cube", "\n"]], ids
    assert tok.unk_token_id not in ids
    assert proc.tokenizer.fake_image_token_id == SPECIALS.index("<fake_token_around_image>")
    assert proc.tokenizer.global_image_token_id == SPECIALS.index("<global-img>")
    assert proc.image_seq_len == IMAGE_SEQ_LEN and cfg.text_config.head_dim == TEXT["head_dim"]
    return {"tokenizer_class": type(tok).__name__, "processor_class": type(proc).__name__,
            "pad_token_id": tok.pad_token_id, "bos_token_id": tok.bos_token_id, "unk_token_id": tok.unk_token_id,
            "newline_id": tok.convert_tokens_to_ids("\n")}


def make_config(vlm_name: str):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig

    inputs = {STATE: PolicyFeature(type=FeatureType.STATE, shape=(DIM,)),
              TOP: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 48, 64)),
              WRIST: PolicyFeature(type=FeatureType.VISUAL, shape=(3, 40, 40))}
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(DIM,))}
    return SmolVLAConfig(vlm_model_name=vlm_name, input_features=inputs, output_features=outputs, **POLICY)


def perturb(policy) -> dict:
    """Add seeded noise to every parameter, so that none is zero/one-initialised and attention is not uniform."""
    import torch

    gen = torch.Generator().manual_seed(PERTURB_SEED)
    zero_before = [n for n, p in policy.named_parameters() if not torch.any(p)]
    with torch.no_grad():
        for _, p in policy.named_parameters():
            scale = 0.5 / np.sqrt(p[0].numel()) if p.ndim >= 2 else 0.1
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


def save_checkpoint(ckpt: Path, policy, pre, post, vlm_dir: Path) -> None:
    policy.save_pretrained(ckpt)
    pre.save_pretrained(ckpt)
    post.save_pretrained(ckpt)

    def fix_config(data):
        assert data["vlm_model_name"] == str(vlm_dir), data["vlm_model_name"]
        data["vlm_model_name"] = HUB_VLM

    def fix_pre(data):
        for step in data["steps"]:
            if step.get("config", {}).get("tokenizer_name") == str(vlm_dir):
                step["config"]["tokenizer_name"] = HUB_VLM

    rewrite_json(ckpt / "config.json", fix_config)
    rewrite_json(ckpt / "policy_preprocessor.json", fix_pre)


def reload(ckpt: Path, vlm_dir: Path):
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
    from lerobot.processor import PolicyProcessorPipeline
    from lerobot.processor.converters import policy_action_to_transition, transition_to_policy_action

    cfg = PreTrainedConfig.from_pretrained(ckpt)
    assert cfg.vlm_model_name == HUB_VLM
    cfg.vlm_model_name = str(vlm_dir)
    policy = SmolVLAPolicy.from_pretrained(ckpt, config=cfg, strict=True)
    pre = PolicyProcessorPipeline.from_pretrained(
        ckpt, config_filename="policy_preprocessor.json",
        overrides={"tokenizer_processor": {"tokenizer_name": str(vlm_dir)}})
    post = PolicyProcessorPipeline.from_pretrained(
        ckpt, config_filename="policy_postprocessor.json", to_transition=policy_action_to_transition,
        to_output=transition_to_policy_action)
    return policy, pre, post


def case_inputs(rng: np.random.Generator) -> list[dict]:
    import torch

    gen = torch.Generator().manual_seed(NOISE_SEED)
    out = []
    for case in CASES:
        images = {cam: smooth_image(rng, h, w) for cam, (h, w) in case["cameras"].items()}
        mean, std = np.asarray(STATE_STATS["mean"], np.float32), np.asarray(STATE_STATS["std"], np.float32)
        state = (mean + std * rng.normal(0, 1, DIM)).astype(np.float32)
        state[3] = np.float32(STATE_STATS["mean"][3] + case["state_offset"])
        noise = torch.randn((1, POLICY["chunk_size"], POLICY["max_action_dim"]), generator=gen, dtype=torch.float32)
        out.append({"images": images, "state": state, "noise": noise})
    return out


def run_case(policy, pre, post, task: str, inputs: dict) -> dict:
    """LeRobot's inference path (utils/control_utils.predict_action), with predict_action_chunk and fixed noise."""
    import torch
    from lerobot.policies.utils import prepare_observation_for_inference

    seen: dict = {"embeds": [], "v_t": []}
    model = policy.model
    orig_sample, orig_denoise = model.sample_actions, model.denoise_step
    orig_embed, orig_prepare = model.vlm_with_expert.embed_image, policy.prepare_images

    def sample_actions(*args, **kwargs):
        seen["x_t"] = orig_sample(*args, **kwargs).clone()
        return seen["x_t"]

    def denoise_step(*args, **kwargs):
        v_t = orig_denoise(*args, **kwargs)
        seen["v_t"].append(v_t.clone())
        return v_t

    def embed_image(image):
        emb = orig_embed(image)
        seen["embeds"].append(emb.clone())
        return emb

    def prepare_images(batch):
        images, masks = orig_prepare(batch)
        seen["pixels"] = [i.clone() for i in images]
        seen["img_masks"] = [m.clone() for m in masks]
        return images, masks

    model.sample_actions, model.denoise_step = sample_actions, denoise_step
    model.vlm_with_expert.embed_image, policy.prepare_images = embed_image, prepare_images
    try:
        obs = {STATE: inputs["state"].copy()}
        obs.update({f"observation.images.{cam}": img.copy() for cam, img in inputs["images"].items()})
        with torch.inference_mode():
            batch = pre(prepare_observation_for_inference(obs, torch.device("cpu"), task, ""))
            chunk = policy.predict_action_chunk(batch, noise=inputs["noise"].clone())
            actions = post(chunk)
    finally:
        del model.sample_actions, model.denoise_step, model.vlm_with_expert.embed_image, policy.prepare_images
    return {"batch_keys": sorted(k for k in batch if isinstance(k, str)),
            "lang_tokens": batch["observation.language.tokens"].numpy(),
            "lang_mask": batch["observation.language.attention_mask"].numpy(),
            "state_norm": batch[STATE].numpy(), "state_dtype": str(batch[STATE].dtype),
            "image_dtype": str(batch[TOP].dtype),
            "embeds": [e.numpy() for e in seen["embeds"]], "pixels": [p.numpy() for p in seen["pixels"]],
            "img_masks": [m.numpy() for m in seen["img_masks"]],
            "v_t": torch.stack(seen["v_t"]).numpy(), "x_t": seen["x_t"].numpy(), "chunk": chunk.numpy(),
            "actions": actions.numpy()}


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
                "state[0] + 0.1": (CASES[0]["task"], {**inputs, "state": state})}
    out = {}
    for name, (task, inp) in variants.items():
        out[name] = float(np.abs(run_case(policy, pre, post, task, inp)["chunk"] - base).max())
        assert out[name] > 1e-3, f"the output hardly depends on: {name} ({out[name]})"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="test/fixtures/smolvla", help="fixture folder (rebuilt from scratch)")
    ns = parser.parse_args()

    import lerobot
    import torch
    import transformers
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
    from lerobot.policies.smolvla.processor_smolvla import make_smolvla_pre_post_processors

    torch.set_num_threads(1)
    out = Path(ns.out).resolve()
    if out.exists() and any(out.iterdir()) and not (out / "cases.json").exists():
        raise SystemExit(f"{out} is not empty and holds no cases.json: refusing to replace it")
    shutil.rmtree(out, ignore_errors=True)
    vlm_dir, ckpt = out / "vlm", out / "checkpoint"
    vlm_dir.mkdir(parents=True)

    build_vlm(vlm_dir)
    vlm_info = check_vlm(vlm_dir)

    rng = np.random.default_rng(DATA_SEED)
    dataset_stats = {STATE: stats_for(STATE_STATS, rng), "action": stats_for(ACTION_STATS, rng)}
    config = make_config(str(vlm_dir))
    torch.manual_seed(MODEL_SEED)
    policy = SmolVLAPolicy(config)
    perturb_info = perturb(policy)
    pre, post = make_smolvla_pre_post_processors(config, dataset_stats=dataset_stats)
    save_checkpoint(ckpt, policy, pre, post, vlm_dir)

    inputs = case_inputs(rng)
    first_built = run_case(policy, pre, post, CASES[0]["task"], inputs[0])
    del policy, pre, post
    policy, pre, post = reload(ckpt, vlm_dir)

    arrays: dict[str, np.ndarray] = {}
    summary = []
    for i, (case, inp) in enumerate(zip(CASES, inputs)):
        res = run_case(policy, pre, post, case["task"], inp)
        if i == 0:
            again = run_case(policy, pre, post, case["task"], inp)
            for key in ("x_t", "chunk", "actions", "v_t"):
                assert np.array_equal(res[key], again[key]), f"case 0 is not deterministic ({key})"
                assert np.array_equal(res[key], first_built[key]), f"reloaded policy differs from the built ({key})"
        p = f"c{i}_"
        cams = list(case["cameras"])
        arrays.update({p + f"img_{c}": inp["images"][c] for c in cams})
        arrays.update({p + "state": inp["state"], p + "noise": inp["noise"].numpy(),
                       p + "lang_tokens": res["lang_tokens"], p + "lang_mask": res["lang_mask"],
                       p + "state_norm": res["state_norm"], p + "v_t": res["v_t"], p + "x_t": res["x_t"],
                       p + "chunk": res["chunk"], p + "actions": res["actions"]})
        arrays.update({p + f"img_emb_{c}": e for c, e in zip(cams, res["embeds"])})
        if i == PIXELS_CASE:
            arrays.update({p + f"pixels_{c}": px for c, px in zip(cams, res["pixels"])})
        assert len(res["embeds"]) == len(res["pixels"]) == len(cams)
        assert np.isfinite(res["actions"]).all()
        summary.append({
            "name": case["name"], "task": case["task"], "cameras_present": cams,
            "camera_keys": [f"observation.images.{c}" for c in cams],
            "image_shapes_hwc": {c: list(inp["images"][c].shape) for c in cams},
            "images_fed_to_model": len(res["pixels"]), "image_masks": [bool(m.all()) for m in res["img_masks"]],
            "lang_tokens": res["lang_tokens"][0].tolist(), "lang_mask": res["lang_mask"][0].astype(int).tolist(),
            "state": inp["state"].tolist(), "state_norm": res["state_norm"][0].tolist(),
            "prefix_len": IMAGE_SEQ_LEN * len(cams) + res["lang_tokens"].shape[1] + 1,
            "chunk_range": [float(res["chunk"].min()), float(res["chunk"].max())],
            "actions_range": [float(res["actions"].min()), float(res["actions"].max())],
            "x_t_pad_range": [float(res["x_t"][..., DIM:].min()), float(res["x_t"][..., DIM:].max())],
            "batch_keys_after_preprocessor": res["batch_keys"],
            "dtypes": {"state": res["state_dtype"], "image": res["image_dtype"],
                       "lang_tokens": str(res["lang_tokens"].dtype), "chunk": str(res["chunk"].dtype)},
        })
    sens = sensitivity(policy, pre, post, inputs[0])
    np.savez_compressed(out / "reference.npz", **arrays)
    meta = {"versions": {"lerobot": lerobot.__version__, "transformers": transformers.__version__,
                         "torch": torch.__version__, "numpy": np.__version__},
            "seeds": {"model": MODEL_SEED, "perturb": PERTURB_SEED, "data": DATA_SEED, "noise": NOISE_SEED},
            "vlm": {"vision": VISION, "text": TEXT, "scale_factor": SCALE_FACTOR, "image_seq_len": IMAGE_SEQ_LEN,
                    "vocab": SPECIALS + WORDS, **vlm_info},
            "policy": {k: list(v) if isinstance(v, tuple) else v for k, v in POLICY.items()},
            "expert": {"hidden_size": policy.model.vlm_with_expert.expert_hidden_size,
                       "intermediate_size": policy.model.vlm_with_expert.lm_expert.config.intermediate_size,
                       "num_layers": policy.model.vlm_with_expert.num_expert_layers},
            "stats": {k: {s: v.tolist() for s, v in d.items()} for k, d in dataset_stats.items()},
            **perturb_info, "pixels_case": PIXELS_CASE, "case0_sensitivity_max_abs_chunk_change": sens,
            "cases": summary}
    (out / "cases.json").write_text(json.dumps(meta, indent=1) + "\n")
    (out / "README.md").write_text(readme(meta))
    leaks = [str(f.relative_to(out)) for f in out.rglob("*") if f.is_file() and f.suffix in (".json", ".md", ".txt")
             and str(out) in f.read_text()]
    assert not leaks, f"absolute paths left in {leaks}"
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(json.dumps({c["name"]: {"tokens": c["lang_tokens"], "actions": c["actions_range"]} for c in summary}))
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


def readme(meta: dict) -> str:
    v, cases = meta["versions"], meta["cases"]
    rows = "\n".join(
        f"| c{i} | `{c['task']}` | {', '.join(c['cameras_present'])} | "
        f"{', '.join('x'.join(map(str, s)) for s in c['image_shapes_hwc'].values())} | {c['lang_tokens']} | "
        f"{c['actions_range'][0]:.3f} .. {c['actions_range'][1]:.3f} |" for i, c in enumerate(cases))
    e, t = meta["expert"], meta["vlm"]["text"]
    return f"""# SmolVLA parity fixtures (made with LeRobot)

Golden outputs of LeRobot's own SmolVLA (`SmolVLAPolicy` + `make_smolvla_pre_post_processors`) on a tiny,
randomly initialised model, for the parity test of `vla_ros/policies/smolvla.py`. Numbers, random weights, tiny
configs and tokenizer files only: no LeRobot or transformers source is in here.

Made outside `make test`, in the LeRobot side venv (`tools/lerobot_venv.sh`; LeRobot {v['lerobot']},
transformers {v['transformers']}, torch {v['torch']}, numpy {v['numpy']}), offline, CPU, one torch thread:

    /work/lerobot-venv/bin/python tools/lerobot_smolvla_fixture.py --out test/fixtures/smolvla

The script rebuilds this folder from scratch (this README included). Seeds: model init
`torch.manual_seed({meta['seeds']['model']})`, parameter perturbation
`torch.Generator().manual_seed({meta['seeds']['perturb']})`, stats/images/states
`numpy.random.default_rng({meta['seeds']['data']})`, noise `torch.Generator().manual_seed({meta['seeds']['noise']})`
(one `torch.randn((1, 10, 32))` per case, in order).

## Files

- `vlm/`: the "VLM directory" `vlm_model_name` must point at. `config.json` is a transformers `SmolVLMConfig`
  (no weights: `load_vlm_weights` is False, all weights are in the checkpoint); `tokenizer.json` /
  `tokenizer_config.json` / `special_tokens_map.json` a word-level `PreTrainedTokenizerFast`;
  `processor_config.json`, `preprocessor_config.json`, `video_preprocessor_config.json` the SmolVLM processor
  (LeRobot loads it with `AutoProcessor` but only reads the tokenizer's `fake_image_token_id` /
  `global_image_token_id` from it; its image processor is never used). `AutoConfig`, `AutoProcessor` and
  `AutoTokenizer.from_pretrained(vlm/)` all work offline.
- `checkpoint/`: saved by LeRobot (`policy.save_pretrained`, `preprocessor.save_pretrained`,
  `postprocessor.save_pretrained`): `config.json`, `model.safetensors` (float32, {meta['parameters']} parameters),
  `policy_preprocessor.json`, `policy_postprocessor.json` and the normaliser stats
  `policy_*_normalizer_processor.safetensors`.
- `reference.npz`: per case `c<i>_` (i = 0..{len(cases) - 1}):
  - inputs: `img_<cam>` uint8 HxWx3, `state` float32 (7,), `noise` float32 (1, 10, 32);
  - preprocessor output: `lang_tokens` int64 (1, L), `lang_mask` bool (1, L), `state_norm` float32 (1, 7)
    (the model pads it with zeros to 32);
  - inside the model: `img_emb_<cam>` (1, {meta['vlm']['image_seq_len']}, 64) vision tower + connector output per
    present camera (before SmolVLA's `* sqrt(64)`); `pixels_<cam>` (1, 3, 64, 64) the letterboxed image in
    [-1, 1] fed to the vision tower (case c{meta['pixels_case']} only); `v_t` (10, 1, 10, 32) the velocity of each
    of the 10 Euler steps; `x_t` (1, 10, 32) the full 32-wide `sample_actions` output;
  - outputs: `chunk` (1, 10, 7) `predict_action_chunk` (normalised, cut to the 7 action dims), `actions`
    (1, 10, 7) after the postprocessor (unnormalised).
- `cases.json`: versions, seeds, the tiny configs, the stats, and per case the task, cameras present, shapes,
  token ids, normalised state and output ranges.

## Tiny configs

- VLM (`vlm/config.json`): vision image_size 64, patch 16, hidden 32, intermediate 64, 2 layers, 2 heads,
  layer_norm_eps 1e-6, gelu_pytorch_tanh; scale_factor 2 (so {meta['vlm']['image_seq_len']} image tokens per camera);
  text llama hidden {t['hidden_size']}, {t['num_hidden_layers']} layers (cut to 4 by num_vlm_layers), \
{t['num_attention_heads']} heads,
  {t['num_key_value_heads']} KV heads, head_dim {t['head_dim']}, intermediate {t['intermediate_size']}, \
vocab {t['vocab_size']}, rms_norm_eps 1e-5, rope_theta 100000
  (unused: LeRobot's own RoPE uses max_wavelength 10000); image_token_id 4, pad_token_id 2.
- Tokenizer: WordLevel, ids 0 `<|endoftext|>` (unk), 1 `<|im_start|>` (bos), 2 `<|im_end|>` (pad),
  3 `<fake_token_around_image>`, 4 `<image>`, 5 `<global-img>`, 6 `<end_of_utterance>` (eos), 7 `"\\n"`, then
  pick up the red green blue cube block place it in on bowl please (8..21). Words are split on spaces and "\\n"
  is a token of its own (like the real byte-level BPE's "Ċ"); no post-processor, so no BOS/EOS is added. The
  special-token roles follow what the real SmolVLM2 tokenizer_config is reported to hold (not checked offline).
- SmolVLA (`checkpoint/config.json`): num_vlm_layers 4, num_expert_layers -1 (expert has {e['num_layers']} layers),
  self_attn_every_n_layers 2 (layers 0 and 2 self-attention, 1 and 3 cross-attention), expert_width_multiplier
  0.75 (expert hidden {e['hidden_size']}, head_dim 16, intermediate {e['intermediate_size']}),
  attention_mode cross_attn, chunk_size 10, n_action_steps 10, max_state_dim 32, max_action_dim 32,
  resize_imgs_with_padding (64, 64), tokenizer_max_length 48, pad_language_to "longest", num_steps 10,
  add_image_special_tokens false, prefix_length -1, use_cache true; input_features observation.state (7,),
  observation.images.top (3, 48, 64), observation.images.wrist (3, 40, 40); output_features action (7,);
  normalization VISUAL IDENTITY, STATE MEAN_STD, ACTION MEAN_STD (eps 1e-8 in the denominator `std + eps`,
  unnormalise `x * std + mean`).
- Weights: LeRobot's random init, then every parameter += N(0, 1) * (0.5 / sqrt(fan_in)) for matrices and
  * 0.1 for vectors (norm weights, biases), so nothing is exactly zero or one and attention is not uniform.
- Stats: made up (see `cases.json`); state dim 3 has std 0 (its mean is 0.25): c0, c1, c3 give it exactly the
  mean (normalised 0), c2 gives it mean + 2**-20, which the eps turns into {cases[2]['state_norm'][3]:.4f}.

## vlm_model_name

LeRobot writes the absolute path of the VLM directory into `checkpoint/config.json` (`vlm_model_name`) and
into the tokenizer step of `policy_preprocessor.json` (`tokenizer_name`). Both were rewritten after saving to
`{HUB_VLM}`, as real checkpoints have it; the loader must take the local `vlm/`
directory from a parameter.
The reference outputs were produced after reloading: `SmolVLAPolicy.from_pretrained(checkpoint/, config=...,
strict=True)` with the config's `vlm_model_name` pointed back at `vlm/`, and
`PolicyProcessorPipeline.from_pretrained(checkpoint/, ..., overrides={{"tokenizer_processor":
{{"tokenizer_name": vlm/}}}})`. The script asserts that the reloaded objects give bit-identical output to the
objects that were saved, and that running a case twice is bit-identical.

## Inference path and observed conventions

Each case goes through LeRobot's inference path: `prepare_observation_for_inference` (uint8 HxWx3 ->
float32 / 255, CHW, batch dim; task string; robot_type "") -> preprocessor -> `policy.predict_action_chunk(batch,
noise=noise)` -> postprocessor.

- Task text: the preprocessor appends "\\n" (`SmolVLANewLineProcessor`), then tokenises with padding
  "longest", padding_side right, max_length 48, truncation. With one sample there is never any padding: the
  mask is all ones and L is the number of words + 1. LeRobot adds no BOS/EOS of its own (it calls the tokenizer
  with its defaults; this tokenizer adds none). The unknown word ("and" in c2) becomes id 0 (unk). The
  tokenizer is loaded with `AutoTokenizer.from_pretrained(tokenizer_name)`, separately from the VLM's processor.
- Language embeddings are scaled by sqrt(hidden) = 8, image embeddings by sqrt(64) = 8 as well.
- Images: `resize_with_pad(img, 64, 64, pad_value=0)` on the [0, 1] image, then `* 2 - 1`: bilinear
  (`F.interpolate`, align_corners False, no antialias) to fit inside 64x64 keeping aspect (sizes truncated with
  `int()`), ALWAYS interpolated (also at equal size, which is then a no-op), padded on the TOP and LEFT only, with
  0 before the `* 2 - 1` (so -1 in the model's range). 48x64 top: no resize, 16 rows of padding at the top.
  40x40 wrist: upscaled to 64x64, no padding. c3: 96x120 top -> 51x64 + 13 rows on top; 50x30 wrist -> 64x38 + 26
  columns on the left.
- Absent camera (c1): with `empty_cameras` 0 LeRobot simply drops it: no placeholder image and no masked
  tokens, the prefix is {IMAGE_SEQ_LEN} tokens shorter. Image masks are all true for present cameras.
- Prefix order: per present camera (config order) {IMAGE_SEQ_LEN} image tokens, then the language tokens, then one
  state token; prefix positions are `cumsum(pad_mask) - 1`. Action tokens get positions prefix_len + 0..9 in the
  self-attention layers (0, 2: queries/keys/values of the expert attend to the cached prefix keys/values plus
  their own), but in the cross-attention layers (1, 3) their query positions are re-based to 0..9
  (`position - min`) and they attend only to the cached prefix keys/values (already rotated) passed through the
  expert's own k_proj/v_proj. RoPE is LeRobot's `apply_rope` (max_wavelength 10000, halves split), not the
  config's rope_theta. The KV cache is filled once from the prefix; each of the 10 Euler steps runs only the
  expert (`x += -0.1 * v_t`, time 1.0, 0.9, ..., 0.1).
- Dtypes: state and images float32, tokens int64, mask bool, all outputs float32. The preprocessed batch also
  carries `action`, `next.reward`, `next.done`, `next.truncated`, `info`, `task` (LeRobot's transition
  conversion); the policy ignores them.
- c3 feeds images whose sizes differ from `input_features` (96x120 top, 50x30 wrist): LeRobot does not check
  image shapes at inference, it letterboxes whatever arrives.
- Sensitivity (asserted > 1e-3): max |change| of c0's chunk when one input part changes:
  {", ".join(f"{k} {v:.3f}" for k, v in meta["case0_sensitivity_max_abs_chunk_change"].items())}.
- `actions` = `chunk * std + mean` per action dim; `chunk` = `x_t[..., :7]`.

| case | task | cameras | HxW | token ids | actions range |
| --- | --- | --- | --- | --- | --- |
{rows}
"""


if __name__ == "__main__":
    main()
