"""Serve any local backend over the openpi protocol: wire observation -> backend -> wire actions.

It joins the two halves that know nothing of each other: ``vla_ros.policies`` (backends) and
``vla_ros.remote`` (the wire protocol, layouts, server), so neither imports the other's way round.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .policies import create_policy
from .policies.base import Policy
from .policies.context import DEFAULTS, policy_context
from .remote.layouts import LayoutContext, get_layout


class BackendService:
    """Callable for :class:`PolicyServer`: parses the layout, runs the backend, answers in the layout."""

    def __init__(self, policy: Policy, layout: str, cameras: dict[str, str] | None = None, default_prompt: str = ""):
        ctx = policy.context
        self.policy = policy
        self.default_prompt = default_prompt  # used where a request has no "prompt" (openpi's --default_prompt)
        self.layout = get_layout(layout)
        self.ctx = LayoutContext(ctx.robot, ctx.state_joints, ctx.action_joints, ctx.chunk_dt, dict(cameras or {}))
        self.layout.check(self.ctx)  # at start, not as every request's error

    def metadata(self) -> dict[str, Any]:
        c = self.policy.context
        return {"backend": self.policy.name, "robot": c.robot.name, "layout": self.layout.name,
                "state_joints": c.state_joints, "action_joints": c.action_joints, "image_keys": c.image_keys,
                "chunk_dt": c.chunk_dt, "horizon": c.horizon}

    def __call__(self, request: dict) -> dict:
        if self.default_prompt and "prompt" not in request:
            request = {**request, "prompt": self.default_prompt}  # (a new dict: decoded input stays untouched)
        obs = self.layout.parse_observation(request, self.ctx, time.time())
        chunk = self.policy.infer(obs)
        reply = self.layout.response(chunk.values, obs, self.ctx)
        reply["time_from_start"] = np.asarray(chunk.times)
        return reply


def build_policy(robot, params: dict[str, Any]) -> Policy:
    """A backend from flat policy-node parameters (as in config/policies/*.yaml)."""
    return create_policy(params.get("backend", DEFAULTS["backend"]), policy_context(robot, params))
