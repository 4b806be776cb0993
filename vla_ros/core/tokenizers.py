"""Action tokenisers that live outside any model: RT-2/OpenVLA uniform bins."""

from __future__ import annotations

import numpy as np


class BinTokenizer:
    """Uniform bins over [low, high] mapped to the last ``n_bins`` ids of a ``vocab_size`` vocabulary.

    As in OpenVLA: ``bins = linspace(-1, 1, n_bins)``, ``centers`` their midpoints (n_bins - 1 values);
    an action becomes ``vocab_size - digitize(a, bins)``; token t decodes to
    ``centers[clip(vocab_size - t - 1, 0, n_bins - 2)]``.
    """

    def __init__(self, vocab_size: int = 32000, n_bins: int = 256, low: float = -1.0, high: float = 1.0):
        self.vocab_size, self.n_bins = vocab_size, n_bins
        self.bins = np.linspace(low, high, n_bins)
        self.centers = (self.bins[:-1] + self.bins[1:]) / 2.0
        self.low, self.high = low, high

    @property
    def first_token(self) -> int:
        """Smallest id an action can decode from without clipping."""
        return self.vocab_size - (self.n_bins - 1)

    def encode(self, actions: np.ndarray) -> np.ndarray:
        clipped = np.clip(np.asarray(actions, dtype=np.float64), self.low, self.high)
        return self.vocab_size - np.digitize(clipped, self.bins)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        index = np.clip(self.vocab_size - np.asarray(tokens, dtype=np.int64) - 1, 0, self.centers.shape[0] - 1)
        return self.centers[index]
