"""Normalisation of states and actions with dataset statistics stored beside model weights.

* ``zscore`` (pi0): (x - mean) / (std + eps)
* ``quantile`` (pi0-FAST, pi0.5): (x - q01) / (q99 - q01 + eps) * 2 - 1
* OpenVLA un-normalisation: where(mask, 0.5 (x + 1)(q99 - q01) + q01, x)
* LeRobot's normaliser steps (``policy_preprocessor.json`` / ``policy_postprocessor.json``), eps from the file
  (1e-8): ``mean_std`` (x - mean) / (std + eps), back x std + mean; ``min_max``, ``quantiles`` (q01, q99) and
  ``quantile10`` (q10, q90): 2 (x - lo) / (hi - lo) - 1, back (x + 1) (hi - lo) / 2 + lo, a zero hi - lo
  replaced by eps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EPS = 1e-6
LEROBOT_EPS = 1e-8
LEROBOT_MODES = {"MEAN_STD": "mean_std", "MIN_MAX": "min_max", "QUANTILES": "quantiles", "QUANTILE10": "quantile10",
                 "IDENTITY": "identity"}
_BOUNDS = {"min_max": ("min", "max"), "quantiles": ("q01", "q99"), "quantile10": ("q10", "q90")}
MODES = ("zscore", "quantile", "identity", "mean_std", "min_max", "quantiles", "quantile10")


@dataclass
class Stats:
    """Per-dimension statistics of one feature (any subset may be present)."""

    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    q01: np.ndarray | None = None
    q99: np.ndarray | None = None
    mask: np.ndarray | None = None  # OpenVLA: dimensions that are normalised (False: gripper)
    min: np.ndarray | None = None
    max: np.ndarray | None = None
    q10: np.ndarray | None = None
    q90: np.ndarray | None = None
    eps: float = LEROBOT_EPS  # LeRobot's modes (its normaliser's eps)

    KEYS = ("mean", "std", "q01", "q99", "mask", "min", "max", "q10", "q90")

    @classmethod
    def from_dict(cls, d: dict, eps: float = LEROBOT_EPS) -> Stats:
        def arr(k):
            return None if d.get(k) is None else np.asarray(d[k], dtype=np.float64).reshape(-1)

        mask = None if d.get("mask") is None else np.asarray(d["mask"], dtype=bool)
        return cls(arr("mean"), arr("std"), arr("q01"), arr("q99"), mask, arr("min"), arr("max"), arr("q10"),
                   arr("q90"), eps)

    def to_dict(self) -> dict:
        return {k: getattr(self, k).tolist() for k in self.KEYS if getattr(self, k) is not None}

    def _need(self, *names: str) -> list[np.ndarray]:
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"normalisation statistics lack {missing}")
        return [getattr(self, n) for n in names]

    def _fit(self, x: np.ndarray, stat: np.ndarray) -> np.ndarray:
        """Statistics cover the first len(stat) dims; extra dims (padding) pass through."""
        if x.shape[-1] < stat.shape[0]:
            raise ValueError(f"value has {x.shape[-1]} dims, statistics have {stat.shape[0]}")
        return stat

    def normalize(self, x: np.ndarray, mode: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = x.copy()
        n = None
        if mode == "identity":
            return out
        if mode == "zscore":
            mean, std = self._need("mean", "std")
            n = self._fit(x, mean).shape[0]
            out[..., :n] = (x[..., :n] - mean) / (std + EPS)
        elif mode == "quantile":
            q01, q99 = self._need("q01", "q99")
            n = self._fit(x, q01).shape[0]
            out[..., :n] = (x[..., :n] - q01) / (q99 - q01 + EPS) * 2.0 - 1.0
        elif mode == "mean_std":
            mean, std = self._need("mean", "std")
            n = self._fit(x, mean).shape[0]
            out[..., :n] = (x[..., :n] - mean) / (std + self.eps)
        elif mode in _BOUNDS:
            lo, hi = self._need(*_BOUNDS[mode])
            n = self._fit(x, lo).shape[0]
            out[..., :n] = 2.0 * (x[..., :n] - lo) / self._span(lo, hi) - 1.0
        else:
            raise ValueError(f"normalisation mode must be one of {MODES}, not {mode!r}")
        return out

    def _span(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        span = hi - lo
        return np.where(span == 0, self.eps, span)

    def unnormalize(self, x: np.ndarray, mode: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = x.copy()
        if mode == "identity":
            return out
        if mode == "zscore":
            mean, std = self._need("mean", "std")
            n = self._fit(x, mean).shape[0]
            out[..., :n] = x[..., :n] * (std + EPS) + mean
        elif mode == "quantile":
            q01, q99 = self._need("q01", "q99")
            n = self._fit(x, q01).shape[0]
            out[..., :n] = (x[..., :n] + 1.0) / 2.0 * (q99 - q01 + EPS) + q01
        elif mode == "mean_std":
            mean, std = self._need("mean", "std")
            n = self._fit(x, mean).shape[0]
            out[..., :n] = x[..., :n] * std + mean
        elif mode in _BOUNDS:
            lo, hi = self._need(*_BOUNDS[mode])
            n = self._fit(x, lo).shape[0]
            out[..., :n] = (x[..., :n] + 1.0) * self._span(lo, hi) / 2.0 + lo
        else:
            raise ValueError(f"normalisation mode must be one of {MODES}, not {mode!r}")
        return out

    def unnormalize_bounds(self, x: np.ndarray) -> np.ndarray:
        """OpenVLA: 0.5 (x + 1)(q99 - q01) + q01 where ``mask`` (default all), x elsewhere."""
        q01, q99 = self._need("q01", "q99")
        x = np.asarray(x, dtype=np.float64)
        mask = np.ones_like(q01, dtype=bool) if self.mask is None else self.mask
        return np.where(mask, 0.5 * (x + 1.0) * (q99 - q01) + q01, x)


def _lerobot_part(config: dict, stats: dict, kind: str, key: str, where) -> tuple[str, Stats]:
    """The mode and statistics LeRobot's normaliser ``config`` applies to feature ``key`` of type ``kind``."""
    mode = LEROBOT_MODES.get(str(config.get("norm_map", {}).get(kind, "IDENTITY")))
    if mode is None:
        raise ValueError(f"{where}: unknown LeRobot normalisation mode {config['norm_map'][kind]!r}")
    if mode != "identity" and key not in stats:
        raise ValueError(f"{where}: the {kind} normaliser has no statistics for {key!r} ({sorted(stats)})")
    return mode, Stats.from_dict(stats.get(key, {}), float(config.get("eps", LEROBOT_EPS)))


@dataclass
class NormStats:
    """Statistics of ``state`` and ``actions`` and the mode that applies them."""

    mode: str
    state: Stats
    actions: Stats
    action_mode: str = ""  # the actions' mode where it differs from the state's (LeRobot maps them apart)

    FILE = "norm_stats.json"

    def __post_init__(self) -> None:
        self.action_mode = self.action_mode or self.mode
        for mode in (self.mode, self.action_mode):
            if mode not in MODES:
                raise ValueError(f"normalisation mode must be one of {MODES}, not {mode!r}")

    def normalize_state(self, x: np.ndarray) -> np.ndarray:
        return self.state.normalize(x, self.mode)

    def normalize_actions(self, x: np.ndarray) -> np.ndarray:
        return self.actions.normalize(x, self.action_mode)

    def unnormalize_actions(self, x: np.ndarray) -> np.ndarray:
        return self.actions.unnormalize(x, self.action_mode)

    @classmethod
    def from_lerobot(cls, folder: str | Path) -> NormStats:
        """LeRobot's (>= 0.4) normaliser: the ``normalizer_processor`` step of policy_preprocessor.json for the
        state, the ``unnormalizer_processor`` step of policy_postprocessor.json for the actions, each with its
        safetensors, modes from its ``norm_map``. ValueError naming what is missing."""
        from safetensors.numpy import load_file

        folder = Path(folder)

        def step(file: str, registry: str) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
            path = folder / file
            try:
                pipeline = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ValueError(f"cannot read {path}: {exc}") from None
            found = [s for s in pipeline.get("steps", []) if s.get("registry_name") == registry]
            if not found or not found[0].get("state_file"):
                raise ValueError(f"{path} has no {registry} step with statistics")
            tensors = load_file(folder / found[0]["state_file"])
            stats: dict[str, dict[str, np.ndarray]] = {}
            for flat, value in tensors.items():
                key, stat = flat.rsplit(".", 1)
                stats.setdefault(key, {})[stat] = value
            return found[0].get("config", {}), stats

        pre_cfg, pre_stats = step("policy_preprocessor.json", "normalizer_processor")
        post_cfg, post_stats = step("policy_postprocessor.json", "unnormalizer_processor")
        state_mode, state = _lerobot_part(pre_cfg, pre_stats, "STATE", "observation.state", folder)
        action_mode, actions = _lerobot_part(post_cfg, post_stats, "ACTION", "action", folder)
        return cls(state_mode, state, actions, action_mode)

    @classmethod
    def from_lerobot_buffers(cls, stats: dict[str, dict[str, np.ndarray]], norm_map: dict,
                             where: str = "") -> NormStats:
        """LeRobot before 0.4: statistics as buffers inside model.safetensors (``normalize_inputs.buffer_
        observation_state.mean``, ``unnormalize_outputs.buffer_action.std``, ...; ``stats`` by feature), modes
        from config.json's ``normalization_mapping``, the same formulas and eps as 0.4's normaliser steps."""
        config = {"norm_map": norm_map, "eps": LEROBOT_EPS}
        state_mode, state = _lerobot_part(config, stats, "STATE", "observation.state", where)
        action_mode, actions = _lerobot_part(config, stats, "ACTION", "action", where)
        return cls(state_mode, state, actions, action_mode)

    @classmethod
    def load(cls, folder: str | Path) -> NormStats:
        """This package's file, or openpi's (the same statistics nested under ``norm_stats``, no mode:
        z-score unless the caller says quantile). Raises ValueError naming the file when it is unusable."""
        path = Path(folder) / cls.FILE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read normalisation statistics {path}: {exc}") from None
        data = data.get("norm_stats", data) if isinstance(data, dict) else data
        parts = {}
        for key in ("state", "actions"):
            part = data.get(key) if isinstance(data, dict) else None
            has = sorted(part) if isinstance(part, dict) else []
            if not ({"mean", "std"} <= set(has) or {"q01", "q99"} <= set(has)):
                found = sorted(data) if isinstance(data, dict) else type(data).__name__
                raise ValueError(f"{path}: no usable '{key}' statistics (mean+std or q01+q99; found {found}"
                                 f"{f', {key}: {has}' if has else ''})")
            parts[key] = Stats.from_dict(part)
        return cls(data.get("mode", "zscore"), parts["state"], parts["actions"], data.get("action_mode", ""))

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / self.FILE
        path.write_text(json.dumps({"mode": self.mode, "state": self.state.to_dict(),
                                    "actions": self.actions.to_dict(),
                                    **({"action_mode": self.action_mode} if self.action_mode != self.mode else {})},
                                   indent=1))
        return path
