"""Normalisation of states and actions with dataset statistics stored beside model weights.

* ``zscore`` (pi0): (x - mean) / (std + eps)
* ``quantile`` (pi0-FAST, pi0.5): (x - q01) / (q99 - q01 + eps) * 2 - 1
* OpenVLA un-normalisation: where(mask, 0.5 (x + 1)(q99 - q01) + q01, x)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EPS = 1e-6
MODES = ("zscore", "quantile", "identity")


@dataclass
class Stats:
    """Per-dimension statistics of one feature (any subset may be present)."""

    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    q01: np.ndarray | None = None
    q99: np.ndarray | None = None
    mask: np.ndarray | None = None  # OpenVLA: dimensions that are normalised (False: gripper)

    @classmethod
    def from_dict(cls, d: dict) -> Stats:
        def arr(k):
            return None if d.get(k) is None else np.asarray(d[k], dtype=np.float64)

        mask = None if d.get("mask") is None else np.asarray(d["mask"], dtype=bool)
        return cls(arr("mean"), arr("std"), arr("q01"), arr("q99"), mask)

    def to_dict(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("mean", "std", "q01", "q99", "mask")
                if getattr(self, k) is not None}

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
        else:
            raise ValueError(f"normalisation mode must be one of {MODES}, not {mode!r}")
        return out

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
        else:
            raise ValueError(f"normalisation mode must be one of {MODES}, not {mode!r}")
        return out

    def unnormalize_bounds(self, x: np.ndarray) -> np.ndarray:
        """OpenVLA: 0.5 (x + 1)(q99 - q01) + q01 where ``mask`` (default all), x elsewhere."""
        q01, q99 = self._need("q01", "q99")
        x = np.asarray(x, dtype=np.float64)
        mask = np.ones_like(q01, dtype=bool) if self.mask is None else self.mask
        return np.where(mask, 0.5 * (x + 1.0) * (q99 - q01) + q01, x)


@dataclass
class NormStats:
    """Statistics of ``state`` and ``actions`` and the mode that applies them."""

    mode: str
    state: Stats
    actions: Stats

    FILE = "norm_stats.json"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"normalisation mode must be one of {MODES}, not {self.mode!r}")

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
        return cls(data.get("mode", "zscore"), parts["state"], parts["actions"])

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / self.FILE
        path.write_text(json.dumps({"mode": self.mode, "state": self.state.to_dict(),
                                    "actions": self.actions.to_dict()}, indent=1))
        return path
