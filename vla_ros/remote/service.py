"""Serve any local backend over the openpi protocol: wire observation -> backend -> wire actions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..policies import PolicyContext, backend_class
from ..policies.base import Policy
from .layouts import LayoutContext, get_layout


class BackendService:
    """Callable for :class:`PolicyServer`: parses the layout, runs the backend, answers in the layout."""

    def __init__(self, policy: Policy, layout: str, cameras: dict[str, str] | None = None):
        ctx = policy.context
        self.policy = policy
        self.layout = get_layout(layout)
        self.ctx = LayoutContext(ctx.robot, ctx.state_joints, ctx.action_joints, ctx.chunk_dt, dict(cameras or {}))

    def metadata(self) -> dict[str, Any]:
        c = self.policy.context
        return {"backend": self.policy.name, "robot": c.robot.name, "layout": self.layout.name,
                "state_joints": c.state_joints, "action_joints": c.action_joints, "image_keys": c.image_keys,
                "chunk_dt": c.chunk_dt, "horizon": c.horizon}

    def __call__(self, request: dict) -> dict:
        obs = self.layout.parse_observation(request, self.ctx, time.time())
        chunk = self.policy.infer(obs)
        reply = self.layout.response(chunk.values, obs, self.ctx)
        reply["time_from_start"] = np.asarray(chunk.times)
        return reply


def policy_parameters(policy_file: str | Path) -> dict[str, Any]:
    """The ``policy_node`` parameters of a config/policies YAML file, nested keys flattened with dots."""
    data = yaml.safe_load(Path(policy_file).read_text()) or {}
    params = (data.get("policy_node") or data.get("/**") or {}).get("ros__parameters", {})
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: dict) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = value

    walk("", params)
    return flat


def build_policy(robot, params: dict[str, Any]) -> Policy:
    """A backend from flat policy-node parameters (as in config/policies/*.yaml)."""
    name = params.get("backend", "scripted")
    cls = backend_class(name)
    keys = list(params.get("image_keys") or [c.key for c in robot.cameras])
    size = (int(params.get("image_height", 224)), int(params.get("image_width", 224)))
    options = {k[len(name) + 1:]: v for k, v in params.items() if k.startswith(name + ".")}
    unknown = sorted(set(options) - {p.name for p in cls.PARAMS})
    if unknown:
        raise ValueError(f"unknown {name} parameters {unknown}")
    ctx = PolicyContext(robot, list(params.get("state_joints") or robot.state_joints),
                        list(params.get("action_joints") or robot.action_joints), keys, size,
                        float(params.get("chunk_dt", 0.1)), int(params.get("horizon", 10)), options)
    return cls(ctx)
