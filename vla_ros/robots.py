"""Robot presets: YAML files in config/robots/ naming joints, limits, controllers and cameras."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .core.kinematics import Chain
from .core.limits import JointLimits
from .core.urdf import UrdfModel, parse_urdf
from .paths import resolve, share_dir


@dataclass
class CameraSpec:
    """A camera: model image ``key``, ``width`` x ``height`` as its driver publishes (the sim renders at it)."""

    key: str
    name: str
    width: int
    height: int
    rate: float
    sim: dict[str, Any] = field(default_factory=dict)
    topic: str = ""  # the driver's image topic; default /<name>/image_raw

    @property
    def image_topic(self) -> str:
        return self.topic or f"/{self.name}/image_raw"

    @property
    def info_topic(self) -> str:
        return f"/{self.name}/camera_info"

    @property
    def frame_id(self) -> str:
        return f"{self.name}_optical_frame"


@dataclass
class ControllerSpec:
    name: str
    joints: list[str]


@dataclass
class RobotPreset:
    name: str
    path: Path
    data: dict[str, Any]

    @property
    def urdf_path(self) -> Path:
        return resolve(self.data["urdf"])

    @cached_property
    def urdf(self) -> UrdfModel:
        return parse_urdf(self.urdf_path)

    @property
    def arm_joints(self) -> list[str]:
        return list(self.data["arm_joints"])

    @property
    def state_joints(self) -> list[str]:
        return list(self.data["state_joints"])

    @property
    def action_joints(self) -> list[str]:
        return list(self.data["action_joints"])

    @property
    def grippers(self) -> list[dict[str, Any]]:
        """Every gripper ({joint, open, closed}); presets give ``gripper`` or a ``grippers`` list."""
        if self.data.get("grippers"):
            return [dict(g) for g in self.data["grippers"]]
        return [dict(self.data["gripper"])] if self.data.get("gripper") else []

    @property
    def gripper(self) -> dict[str, Any]:
        """The first gripper (empty dict if none)."""
        grippers = self.grippers
        return grippers[0] if grippers else {}

    @property
    def controllers(self) -> list[ControllerSpec]:
        return [ControllerSpec(c["name"], list(c["joints"])) for c in self.data["controllers"]]

    @property
    def cameras(self) -> list[CameraSpec]:
        return [CameraSpec(c["key"], c["name"], int(c["width"]), int(c["height"]), float(c.get("rate", 10.0)),
                           dict(c.get("sim") or {}), str(c.get("topic", ""))) for c in self.data.get("cameras", [])]

    def chain(self) -> Chain:
        return Chain(self.urdf, self.data["base_link"], self.data["ee_link"])

    def limits(self, joints: list[str] | None = None, velocity_scale: float | None = None) -> JointLimits:
        """URDF position and velocity limits (velocity x velocity_scale), preset acceleration and jerk limits.

        ``limits: {acceleration: {default: a, <joint>: a}, jerk: {...}}`` in the preset; missing = none.
        """
        joints = joints or self.action_joints
        scale = self.data.get("velocity_scale", 1.0) if velocity_scale is None else velocity_scale
        js = [self.urdf.joint(n) for n in joints]
        extra = self.data.get("limits") or {}

        def per_joint(kind: str) -> np.ndarray:
            table = extra.get(kind) or {}
            return np.array([float(table.get(n, table.get("default", np.inf))) for n in joints])

        return JointLimits(joints, np.array([j.lower for j in js]), np.array([j.upper for j in js]),
                           np.array([j.velocity for j in js]) * scale, per_joint("acceleration"), per_joint("jerk"))


def preset_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml"):
        return resolve(p)
    return share_dir() / "config" / "robots" / f"{name_or_path}.yaml"


def available_robots() -> list[str]:
    return sorted(p.stem for p in (share_dir() / "config" / "robots").glob("*.yaml"))


def load_robot(name_or_path: str) -> RobotPreset:
    """Load a preset by name (``widowx``) or YAML path."""
    path = preset_path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"unknown robot {name_or_path!r}; available: {available_robots()}")
    data = yaml.safe_load(path.read_text())
    for key in ("name", "urdf", "base_link", "ee_link", "arm_joints", "state_joints", "action_joints", "controllers"):
        if key not in data:
            raise ValueError(f"robot preset {path} lacks {key!r}")
    return RobotPreset(data["name"], path, data)
