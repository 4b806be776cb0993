"""Shared fixtures: a unique ROS domain per test run, rclpy in the test process, graph processes."""

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
# One DDS domain per test run (parallel runs on this machine do not see each other), loopback only.
os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"


@pytest.fixture(scope="session")
def ros():
    rclpy = pytest.importorskip("rclpy")
    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()
