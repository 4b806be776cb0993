"""pi0-FAST from a LeRobot checkpoint (``policy:=pi0fast``): PaliGemma decoding FAST action tokens.

Reads what LeRobot's ``PI0FastPolicy.save_pretrained`` and its pipelines write (``config.json`` with ``type:
pi0_fast``, ``model.safetensors``, the normaliser pipelines: mean/std by default). Neither tokenizer is in the
checkpoint: PaliGemma's (``pi0fast.tokenizer_path``) and the FAST action tokenizer the model was trained with
(``pi0fast.action_tokenizer_path``: physical-intelligence/fast or the one ``lerobot-train-tokenizer`` fitted).

Inputs as LeRobot 0.4 builds them: cameras letterboxed as its pi0 does; the normalised state padded to
``max_state_dim`` and discretised into 256 bins in ``Task: <task>, State: <bins>;\\n`` (task stripped, underscores
and newlines to spaces), tokenised with BOS, cut at ``tokenizer_max_length``, then one more BOS. Greedy decoding
(LeRobot's temperature 0) stops at the end-of-action token ``|`` (LeRobot decodes ``max_decoding_steps`` tokens and
drops everything after it: the same chunk). Tokens that do not decode are refused (the node holds) where LeRobot
would substitute zeros, i.e. the dataset's mean action. No RTC guidance: the tokens are not sampled by flow.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..core.action_space import from_preset
from ..core.observation import Observation
from ..params import ParamSpec
from . import paligemma_sizes
from .base import PolicyContext, PolicyError
from .fast_tokens import FastDecodeError, FastTokenizer, action_ids
from .lerobot_format import CheckpointFormatError, norm_stats, read_config
from .paligemma_backend import PaliGemmaBackend
from .pi0fast_model import Pi0FastModel, Pi0FastShape
from .pi05 import discretise
from .smolvla import load_state
from .torch_utils import TorchPolicy

log = logging.getLogger(__name__)
EMBED = "model.paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"
LM_HEAD = "model.paligemma_with_expert.paligemma.lm_head.weight"


def prompt(task: str, state: np.ndarray, width: int) -> str:
    cleaned = task.strip().replace("_", " ").replace("\n", " ")
    return f"Task: {cleaned}, State: {discretise(state, width)};\n"


class Pi0FastPolicy(PaliGemmaBackend):
    name = "pi0fast"
    description = "pi0-FAST (LeRobot checkpoint) on transformers' PaliGemma, greedy FAST action-token decoding"
    uses_images = True
    supports_prefix = False
    PARAMS = [
        *TorchPolicy.TORCH_PARAMS,
        ParamSpec("tokenizer_path", "", "PaliGemma tokenizer folder (google/paligemma-3b-pt-224; LeRobot "
                  "checkpoints ship none)"),
        ParamSpec("action_tokenizer_path", "", "FAST action tokenizer folder the checkpoint was trained with "
                  "(physical-intelligence/fast, or the one lerobot-train-tokenizer fitted): processor_config.json "
                  "and tokenizer.json; its Python code is not run"),
        ParamSpec("max_decoding_steps", 0, "Most action tokens decoded per chunk (0: the checkpoint's "
                  "max_decoding_steps)", min=0, max=2048),
        ParamSpec("camera_keys", [], "Node image keys in the checkpoint's camera order (empty: the checkpoint's "
                  "camera names, observation.images.<name>, must be image keys)", type="string_array"),
    ]

    @classmethod
    def preflight(cls, options: dict, robot, node: dict | None = None) -> str:
        problem = super().preflight(options, robot, node)
        if problem:
            return problem
        if not options.get("action_tokenizer_path"):
            return ("pi0-FAST checkpoints ship no action tokenizer: set pi0fast.action_tokenizer_path to a local "
                    "copy of the FAST tokenizer it was trained with (physical-intelligence/fast)")
        return ""

    def __init__(self, context: PolicyContext):
        super().__init__(context)
        o = self.options
        path = Path(self.model_path)
        try:
            self.cfg = read_config(path, "pi0_fast")
            vlm, _ = paligemma_sizes.variants(self.cfg.raw)
            size = paligemma_sizes.image_size(self.cfg.raw)
        except (CheckpointFormatError, ValueError) as exc:
            raise PolicyError(str(exc)) from None
        if self.cfg.empty_cameras:  # LeRobot masks them: no position, never attended; leaving them out is the same
            log.info("pi0fast: the checkpoint's %d empty camera(s) left out (masked in LeRobot)",
                     self.cfg.empty_cameras)
        if float(self.cfg.get("temperature", 0.0) or 0.0) > 0:
            log.warning("pi0fast: the checkpoint asks for temperature %s; decoding is greedy (LeRobot's default)",
                        self.cfg.get("temperature"))
        self.tokenizer = self.load_tokenizer()
        try:
            self.fast_tokenizer = FastTokenizer.load(o["action_tokenizer_path"])
        except (OSError, ValueError) as exc:
            raise PolicyError(f"pi0fast.action_tokenizer_path: {exc}") from None
        self.shape = Pi0FastShape(vlm, image_size=size, vocab=paligemma_sizes.VOCAB,
                                  vision=tuple(paligemma_sizes.VISION.items()))
        self.torch.manual_seed(0)  # construction draws random weights, all overwritten below
        with self.torch.device("cpu"):
            self.model = Pi0FastModel(self.shape)
        buffers = load_state(self.model, path, rename=self._rename, tied={EMBED: LM_HEAD}, kind="pi0-FAST")
        self.model.to(self.device, self.dtype).eval().requires_grad_(False)
        try:
            self.stats = norm_stats(path, buffers, self.cfg.get("normalization_mapping") or {})
        except ValueError as exc:
            raise PolicyError(str(exc)) from None
        self.cameras = self.map_cameras(self.cfg)
        self.chunk_size = int(self.cfg.get("n_action_steps", 50))
        self.max_action_dim = self.cfg.action_dim
        self.max_steps = int(o["max_decoding_steps"] or self.cfg.get("max_decoding_steps", 256))
        if context.horizon > self.chunk_size:
            raise PolicyError(f"horizon {context.horizon} exceeds the checkpoint's n_action_steps {self.chunk_size}")
        self.action_space = from_preset(context.robot, context.chunk_dt, None, context.action_joints,
                                        context.state_joints)
        self.action_width = self.action_space.model_width
        self.check_widths(self.cfg)
        tok = self.tokenizer
        self.prefix_tokens = tok.convert_ids_to_tokens(tok.encode("Action: ", add_special_tokens=False))
        stop = tok.convert_tokens_to_ids("|")
        self.stop = stop if stop != tok.unk_token_id else None
        self.skip = int(self.cfg.get("fast_skip_tokens", 128))
        self._first_chunk = True
        self.timing: dict[str, float] = {}
        self.counts = {"prompt_truncations": 0, "coefficients_padded": 0, "coefficients_cut": 0,
                       "undecodable_chunks": 0}

    @staticmethod
    def _rename(key: str) -> str:
        return key.replace(".vision_tower.vision_model.", ".vision_tower.")

    def _guidance(self, observation: Observation):
        return None

    def preprocess(self, observation: Observation) -> dict:
        torch = self.torch
        images, masks = self.camera_inputs(observation)
        normalised = self.normalised_state(observation)
        text = prompt(observation.instruction, normalised, int(self.cfg.get("max_state_dim", 32)))
        limit = int(self.cfg.get("tokenizer_max_length", 200))
        ids = self.tokenizer(text, max_length=limit, truncation=True, return_tensors="pt")["input_ids"]
        if ids.shape[1] == limit:
            self.counts["prompt_truncations"] += 1
        ids = torch.cat([ids, torch.tensor([[self.tokenizer.bos_token_id]])], dim=1).to(self.device)
        return {"images": images, "image_masks": masks, "tokens": ids,
                "token_mask": torch.ones_like(ids, dtype=torch.bool), "prompt": text}

    def decode(self, generated: list[int]) -> np.ndarray:
        """Generated PaliGemma ids to normalised (n_action_steps, action_dim) actions; PolicyError if they are not
        an action chunk."""
        strings = self.tokenizer.convert_ids_to_tokens(generated)
        if self.cfg.get("validate_action_token_prefix", True) and strings[:2] != ["Action", ":"]:
            self.counts["undecodable_chunks"] += 1
            raise PolicyError(f"the model's output does not start with 'Action:' ({strings[:4]}...)")
        kept = self.tokenizer.convert_tokens_to_ids(action_ids(strings, self.prefix_tokens))
        fast_ids = [self.tokenizer.vocab_size - 1 - self.skip - int(p) for p in kept]
        try:
            actions, diff = self.fast_tokenizer.decode(fast_ids, self.chunk_size, self.cfg.action_dim)
        except FastDecodeError as exc:
            self.counts["undecodable_chunks"] += 1
            raise PolicyError(f"the model's action tokens do not decode: {exc}") from None
        if diff:
            key = "coefficients_padded" if diff > 0 else "coefficients_cut"
            if not self.counts[key]:
                log.warning("pi0fast: %d DCT coefficients %s to fit %dx%d (as LeRobot's relaxed decoding; counted "
                            "from now on)", abs(diff), "padded with zeros" if diff > 0 else "cut",
                            self.chunk_size, self.cfg.action_dim)
            self.counts[key] += 1
        return actions

    def sample(self, inputs: dict, prefix=None, noise=None):
        """Normalised actions (1, n_action_steps, action_dim) decoded from the greedy action tokens."""
        with self.torch.no_grad():
            generated = self.model.generate(inputs["images"], inputs["image_masks"], inputs["tokens"],
                                            inputs["token_mask"], self.max_steps, self.stop)
        self.last_tokens = generated
        return self.torch.from_numpy(self.decode(generated)[None])

    def diagnostics(self) -> dict:
        return {**{f"pi0fast_{k}": v for k, v in self.timing.items()},
                **{f"pi0fast_{k}": v for k, v in self.counts.items()}}
