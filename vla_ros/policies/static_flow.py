"""Captured-graph replay shared by the static-shape flow samplers (pi0, pi0.5).

A subclass holds its inputs in fixed buffers and implements ``prefix()`` (the prefill into fixed key/value
buffers), ``velocity(x, step)`` and optionally ``_before_denoise()``; it has ``noise``, ``target``, ``weights`` and
``result`` buffers, ``shape.num_steps``, ``beta``, ``device``. ``denoise`` integrates (plainly or RTC-guided),
``capture`` records the prefix and both loops as CUDA graphs once, ``sample`` replays them (or runs them
uncaptured on the CPU, or where capture failed: ``capture_error`` says why).
"""

from __future__ import annotations

import time

import torch

from .rtc_guidance import guidance_weight


class StaticFlow:
    def init_graphs(self, graphs: bool | None) -> None:
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        self._graph: dict[str, object] = {}
        self.capture_s = 0.0
        self.capture_error = ""

    def _before_denoise(self) -> None:
        """Per-load work the loops need (outside the captured prefix); none by default."""

    def denoise(self, guided: bool) -> torch.Tensor:
        """Euler integration from the static noise; guided: pulled towards ``target`` where ``weights`` > 0."""
        steps = self.shape.num_steps
        dt = 1.0 / steps
        self._before_denoise()
        x = self.noise
        for k in range(steps):
            t = k * dt
            if not guided:
                with torch.no_grad():
                    x = x + dt * self.velocity(x, k)
                continue
            with torch.enable_grad():
                xg = x.detach().requires_grad_(True)
                v = self.velocity(xg, k)
                final = xg + (1.0 - t) * v
                (g,) = torch.autograd.grad(final, xg, grad_outputs=(self.target - final) * self.weights)
            x = (x + dt * (v.detach() + guidance_weight(t, self.beta) * g)).detach()
        self.result.copy_(x)
        return self.result

    # -- capture and replay --------------------------------------------------------------------
    def _prefix_pass(self) -> None:
        with torch.no_grad():
            self.prefix()

    def capture(self, guided: bool = True) -> float:
        """Capture the prefix and the plain (and guided) denoising loops; returns the seconds it took.

        A model whose code cannot be captured (a host sync inside) keeps the uncaptured static path:
        ``capture_error`` says why."""
        start = time.perf_counter()
        if self.graphs:
            try:
                self._capture_all(guided)
            except RuntimeError as exc:  # torch.AcceleratorError is a RuntimeError
                torch.cuda.synchronize(self.device)
                self._graph.clear()
                self.graphs = False
                self.capture_error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        self.capture_s = time.perf_counter() - start
        return self.capture_s

    def _capture_all(self, guided: bool) -> None:
        runs = {"prefix": self._prefix_pass, "plain": lambda: self.denoise(False)}
        if guided:
            runs["guided"] = lambda: self.denoise(True)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for fn in runs.values():  # warm-up: kernels chosen, workspaces and autograd set up
                for _ in range(2):
                    fn()
        torch.cuda.current_stream(self.device).wait_stream(side)
        for name, fn in runs.items():
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                fn()
            self._graph[name] = graph
        torch.cuda.synchronize(self.device)

    def sample(self, guided: bool = False) -> torch.Tensor:
        """Normalised actions (1, chunk, max_action_dim) from the loaded buffers (a view: copy before reuse)."""
        if self.graphs and "prefix" in self._graph:
            self._graph["prefix"].replay()
            name = "guided" if guided else "plain"
            if name in self._graph:
                self._graph[name].replay()
                return self.result
            return self.denoise(guided)
        self._prefix_pass()
        return self.denoise(guided)
