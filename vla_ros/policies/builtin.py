"""The built-in VLA (``vla_ros.learning``): camera image(s), joint state and instruction -> action chunk.

Loads a checkpoint folder (config.json, model.safetensors, norm_stats.json, tokenizer.json) from
``builtin.model_path``; the default is the model shipped in the package, trained on demonstrations
of the WidowX pick task (see README). It sees only what a real robot gives it: no simulator state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.action_space import from_preset
from ..core.chunk import ActionChunk
from ..core.image import crop_camera, crop_fraction, crop_sources, resize_with_pad
from ..core.normalize import NormStats
from ..core.observation import Observation
from ..params import ParamSpec
from ..robots import ActionGripperSpec, ActionSpaceSpec
from .base import Policy, PolicyContext, PolicyError
from .torch_utils import DEVICES, pick_device, set_threads

SHIPPED = Path(__file__).resolve().parent.parent / "models"


def resolve_model(path: str, robot: str) -> Path:
    """``path``, or the shipped model for ``robot`` when empty."""
    folder = Path(path).expanduser() if path else SHIPPED / f"builtin_{robot}"
    if not (folder / "config.json").exists():
        hint = "" if path else f" (no model is shipped for robot {robot!r}; train one with `vla-ros train`)"
        raise PolicyError(f"no built-in VLA checkpoint in {folder}{hint}")
    return folder


class BuiltinPolicy(Policy):
    name = "builtin"
    description = "Built-in VLA (small language-conditioned visuomotor policy trained on recorded demos)"
    uses_images = True
    # frames as the camera sends them: the model resizes (and crops) them itself, as its training data were made
    # from the recorded frames (a crop's box is a fraction of the camera's frame, not of a padded square)
    resize = "none"
    PARAMS = [
        ParamSpec("model_path", "", "Checkpoint folder (empty: the model shipped for the robot preset)"),
        ParamSpec("device", "cpu", "Torch device", choices=DEVICES),
        ParamSpec("threads", 1, "Torch CPU threads (0: half the cores)", min=0, max=256),
        ParamSpec("seed", 0, "Noise seed of the flow head (-1: fresh noise every call)", min=-1, max=2**31 - 1),
    ]

    @classmethod
    def preflight(cls, options: dict, robot, node: dict | None = None) -> str:
        try:
            resolve_model(str(options.get("model_path", "")), robot.name)
        except PolicyError as exc:
            return (f"policy 'builtin': {exc}: set builtin.model_path to a trained checkpoint, or choose another "
                    "policy (policy:=scripted in the sim, pi0, openvla, openpi)")
        return ""

    @classmethod
    def cameras(cls, options: dict, robot) -> list[str] | None:
        """The checkpoint's cameras (an ALOHA model reads 3 of the preset's 4)."""
        import json

        try:
            folder = resolve_model(str(options.get("model_path", "")), robot.name)
            config = json.loads((folder / "config.json").read_text())
            return crop_sources(config["image_keys"], config.get("crops") or {})
        except (PolicyError, OSError, ValueError, KeyError, TypeError):
            return None  # (the node reports what is wrong with the checkpoint)

    def __init__(self, context: PolicyContext):
        super().__init__(context)
        import torch
        from safetensors.torch import load_file

        from ..learning.model import ModelConfig, TinyVLA
        from ..learning.tokenizer import WordTokenizer

        self.torch = torch
        set_threads(int(self.options["threads"]))
        self.device = pick_device(self.options["device"])
        self.folder = resolve_model(self.options["model_path"], context.robot.name)
        self.cfg = ModelConfig.load(self.folder)
        self.model = TinyVLA(self.cfg)
        self.model.load_state_dict(load_file(str(self.folder / "model.safetensors")))
        self.model.to(self.device).eval()
        self.stats = NormStats.load(self.folder)
        self.tokenizer = WordTokenizer.load(self.folder)
        missing = [k for k in self.cfg.cameras if k not in context.image_keys]
        if missing:
            raise PolicyError(f"the model needs camera(s) {missing}; the node's image_keys are {context.image_keys}")
        for label, joints in (("state_joints", self.cfg.state_joints), ("action_joints", self.cfg.action_joints)):
            unknown = [j for j in joints if j not in context.robot.state_joints + context.robot.action_joints]
            if unknown:
                raise PolicyError(f"the model's {label} {unknown} are not joints of robot {context.robot.name!r}")
        if context.horizon > self.cfg.horizon:
            raise PolicyError(f"horizon {context.horizon} exceeds the model's {self.cfg.horizon}")
        if abs(context.chunk_dt - self.cfg.chunk_dt) > 1e-9:
            raise PolicyError(f"chunk_dt {context.chunk_dt} differs from the model's {self.cfg.chunk_dt}")
        grippers = ActionGripperSpec(model_closed=None, model_open=None)  # gripper actions are joint values
        spec = ActionSpaceSpec("joint_delta", grippers, model_dims=self.cfg.action_joints)
        self.action_space = from_preset(context.robot, context.chunk_dt, spec, context.action_joints,
                                        self.cfg.state_joints)
        not_delta = [j for j in self.cfg.action_joints
                     if (j in self.cfg.delta_joints) == (self.action_space.gripper_of(j) is not None)]
        if not_delta:
            raise PolicyError(f"the model's delta joints do not match the robot's grippers for {not_delta}")
        self._prompt: tuple[str, object] | None = None

    def _tokens(self, instruction: str):
        if self._prompt is None or self._prompt[0] != instruction:
            self._prompt = (instruction, self.tokenizer.batch([instruction]).to(self.device))
        return self._prompt[1]

    def preprocess(self, observation: Observation) -> tuple:
        torch, size, big = self.torch, self.cfg.image_size, self.cfg.glimpse_source
        frames, looks = [], []
        for key in self.cfg.image_keys:
            camera = crop_camera(key, self.cfg.crops)
            img = observation.images.get(camera)
            if img is None:
                raise PolicyError(f"observation lacks camera {camera!r}")
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise PolicyError(f"camera {camera!r}: expected HxWx3 uint8, got {img.shape} {img.dtype}")
            if key in self.cfg.crops:
                img = crop_fraction(img, self.cfg.crops[key][1:])
            frames.append(resize_with_pad(img, size, size).transpose(2, 0, 1))
            if key in self.cfg.glimpse_keys:
                looks.append(resize_with_pad(img, big, big).transpose(2, 0, 1))
        state = np.asarray(observation.state, float)
        if state.shape != (len(self.context.state_joints),) or not np.all(np.isfinite(state)):
            raise PolicyError(f"state must be {len(self.context.state_joints)} finite values, got {state}")
        model_state = np.array([state[self.context.state_joints.index(j)] for j in self.cfg.state_joints])
        images = torch.from_numpy(np.stack(frames)[None]).to(self.device)
        glimpses = torch.from_numpy(np.stack(looks)[None]).to(self.device) if looks else None
        norm = self.stats.state.normalize(model_state, "zscore").astype(np.float32)
        return (images, torch.from_numpy(norm[None]).to(self.device), self._tokens(observation.instruction),
                model_state, glimpses)

    def infer(self, observation: Observation) -> ActionChunk:
        images, state, tokens, model_state, glimpses = self.preprocess(observation)
        noise = None
        if self.cfg.head == "flow" and self.options["seed"] >= 0:
            gen = self.torch.Generator().manual_seed(int(self.options["seed"]))
            noise = self.torch.randn(1, self.cfg.horizon, len(self.cfg.action_joints), generator=gen)
        turn_now = None
        if self.cfg.turn:  # the jaws' angle now: the turn goes to the cube's face nearest it
            angle = float(self.cfg.turn_angle(model_state, self.cfg.state_joints))
            turn_now = self.torch.tensor([angle], dtype=self.torch.float32, device=self.device)
        with self.torch.inference_mode():
            raw = self.model.predict(images, state, tokens, noise, glimpses, turn_now)[0].cpu().numpy().astype(
                np.float64)
        actions = self.stats.actions.unnormalize(raw, "zscore")[: self.context.horizon]
        if not np.all(np.isfinite(actions)):
            raise PolicyError("the model produced NaN/inf actions")
        try:
            targets = self.action_space.to_targets(actions, model_state)
        except ValueError as exc:
            raise PolicyError(str(exc)) from exc
        return ActionChunk.uniform(observation.stamp, self.context.action_joints, targets, self.context.chunk_dt)
