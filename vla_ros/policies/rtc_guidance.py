"""Guided real-time-chunking inpainting for flow-matching policies (Black, Galliker, Levine, 2025).

The sampler integrates a flow from noise (t = 0) to actions (t = 1) and, at each step, pulls the
predicted final chunk towards the previous chunk's still-to-run actions ``Y`` where the prefix weights
``W`` are non-zero, using a vector-Jacobian product through the velocity field:

    A1 = x + (1 - t) v(x, t)
    g  = VJP_x(A1; (Y - A1) * W)
    v' = v + min(beta, (1 - t) / t * (t^2 + (1 - t)^2) / (1 - t)^2) * g

Backends whose models integrate the other way round (pi0: t = 1 noise -> 0 data, u = noise - actions)
wrap their velocity before calling :func:`guided_sample`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Velocity = Callable[[torch.Tensor, float], torch.Tensor]


def model_times(steps: int, openpi: bool = False) -> list[float]:
    """pi0-family flow times (1 = noise -> 0 = data) at each Euler step: LeRobot's ``1 + k * (-1 / steps)`` cast
    to float32, or openpi's float32 running sum ``time += dt`` (0.70000005 where LeRobot has 0.7: the chunks of a
    checkpoint differ by ~1e-5 between the two)."""
    if not openpi:
        return [float(torch.tensor(1.0 - k / steps, dtype=torch.float32)) for k in range(steps)]
    time, dt, out = torch.tensor(1.0), torch.tensor(-1.0 / steps), []
    for _ in range(steps):
        out.append(float(time))
        time = time + dt
    return out


def guidance_weight(t: float, beta: float) -> float:
    """min(beta, (1 - t)/t * (t^2 + (1 - t)^2) / (1 - t)^2); beta at t = 0."""
    if t <= 0.0:
        return beta
    if t >= 1.0:
        return 0.0
    return min(beta, (1.0 - t) / t * (t * t + (1.0 - t) ** 2) / (1.0 - t) ** 2)


def guided_sample(velocity: Velocity, noise: torch.Tensor, steps: int, prefix: torch.Tensor | None = None,
                  weights: torch.Tensor | None = None, beta: float = 5.0) -> torch.Tensor:
    """Euler integration of ``velocity`` from ``noise`` (t = 0) to t = 1, optionally prefix-guided.

    ``noise`` and ``prefix`` are (..., H, A); ``weights`` is (H,) or (H, A) (per column: zero on padding
    columns). Without a prefix this is the plain flow-matching sampler.
    """
    if steps < 1:
        raise ValueError("steps must be >= 1")
    x = noise
    dt = 1.0 / steps
    guided = prefix is not None and weights is not None and bool(torch.any(weights > 0))
    if guided:
        w = weights.to(noise.dtype)
        w = w.reshape(*([1] * (noise.dim() - 2)), *(w.shape if w.dim() == 2 else (-1, 1)))
        prefix = prefix.to(noise.dtype)
    for k in range(steps):
        t = k * dt
        if not guided:
            with torch.no_grad():
                x = x + dt * velocity(x, t)
            continue
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            v = velocity(xg, t)
            final = xg + (1.0 - t) * v
            (g,) = torch.autograd.grad(final, xg, grad_outputs=(prefix - final) * w)
        x = (x + dt * (v.detach() + guidance_weight(t, beta) * g)).detach()
    return x
