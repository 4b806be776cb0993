"""Parity-fixture helpers (ROS-free): the tiny sizes LeRobot's and openpi's fixtures were built with."""

from vla_ros.policies.paligemma_sizes import sizes_of as paligemma_sizes_of

__all__ = ["paligemma_sizes_of"]
