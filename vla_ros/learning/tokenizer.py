"""A word-level instruction tokenizer that needs no hub: lower-cased words, a vocabulary in one JSON file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """'Pick up the RED cube!' -> ['pick', 'up', 'the', 'red', 'cube']."""
    return _WORD.findall(text.lower())


class WordTokenizer:
    """Ids for words (0 = padding, 1 = unknown); fixed-length id rows for a batch."""

    FILE = "tokenizer.json"

    def __init__(self, vocab: list[str], max_length: int = 12):
        if vocab[:2] != [PAD, UNK]:
            raise ValueError(f"the vocabulary must start with {PAD!r}, {UNK!r}")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_length = max_length

    @classmethod
    def build(cls, texts: Iterable[str], max_length: int = 12) -> WordTokenizer:
        seen = sorted({w for t in texts for w in words(t)})
        return cls([PAD, UNK, *seen], max_length)

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """Word ids, truncated to ``max_length``: a word the vocabulary lacks is replaced by its synonym there
        (``SYNONYMS``: "grasp" -> "grab", "one" -> "cube") or left out (filler and polite words: the model never
        saw them). A colour the vocabulary lacks stays the unknown id 1: "the purple cube" must not read as
        "the cube"; so does a text with no known word at all."""
        from ..core.instructions import COLOURS, SYNONYMS

        ids = [self.index.get(w, self.index.get(SYNONYMS.get(w, ""), 1 if w in COLOURS else 0)) for w in words(text)]
        return [i for i in ids if i > 0][: self.max_length] or [1]

    def ignored(self, text: str) -> list[str]:
        """The words of ``text`` that ``encode`` leaves out."""
        from ..core.instructions import COLOURS, SYNONYMS

        return [w for w in words(text) if w not in self.index and SYNONYMS.get(w) not in self.index
                and w not in COLOURS]

    def batch(self, texts: Iterable[str]):
        """(B, max_length) int64 tensor, zero-padded."""
        import torch

        rows = [self.encode(t) for t in texts]
        out = torch.zeros(len(rows), self.max_length, dtype=torch.long)
        for i, ids in enumerate(rows):
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def save(self, folder: str | Path) -> None:
        (Path(folder) / self.FILE).write_text(json.dumps({"vocab": self.vocab, "max_length": self.max_length}))

    @classmethod
    def load(cls, folder: str | Path) -> WordTokenizer:
        data = json.loads((Path(folder) / cls.FILE).read_text())
        return cls(data["vocab"], int(data["max_length"]))
