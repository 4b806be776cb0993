"""A policy served elsewhere over the openpi WebSocket protocol (an openpi server or ``vla-ros serve``).

The robot preset picks the observation layout (``openpi.layout``: aloha, droid, libero, or vla_ros)
and maps its cameras; the server's actions become absolute targets. A timeout, refused connection or
server error is a PolicyError: the node publishes nothing, reports it, and the controller holds; the
client reconnects with exponential backoff and the node resumes when the server is back.
"""

from __future__ import annotations

import numpy as np

from ..core.chunk import ActionChunk
from ..core.observation import Observation
from ..params import ParamSpec
from ..remote.client import PolicyClient, RemoteError
from ..remote.layouts import LAYOUTS, LayoutContext, LayoutError, get_layout
from .base import Policy, PolicyContext, PolicyError


class OpenpiRemotePolicy(Policy):
    name = "openpi"
    description = "Remote policy over the openpi WebSocket protocol (openpi servers, vla-ros serve)"
    uses_images = True
    PARAMS = [
        ParamSpec("host", "127.0.0.1", "Server host (or a ws:// URI)"),
        ParamSpec("port", 8000, "Server port", min=1, max=65535),
        ParamSpec("api_key", "", "Sent as 'Authorization: Api-Key <key>' when set"),
        ParamSpec("layout", "", "Observation layout (empty: the robot preset's openpi.layout, else vla_ros)",
                  choices=("", *LAYOUTS)),
        ParamSpec("timeout", 2.0, "Seconds to wait for each answer", min=0.01, max=120.0),
        ParamSpec("connect_timeout", 2.0, "Seconds to wait for a connection", min=0.01, max=120.0),
        ParamSpec("max_message_mb", 64.0, "Largest accepted answer (MB)", min=0.1, max=4096.0),
        ParamSpec("jpeg_quality", 0, "Send camera frames as JPEG of this quality (1-100; 0: raw arrays). Only "
                  "vla-ros serve decodes them; an openpi server is refused", min=0, max=100),
        ParamSpec("rotate_180", True, "libero layout: turn frames 180 degrees as LIBERO's robosuite renders were "
                  "stored (false for an upright camera)"),
    ]

    @classmethod
    def preflight(cls, options: dict, robot, node: dict | None = None) -> str:
        """A layout that cannot serve the node's joints and chunk_dt (DROID: 1/15 s) is refused at launch."""
        from .context import policy_context

        try:
            context = policy_context(robot, {**(node or {}), "backend": cls.name})
            layout = get_layout(str(options.get("layout", "")) or robot.openpi.layout)
            layout.check(LayoutContext(
                robot, context.state_joints, context.action_joints, context.chunk_dt, dict(robot.openpi.cameras)))
        except (LayoutError, ValueError) as exc:
            return f"policy openpi: {exc}"
        return ""

    def __init__(self, context: PolicyContext):
        super().__init__(context)
        o = self.options
        preset = context.robot.openpi
        self.layout = get_layout(o["layout"] or preset.layout)
        self.layout_ctx = LayoutContext(context.robot, context.state_joints, context.action_joints,
                                        context.chunk_dt, dict(preset.cameras), bool(o["rotate_180"]))
        try:
            self.layout.check(self.layout_ctx)
        except LayoutError as exc:
            raise PolicyError(f"{self.layout.name} layout: {exc}") from exc
        self.client = PolicyClient(o["host"], int(o["port"]), o["api_key"] or None, float(o["timeout"]),
                                   float(o["connect_timeout"]), max_size=int(o["max_message_mb"] * 2**20),
                                   jpeg_quality=int(o["jpeg_quality"]))

    def infer(self, observation: Observation) -> ActionChunk:
        if not np.all(np.isfinite(observation.state)):
            raise PolicyError("state contains NaN")
        try:
            request = self.layout.observation(observation, self.layout_ctx)
            reply = self.client.infer(request)
            if "actions" not in reply:
                raise PolicyError(f"server reply has no 'actions' (keys: {sorted(reply)})")
            targets = self.layout.targets(reply, observation, self.layout_ctx)
        except RemoteError as exc:
            raise PolicyError(str(exc)) from exc
        except (LayoutError, ValueError) as exc:
            raise PolicyError(f"{self.layout.name} layout: {exc}") from exc
        targets = np.asarray(targets, dtype=np.float64)[: self.context.horizon]
        if targets.ndim != 2 or targets.shape[0] == 0:
            raise PolicyError(f"server returned no usable actions (shape {targets.shape})")
        return ActionChunk.uniform(observation.stamp, self.context.action_joints, targets, self.context.chunk_dt)

    def reset(self) -> None:
        pass  # the server keeps no episode state in the openpi protocol
