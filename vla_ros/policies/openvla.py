"""OpenVLA: a vision-language model that emits 7 action tokens, decoded with 256 uniform bins.

Loads ``AutoModelForVision2Seq`` (the class the checkpoint's ``auto_map`` names, with
``trust_remote_code``; transformers 5 calls the family ``AutoModelForImageTextToText``) and
``AutoProcessor``. Prompt ``In: What action should the robot take to {instruction.lower()}?\\nOut:``,
greedy generation of ``action_dim`` tokens, de-tokenisation from the vocabulary tail (vocab_size =
text vocab - padding; 256 bins, 255 centres), un-normalisation with the dataset's q01/q99 and mask
(gripper un-normalised), then the action space turns the end-effector delta into joint targets.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core.action_space import from_preset
from ..core.chunk import ActionChunk
from ..core.image import center_crop
from ..core.normalize import Stats
from ..core.observation import Observation
from ..core.tokenizers import BinTokenizer
from ..params import ParamSpec
from ..robots import ActionGripperSpec
from .base import PolicyContext, PolicyError
from .torch_utils import TorchPolicy, load_checked

EMPTY_TOKEN = 29871  # Llama-2 "▁": OpenVLA appends it to the prompt when missing


def prompt_for(instruction: str) -> str:
    return f"In: What action should the robot take to {instruction.lower()}?\nOut:"


def remote_compat(cls):
    """OpenVLA's remote code (written for transformers 4.40) under transformers 5, fixed on the class: its
    ``_supports_sdpa`` property reads ``self.language_model`` before ``__init__`` has made it (AttributeError at
    load), and its ``tie_weights()`` takes none of the arguments transformers 5 passes (TypeError). Both were
    the load errors of a tiny Prismatic checkpoint with OpenVLA's own code under transformers 5.23."""
    import inspect

    for klass in cls.__mro__:
        if isinstance(klass.__dict__.get("_supports_sdpa"), property):
            klass._supports_sdpa = True  # the Llama-2 backbone supports SDPA
        tie = klass.__dict__.get("tie_weights")
        if callable(tie) and not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(tie).parameters.values()):
            klass.tie_weights = (lambda original: lambda self, *args, **kwargs: original(self))(tie)
    return cls


def alias_tokenization_names() -> None:
    """OpenVLA's remote processor imports PaddingStrategy, PreTokenizedInput, TextInput and TruncationStrategy
    from ``transformers.tokenization_utils``, which no longer holds them in transformers 5 (ImportError)."""
    import transformers.tokenization_utils as old
    from transformers import tokenization_utils_base as base
    from transformers.utils import PaddingStrategy

    for name, value in (("PaddingStrategy", PaddingStrategy), ("PreTokenizedInput", base.PreTokenizedInput),
                        ("TextInput", base.TextInput), ("TruncationStrategy", base.TruncationStrategy)):
        if not hasattr(old, name):
            setattr(old, name, value)


def load_vision2seq(path: str, dtype):
    """The checkpoint's own Vision2Seq class (remote code) or transformers' image-text-to-text auto class."""
    import transformers
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=True)
    target = (getattr(config, "auto_map", None) or {}).get("AutoModelForVision2Seq")
    if target:
        from transformers.dynamic_module_utils import get_class_from_dynamic_module

        cls = remote_compat(get_class_from_dynamic_module(target, path))
        return load_checked(cls, path, dtype=dtype, trust_remote_code=True)
    auto = getattr(transformers, "AutoModelForVision2Seq", None) or transformers.AutoModelForImageTextToText
    return load_checked(auto, path, dtype=dtype, trust_remote_code=True)


def select_stats(norm_stats: dict | None, unnorm_key: str) -> Stats:
    """The action statistics of ``unnorm_key`` (required when the checkpoint holds several datasets)."""
    if not norm_stats:
        raise PolicyError("the checkpoint's config has no norm_stats to un-normalise actions with")
    if not unnorm_key:
        if len(norm_stats) != 1:
            raise PolicyError(f"the checkpoint has action statistics for {len(norm_stats)} datasets "
                              f"({sorted(norm_stats)}): set openvla.unnorm_key to the one the robot matches")
        unnorm_key = next(iter(norm_stats))
    if unnorm_key not in norm_stats:
        raise PolicyError(f"unnorm_key {unnorm_key!r} not in the checkpoint's norm_stats {sorted(norm_stats)}")
    return Stats.from_dict(norm_stats[unnorm_key]["action"])


class OpenVlaPolicy(TorchPolicy):
    name = "openvla"
    description = "OpenVLA (Vision2Seq, 7 action tokens, 256-bin de-tokenisation, q01/q99 un-normalisation)"
    uses_images = True
    resize = "stretch"  # trained on squashed frames (RLDS 224x224), not letterboxed ones
    PARAMS = [
        *TorchPolicy.TORCH_PARAMS,
        ParamSpec("unnorm_key", "", "Dataset whose action statistics apply (e.g. bridge_orig); required when "
                  "the checkpoint has several"),
        ParamSpec("camera_key", "", "Image key fed to the model (empty: the first image key)"),
        ParamSpec("center_crop", False, "Feed the centre 90% (area) resized back: for checkpoints fine-tuned with "
                  "random-crop augmentation (OpenVLA's LIBERO ones)"),
        ParamSpec("action_dim", 0, "Action tokens generated per step (0: the length of the dataset's action "
                  "statistics, 7 for BridgeData)", min=0, max=64),
        ParamSpec("action_space", "ee_delta", "How the 7-D action becomes targets (BridgeData: ee_delta)",
                  choices=("ee_delta", "joint_absolute", "joint_delta", "joint_velocity")),
        # BridgeData / OpenVLA: the gripper column is not normalised (mask false in the statistics) and is
        # 1.0 open, 0.0 closed (binarised in the training data); mapped linearly onto the preset's gripper range
        ParamSpec("gripper_closed", 0.0, "The model's gripper value for closed (BridgeData: 0)"),
        ParamSpec("gripper_open", 1.0, "The model's gripper value for open (BridgeData: 1)"),
    ]

    def __init__(self, context: PolicyContext):
        super().__init__(context)
        from transformers import AutoProcessor

        o = self.options
        path = self.model_path
        self.model = load_vision2seq(path, self.dtype).to(self.device).eval()
        alias_tokenization_names()
        self.processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
        cfg = self.model.config
        text_vocab = cfg.text_config.vocab_size if hasattr(cfg, "text_config") else cfg.vocab_size
        self.bins = BinTokenizer(int(text_vocab) - int(getattr(cfg, "pad_to_multiple_of", 0) or 0),
                                 int(getattr(cfg, "n_action_bins", 256) or 256))
        self.stats = select_stats(getattr(cfg, "norm_stats", None), o["unnorm_key"])
        width = len(self.stats.q01) if self.stats.q01 is not None else 0
        self.action_dim = int(o["action_dim"]) or width
        if not self.action_dim or (width and self.action_dim != width):
            raise PolicyError(f"openvla.action_dim {o['action_dim']} does not match the {width} dimensions of the "
                              "checkpoint's action statistics (0: take them from the statistics)")
        self.camera = o["camera_key"] or (context.image_keys[0] if context.image_keys else "")
        if self.camera not in context.image_keys:
            raise PolicyError(f"openvla.camera_key {self.camera!r} is not among the image_keys {context.image_keys}")
        tokenizer = getattr(self.processor, "tokenizer", None)
        self.append_empty = tokenizer is not None and len(tokenizer) > EMPTY_TOKEN and \
            tokenizer.convert_ids_to_tokens(EMPTY_TOKEN) == "▁"
        if o["gripper_open"] == o["gripper_closed"]:
            raise PolicyError("openvla.gripper_open and gripper_closed must differ")
        spec = dataclasses.replace(context.robot.action_space, kind=o["action_space"],
                                   gripper=ActionGripperSpec(float(o["gripper_closed"]), float(o["gripper_open"])))
        self.action_space = from_preset(context.robot, context.chunk_dt, spec, context.action_joints,
                                        context.state_joints)

    def _inputs(self, observation: Observation) -> dict:
        from PIL import Image

        image = observation.images.get(self.camera)
        if image is None:
            raise PolicyError(f"observation lacks camera {self.camera!r}")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise PolicyError(f"camera {self.camera!r}: expected HxWx3 uint8, got {image.shape} {image.dtype}")
        if self.options["center_crop"]:
            image = center_crop(image, 0.9)
        text = prompt_for(observation.instruction)
        token = getattr(self.processor, "image_token", None)
        if token and token not in text:  # processors that expand an explicit image token (Llava-style)
            text = token + text
        inputs = self.processor(text=text, images=Image.fromarray(image), return_tensors="pt")
        if self.append_empty and int(inputs["input_ids"][0, -1]) != EMPTY_TOKEN:
            torch = self.torch
            inputs["input_ids"] = torch.cat([inputs["input_ids"], torch.tensor([[EMPTY_TOKEN]])], dim=1)
            inputs["attention_mask"] = torch.cat([inputs["attention_mask"], torch.ones(1, 1, dtype=torch.long)], 1)
        return {k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
                for k, v in inputs.items()}

    def generate_tokens(self, observation: Observation) -> np.ndarray:
        """The ``action_dim`` greedily decoded action token ids (end-of-sequence excluded, as ``generate`` with
        ``min_new_tokens`` does).

        Not ``generate``: under transformers >= 4.50 OpenVLA's remote ``prepare_inputs_for_generation`` gets an
        empty cache instead of None on the first step, cuts the prompt to its last token and never runs the
        vision path (openvla issue #346): on a tiny Prismatic checkpoint under our transformers 5.23, black,
        white and random images all gave the same 7 tokens. The prompt with the image runs once with the cache
        on, then one token at a time, which gives exactly the tokens of recomputing everything per step."""
        torch, n = self.torch, self.action_dim
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        tokens = []
        with torch.no_grad():
            out = self.model(**self._inputs(observation), use_cache=True)
            for step in range(n):
                logits = out.logits[:, -1].float()
                if eos:
                    logits[:, eos] = float("-inf")
                token = logits.argmax(-1, keepdim=True)
                tokens.append(int(token[0, 0]))
                if step + 1 < n:
                    out = self.model(input_ids=token, past_key_values=out.past_key_values, use_cache=True)
        return np.asarray(tokens)

    def predict_action(self, observation: Observation) -> np.ndarray:
        """The un-normalised action (dx, dy, dz, droll, dpitch, dyaw, gripper for BridgeData)."""
        normalized = self.bins.decode(self.generate_tokens(observation))
        action = self.stats.unnormalize_bounds(normalized)
        if not np.all(np.isfinite(action)):
            raise PolicyError("the model produced a non-finite action")
        return action

    def infer(self, observation: Observation) -> ActionChunk:
        state = np.asarray(observation.state, float)
        if not np.all(np.isfinite(state)):
            raise PolicyError("state contains NaN")
        action = self.predict_action(observation)
        try:
            targets = self.action_space.to_targets(action[None, :], state)
        except ValueError as exc:
            raise PolicyError(str(exc)) from exc
        return ActionChunk.uniform(observation.stamp, self.context.action_joints, targets, self.context.chunk_dt)
