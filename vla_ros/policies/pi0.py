"""pi0 on transformers' native ``PI0ForConditionalGeneration``.

Loads a local directory or hub id with ``from_pretrained``; several cameras (in ``camera_keys``
order); state normalised (z-score for pi0, quantile for pi0.5-style checkpoints; statistics in
``norm_stats.json`` beside the weights, or the PI0Processor's ``state_mean``/``actions_std``) and
zero-padded to ``max_state_dim``; flow matching with ``num_steps`` Euler steps from a KV-cached prefix;
actions un-normalised and turned into absolute targets by the robot preset's action space. With the
previous chunk available, sampling is guided towards its still-to-run actions (RTC inpainting).

On CUDA (``pi0.compile``: auto) inference runs the static-shape fast path of :mod:`.pi0_static`: the
prefix and every denoising step replay as CUDA graphs captured at load, so the first chunk the robot
waits for costs what every later one does.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..core.action_space import from_preset
from ..core.aloha import GRIPPERS, OpenpiAloha
from ..core.image import resize_with_pad
from ..core.instructions import clean_prompt
from ..core.normalize import NormStats, Stats
from ..core.observation import Observation
from ..params import ParamSpec
from .base import PolicyContext, PolicyError
from .flow_policy import FlowPolicy
from .lerobot_format import (
    BUFFER_PREFIXES,
    CheckpointFormatError,
    is_lerobot,
    norm_stats,
    pi0_pixels,
    read_config,
    split_buffers,
)
from .openpi_format import as_lerobot_sizes, assets_folder, pi0_overrides, read_openpi
from .paligemma_sizes import pi0_config
from .torch_utils import TorchPolicy, load_checked

log = logging.getLogger(__name__)


def load_norm_stats(folder: str, mode: str, lerobot=None) -> NormStats:
    """``norm_stats.json`` beside the weights (ours, openpi's), else LeRobot's normaliser files
    (policy_preprocessor.json / policy_postprocessor.json) or, for a LeRobot < 0.4 checkpoint (``lerobot``: its
    config), the statistics buffers in its weights, else a PI0Processor config's mean/std (z-score)."""
    path = Path(folder)
    if (path / NormStats.FILE).exists():
        stats = NormStats.load(path)
        return stats if mode == "auto" else NormStats(mode, stats.state, stats.actions)
    buffers = _weight_buffers(path) if lerobot is not None else {}
    if (path / "policy_preprocessor.json").exists() or buffers:
        try:
            stats = norm_stats(path, buffers, lerobot.get("normalization_mapping", {}) if lerobot else {})
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
        return stats if mode == "auto" else NormStats(mode, stats.state, stats.actions)
    proc = path / "processor_config.json"
    if proc.exists():
        cfg = json.loads(proc.read_text())
        if cfg.get("state_mean") is not None:
            return NormStats("zscore" if mode == "auto" else mode,
                             Stats(mean=cfg["state_mean"], std=cfg["state_std"]),
                             Stats(mean=cfg["actions_mean"], std=cfg["actions_std"]))
    if mode == "identity":
        return NormStats("identity", Stats(), Stats())
    raise PolicyError(f"no normalisation statistics in {folder} ({NormStats.FILE}, LeRobot's policy_preprocessor."
                      "json or the statistics buffers of LeRobot < 0.4 in its weights, or processor_config.json); "
                      "set pi0.norm_mode: identity only if the checkpoint was trained on raw values")


def float64_time(model) -> None:
    """Embed the flow time in float64 as openpi and LeRobot do (transformers' PI0 does it in float32: angles up to
    2 pi / min_period, so ~1e-4 on a chunk)."""
    from transformers.models.pi0.modeling_pi0 import PI0TimestepEmbeddings

    from .smolvla_model import sincos

    for module in model.modules():
        if isinstance(module, PI0TimestepEmbeddings):
            c = module.config
            module.forward = (lambda time, w=c.dit_config.hidden_size, lo=c.min_period, hi=c.max_period:
                              sincos(time, w, lo, hi).float())


def _weight_buffers(path: Path) -> dict[str, dict]:
    """LeRobot < 0.4's statistics buffers in the checkpoint's safetensors (none: {})."""
    from safetensors import safe_open

    stats: dict[str, dict] = {}
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            found = {k: f.get_tensor(k) for k in f.keys() if k.startswith(BUFFER_PREFIXES)}
        stats.update(split_buffers(found)[1])
    return stats


class Pi0Policy(FlowPolicy):
    name = "pi0"
    description = "pi0 (transformers PI0ForConditionalGeneration), flow matching, guided RTC"
    uses_images = True
    PARAMS = [
        *TorchPolicy.TORCH_PARAMS,
        ParamSpec("tokenizer_path", "", "Tokenizer directory or hub id (empty: the checkpoint's)"),
        ParamSpec("num_steps", 10, "Flow-matching integration steps", min=1, max=100),
        ParamSpec("conventions", "auto", "Image and prompt preprocessing: openpi (PIL bilinear, centred zero "
                  "padding, openpi's prompt cleaning) or LeRobot's (float bilinear without antialiasing, centred "
                  "padding -3 in 0.4 / -1 in 0.5, the task as given); auto: LeRobot 0.4's for LeRobot checkpoints, "
                  "openpi's for others", choices=("auto", "openpi", "lerobot_0.4", "lerobot_0.5")),
        ParamSpec("asset_id", "", "openpi checkpoints: the assets/<asset_id>/norm_stats.json to use (empty: the "
                  "only one)"),
        ParamSpec("norm_mode", "auto", "State/action normalisation (auto: from norm_stats.json or LeRobot's "
                  "policy_preprocessor/postprocessor files)", choices=("auto", "zscore", "quantile", "identity")),
        ParamSpec("camera_keys", [], "Image keys in the model's camera order (empty: the node's image_keys)",
                  type="string_array"),
        *FlowPolicy.FLOW_PARAMS,
        ParamSpec("compile", "auto", "Static-shape fast path (prefix cache in fixed buffers, CUDA graphs captured "
                  "at load); auto: on with CUDA", choices=("auto", "on", "off")),
        ParamSpec("transforms", "preset", "How state and actions meet the model: the preset's action space, or "
                  "openpi's ALOHA data transforms (adapt_to_pi, joints as deltas or absolute; cameras cam_high and "
                  "the wrists) for openpi-trained ALOHA checkpoints",
                  choices=("preset", "openpi_aloha", "openpi_aloha_absolute")),
        ParamSpec("max_token_len", 48, "Prompt tokens kept (<bos>, cleaned instruction, newline), cut beyond as "
                  "openpi's tokenizer does: pi0 48, pi05 200 (0: never cut)", min=0, max=4096),
        ParamSpec("max_prompt_tokens", 48, "Fast path: prompt tokens the captured graphs hold (longer instructions "
                  "run the eager path)", min=4, max=1024),
    ]

    def __init__(self, context: PolicyContext):
        super().__init__(context)
        from transformers import AutoTokenizer, PI0ForConditionalGeneration

        o = self.options
        path = self.model_path
        lerobot = self._lerobot_config(path)
        try:
            openpi = read_openpi(path)
        except CheckpointFormatError as exc:
            raise PolicyError(str(exc)) from None
        sizes = pi0_overrides(openpi) if openpi else {}
        if openpi and not ("vlm_config" in openpi and "dit_config" in openpi):  # sizes by Gemma variant
            try:
                sizes = {"config": pi0_config(as_lerobot_sizes(openpi))}
            except ValueError as exc:
                raise PolicyError(f"{path}: {exc}") from None
        if lerobot:  # LeRobot's config.json names Gemma variants: transformers' PI0Config gets their sizes
            try:
                sizes = {"config": pi0_config(lerobot.raw)}
            except ValueError as exc:
                raise PolicyError(f"{path}: {exc}") from None
        self.model = load_checked(PI0ForConditionalGeneration, path, BUFFER_PREFIXES if lerobot else (),
                                  dtype=self.dtype, **sizes).to(self.device).eval()
        self.model.requires_grad_(False)
        float64_time(self.model)
        cfg = self.model.config
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(o["tokenizer_path"] or path)
        except (OSError, ValueError) as exc:
            where = f"pi0.tokenizer_path {o['tokenizer_path']!r}" if o["tokenizer_path"] else f"{path}"
            raise PolicyError(f"no tokenizer in {where} ({type(exc).__name__}): LeRobot checkpoints ship none; set "
                              "pi0.tokenizer_path to a local copy of PaliGemma's tokenizer "
                              "(google/paligemma-3b-pt-224)") from None
        try:
            stats_dir = assets_folder(path, o["asset_id"]) if openpi else path
        except CheckpointFormatError as exc:
            raise PolicyError(str(exc)) from None
        self.stats = load_norm_stats(str(stats_dir), o["norm_mode"], lerobot)
        self.conventions = o["conventions"] if o["conventions"] != "auto" else (
            "lerobot_0.4" if lerobot else "openpi")
        if lerobot and lerobot.empty_cameras:
            log.info("pi0: the checkpoint's %d empty camera(s) are masked in LeRobot (no position, never attended): "
                     "leaving them out gives the same chunk", lerobot.empty_cameras)
        self.aloha = self._aloha_transforms(context, o["transforms"])
        self.cameras = list(o["camera_keys"]) or (self._aloha_cameras(context) if self.aloha else
                                                  lerobot.node_cameras(context.image_keys) if lerobot else
                                                  list(context.image_keys))
        if not self.cameras:
            raise PolicyError("pi0 needs at least one camera (image_keys / pi0.camera_keys)")
        unknown = [k for k in self.cameras if k not in context.image_keys]
        if unknown:
            source = "pi0.camera_keys" if o["camera_keys"] else "the checkpoint's cameras (LeRobot input_features)"
            raise PolicyError(f"{source} {unknown} are not among the node's image_keys {context.image_keys}: map "
                              "the model's cameras to image keys with pi0.camera_keys")
        vision = cfg.vlm_config.vision_config
        self.image_size = int(vision.image_size)
        self.tokens_per_image = (self.image_size // int(vision.patch_size)) ** 2
        self.image_token_id = int(cfg.vlm_config.image_token_id)
        self.chunk_size, self.max_state_dim = int(cfg.chunk_size), int(cfg.max_state_dim)
        self.max_action_dim = int(cfg.max_action_dim)
        if context.horizon > self.chunk_size:
            raise PolicyError(f"horizon {context.horizon} exceeds the model's chunk_size {self.chunk_size}")
        self.action_space = from_preset(context.robot, context.chunk_dt, None, context.action_joints,
                                        context.state_joints)
        self.action_width = self.action_space.model_width
        if len(context.state_joints) > self.max_state_dim or self.action_width > self.max_action_dim:
            raise PolicyError("state or action dimension exceeds the model's max_state_dim/max_action_dim")
        self._prompt: tuple[str, list[int], object] | None = None
        self.timing: dict[str, float | bool | str] = {"fast_path": False}
        self.fast_fallbacks = 0
        self.prompt_truncations = 0  # distinct instructions cut to max_token_len
        self._first_chunk = True
        self.fast = self._build_fast() if self._fast_wanted() else None

    @staticmethod
    def _lerobot_config(path: str):
        """A LeRobot checkpoint's config (None for others), refused unless it is a pi0: a pi0.5, SmolVLA or
        pi0-FAST checkpoint would load its matching weights and leave the rest random."""
        if not is_lerobot(path):
            return None
        try:
            return read_config(path, "pi0")
        except CheckpointFormatError as exc:
            raise PolicyError(str(exc)) from None

    @staticmethod
    def _aloha_transforms(context: PolicyContext, name: str) -> OpenpiAloha | None:
        if name == "preset":
            return None
        robot = context.robot
        if len(context.state_joints) != 14 or context.action_joints != context.state_joints or \
                [context.state_joints.index(g.joint) for g in robot.grippers] != list(GRIPPERS):
            raise PolicyError(f"pi0.transforms {name} needs the 14 ALOHA joints in openpi's order "
                              "[L 6, L gripper, R 6, R gripper] as state and action joints")
        limits = robot.limits_for([robot.grippers[0].joint])
        return OpenpiAloha((float(limits.lower[0]), float(limits.upper[0])), delta=name == "openpi_aloha")

    @staticmethod
    def _aloha_cameras(context: PolicyContext) -> list[str]:
        """openpi feeds cam_high and the two wrist cameras (cam_low is not an input of its ALOHA models)."""
        names = context.robot.openpi.cameras
        keys = [names.get(c, c) for c in ("cam_high", "cam_left_wrist", "cam_right_wrist")]
        return [k for k in keys if k in context.image_keys]

    def _fast_wanted(self) -> bool:
        mode = self.options["compile"]
        return mode == "on" or (mode == "auto" and self.device == "cuda")

    def _build_fast(self):
        """Static buffers, warm-up and graph capture at load (not on the first chunk the robot waits for)."""
        from .pi0_static import Pi0Static, StaticShape

        shape = StaticShape(len(self.cameras), int(self.options["max_prompt_tokens"]), int(self.options["num_steps"]))
        fast = Pi0Static(self.model, shape, float(self.options["rtc_beta"]), openpi_times=self.conventions == "openpi")
        torch = self.torch
        fast.load(torch.zeros_like(fast.pixels), self._text_ids(""), torch.zeros_like(fast.state), self._noise())
        return self.start_fast(fast, bool(self.options["rtc_guidance"]))

    # -- pre-processing ----------------------------------------------------------------------
    def _text_ids(self, instruction: str) -> list[int]:
        """<bos> + the cleaned instruction + newline, cut to ``max_token_len`` (openpi's PaligemmaTokenizer)."""
        tok = self.tokenizer
        text = instruction.rstrip("\n") if self.conventions.startswith("lerobot") else clean_prompt(instruction)
        ids = list(tok(f"{tok.bos_token or ''}{text}\n", add_special_tokens=False)["input_ids"])
        limit = int(self.options["max_token_len"])
        if limit and len(ids) > limit:
            self.prompt_truncations += 1
            if self.prompt_truncations == 1:
                log.warning("pi0: the instruction has %d tokens, more than pi0.max_token_len=%d: cut as openpi does",
                            len(ids), limit)
            ids = ids[:limit]
        return ids

    def _prompt_ids(self, instruction: str):
        """Image tokens for every camera, then <bos> instruction \\n (cached per instruction)."""
        if self._prompt is None or self._prompt[0] != instruction:
            text = self._text_ids(instruction)
            ids = [self.image_token_id] * (self.tokens_per_image * len(self.cameras)) + text
            self._prompt = (instruction, text, self.torch.tensor([ids], device=self.device))
        return self._prompt[2]

    def preprocess(self, observation: Observation) -> dict:
        torch = self.torch
        missing = [k for k in self.cameras if k not in observation.images]
        if missing:
            raise PolicyError(f"observation lacks camera(s) {missing}")
        frames = []
        for key in self.cameras:
            img = observation.images[key]
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise PolicyError(f"camera {key!r}: expected HxWx3 uint8, got {img.shape} {img.dtype}")
            if self.conventions == "openpi":
                img = resize_with_pad(img, self.image_size, self.image_size, truncate=True)
                frames.append(torch.from_numpy(img).permute(2, 0, 1).float() / 127.5 - 1.0)  # SigLIP: [-1, 1]
            else:
                frame = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0
                frames.append(pi0_pixels(frame, self.image_size, self.image_size, self.conventions[-3:])[0])
        pixels = torch.stack(frames).to(self.device, self.dtype)[None]
        state = np.asarray(observation.state, dtype=np.float64)
        if state.shape != (len(self.context.state_joints),) or not np.all(np.isfinite(state)):
            raise PolicyError(f"state must be {len(self.context.state_joints)} finite values, got {state}")
        padded = np.zeros(self.max_state_dim)
        model_state = self.aloha.state(state) if self.aloha else state
        padded[: state.size] = self.stats.normalize_state(model_state)
        ids = self._prompt_ids(observation.instruction)
        return {
            "state": torch.tensor(padded[None], dtype=self.dtype, device=self.device),
            "text_ids": self._prompt[1],
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "pixel_values": pixels,
            "pixel_attention_mask": torch.ones(1, len(self.cameras), dtype=torch.bool, device=self.device),
        }

    # -- sampling ----------------------------------------------------------------------------
    def sample(self, inputs: dict, prefix: tuple | None = None, noise=None):
        """Normalised actions (1, chunk_size, max_action_dim), optionally RTC-guided (fast path where built)."""
        noise = self._noise() if noise is None else noise
        if self.fast is not None:
            if self.fast.fits(inputs["text_ids"]):
                target, weights = prefix if prefix is not None else (None, None)
                self.fast.load(inputs["pixel_values"], inputs["text_ids"], inputs["state"], noise, target, weights)
                return self.fast.sample(guided=prefix is not None).clone()
            self.fast_fallbacks += 1
            if self.fast_fallbacks == 1:
                log.warning("pi0: a prompt of %d tokens exceeds pi0.max_prompt_tokens=%d; such prompts run the "
                            "eager path", len(inputs["text_ids"]), self.fast.shape.prompt_tokens)
        return self.sample_eager(inputs, prefix, noise)

    def sample_eager(self, inputs: dict, prefix: tuple | None = None, noise=None):
        """transformers' modules with a dynamic KV cache cropped after every step (the reference path)."""
        from .rtc_guidance import guided_sample, model_times

        torch, model = self.torch, self.model
        steps = int(self.options["num_steps"])
        times = model_times(steps, self.conventions == "openpi")
        with torch.no_grad():
            embeds = model.model.embed_prefix(inputs["input_ids"], inputs["pixel_values"],
                                              inputs["pixel_attention_mask"])
            mask = inputs["attention_mask"]
            cache = model.model.vlm(inputs_embeds=embeds, attention_mask=mask, position_ids=mask.cumsum(-1) - 1,
                                    token_type_ids=torch.zeros_like(embeds)[:, :, 0], use_cache=True).past_key_values
        prefix_length = cache.get_seq_length()

        def velocity(x, t: float):  # ours: t = 0 noise -> 1 data; pi0: tau = 1 noise -> 0 data, u = noise - data
            tau = torch.full((x.shape[0],), times[round(t * steps)], dtype=torch.float32, device=self.device)
            out = model(state=inputs["state"], noise=x, timestep=tau, attention_mask=mask,
                        pixel_attention_mask=inputs["pixel_attention_mask"], past_key_values=cache)
            cache.crop(prefix_length - cache.get_seq_length())
            return -out.logits

        target = weights = None
        if prefix is not None:
            target, weights = prefix
        noise = self._noise() if noise is None else noise
        return guided_sample(velocity, noise, steps, target, weights,
                             float(self.options["rtc_beta"]))

    def diagnostics(self) -> dict:
        return {**{f"pi0_{k}": v for k, v in self.timing.items()}, "pi0_static_fallbacks": self.fast_fallbacks,
                "pi0_prompt_truncations": self.prompt_truncations}
