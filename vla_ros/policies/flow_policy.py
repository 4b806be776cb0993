"""What the flow-matching VLA backends (pi0, SmolVLA) share: noise, guided RTC towards the previous chunk's
remaining actions, and turning the model's normalised actions into a chunk of absolute targets."""

from __future__ import annotations

import logging
import time

import numpy as np

from ..core.chunk import ActionChunk
from ..core.merge import rtc_weights
from ..core.observation import Observation
from ..params import ParamSpec
from .base import PolicyError
from .torch_utils import TorchPolicy

log = logging.getLogger(__name__)


class FlowPolicy(TorchPolicy):
    """A torch backend sampling (1, chunk_size, max_action_dim) normalised actions by flow matching.

    Subclasses set ``stats`` (NormStats), ``action_space``, ``action_width``, ``chunk_size``, ``max_action_dim``,
    ``timing`` and ``_first_chunk``, optionally ``aloha`` (openpi's ALOHA transforms), and implement
    ``preprocess(observation)`` and ``sample(inputs, prefix)``."""

    supports_prefix = True
    FLOW_PARAMS = [
        ParamSpec("seed", -1, "Noise seed (-1: fresh noise every call)", min=-1, max=2**31 - 1),
        ParamSpec("rtc_guidance", True, "Guide sampling towards the previous chunk's remaining actions"),
        ParamSpec("rtc_beta", 5.0, "Maximum guidance weight", min=0.0, max=100.0),
        ParamSpec("rtc_schedule", "exp", "Guidance weight decay over the overlap (as the controller's rtc_schedule)",
                  choices=("linear", "exp")),
    ]
    aloha = None

    def _noise(self):
        torch = self.torch
        gen = None
        if self.options["seed"] >= 0:
            gen = torch.Generator(device="cpu").manual_seed(int(self.options["seed"]))
        noise = torch.randn(1, self.chunk_size, self.max_action_dim, generator=gen)
        return noise.to(self.device, self.dtype)

    def _guidance(self, observation: Observation):
        """The previous chunk's remaining targets in the model's normalised action space, and weights W."""
        prefix = observation.extras.get("prefix")
        if prefix is None or not self.options["rtc_guidance"]:
            return None
        kind = self.action_space.kind
        if kind not in ("joint_absolute", "joint_delta") and not self.aloha:
            return None  # velocity / end-effector actions: no exact inverse of the targets
        torch = self.torch
        values = np.asarray(prefix["values"], float)  # (H_node, len(action_joints)) absolute targets
        model = np.zeros((self.chunk_size, self.max_action_dim))
        space = self.action_space
        if self.aloha:
            model[: len(values), :14] = self.aloha.model_actions(values, observation.state)
        for k, joint in enumerate(space.model_dims if not self.aloha else []):
            col = values[:, self.context.action_joints.index(joint)]
            grip = space.gripper_of(joint)
            if grip is not None:
                col = grip.to_model(col)
            elif kind == "joint_delta":
                col = col - observation.state[self.context.state_joints.index(joint)]
            model[: len(col), k] = col
        model[:, : self.action_width] = self.stats.normalize_actions(model[:, : self.action_width])
        # the schedule over the node's chunk (the steps that run), as the controller blends it; zero beyond it
        # and on the padding columns, which nothing executes
        horizon = self.context.horizon
        w = np.zeros(self.chunk_size)
        w[:horizon] = rtc_weights(horizon, int(prefix["delay"]), int(prefix["execution_horizon"]),
                                  self.options["rtc_schedule"])
        valid = np.zeros(self.chunk_size, dtype=bool)
        valid[: len(prefix["valid"])] = prefix["valid"]
        w = np.where(valid, w, 0.0)
        if not np.any(w > 0):
            return None
        weights = np.zeros((self.chunk_size, self.max_action_dim))
        weights[:, : self.action_width] = w[:, None] * self._guidable()[None, :]
        return (torch.tensor(model[None], dtype=self.dtype, device=self.device),
                torch.tensor(weights, dtype=self.dtype, device=self.device))

    def _guidable(self) -> np.ndarray:
        """Action dimensions whose statistics allow guidance: a dimension constant in the training data (zero
        std or quantile span, normalised with LeRobot's eps 1e-8) maps any other target 1e8 units away, which
        would pull the whole chunk off; such dimensions are not guided."""
        width = self.action_width
        slope = np.abs(self.stats.normalize_actions(np.ones((1, width))) - self.stats.normalize_actions(
            np.zeros((1, width))))[0]
        return (np.isfinite(slope) & (slope < 1e4)).astype(float)

    def sample_cached(self, model, cache, prefix_pad, prefix: tuple | None, noise, steps: int, openpi: bool = False):
        """Flow matching over a model's cached prefix (``model.velocity(x, t, cache, prefix_pad)`` in LeRobot's
        convention: t = 1 noise -> 0 data, v = noise - data; ``openpi``: its float32 time steps), optionally
        RTC-guided."""
        from .rtc_guidance import guided_sample, model_times

        torch = self.torch
        times = model_times(steps, openpi)

        def velocity(x, t: float):  # ours: t = 0 noise -> 1 data
            tau = torch.full((x.shape[0],), times[round(t * steps)], dtype=torch.float32, device=self.device)
            return -model.velocity(x, tau, cache, prefix_pad).to(x.dtype)

        target, weights = prefix if prefix is not None else (None, None)
        noise = self._noise() if noise is None else noise
        return guided_sample(velocity, noise, steps, target, weights, float(self.options["rtc_beta"]))

    def camera_image(self, observation: Observation, key: str) -> np.ndarray:
        """Camera ``key``'s frame (HxWx3 uint8), or PolicyError saying what is wrong with it."""
        img = observation.images.get(key)
        if img is None:
            raise PolicyError(f"observation lacks camera {key!r}")
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise PolicyError(f"camera {key!r}: expected HxWx3 uint8, got {img.shape} {img.dtype}")
        return img

    def start_fast(self, fast, guided: bool):
        """Capture a loaded static sampler's graphs and time one warm chunk, at load (not on the first chunk the
        robot waits for); ``timing`` and the log say which path runs."""
        capture_s = fast.capture(guided=guided)
        start = time.perf_counter()
        fast.sample().float().cpu()
        self.timing.update(fast_path=True, graphs=fast.graphs, capture_s=capture_s,
                           warm_chunk_ms=(time.perf_counter() - start) * 1e3)
        if fast.capture_error:
            self.timing["capture_error"] = fast.capture_error
            log.warning("%s: CUDA graph capture failed (%s); running the static path uncaptured", self.name,
                        fast.capture_error)
        log.info("%s fast path: %s, captured in %.2f s, warm chunk %.1f ms", self.name, "CUDA graphs" if fast.graphs
                 else "static buffers (no graphs)", capture_s, self.timing["warm_chunk_ms"])
        return fast

    def infer(self, observation: Observation) -> ActionChunk:
        start = time.perf_counter()
        inputs = self.preprocess(observation)
        actions = self.sample(inputs, self._guidance(observation))
        chunk = self.postprocess(actions[0].float().cpu().numpy(), observation)
        if self._first_chunk:
            self._first_chunk = False
            self.timing["first_chunk_ms"] = (time.perf_counter() - start) * 1e3
            log.info("%s: first chunk after start-up in %.1f ms", self.name, self.timing["first_chunk_ms"])
        return chunk

    def postprocess(self, actions: np.ndarray, observation: Observation) -> ActionChunk:
        """Normalised (chunk, max_action_dim) model actions to a chunk of absolute targets."""
        ctx = self.context
        raw = actions[: ctx.horizon, : self.action_width]
        if not np.all(np.isfinite(raw)):
            raise PolicyError("the model produced NaN/inf actions")
        values = self.stats.unnormalize_actions(raw)
        try:
            targets = (self.aloha.targets(values, observation.state) if self.aloha
                       else self.action_space.to_targets(values, observation.state))
        except ValueError as exc:
            raise PolicyError(str(exc)) from exc
        return ActionChunk.uniform(observation.stamp, ctx.action_joints, targets, ctx.chunk_dt)
