"""FAST action tokens (Pertsch et al. 2025) back to an action chunk, as LeRobot 0.4's pi0-FAST decodes them.

The model writes ``Action: <tokens>|`` in PaliGemma's vocabulary. LeRobot cuts the token strings at the first
``|``, removes every ``Action: `` token sequence, maps each remaining PaliGemma id ``p`` to the FAST id
``vocab_size - 1 - skip - p``, lets the FAST BPE tokenizer decode them to characters whose code points are the
quantised DCT coefficients minus ``min_token``, pads with zeros or cuts them to horizon x dim (``relaxed``
decoding), and inverts the orthonormal DCT over time of ``coefficients / scale``.

The FAST tokenizer folder is what ``physical-intelligence/fast`` (or ``UniversalActionProcessor.save_pretrained``)
holds: ``processor_config.json`` (scale, min_token) and the BPE tokenizer files. Its Python code is not run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class FastDecodeError(ValueError):
    """The tokens do not decode to an action chunk (where LeRobot would silently use zeros)."""


def idct_ortho(coefficients: np.ndarray) -> np.ndarray:
    """Inverse of the orthonormal DCT-II along axis 0 (scipy's ``idct(x, axis=0, norm="ortho")``)."""
    n = coefficients.shape[0]
    k = np.arange(n)
    basis = np.cos(np.pi * (2 * k[:, None] + 1) * k[None, :] / (2 * n)) * np.sqrt(2.0 / n)
    basis[:, 0] = np.sqrt(1.0 / n)
    return basis @ coefficients


@dataclass
class FastTokenizer:
    """The FAST tokenizer's decoding half (``bpe`` a transformers fast tokenizer)."""

    bpe: object
    scale: float
    min_token: int

    @classmethod
    def load(cls, folder: str | Path) -> FastTokenizer:
        from transformers import PreTrainedTokenizerFast

        folder = Path(folder)
        config_file = folder / "processor_config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{folder} has no processor_config.json (a FAST tokenizer folder holds it)")
        config = json.loads(config_file.read_text())
        if config.get("processor_class", "UniversalActionProcessor") != "UniversalActionProcessor":
            raise ValueError(f"{config_file}: processor_class {config.get('processor_class')!r} is not FAST's")
        bpe = PreTrainedTokenizerFast.from_pretrained(str(folder))
        return cls(bpe, float(config.get("scale", 10)), int(config.get("min_token", 0)))

    def decode(self, fast_ids: list[int], horizon: int, dim: int) -> tuple[np.ndarray, int]:
        """(horizon, dim) actions and the number of coefficients padded (> 0) or cut (< 0) to fit."""
        if not fast_ids:
            raise FastDecodeError("no action tokens before the end marker")
        size = len(self.bpe)
        bad = [i for i in fast_ids if i < 0 or i >= size]
        if bad:
            raise FastDecodeError(f"{len(bad)} token(s) outside the FAST vocabulary of {size}: {bad[:5]}")
        text = self.bpe.decode(fast_ids)
        coefficients = np.array([ord(c) for c in text], dtype=np.int64) + self.min_token
        diff = horizon * dim - coefficients.size
        if diff < 0:
            coefficients = coefficients[: horizon * dim]
        elif diff > 0:
            coefficients = np.pad(coefficients, (0, diff))
        return idct_ortho(coefficients.reshape(horizon, dim) / self.scale), diff


def action_ids(token_strings: list[str], prefix: list[str]) -> list[str]:
    """LeRobot's cleaning of the decoded token strings: cut at the first ``|``, every ``prefix`` run removed."""
    if "|" in token_strings:
        token_strings = token_strings[: token_strings.index("|")]
    out, i, n = list(token_strings), 0, len(prefix)
    while n and i <= len(out) - n:
        if out[i : i + n] == prefix:
            out = out[:i] + out[i + n :]
        else:
            i += 1
    return out
