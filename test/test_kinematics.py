"""URDF parsing and serial-chain kinematics against the published WidowX numbers."""

import numpy as np
import pytest

from vla_ros.core.transforms import (
    matrix_to_quat_wxyz,
    matrix_to_rpy,
    quat_wxyz_to_matrix,
    rotation_log,
    rpy_to_matrix,
)
from vla_ros.robots import load_robot


@pytest.fixture(scope="module")
def chain():
    return load_robot("widowx").chain()


def test_urdf_limits_match_the_interbotix_description():
    urdf = load_robot("widowx").urdf_model
    assert urdf.joint("shoulder").lower == pytest.approx(np.radians(-108), abs=1e-5)
    assert urdf.joint("shoulder").upper == pytest.approx(np.radians(114), abs=1e-5)
    assert urdf.joint("elbow").lower == pytest.approx(np.radians(-123), abs=1e-5)
    assert urdf.joint("wrist_angle").upper == pytest.approx(np.radians(123), abs=1e-5)
    assert urdf.joint("left_finger").lower == 0.015 and urdf.joint("left_finger").upper == 0.037
    assert urdf.joint("right_finger").mimic == ("left_finger", -1.0, 0.0)
    assert urdf.joint("waist").velocity == pytest.approx(np.pi, rel=1e-5)
    total = sum(link.inertial.mass for link in urdf.links.values() if link.inertial)
    assert total == pytest.approx(2.138, abs=0.005)


def test_forward_kinematics_matches_reference_poses(chain):
    assert chain.joint_names == ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"]
    home = chain.fk(np.zeros(6))
    np.testing.assert_allclose(home[:3, 3], [0.458325, 0.0, 0.36065], atol=1e-6)
    np.testing.assert_allclose(home[:3, :3], np.eye(3), atol=1e-9)
    sleep = chain.fk([0, -1.80, 1.55, 0, 0.8, 0])
    np.testing.assert_allclose(sleep[:3, 3], [0.1227, 0.0, 0.0813], atol=2e-4)


def test_jacobian_matches_finite_differences(chain):
    q = np.array([0.3, -0.2, 0.4, 0.1, 0.6, -0.3])
    jac = chain.jacobian(q)
    eps = 1e-6
    base = chain.fk(q)
    for i in range(6):
        dq = np.zeros(6)
        dq[i] = eps
        moved = chain.fk(q + dq)
        np.testing.assert_allclose((moved[:3, 3] - base[:3, 3]) / eps, jac[:3, i], atol=1e-5)
        np.testing.assert_allclose(rotation_log(moved[:3, :3] @ base[:3, :3].T) / eps, jac[3:, i], atol=1e-5)


def test_inverse_kinematics_recovers_reachable_poses(chain):
    rng = np.random.default_rng(0)
    for _ in range(20):
        q_true = rng.uniform(chain.lower * 0.6, chain.upper * 0.6)
        target = chain.fk(q_true)
        result = chain.ik(target, q_true + rng.normal(0, 0.1, 6))
        assert result.success, result
        np.testing.assert_allclose(chain.fk(result.q)[:3, 3], target[:3, 3], atol=1e-3)
        assert np.all(result.q >= chain.lower) and np.all(result.q <= chain.upper)


def test_rotation_conversions_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(50):
        rpy = rng.uniform([-3, -1.5, -3], [3, 1.5, 3])
        rot = rpy_to_matrix(rpy)
        np.testing.assert_allclose(matrix_to_rpy(rot), rpy, atol=1e-9)
        np.testing.assert_allclose(quat_wxyz_to_matrix(matrix_to_quat_wxyz(rot)), rot, atol=1e-9)
    near_pi = rpy_to_matrix([np.pi - 1e-6, 0, 0])
    assert np.linalg.norm(rotation_log(near_pi)) == pytest.approx(np.pi, abs=1e-5)


@pytest.mark.parametrize("name", ["widowx", "franka", "aloha"])
def test_inverse_kinematics_converges_in_a_few_steps_from_a_nearby_seed(name):
    """As the package solves (seeded with the previous step): Gauss-Newton near the goal, not a slow crawl."""
    robot = load_robot(name)
    arm = robot.chain()
    rng = np.random.default_rng(1)
    lo, hi = np.maximum(arm.lower, -np.pi), np.minimum(arm.upper, np.pi)
    iterations = []
    for _ in range(30):
        q = rng.uniform(lo, hi)
        result = arm.ik(arm.fk(q), np.clip(q + rng.uniform(-0.2, 0.2, arm.dof), arm.lower, arm.upper))
        assert result.success and result.position_error < 1e-4 and result.rotation_error < 1e-3
        iterations.append(result.iterations)
    assert np.median(iterations) <= 5, iterations


def test_restarts_reach_a_pose_the_home_seed_cannot(chain):
    """From home the solver stalls 0.4 mm off this pose (a joint limit in the way); a restart reaches it."""
    home = np.array(load_robot("widowx").sim.home)
    target = chain.fk(np.array([0.861, -0.84, -1.993, -3.038, 1.42, 2.593]))
    assert not chain.ik(target, home).success
    result = chain.ik(target, home, restarts=20)
    assert result.success and result.position_error < 1e-4
    np.testing.assert_allclose(chain.fk(result.q)[:3, 3], target[:3, 3], atol=1e-4)


def test_a_chunks_tool_path_is_the_forward_kinematics_of_its_targets():
    from vla_ros.core.chunk import ActionChunk
    from vla_ros.core.planned_path import tool_paths

    robot = load_robot("widowx")
    chain = robot.chain()
    state = np.array([0.0, -0.5, 0.4, 0.0, 1.2, 0.0, 0.03])
    targets = state[None, :6] + np.linspace(0.0, 0.3, 5)[:, None]
    chunk = ActionChunk.uniform(7.0, robot.arm_joints, targets, 0.1)  # the arm only: the finger is not on the chain
    path = tool_paths({"arm": chain}, chunk, robot.state_joints, state)["arm"]
    assert path.frame == robot.base_link and len(path.positions) == 6
    np.testing.assert_allclose(path.times, 7.0 + 0.1 * np.arange(6))
    np.testing.assert_allclose(path.positions[0], chain.fk(state[:6])[:3, 3])
    np.testing.assert_allclose(path.positions[-1], chain.fk(targets[-1])[:3, 3])
    assert np.allclose(np.linalg.norm(path.quats_wxyz, axis=1), 1.0)
    aloha = load_robot("aloha")
    both = tool_paths(aloha.arm_chains(), ActionChunk.uniform(0.0, aloha.action_joints, np.zeros((3, 14)), 0.02),
                      aloha.state_joints, None)
    assert set(both) == {"left", "right"} and len(both["left"].positions) == 3  # (no state: targets only)
