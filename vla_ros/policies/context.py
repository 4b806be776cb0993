"""One way to build a backend's :class:`PolicyContext` from policy-node parameters.

The policy node, ``vla-ros serve``, the benchmarks and the tests all call :func:`policy_context`, so a
parameter means the same everywhere. Parameters are the policy node's (``image_keys``, ``horizon``,
...; missing ones take their declared defaults) plus the backend's own as ``<backend>.<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.image import parse_size
from ..params import POLICY_PARAMS
from ..robots import RobotPreset
from .base import PolicyContext
from .registry import backend_class

DEFAULTS = {p.name: p.default for p in POLICY_PARAMS}
GRAPH_PARAMS = {"use_sim_time"}  # set by the launch on every node


def camera_inputs(robot: RobotPreset, params: Mapping[str, Any],
                  uses_images: bool = True) -> tuple[list[str], list[str], list[str]]:
    """(image keys, topics, declared sizes 'WxH'): the parameters', else the preset's cameras (none for a
    backend that reads no images: an ALOHA's four 640x480 views cost the sim ~40 ms and DDS ~37 MB/s at
    10 Hz for nothing)."""
    keys, topics = list(params.get("image_keys") or []), list(params.get("image_topics") or [])
    sizes = list(params.get("image_sizes") or [])
    if not keys and not topics and uses_images:
        keys = [c.key for c in robot.cameras]
        topics = [c.image_topic for c in robot.cameras]
        sizes = sizes or [f"{c.width}x{c.height}" for c in robot.cameras]
    if len(keys) != len(topics):
        raise ValueError(f"image_keys ({len(keys)}) and image_topics ({len(topics)}) differ in length")
    sizes = sizes or [""] * len(keys)
    if len(sizes) != len(keys):
        raise ValueError(f"image_sizes ({len(sizes)}) and image_keys ({len(keys)}) differ in length")
    for size in sizes:
        parse_size(size)
    return keys, topics, sizes


def policy_context(robot: RobotPreset, params: Mapping[str, Any]) -> PolicyContext:
    """The backend context for ``params`` (flat: node parameters and ``<backend>.<name>`` options)."""
    values = {**DEFAULTS, **params}
    backend = values["backend"]
    cls = backend_class(backend)
    prefix = backend + "."
    options = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
    unknown_options = sorted(set(options) - {p.name for p in cls.PARAMS})
    if unknown_options:
        raise ValueError(f"unknown {backend} parameters {unknown_options}; known: {sorted(p.name for p in cls.PARAMS)}")
    unknown = sorted(k for k in params if "." not in k and k not in DEFAULTS and k not in GRAPH_PARAMS)
    if unknown:
        raise ValueError(f"unknown policy parameters {unknown}")
    keys, _, _ = camera_inputs(robot, values, cls.uses_images)
    state = list(values["state_joints"] or robot.state_joints)
    action = list(values["action_joints"] or robot.action_joints)
    for label, joints, known in (("state_joints", state, robot.state_joints + robot.action_joints),
                                 ("action_joints", action, robot.action_joints)):
        bad = [j for j in joints if j not in known]
        if bad:
            raise ValueError(f"{label} {bad} are not joints of robot {robot.name!r}")
    return PolicyContext(robot, state, action, keys, (int(values["image_height"]), int(values["image_width"])),
                         float(values["chunk_dt"]), int(values["horizon"]), options)
