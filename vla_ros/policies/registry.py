"""Backend registry: names map to ``module:Class`` strings imported only when used."""

from __future__ import annotations

import importlib

from .base import Policy, PolicyContext

_BACKENDS: dict[str, str] = {
    "builtin": "vla_ros.policies.builtin:BuiltinPolicy",
    "scripted": "vla_ros.policies.scripted:ScriptedPickPolicy",
    "pi0": "vla_ros.policies.pi0:Pi0Policy",
    "pi05": "vla_ros.policies.pi05:Pi05Policy",
    "smolvla": "vla_ros.policies.smolvla:SmolVlaPolicy",
    "pi0fast": "vla_ros.policies.pi0fast:Pi0FastPolicy",
    "openvla": "vla_ros.policies.openvla:OpenVlaPolicy",
    "openpi": "vla_ros.policies.openpi_remote:OpenpiRemotePolicy",
}


def register_backend(name: str, target: str) -> None:
    """Add a backend (``"package.module:Class"``); later registrations win."""
    _BACKENDS[name] = target


def available_backends() -> list[str]:
    return sorted(_BACKENDS)


def backend_class(name: str) -> type[Policy]:
    if name not in _BACKENDS:
        raise KeyError(f"unknown policy backend {name!r}; available: {available_backends()}")
    module, _, attr = _BACKENDS[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise TypeError(f"{_BACKENDS[name]} is not a Policy subclass")
    return cls


def create_policy(name: str, context: PolicyContext) -> Policy:
    return backend_class(name)(context)
