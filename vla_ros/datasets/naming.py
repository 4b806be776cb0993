"""A preset's rows as a LeRobotDataset names and scales them (the preset's ``dataset`` section), both ways."""

from __future__ import annotations

import numpy as np

from ..robots import RobotPreset


def names(robot: RobotPreset, joints: list[str]) -> list[str]:
    """Dataset names of ``joints`` (state_joints or action_joints)."""
    return [robot.dataset.joints.get(j, j) for j in joints]


def camera_name(robot: RobotPreset, key: str) -> str:
    return robot.dataset.cameras.get(key, key)


def _gripper_columns(robot: RobotPreset, joints: list[str]) -> list[tuple[int, float, float]]:
    by_joint = {g.joint: g for g in robot.grippers}
    return [(i, by_joint[j].open, by_joint[j].closed) for i, j in enumerate(joints) if j in by_joint]


def to_dataset(robot: RobotPreset, joints: list[str], values: np.ndarray) -> np.ndarray:
    """Joint values (rows of ``joints``) in the dataset's units (float32)."""
    out = np.array(values, np.float64)
    if robot.dataset.gripper != "metres":
        for i, opened, closed in _gripper_columns(robot, joints):
            unit = (out[..., i] - closed) / (opened - closed)
            out[..., i] = unit if robot.dataset.gripper == "open_is_1" else 1.0 - unit
    return out.astype(np.float32)


def from_dataset(robot: RobotPreset, joints: list[str], values: np.ndarray) -> np.ndarray:
    """Dataset rows back in joint units (float64): the inverse of ``to_dataset``."""
    out = np.array(values, np.float64)
    if robot.dataset.gripper != "metres":
        for i, opened, closed in _gripper_columns(robot, joints):
            unit = out[..., i] if robot.dataset.gripper == "open_is_1" else 1.0 - out[..., i]
            out[..., i] = closed + unit * (opened - closed)
    return out
