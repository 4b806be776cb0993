"""Policy backends behind one small interface, picked by name through the registry."""

from .base import Policy, PolicyContext, PolicyError
from .registry import available_backends, backend_class, create_policy

__all__ = ["Policy", "PolicyContext", "PolicyError", "available_backends", "backend_class", "create_policy"]
