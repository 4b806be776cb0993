"""The PaliGemma / Gemma sizes LeRobot and openpi name by variant (openpi ``gemma.get_config``), which pi0 and
pi0.5 checkpoints in LeRobot's format only name (``paligemma_variant``, ``action_expert_variant``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

VOCAB = 257152  # PaliGemma's vocabulary, hard-coded by openpi and LeRobot


@dataclass(frozen=True)
class Gemma:
    """A Gemma size."""

    width: int
    depth: int
    mlp_dim: int
    num_heads: int
    num_kv_heads: int
    head_dim: int


GEMMA_VARIANTS = {"gemma_2b": Gemma(2048, 18, 16_384, 8, 1, 256), "gemma_300m": Gemma(1024, 18, 4096, 8, 1, 256)}
# SigLIP So400m/14 as PaliGemma's default vision config (LeRobot keeps it, with its MLP at 4304)
VISION = {"hidden_size": 1152, "intermediate_size": 4304, "num_hidden_layers": 27, "num_attention_heads": 16,
          "patch_size": 14}


def variants(cfg: dict) -> tuple[Gemma, Gemma]:
    """(VLM, action expert) sizes of a LeRobot config; ValueError naming an unknown variant."""
    try:
        return (GEMMA_VARIANTS[cfg.get("paligemma_variant", "gemma_2b")],
                GEMMA_VARIANTS[cfg.get("action_expert_variant", "gemma_300m")])
    except KeyError as exc:
        raise ValueError(f"unknown Gemma variant {exc} (known: {sorted(GEMMA_VARIANTS)})") from None


def image_size(cfg: dict) -> int:
    resolution = cfg.get("image_resolution") or [224, 224]
    if resolution[0] != resolution[1]:
        raise ValueError(f"image_resolution {resolution} is not square (PaliGemma)")
    return int(resolution[0])


def text_config(g: Gemma) -> dict:
    return {"model_type": "gemma", "hidden_size": g.width, "intermediate_size": g.mlp_dim,
            "num_attention_heads": g.num_heads, "num_key_value_heads": g.num_kv_heads, "head_dim": g.head_dim,
            "num_hidden_layers": g.depth, "hidden_activation": "gelu_pytorch_tanh", "vocab_size": VOCAB}


def vision_config(size: int, width: int) -> dict:
    return {"model_type": "siglip_vision_model", "image_size": size, **VISION, "projection_dim": width,
            "vision_use_head": False}


def pi0_config(cfg: dict):
    """transformers' PI0Config for a LeRobot pi0 config.json (sizes by variant, chunk, padding widths, steps)."""
    from transformers import PI0Config

    vlm, expert = variants(cfg)
    dit = text_config(expert)
    dit.pop("model_type"), dit.pop("vocab_size"), dit.pop("hidden_activation")
    fields = {k: cfg[k] for k in ("chunk_size", "max_state_dim", "max_action_dim", "num_inference_steps",
                                  "min_period", "max_period") if cfg.get(k) is not None}
    return PI0Config(vlm_config={"text_config": text_config(vlm), "vision_config": vision_config(image_size(cfg),
                                                                                                 vlm.width),
                                 "projection_dim": vlm.width, "image_token_id": VOCAB},
                     dit_config=dit, **fields)


@contextlib.contextmanager
def sizes_of(arch: dict):
    """Other sizes in place of the variants' (``arch``: ``vlm``/``expert`` Gemma fields, ``vision``, ``vocab_size``),
    for tiny checkpoints whose config names the real variants (parity fixtures, benchmark smoke tests)."""
    global VOCAB

    def gemma(d):
        return Gemma(d["width"], d["depth"], d["mlp_dim"], d["num_heads"], d["num_kv_heads"], d["head_dim"])

    v = arch["vision"]
    saved = (dict(GEMMA_VARIANTS), dict(VISION), VOCAB)
    GEMMA_VARIANTS.update(gemma_2b=gemma(arch["vlm"]), gemma_300m=gemma(arch["expert"]))
    VISION.update(hidden_size=v["hidden_size"], intermediate_size=v["intermediate_size"],
                  num_hidden_layers=v["num_hidden_layers"], num_attention_heads=v["num_attention_heads"],
                  patch_size=v["patch_size"])
    VOCAB = arch["vocab_size"]
    try:
        yield
    finally:
        GEMMA_VARIANTS.update(saved[0])
        VISION.update(saved[1])
        VOCAB = saved[2]
