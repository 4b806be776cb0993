"""LeRobot policy checkpoints as published (``policy.save_pretrained`` + its processor pipelines).

A LeRobot directory holds ``config.json`` (the policy dataclass: ``"type"``, no ``model_type``),
``model.safetensors`` (the policy's state dict, keys under ``model.``) and, from 0.4 on, the normaliser
pipelines ``policy_preprocessor.json`` / ``policy_postprocessor.json`` with their safetensors.
Camera order is the insertion order of the VISUAL ``input_features``; ``empty_cameras`` adds masked
dummy cameras (``observation.images.empty_camera_<i>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_PREFIX = "observation.images."
# where LeRobot < 0.4 kept dataset statistics inside model.safetensors (its migrate_policy_normalization reads these)
BUFFER_PREFIXES = ("normalize_inputs.buffer_", "unnormalize_outputs.buffer_", "normalize_targets.buffer_")
BACKEND_FOR_TYPE = {"pi0": "pi0", "pi05": "pi05", "smolvla": "smolvla", "pi0_fast": "pi0fast", "act": "act",
                    "diffusion": "diffusion"}


class CheckpointFormatError(ValueError):
    """The checkpoint is not what the backend reads (message says what it is and what to use)."""


@dataclass
class LeRobotConfig:
    """What a backend needs from a LeRobot ``config.json``."""

    type: str
    cameras: list[str]  # camera names (after observation.images.) in the model's order, empty cameras excluded
    empty_cameras: int
    state_dim: int
    action_dim: int
    raw: dict[str, Any] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)  # camera -> the dataset's name for it (rename_map)

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    def node_cameras(self, image_keys: list[str]) -> list[str]:
        """The image key of each camera, in the model's order: its own name, else the dataset name the
        pre-processor's ``rename_map`` gives it (a robot names its cameras as its dataset did); unmatched names
        are returned as they are, for the caller to report."""
        return [c if c in image_keys or self.renamed.get(c) not in image_keys else self.renamed[c]
                for c in self.cameras]


def is_lerobot(folder: str | Path) -> bool:
    """A LeRobot policy directory: config.json with a ``type`` and no transformers ``model_type``."""
    path = Path(folder) / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and "type" in cfg and "model_type" not in cfg


def read_config(folder: str | Path, expected: str) -> LeRobotConfig:
    """The LeRobot config of ``folder``, refused unless its ``type`` is ``expected``."""
    path = Path(folder) / "config.json"
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointFormatError(f"cannot read {path}: {exc}") from None
    kind = cfg.get("type")
    if kind is None:
        raise CheckpointFormatError(f"{path} is not a LeRobot policy config (no 'type')")
    if kind != expected:
        from .registry import available_backends

        other = BACKEND_FOR_TYPE.get(kind)
        hint = (f"; run it with policy:={other}" if other in available_backends()
                else "; vla_ros has no backend for that kind yet")
        raise CheckpointFormatError(f"{folder} is a LeRobot {kind!r} checkpoint, not {expected!r}{hint}")
    features = cfg.get("input_features") or {}
    cameras, state_dim = [], 0
    for key, feat in features.items():
        kind_of = str((feat or {}).get("type", "")).upper()
        if kind_of == "VISUAL" and key.startswith(IMAGE_PREFIX):
            name = key[len(IMAGE_PREFIX):]
            if not name.startswith("empty_camera_"):
                cameras.append(name)
        elif kind_of == "STATE":
            state_dim = int((feat.get("shape") or [0])[-1])
    action = (cfg.get("output_features") or {}).get("action") or {}
    action_dim = int((action.get("shape") or [0])[-1])
    if not cameras or not state_dim or not action_dim:
        raise CheckpointFormatError(f"{path}: input_features/output_features name no camera, state or action "
                                    f"(cameras {cameras}, state {state_dim}, action {action_dim})")
    return LeRobotConfig(kind, cameras, int(cfg.get("empty_cameras", 0) or 0), state_dim, action_dim, cfg,
                         renamed_cameras(folder))


def renamed_cameras(folder: str | Path) -> dict[str, str]:
    """{model camera: dataset camera} from the ``rename_map`` of LeRobot's pre-processor (dataset key -> policy key,
    applied to the observation before the policy sees it); empty when there is none."""
    try:
        pipeline = json.loads((Path(folder) / "policy_preprocessor.json").read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for step in pipeline.get("steps", []) if isinstance(pipeline, dict) else []:
        mapping = (step.get("config") or {}).get("rename_map") or {}
        for source, target in mapping.items():
            if str(source).startswith(IMAGE_PREFIX) and str(target).startswith(IMAGE_PREFIX):
                out[target[len(IMAGE_PREFIX):]] = source[len(IMAGE_PREFIX):]
    return out


def split_buffers(weights: dict) -> tuple[dict, dict[str, dict]]:
    """(weights without LeRobot < 0.4's statistics buffers, {feature: {stat: numpy array}} from them)."""
    kept, stats = {}, {}
    for key, value in weights.items():
        prefix = next((p for p in BUFFER_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            kept[key] = value
            continue
        feature, _, stat = key[len(prefix):].rpartition(".")
        stats.setdefault(feature.replace("_", "."), {})[stat] = value.float().cpu().numpy()
    return kept, stats


def norm_stats(folder: str | Path, buffers: dict[str, dict], norm_map: dict):
    """The checkpoint's statistics: the normaliser pipelines (LeRobot >= 0.4), else the buffers that
    LeRobot < 0.4 kept in the weights. ValueError saying what is missing."""
    from ..core.normalize import NormStats

    if (Path(folder) / "policy_preprocessor.json").exists() or not buffers:
        try:
            return NormStats.from_lerobot(folder)
        except ValueError as exc:
            raise ValueError(f"{exc} (and model.safetensors holds no statistics buffers of LeRobot < 0.4)") from None
    return NormStats.from_lerobot_buffers(buffers, norm_map, str(folder))


def letterbox(images, height: int, width: int, pad_value: float = 0.0, centre: bool = False):
    """LeRobot's resize-with-pad on float (B, C, H, W) images: scale by the larger side ratio (int sizes,
    bilinear without antialiasing), then pad to ``height`` x ``width`` on the left and top (SmolVLA) or on
    both sides, the odd pixel after (pi0, ``centre``)."""
    import torch.nn.functional as F  # noqa: N812

    h, w = images.shape[2:]
    ratio = max(w / width, h / height)
    new_h, new_w = int(h / ratio), int(w / ratio)
    resized = F.interpolate(images, size=(new_h, new_w), mode="bilinear", align_corners=False)
    pad_h, pad_w = max(0, height - new_h), max(0, width - new_w)
    if centre:
        return F.pad(resized, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=pad_value)
    return F.pad(resized, (pad_w, 0, pad_h, 0), value=pad_value)


def pi0_pixels(frames, height: int, width: int, version: str):
    """LeRobot pi0's image input from float [0, 1] (B, C, H, W) frames: resized with centred padding unless
    already ``height`` x ``width``, then to [-1, 1]. LeRobot 0.4 pads with -1 before the scaling (so -3 for the
    model), 0.5 with 0 (-1)."""
    if tuple(frames.shape[2:]) != (height, width):
        frames = letterbox(frames, height, width, -1.0 if version == "0.4" else 0.0, centre=True)
    return frames * 2.0 - 1.0
