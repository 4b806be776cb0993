"""Tiny, randomly initialised models saved to a local directory, for tests and benchmarks.

They exercise exactly the loading and inference paths users take with real checkpoints
(``from_pretrained`` on a directory); their outputs are real model outputs of untrained weights.
No hub access is needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.normalize import NormStats, Stats

WORDS = ("pick up the red green blue cube block put it in on to move grasp lift place what action should "
         "robot take").split()


def build_tokenizer(folder: str | Path, extra_ids: int = 0):
    """A word-level tokenizer with <pad>, <bos>, <eos>, <unk> and a small English vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>", "\n", "?", ":", *WORDS, "In", "Out"])}
    for k in range(extra_ids):
        vocab[f"<extra_{k}>"] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")
    fast.save_pretrained(str(folder))
    return fast


def tiny_pi0_config(chunk_size: int = 50) -> dict:
    """PI0Config arguments of a ~0.3M-parameter pi0 (Gemma/SigLIP widths of 64, 2 layers each)."""
    vocab = 300
    return dict(
        vlm_config={
            "text_config": {"model_type": "gemma", "hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128,
                            "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32, "vocab_size": vocab},
            "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 64, "intermediate_size": 128,
                              "num_hidden_layers": 2, "num_attention_heads": 2, "patch_size": 14, "image_size": 224,
                              "vision_use_head": False},
            "projection_dim": 64, "image_token_id": vocab},
        dit_config={"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 128, "num_attention_heads": 2,
                    "num_key_value_heads": 1, "head_dim": 32},
        chunk_size=chunk_size, max_state_dim=32, max_action_dim=32, num_inference_steps=10)


def build_pi0(folder: str | Path, config: dict | None = None, state_dim: int = 7, action_dim: int = 7,
              norm_mode: str = "zscore", seed: int = 0, device: str = "cpu", dtype: str = "float32") -> Path:
    """A randomly initialised PI0ForConditionalGeneration (``config``: PI0Config arguments; None: the
    full-size default, 3.5B parameters) saved with a tokenizer and normalisation statistics."""
    import torch
    from transformers import PI0Config, PI0ForConditionalGeneration

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    with torch.device(device):
        model = PI0ForConditionalGeneration(PI0Config(**(config or {})))
    model.to(getattr(torch, dtype)).eval().save_pretrained(folder)
    del model
    build_tokenizer(folder)
    rng = np.random.default_rng(seed)

    def stats(n: int) -> Stats:
        mean, std = rng.normal(0, 0.3, n), rng.uniform(0.1, 0.5, n)
        return Stats(mean=mean, std=std, q01=mean - 2 * std, q99=mean + 2 * std)

    NormStats(norm_mode, stats(state_dim), stats(action_dim)).save(folder)
    return folder


def build_pi05(folder: str | Path, tiny: bool = False, state_dim: int = 14, action_dim: int = 14,
               chunk_size: int = 50, seed: int = 0, device: str = "cpu", dtype: str = "float32") -> Path:
    """A randomly initialised pi0.5 (full size: PaliGemma 2B + the 300M adaRMS expert, 3.6B parameters; ``tiny``:
    2-layer towers) saved as openpi's PyTorch converter lays a checkpoint out (model.safetensors without LeRobot's
    ``model.`` prefix, config.json by variant, assets/bench/norm_stats.json), with a word-level tokenizer. A tiny
    one needs ``paligemma_sizes.sizes_of(TINY_PALIGEMMA)`` around its loading (the config names the variants)."""
    import contextlib
    import json

    import torch
    from safetensors.torch import save_file

    from . import paligemma_sizes as ps
    from .pi05_model import Pi05Model, Pi05Shape

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    with ps.sizes_of(TINY_PALIGEMMA) if tiny else contextlib.nullcontext():
        shape = Pi05Shape(ps.GEMMA_VARIANTS["gemma_2b"], ps.GEMMA_VARIANTS["gemma_300m"], chunk_size=chunk_size,
                          vocab=ps.VOCAB, vision=tuple(ps.VISION.items()))
        with torch.device(device):
            model = Pi05Model(shape).to(getattr(torch, dtype))
    weights, seen = {}, set()
    for k, v in model.state_dict().items():  # tied tensors once (lm_head = embed_tokens), as save_model keeps them
        if v.data_ptr() not in seen:
            seen.add(v.data_ptr())
            weights[k.removeprefix("model.")] = v.detach().to("cpu").contiguous()
    del model
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    del weights
    (folder / "config.json").write_text(json.dumps({"action_dim": 32, "action_horizon": chunk_size,
                                                    "paligemma_variant": "gemma_2b",
                                                    "action_expert_variant": "gemma_300m", "precision": dtype}))
    build_tokenizer(folder)
    rng = np.random.default_rng(seed)

    def stats(n: int) -> Stats:
        mean, std = rng.normal(0, 0.3, n), rng.uniform(0.1, 0.5, n)
        return Stats(mean=mean, std=std, q01=mean - 2 * std, q99=mean + 2 * std)

    (folder / "assets" / "bench").mkdir(parents=True, exist_ok=True)
    NormStats("quantile", stats(state_dim), stats(action_dim)).save(folder / "assets" / "bench")
    return folder


def build_smolvla(folder: str | Path, vlm_path: str | Path, cameras: list[str], state_dim: int = 14,
                  action_dim: int = 14, chunk_size: int = 50, num_vlm_layers: int = 16, image_size: int = 512,
                  seed: int = 0, device: str = "cpu", dtype: str = "float32") -> Path:
    """A randomly initialised SmolVLA (LeRobot's defaults: the VLM cut to ``num_vlm_layers``, the 0.75-wide expert,
    512 letterbox) on the VLM whose config.json and tokenizer are in ``vlm_path`` (SmolVLM2-500M-Video-Instruct
    for the real size), saved as LeRobot < 0.4 saves one (config.json, model.safetensors with its statistics
    buffers)."""
    import json

    import torch
    from safetensors.torch import save_file
    from transformers import AutoConfig

    from .smolvla_model import SmolVLAModel, SmolVLAShape

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    features = {"observation.state": {"type": "STATE", "shape": [state_dim]},
                **{f"observation.images.{c}": {"type": "VISUAL", "shape": [3, 480, 640]} for c in cameras}}
    cfg = {"type": "smolvla", "chunk_size": chunk_size, "n_action_steps": chunk_size, "num_vlm_layers": num_vlm_layers,
           "resize_imgs_with_padding": [image_size, image_size], "vlm_model_name": str(vlm_path),
           "normalization_mapping": {"VISUAL": "IDENTITY", "STATE": "MEAN_STD", "ACTION": "MEAN_STD"},
           "input_features": features, "output_features": {"action": {"type": "ACTION", "shape": [action_dim]}}}
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    torch.manual_seed(seed)
    with torch.device(device):
        model = SmolVLAModel(AutoConfig.from_pretrained(str(vlm_path)), SmolVLAShape.from_lerobot(cfg), None)
    model.to(getattr(torch, dtype))
    weights, seen = {}, set()
    for k, v in model.state_dict().items():
        if v.data_ptr() not in seen:
            seen.add(v.data_ptr())
            weights[k] = v.detach().to("cpu").contiguous()
    del model
    rng = np.random.default_rng(seed)
    stats = {n: (rng.normal(0, 0.3, n), rng.uniform(0.1, 0.5, n)) for n in {state_dim, action_dim}}
    for prefix, feature, n in (("normalize_inputs", "observation_state", state_dim),
                               ("normalize_targets", "action", action_dim),
                               ("unnormalize_outputs", "action", action_dim)):
        weights[f"{prefix}.buffer_{feature}.mean"] = torch.tensor(stats[n][0], dtype=torch.float32)
        weights[f"{prefix}.buffer_{feature}.std"] = torch.tensor(stats[n][1], dtype=torch.float32)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


# sizes for paligemma_sizes.sizes_of: 2-layer towers, a 2-layer SigLIP, vocabulary 320
TINY_PALIGEMMA = {"vocab_size": 320,
                  "vlm": {"width": 64, "depth": 2, "mlp_dim": 128, "num_heads": 4, "num_kv_heads": 1, "head_dim": 16},
                  "expert": {"width": 32, "depth": 2, "mlp_dim": 64, "num_heads": 4, "num_kv_heads": 1,
                             "head_dim": 16},
                  "vision": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                             "num_attention_heads": 2, "patch_size": 14}}


def build_tiny_pi0(folder: str | Path, state_dim: int = 7, action_dim: int = 7, chunk_size: int = 50,
                   norm_mode: str = "zscore", seed: int = 0) -> Path:
    """A ~0.3M-parameter PI0ForConditionalGeneration with tokenizer and normalisation statistics."""
    return build_pi0(folder, tiny_pi0_config(chunk_size), state_dim, action_dim, norm_mode, seed)


TINY_LLAVA = {
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": 32, "intermediate_size": 64,
                      "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 224, "patch_size": 32,
                      "projection_dim": 32},
    "text_config": {"model_type": "llama", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                    "num_attention_heads": 2, "num_key_value_heads": 1},
    "image_seq_length": 49, "patch_size": 32, "feature_strategy": "default", "extra_image_tokens": 1,
}
# OpenVLA-7B's cost in Llava form: Llama-2 7B over 256 image patches of a SigLIP-So400m/14 at 224 px
# (OpenVLA fuses DINOv2-L and SigLIP-So400m patches; one 400M encoder stands in for the pair's cost share).
OPENVLA_7B_LLAVA = {
    "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 1152, "intermediate_size": 4304,
                      "num_hidden_layers": 27, "num_attention_heads": 16, "image_size": 224, "patch_size": 14},
    "text_config": {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                    "num_attention_heads": 32, "num_key_value_heads": 32},
    "image_seq_length": 256, "patch_size": 14, "feature_strategy": "full", "extra_image_tokens": 0,
}


def build_openvla(folder: str | Path, arch: dict, action_dim: int = 7, datasets: tuple[str, ...] = ("bridge_orig",),
                  seed: int = 0, device: str = "cpu", dtype: str = "float32") -> Path:
    """A randomly initialised Llava-architecture image-text-to-text model with a 32000-token text vocabulary.

    ``config.norm_stats`` follows OpenVLA's layout ({dataset: {"action": {q01, q99, mask}}}), so the
    OpenVLA backend's prompt, greedy generation, bin de-tokenisation and un-normalisation run on it.
    """
    import torch
    import transformers
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(folder)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    text = {**arch["text_config"], "vocab_size": 32064, "max_position_embeddings": 2048, "pad_token_id": 0,
            "bos_token_id": 1, "eos_token_id": 2}
    config = LlavaConfig(vision_config=arch["vision_config"], text_config=text, image_token_id=image_token_id,
                         image_seq_length=arch["image_seq_length"], vision_feature_layer=-1,
                         vision_feature_select_strategy=arch["feature_strategy"])
    rng = np.random.default_rng(seed)
    config.norm_stats = {}
    for name in datasets:
        q01 = rng.normal(0, 0.01, action_dim)
        q99 = q01 + rng.uniform(0.01, 0.05, action_dim)
        q01[-1], q99[-1] = 0.0, 1.0
        config.norm_stats[name] = {"action": {"q01": q01.tolist(), "q99": q99.tolist(),
                                              "mask": [True] * (action_dim - 1) + [False]}}
    config.n_action_bins = 256
    config.pad_to_multiple_of = 64
    with torch.device(device):
        model = LlavaForConditionalGeneration(config)
    model.to(getattr(torch, dtype)).eval().save_pretrained(folder)
    del model
    processor_cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    image_processor = processor_cls(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=arch["patch_size"],
                   vision_feature_select_strategy=arch["feature_strategy"],
                   num_additional_image_tokens=arch["extra_image_tokens"]).save_pretrained(folder)
    return folder


def build_tiny_openvla(folder: str | Path, action_dim: int = 7, datasets: tuple[str, ...] = ("bridge_orig",),
                       seed: int = 0) -> Path:
    """A tiny Llava-architecture model (CLIP 1 layer, Llama 2 layers) in OpenVLA's layout."""
    return build_openvla(folder, TINY_LLAVA, action_dim, datasets, seed)
