"""openpi checkpoints converted to PyTorch (openpi's ``examples/convert_jax_model_to_pytorch.py``).

The converter writes ``model.safetensors`` (openpi's PI0Pytorch names, which transformers' pi0 conversion
mapping renames), a ``config.json`` of ``action_dim``, ``action_horizon``, ``paligemma_variant``,
``action_expert_variant`` and ``precision`` (no ``model_type``), and copies the training run's
``assets/<asset_id>/norm_stats.json``. The chunk length is ``action_horizon`` and states and actions are
padded to ``action_dim``; a different chunk length changes every action (the action tokens attend to each
other), so both come from this file, not from transformers' defaults.
"""

from __future__ import annotations

import json
from pathlib import Path

from .lerobot_format import CheckpointFormatError

# the Gemma sizes transformers' PI0Config defaults to (PaliGemma 2B + the 300M action expert); LoRA variants
# train adapters on the same shapes
VARIANTS = {"paligemma_variant": ("gemma_2b", "gemma_2b_lora"),
            "action_expert_variant": ("gemma_300m", "gemma_300m_lora")}


def read_openpi(folder: str | Path) -> dict | None:
    """The converter's config of ``folder`` (None when it is not an openpi checkpoint)."""
    try:
        cfg = json.loads((Path(folder) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict) or "action_horizon" not in cfg or "type" in cfg:
        return None
    sized = "vlm_config" in cfg and "dit_config" in cfg  # a config that states its sizes itself
    for key, known in VARIANTS.items():
        if not sized and cfg.get(key, known[0]) not in known:
            raise CheckpointFormatError(f"{folder}: openpi {key} {cfg[key]!r} has no transformers pi0 size "
                                        f"(known: {', '.join(known)})")
    return cfg


def pi0_overrides(cfg: dict) -> dict:
    """PI0Config fields the converter's config fixes: chunk length and padded state/action width."""
    width = int(cfg.get("action_dim", 32))
    return {"chunk_size": int(cfg["action_horizon"]), "max_action_dim": width, "max_state_dim": width}


def as_lerobot_sizes(cfg: dict) -> dict:
    """The converter's config in the terms ``paligemma_sizes`` reads (LoRA variants have the base shapes)."""
    width = int(cfg.get("action_dim", 32))
    return {"paligemma_variant": str(cfg.get("paligemma_variant", "gemma_2b")).removesuffix("_lora"),
            "action_expert_variant": str(cfg.get("action_expert_variant", "gemma_300m")).removesuffix("_lora"),
            "chunk_size": int(cfg["action_horizon"]), "max_state_dim": width, "max_action_dim": width}


def weight_names(folder: str | Path) -> set[str]:
    """The tensor names of ``model.safetensors`` (empty when unreadable)."""
    from safetensors import safe_open

    try:
        with safe_open(str(Path(folder) / "model.safetensors"), "pt") as f:
            return set(f.keys())
    except (OSError, ValueError):
        return set()


def assets_folder(folder: str | Path, asset_id: str) -> Path:
    """``assets/<asset_id>`` holding norm_stats.json: the one given, else the only one there."""
    assets = Path(folder) / "assets"
    found = sorted(p.parent.name for p in assets.glob("*/norm_stats.json"))
    if asset_id:
        if asset_id not in found:
            raise CheckpointFormatError(f"{assets} has no {asset_id}/norm_stats.json (found: {found or 'none'})")
        return assets / asset_id
    if len(found) != 1:
        what = f"several ({', '.join(found)}): choose one with asset_id" if found else "none"
        raise CheckpointFormatError(f"openpi checkpoint {folder}: norm_stats.json under assets/<asset_id>/: {what}")
    return assets / found[0]
