"""The backend interface: ``infer(observation) -> ActionChunk``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..core.chunk import ActionChunk
from ..core.observation import Observation
from ..params import ParamSpec
from ..robots import RobotPreset


class PolicyError(RuntimeError):
    """The backend cannot produce a chunk from this observation (bad input or bad model output)."""


@dataclass
class PolicyContext:
    """What a backend knows about the robot and the node's configuration."""

    robot: RobotPreset
    state_joints: list[str]
    action_joints: list[str]
    image_keys: list[str]
    image_size: tuple[int, int]  # (height, width) the node delivers
    chunk_dt: float
    horizon: int
    options: dict[str, Any] = field(default_factory=dict)  # the <backend>.* parameters


class Policy(ABC):
    """A VLA backend. Subclasses set ``name``, ``PARAMS`` and implement :meth:`infer`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    uses_images: ClassVar[bool] = True
    # how frames reach the model size: pad (keep aspect, pi0), stretch (OpenVLA) or none (as the camera sends them)
    resize: ClassVar[str] = "pad"
    extra_inputs: ClassVar[tuple[str, ...]] = ()  # privileged inputs, e.g. ("objects",) in simulation
    # Flow-matching backends that condition on the previous chunk's still-to-run actions (guided RTC
    # inpainting) set this; the node then passes observation.extras["prefix"] =
    # {"values": (H, A), "valid": (H,) bool, "delay": d steps, "execution_horizon": s}.
    supports_prefix: ClassVar[bool] = False
    PARAMS: ClassVar[list[ParamSpec]] = []  # declared as <backend>.<name> on the policy node

    def __init__(self, context: PolicyContext):
        self.context = context
        self.options = {p.name: context.options.get(p.name, p.default) for p in self.PARAMS}

    @classmethod
    def preflight(cls, options: dict[str, Any], robot: RobotPreset, node: dict[str, Any] | None = None) -> str:
        """Before any node starts: what this backend lacks with ``options`` (its <backend>.* parameters; ``node``:
        all the policy node's) on ``robot`` and what to set ('' when nothing is missing). Cheap: no model is
        loaded."""
        return ""

    @classmethod
    def cameras(cls, options: dict[str, Any], robot: RobotPreset) -> list[str] | None:
        """The preset camera keys this backend reads with ``options`` (None: every camera of the preset, when it
        reads images). Cheap: no model is loaded; the graph subscribes, renders and sends only these."""
        return None

    @abstractmethod
    def infer(self, observation: Observation) -> ActionChunk:
        """A chunk of absolute targets over ``context.action_joints`` stamped with ``observation.stamp``."""

    def reset(self) -> None:  # noqa: B027 (optional hook, not abstract)
        """Forget episode state (called on the policy node's reset service)."""

    def diagnostics(self) -> dict[str, Any]:
        """Backend figures for /diagnostics (load/capture timing, fallbacks, ...)."""
        return {}
