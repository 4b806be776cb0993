"""Static-shape pi0.5 sampling: the prompt padded to a fixed length, the prefix keys/values in fixed buffers, the
prefix pass and the denoising loops replayed as CUDA graphs captured at load (:mod:`.static_flow`).

The math is :class:`.pi05_model.Pi05Model`'s own (its ``prefix`` and ``velocity``); padded prompt tokens are
masked (no position, never attended), so the chunk equals the eager path's for the same noise (tests compare both
on the CPU, where the same code runs uncaptured).
"""

from __future__ import annotations

import torch

from .pi05_model import Pi05Model
from .rtc_guidance import model_times
from .static_flow import StaticFlow


class _Shape:
    def __init__(self, cameras: int, prompt_tokens: int, num_steps: int):
        self.cameras, self.prompt_tokens, self.num_steps = cameras, prompt_tokens, num_steps


class Pi05Static(StaticFlow):
    def __init__(self, model: Pi05Model, cameras: int, prompt_tokens: int, num_steps: int, beta: float = 5.0,
                 graphs: bool | None = None, openpi_times: bool = False):
        self.model, self.beta = model, float(beta)
        self.shape = _Shape(cameras, prompt_tokens, num_steps)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype
        size, s = model.shape.image_size, model.shape
        z = {"device": self.device}
        self.pixels = [torch.zeros(1, 3, size, size, dtype=self.dtype, **z) for _ in range(cameras)]
        self.image_masks = [torch.ones(1, dtype=torch.bool, **z) for _ in range(cameras)]
        self.ids = torch.zeros(1, prompt_tokens, dtype=torch.long, **z)
        self.valid = torch.zeros(1, prompt_tokens, dtype=torch.bool, **z)
        self.noise = torch.zeros(1, s.chunk_size, s.max_action_dim, dtype=self.dtype, **z)
        self.target, self.result = torch.zeros_like(self.noise), torch.zeros_like(self.noise)
        self.weights = torch.zeros(s.chunk_size, s.max_action_dim, dtype=self.dtype, **z)
        self.taus = model_times(num_steps, openpi_times)
        with torch.no_grad():  # one pass sizes the key/value buffers
            cache, pad = model.prefix(self.pixels, self.image_masks, self.ids, self.valid)
        self.keys = [torch.zeros_like(k) for k, _ in cache]
        self.values = [torch.zeros_like(v) for _, v in cache]
        self.pad = torch.zeros_like(pad)
        self.init_graphs(graphs)

    def fits(self, n_tokens: int) -> bool:
        return n_tokens <= self.shape.prompt_tokens

    def load(self, images: list[torch.Tensor], tokens: torch.Tensor, noise: torch.Tensor,
             target: torch.Tensor | None = None, weights: torch.Tensor | None = None) -> None:
        """Copy one observation into the buffers (images (1, 3, S, S) in [-1, 1], tokens (1, n))."""
        n = tokens.shape[1]
        if not self.fits(n):
            raise ValueError(f"prompt of {n} tokens exceeds the captured {self.shape.prompt_tokens}")
        for buf, img in zip(self.pixels, images, strict=True):
            buf.copy_(img)
        self.ids.zero_()
        self.ids[:, :n].copy_(tokens)
        self.valid.zero_()
        self.valid[:, :n] = True
        self.noise.copy_(noise)
        if target is not None:
            self.target.copy_(target)
            self.weights.copy_(weights)

    def prefix(self) -> None:
        cache, pad = self.model.prefix(self.pixels, self.image_masks, self.ids, self.valid)
        for i, (k, v) in enumerate(cache):
            self.keys[i].copy_(k)
            self.values[i].copy_(v)
        self.pad.copy_(pad)

    def velocity(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """d(actions)/dt at step ``step`` (t = 0 noise, 1 data): minus the model's noise - data velocity."""
        tau = torch.full((x.shape[0],), self.taus[step], dtype=torch.float32, device=self.device)
        return -self.model.velocity(x, tau, list(zip(self.keys, self.values, strict=True)), self.pad).to(x.dtype)
