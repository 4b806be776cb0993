"""Parity-fixture helpers (ROS-free): the tiny sizes LeRobot's pi0/pi0.5 fixtures were built with."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def paligemma_sizes_of(arch: dict):
    """The Gemma variants, SigLIP size and vocabulary of a parity fixture's ``architecture`` (cases.json) in place
    of the full sizes a LeRobot config.json names: the fixtures were built with them shrunk."""
    from vla_ros.policies import paligemma_sizes as sizes

    def gemma(d):
        return sizes.Gemma(d["width"], d["depth"], d["mlp_dim"], d["num_heads"], d["num_kv_heads"], d["head_dim"])

    v = arch["vision"]
    saved = (dict(sizes.GEMMA_VARIANTS), dict(sizes.VISION), sizes.VOCAB)
    sizes.GEMMA_VARIANTS.update(gemma_2b=gemma(arch["vlm"]), gemma_300m=gemma(arch["expert"]))
    sizes.VISION.update(hidden_size=v["hidden_size"], intermediate_size=v["intermediate_size"],
                        num_hidden_layers=v["num_hidden_layers"], num_attention_heads=v["num_attention_heads"],
                        patch_size=v["patch_size"])
    sizes.VOCAB = arch["vocab_size"]
    try:
        yield
    finally:
        sizes.GEMMA_VARIANTS.update(saved[0])
        sizes.VISION.update(saved[1])
        sizes.VOCAB = saved[2]
