"""pi0.5 from a LeRobot checkpoint (``policy:=pi05``), native on transformers' PaliGemma and Gemma modules.

Reads what LeRobot's ``PI05Policy.save_pretrained`` and its pipelines write: ``config.json`` (``type: pi05``,
Gemma variants, chunk size, steps, image resolution, cameras in ``input_features`` order), ``model.safetensors``
(every weight must fit) and the normaliser pipelines (quantiles by default, per checkpoint). The PaliGemma
tokenizer is not in the checkpoint: ``pi05.tokenizer_path``.

Inputs as LeRobot builds them: cameras letterboxed to ``image_resolution`` as its pi0 does; the normalised state
(LeRobot 0.4: padded to ``max_state_dim`` first, 0.5: as is) discretised into 256 bins in the prompt
``Task: <task>, State: <bins>;\\nAction: `` (task stripped, underscores and newlines to spaces), tokenised with
BOS and cut at ``tokenizer_max_length``. Sampling is guided towards the previous chunk's remaining actions
(RTC) as for pi0.

openpi checkpoints converted to PyTorch (``examples/convert_jax_model_to_pytorch.py``: ``model.safetensors`` with
the same names minus LeRobot's ``model.`` prefix, a ``config.json`` of ``action_horizon``/``action_dim``/variants,
``assets/<asset_id>/norm_stats.json``) load too, with openpi's conventions: quantile normalisation (eps 1e-6), the
state discretised unpadded, prompts cut at 200 tokens, PIL letterbox to 224 then [-1, 1], 10 steps; cameras in the
node's ``image_keys`` order (or ``pi05.camera_keys``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.action_space import from_preset
from ..core.normalize import NormStats
from ..core.observation import Observation
from ..params import ParamSpec
from . import paligemma_sizes
from .base import PolicyContext, PolicyError
from .flow_policy import FlowPolicy
from .lerobot_format import CheckpointFormatError, LeRobotConfig, norm_stats, read_config
from .openpi_format import as_lerobot_sizes, assets_folder, read_openpi, weight_names
from .paligemma_backend import PaliGemmaBackend
from .pi05_model import Pi05Model, Pi05Shape
from .smolvla import load_state
from .torch_utils import TorchPolicy

log = logging.getLogger(__name__)


def discretise(state: np.ndarray, width: int) -> str:
    """The normalised state as pi0.5's prompt writes it: padded with zeros to ``width`` (0: not padded), each
    value's bin among 256 over [-1, 1] (numpy's digitize, as openpi and LeRobot)."""
    padded = np.zeros(max(width, state.size))
    padded[: state.size] = state
    bins = np.digitize(padded, bins=np.linspace(-1, 1, 256 + 1)[:-1]) - 1
    return " ".join(str(int(b)) for b in bins)


def prompt(task: str, state: np.ndarray, width: int) -> str:
    cleaned = task.strip().replace("_", " ").replace("\n", " ")
    return f"Task: {cleaned}, State: {discretise(state, width)};\nAction: "


def shape_from(cfg: dict) -> Pi05Shape:
    """The network's sizes from a LeRobot pi05 config.json."""
    try:
        vlm, expert = paligemma_sizes.variants(cfg)
        size = paligemma_sizes.image_size(cfg)
    except ValueError as exc:
        raise CheckpointFormatError(str(exc)) from None
    shape = Pi05Shape(vlm, expert, image_size=size, vocab=paligemma_sizes.VOCAB,
                      vision=tuple(paligemma_sizes.VISION.items()))
    fields = ("chunk_size", "max_state_dim", "max_action_dim", "min_period", "max_period")
    return replace(shape, **{k: type(getattr(shape, k))(cfg[k]) for k in fields if cfg.get(k) is not None})


class Pi05Policy(PaliGemmaBackend):
    name = "pi05"
    description = "pi0.5 (LeRobot checkpoint) on transformers' PaliGemma/Gemma, adaRMS expert, guided RTC"
    uses_images = True
    PARAMS = [
        *TorchPolicy.TORCH_PARAMS,
        ParamSpec("tokenizer_path", "", "PaliGemma tokenizer folder (google/paligemma-3b-pt-224; LeRobot "
                  "checkpoints ship none)"),
        ParamSpec("lerobot_version", "0.4", "LeRobot generation that trained the checkpoint: 0.4 (state padded "
                  "to max_state_dim before it is written into the prompt, images padded with -3) or 0.5 (state "
                  "as is, padding -1)", choices=("0.4", "0.5")),
        ParamSpec("num_steps", 0, "Flow-matching integration steps (0: the checkpoint's num_inference_steps)",
                  min=0, max=100),
        ParamSpec("camera_keys", [], "Node image keys in the checkpoint's camera order (empty: the checkpoint's "
                  "camera names, observation.images.<name>, must be image keys; openpi checkpoints: image_keys)",
                  type="string_array"),
        ParamSpec("asset_id", "", "openpi checkpoints: the assets/<asset_id>/norm_stats.json to use (empty: the only "
                  "one)"),
        *FlowPolicy.FLOW_PARAMS,
        ParamSpec("compile", "auto", "Static-shape fast path (prompt padded, prefix cache in fixed buffers, CUDA "
                  "graphs captured at load); auto: on with CUDA", choices=("auto", "on", "off")),
        ParamSpec("max_prompt_tokens", 0, "Fast path: prompt tokens the captured graphs hold (0: the checkpoint's "
                  "tokenizer_max_length; longer prompts cannot occur)", min=0, max=1024),
    ]

    def __init__(self, context: PolicyContext):
        super().__init__(context)
        o = self.options
        path = Path(self.model_path)
        try:
            openpi = read_openpi(path)
            if openpi is not None:
                self._refuse_openpi_pi0(path)
                self.cfg = LeRobotConfig("pi05", [], 0, 0, 0, {**as_lerobot_sizes(openpi), "tokenizer_max_length": 200})
            else:
                self.cfg = read_config(path, "pi05")
            shape = shape_from(self.cfg.raw)
        except CheckpointFormatError as exc:
            raise PolicyError(str(exc)) from None
        self.openpi = openpi is not None
        if self.cfg.empty_cameras:  # LeRobot masks them: no position, never attended; leaving them out is the same
            log.info("pi05: the checkpoint's %d empty camera(s) left out (masked in LeRobot)", self.cfg.empty_cameras)
        self.tokenizer = self.load_tokenizer()
        self.shape = shape
        self.torch.manual_seed(0)  # construction draws random weights, all overwritten below
        with self.torch.device("cpu"):
            self.model = Pi05Model(shape)
        prefix = "model." if self.openpi else ""
        buffers = load_state(self.model, path, rename=lambda k: prefix + k.replace(".vision_tower.vision_model.",
                                                                                   ".vision_tower."), kind="pi0.5")
        self.model.to(self.device, self.dtype).eval().requires_grad_(False)
        try:
            if self.openpi:  # openpi's pi0.5 normalises with quantiles (use_quantile_norm: every type but pi0)
                stats = NormStats.load(assets_folder(path, o["asset_id"]))
                self.stats = NormStats("quantile", stats.state, stats.actions)
            else:
                self.stats = norm_stats(path, buffers, self.cfg.get("normalization_mapping") or {})
        except (ValueError, CheckpointFormatError) as exc:
            raise PolicyError(str(exc)) from None
        self.version = o["lerobot_version"]
        self.cameras = self.map_cameras(self.cfg)
        self.chunk_size, self.max_action_dim = shape.chunk_size, shape.max_action_dim
        self.num_steps = int(o["num_steps"] or self.cfg.get("num_inference_steps", 10))
        if context.horizon > self.chunk_size:
            raise PolicyError(f"horizon {context.horizon} exceeds the checkpoint's chunk_size {self.chunk_size}")
        self.action_space = from_preset(context.robot, context.chunk_dt, None, context.action_joints,
                                        context.state_joints)
        self.action_width = self.action_space.model_width
        self.check_widths(self.cfg, shape.max_action_dim if self.openpi else 0)
        self._first_chunk = True
        self.timing: dict[str, float | bool | str] = {"fast_path": False}
        self.prompt_truncations = 0
        mode = o["compile"]
        self.fast = self._build_fast() if mode == "on" or (mode == "auto" and self.device == "cuda") else None

    def _build_fast(self):
        from .pi05_static import Pi05Static

        tokens = int(self.options["max_prompt_tokens"] or self.cfg.get("tokenizer_max_length", 200))
        fast = Pi05Static(self.model, len(self.cameras), tokens, self.num_steps, float(self.options["rtc_beta"]),
                          openpi_times=self.openpi)
        ids = self.tokenizer("", return_tensors="pt")["input_ids"].to(self.device)
        fast.load(fast.pixels, ids, self._noise())
        return self.start_fast(fast, bool(self.options["rtc_guidance"]))

    @staticmethod
    def _refuse_openpi_pi0(path: Path) -> None:
        names = weight_names(path)
        if names and "time_mlp_in.weight" not in names:
            raise CheckpointFormatError(f"{path} is an openpi pi0 checkpoint (no time_mlp_in, a state_proj): run it "
                                        "with policy:=pi0")

    def preprocess(self, observation: Observation) -> dict:
        images, masks = self.camera_inputs(observation)
        normalised = self.normalised_state(observation)
        padded = self.version == "0.4" and not self.openpi  # openpi and LeRobot 0.5: the state as is
        text = prompt(observation.instruction, normalised, self.shape.max_state_dim if padded else 0)
        limit = int(self.cfg.get("tokenizer_max_length", 200))
        ids = self.tokenizer(text, max_length=limit, truncation=True, return_tensors="pt")
        if ids["input_ids"].shape[1] == limit:
            self.prompt_truncations += 1
        return {"images": images, "image_masks": masks, "tokens": ids["input_ids"].to(self.device),
                "token_mask": ids["attention_mask"].bool().to(self.device), "prompt": text}

    def sample(self, inputs: dict, prefix: tuple | None = None, noise=None):
        """Normalised actions (1, chunk_size, max_action_dim), optionally RTC-guided (fast path where built)."""
        if self.fast is not None and self.fast.fits(inputs["tokens"].shape[1]):
            noise = self._noise() if noise is None else noise
            target, weights = prefix if prefix is not None else (None, None)
            self.fast.load(inputs["images"], inputs["tokens"], noise, target, weights)
            return self.fast.sample(guided=prefix is not None).clone()
        with self.torch.no_grad():
            cache, prefix_pad = self.model.prefix(inputs["images"], inputs["image_masks"], inputs["tokens"],
                                                  inputs["token_mask"])
        return self.sample_cached(self.model, cache, prefix_pad, prefix, noise, self.num_steps, self.openpi)

    def diagnostics(self) -> dict:
        return {**{f"pi05_{k}": v for k, v in self.timing.items()}, "pi05_prompt_truncations": self.prompt_truncations}
