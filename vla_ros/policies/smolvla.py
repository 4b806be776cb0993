"""SmolVLA from a LeRobot checkpoint, on transformers' SmolVLM (``policy:=smolvla``).

Reads the directory LeRobot's ``save_pretrained`` writes: ``config.json`` (sizes, cameras in
``input_features`` order, chunk size, steps, tokenizer length), ``model.safetensors`` (every weight must
fit: none missing, none unused) and the normaliser pipelines (mean/std for state and actions, LeRobot's
formulas). The checkpoint only names its VLM (``vlm_model_name``, SmolVLM2-500M): its ``config.json`` and
tokenizer files come from ``smolvla.vlm_path``, the weights all from the checkpoint.

Inputs as LeRobot builds them: each camera scaled to [0, 1], letterboxed to ``resize_imgs_with_padding``
(bilinear, padding left/top with 0), then to [-1, 1]; ``empty_cameras`` masked dummy images; the task with a
trailing newline, tokenised with the VLM's tokenizer (``tokenizer_max_length``); the normalised state padded
to ``max_state_dim``. Sampling is guided towards the previous chunk's remaining actions (RTC) as for pi0.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..core.action_space import from_preset
from ..core.observation import Observation
from ..params import ParamSpec
from .base import PolicyContext, PolicyError
from .flow_policy import FlowPolicy
from .lerobot_format import CheckpointFormatError, letterbox, norm_stats, read_config, split_buffers
from .smolvla_model import SmolVLAModel, SmolVLAShape
from .torch_utils import TorchPolicy

log = logging.getLogger(__name__)
VLM_HINT = ("set smolvla.vlm_path to a local folder with that VLM's config.json and tokenizer files "
            "(tokenizer.json, tokenizer_config.json, special_tokens_map.json; ~5 MB, no weights needed)")


def load_state(model, path: Path, rename=None, tied: dict[str, str] | None = None,
               kind: str = "SmolVLA") -> dict[str, dict]:
    """``model.safetensors`` into ``model`` (keys through ``rename`` where given), refused (PolicyError naming
    keys) unless every parameter gets a weight of its shape and every weight a parameter (tied copies that
    safetensors de-duplicated excepted; ``tied`` maps a parameter to the key that holds it when the file has
    only one of them); returns the statistics buffers of LeRobot < 0.4 found among the weights."""
    from safetensors.torch import load_file

    file = path / "model.safetensors"
    if not file.exists():
        raise PolicyError(f"{path} has no model.safetensors")
    weights, buffers = split_buffers(load_file(str(file)))
    if rename is not None:
        weights = {rename(k): v for k, v in weights.items()}
    for key, source in (tied or {}).items():
        if key not in weights and source in weights:
            weights[key] = weights[source]
    own = model.state_dict()
    mismatched = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in weights.items()
                  if k in own and v.shape != own[k].shape]
    unexpected = sorted(k for k in weights if k not in own)
    loaded = {own[k].data_ptr() for k in weights if k in own}
    missing = sorted(k for k in own if k not in weights and own[k].data_ptr() not in loaded)
    problems = [f"{len(keys)} {what}: {', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}"
                for keys, what in ((missing, "parameters the checkpoint does not hold (left random)"),
                                   (unexpected, "weights no parameter takes"), (mismatched, "shape mismatches"))
                if keys]
    if problems:
        raise PolicyError(f"{path} does not fit {kind} as its config.json describes it: {'; '.join(problems)}")
    model.load_state_dict(weights, strict=False)
    return buffers


class SmolVlaPolicy(FlowPolicy):
    name = "smolvla"
    description = "SmolVLA (LeRobot checkpoint) on transformers' SmolVLM, flow matching, guided RTC"
    uses_images = True
    PARAMS = [
        *TorchPolicy.TORCH_PARAMS,
        ParamSpec("vlm_path", "", "Folder with the checkpoint's VLM config.json and tokenizer (empty: "
                  "vlm_model_name of the checkpoint's config.json, if it is a local folder or cached)"),
        ParamSpec("lerobot_version", "0.4", "LeRobot generation that trained the checkpoint: 0.4 (transformers "
                  "4.x: image patch positions 0, 0, 1, ..., as SmolVLA was pre-trained) or 0.5 (transformers 5: "
                  "0, 1, 2, ...)", choices=("0.4", "0.5")),
        ParamSpec("num_steps", 0, "Flow-matching integration steps (0: the checkpoint's num_steps)", min=0, max=100),
        ParamSpec("camera_keys", [], "Node image keys in the checkpoint's camera order (empty: the checkpoint's "
                  "camera names, observation.images.<name>, must be image keys)", type="string_array"),
        *FlowPolicy.FLOW_PARAMS,
    ]

    @classmethod
    def preflight(cls, options: dict, robot, node: dict | None = None) -> str:
        problem = super().preflight(options, robot, node)
        if problem or not Path(str(options["model_path"])).expanduser().exists():
            return problem
        try:
            cfg = read_config(Path(str(options["model_path"])).expanduser(), "smolvla")
        except CheckpointFormatError as exc:
            return str(exc)
        vlm = str(options.get("vlm_path") or "")
        if not vlm and not Path(str(cfg.get("vlm_model_name", ""))).is_dir():
            return f"the checkpoint names its VLM {cfg.get('vlm_model_name')!r} but holds none of its files: {VLM_HINT}"
        return ""

    def __init__(self, context: PolicyContext):
        super().__init__(context)
        from transformers import AutoConfig, AutoTokenizer

        o = self.options
        path = Path(self.model_path)
        try:
            self.cfg = read_config(path, "smolvla")
        except CheckpointFormatError as exc:
            raise PolicyError(str(exc)) from None
        vlm = str(o["vlm_path"] or self.cfg.get("vlm_model_name", ""))
        try:
            vlm_config = AutoConfig.from_pretrained(vlm)
            self.tokenizer = AutoTokenizer.from_pretrained(vlm)
        except (OSError, ValueError) as exc:
            raise PolicyError(f"cannot read the VLM config/tokenizer from {vlm!r} ({type(exc).__name__}): "
                              f"{VLM_HINT}") from None
        shape = SmolVLAShape.from_lerobot(self.cfg.raw)
        special = None
        if shape.add_image_special_tokens:
            special = tuple(self.tokenizer.convert_tokens_to_ids(t) for t in ("<fake_token_around_image>",
                                                                               "<global-img>"))
        self.shape = shape
        self.torch.manual_seed(0)  # construction draws random weights, all overwritten below
        with self.torch.device("cpu"):
            self.model = SmolVLAModel(vlm_config, shape, special, legacy_positions=o["lerobot_version"] == "0.4")
        buffers = load_state(self.model, path)
        self.model.to(self.device, self.dtype).eval().requires_grad_(False)
        try:
            self.stats = norm_stats(path, buffers, self.cfg.get("normalization_mapping") or {})
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
        self.cameras = self._cameras(context, list(o["camera_keys"]))
        self.image_hw = self._image_size()
        self.chunk_size, self.max_action_dim = shape.chunk_size, shape.max_action_dim
        self.num_steps = int(o["num_steps"] or self.cfg.get("num_steps", 10))
        if context.horizon > self.chunk_size:
            raise PolicyError(f"horizon {context.horizon} exceeds the checkpoint's chunk_size {self.chunk_size}")
        self.action_space = from_preset(context.robot, context.chunk_dt, None, context.action_joints,
                                        context.state_joints)
        self.action_width = self.action_space.model_width
        if self.cfg.state_dim != len(context.state_joints) or self.cfg.action_dim != self.action_width:
            raise PolicyError(f"the checkpoint takes a {self.cfg.state_dim}-D state and gives {self.cfg.action_dim}-D "
                              f"actions; this robot has {len(context.state_joints)} state joints and "
                              f"{self.action_width} action dimensions")
        self._tokens: tuple[str, object, object] | None = None
        self._first_chunk = True
        self.timing: dict[str, float] = {}

    def _cameras(self, context: PolicyContext, keys: list[str]) -> list[str]:
        """The node image key of each checkpoint camera, in the checkpoint's order."""
        names = self.cfg.cameras
        if keys and len(keys) != len(names):
            raise PolicyError(f"smolvla.camera_keys lists {len(keys)} keys; the checkpoint has {len(names)} "
                              f"cameras {names}")
        keys = keys or self.cfg.node_cameras(context.image_keys)
        unknown = [k for k in keys if k not in context.image_keys]
        if unknown:
            raise PolicyError(f"camera(s) {unknown} are not among the node's image_keys {context.image_keys}; the "
                              f"checkpoint's cameras are {names}: map them with smolvla.camera_keys")
        return keys

    def _image_size(self) -> tuple[int, int]:
        size = self.cfg.get("resize_imgs_with_padding") or [512, 512]
        vision = int(self.model.core.vlm.config.vision_config.image_size)
        width, height = int(size[0]), int(size[1])
        if (height, width) != (vision, vision):
            raise PolicyError(f"resize_imgs_with_padding {size} does not match the VLM's {vision}x{vision} images")
        return height, width

    # -- pre-processing ----------------------------------------------------------------------
    def _language(self, instruction: str):
        """LeRobot's tokenisation: the task with a trailing newline, cut at tokenizer_max_length (cached)."""
        if self._tokens is None or self._tokens[0] != instruction:
            text = instruction if instruction.endswith("\n") else instruction + "\n"
            padding = "max_length" if self.cfg.get("pad_language_to") == "max_length" else "longest"
            out = self.tokenizer(text, max_length=int(self.cfg.get("tokenizer_max_length", 48)), truncation=True,
                                 padding=padding, padding_side="right", return_tensors="pt")
            self._tokens = (instruction, out["input_ids"].to(self.device),
                            out["attention_mask"].to(self.device).bool())
        return self._tokens[1], self._tokens[2]

    def preprocess(self, observation: Observation) -> dict:
        torch = self.torch
        images, masks = [], []
        for key in self.cameras:
            img = self.camera_image(observation, key)
            pixels = torch.from_numpy(np.ascontiguousarray(img)).to(self.device).permute(2, 0, 1)[None].float() / 255
            if self.cfg.get("resize_imgs_with_padding") is not None:
                pixels = letterbox(pixels, *self.image_hw, pad_value=0.0)
            images.append((pixels * 2.0 - 1.0).to(self.dtype))
            masks.append(torch.ones(1, dtype=torch.bool, device=self.device))
        for _ in range(self.cfg.empty_cameras):
            images.append(-torch.ones_like(images[-1]))
            masks.append(torch.zeros(1, dtype=torch.bool, device=self.device))
        state = np.asarray(observation.state, dtype=np.float64)
        if state.shape != (len(self.context.state_joints),) or not np.all(np.isfinite(state)):
            raise PolicyError(f"state must be {len(self.context.state_joints)} finite values, got {state}")
        padded = np.zeros(self.shape.max_state_dim)
        padded[: state.size] = self.stats.normalize_state(state)
        tokens, token_mask = self._language(observation.instruction)
        return {"images": images, "image_masks": masks, "tokens": tokens, "token_mask": token_mask,
                "state": torch.tensor(padded[None], dtype=self.dtype, device=self.device)}

    # -- sampling ----------------------------------------------------------------------------
    def sample(self, inputs: dict, prefix: tuple | None = None, noise=None):
        """Normalised actions (1, chunk_size, max_action_dim), optionally RTC-guided."""
        with self.torch.no_grad():
            cache, prefix_pad = self.model.prefix(inputs["images"], inputs["image_masks"], inputs["tokens"],
                                                  inputs["token_mask"], inputs["state"])
        return self.sample_cached(self.model, cache, prefix_pad, prefix, noise, self.num_steps)

    def diagnostics(self) -> dict:
        return {f"smolvla_{k}": v for k, v in self.timing.items()}
