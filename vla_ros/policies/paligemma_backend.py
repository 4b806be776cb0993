"""What the backends that read LeRobot (or openpi) PaliGemma checkpoints with their own model code share: the
tokenizer folder they need, cameras mapped to image keys, state/action widths checked, images and state prepared
as LeRobot (or openpi) feeds them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core.image import resize_with_pad
from ..core.observation import Observation
from .base import PolicyError
from .flow_policy import FlowPolicy
from .lerobot_format import LeRobotConfig, pi0_pixels

PALIGEMMA = "google/paligemma-3b-pt-224"


class PaliGemmaBackend(FlowPolicy):
    """Subclasses set ``cfg`` (LeRobotConfig), ``stats``, ``action_space``/``action_width`` and
    ``shape.image_size``; ``openpi`` selects openpi's image conventions over LeRobot's."""

    openpi = False
    version = "0.4"

    @classmethod
    def preflight(cls, options: dict, robot, node: dict | None = None) -> str:
        problem = super().preflight(options, robot, node)
        if problem or options.get("tokenizer_path"):
            return problem
        return (f"{cls.name} checkpoints ship no tokenizer: set {cls.name}.tokenizer_path to a local copy of "
                f"PaliGemma's ({PALIGEMMA})")

    def load_tokenizer(self):
        from transformers import AutoTokenizer

        where = self.options["tokenizer_path"] or str(Path(self.model_path))
        try:
            return AutoTokenizer.from_pretrained(where)
        except (OSError, ValueError) as exc:
            raise PolicyError(f"no tokenizer at {where} ({type(exc).__name__}): set {self.name}.tokenizer_path to a "
                              f"local copy of PaliGemma's ({PALIGEMMA})") from None

    def map_cameras(self, cfg: LeRobotConfig) -> list[str]:
        """``camera_keys``, else the checkpoint's cameras by name (or their dataset names, ``rename_map``);
        openpi checkpoints name none: the node's image keys."""
        ctx = self.context
        cameras = list(self.options["camera_keys"]) or (list(ctx.image_keys) if self.openpi else
                                                        cfg.node_cameras(ctx.image_keys))
        unknown = [k for k in cameras if k not in ctx.image_keys]
        if unknown or (not self.openpi and len(cameras) != len(cfg.cameras)):
            raise PolicyError(f"camera(s) {unknown or cameras} do not map the checkpoint's cameras {cfg.cameras} to "
                              f"the node's image_keys {ctx.image_keys}: set {self.name}.camera_keys")
        return cameras

    def check_widths(self, cfg: LeRobotConfig, padded_width: int = 0) -> None:
        """LeRobot: the state and action widths config.json names; openpi (``padded_width``): at most its padding."""
        states, actions = len(self.context.state_joints), self.action_width
        if padded_width:
            if states > padded_width or actions > padded_width:
                raise PolicyError(f"this robot's {states} state joints / {actions} action dimensions exceed the "
                                  f"checkpoint's action_dim {padded_width}")
        elif cfg.state_dim != states or cfg.action_dim != actions:
            raise PolicyError(f"the checkpoint takes a {cfg.state_dim}-D state and gives {cfg.action_dim}-D actions; "
                              f"this robot has {states} state joints and {actions} action dimensions")

    def camera_inputs(self, observation: Observation) -> tuple[list, list]:
        """Each camera (1, 3, S, S) in [-1, 1]: LeRobot's float letterbox (``version``) or openpi's PIL one."""
        torch = self.torch
        size = self.shape.image_size
        images, masks = [], []
        for key in self.cameras:
            img = self.camera_image(observation, key)
            if self.openpi:
                pixels = torch.from_numpy(resize_with_pad(img, size, size, truncate=True)).permute(2, 0, 1)[None]
                images.append((pixels.float() / 255.0 * 2.0 - 1.0).to(self.device, self.dtype))
            else:
                frame = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0
                images.append(pi0_pixels(frame, size, size, self.version).to(self.device, self.dtype))
            masks.append(torch.ones(1, dtype=torch.bool, device=self.device))
        return images, masks

    def normalised_state(self, observation: Observation) -> np.ndarray:
        state = np.asarray(observation.state, dtype=np.float64)
        if state.shape != (len(self.context.state_joints),) or not np.all(np.isfinite(state)):
            raise PolicyError(f"state must be {len(self.context.state_joints)} finite values, got {state}")
        return np.float32(self.stats.normalize_state(state))
