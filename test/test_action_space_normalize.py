"""Bin tokeniser, normalisation statistics and action spaces (ROS-free)."""

import numpy as np
import pytest

from vla_ros.core.action_space import ActionSpace, GripperMap, from_preset
from vla_ros.core.normalize import NormStats, Stats
from vla_ros.core.tokenizers import BinTokenizer
from vla_ros.robots import ActionGripperSpec, ActionSpaceSpec, load_robot


def test_bin_tokenizer_matches_hand_computed_openvla_values():
    tok = BinTokenizer(vocab_size=32000, n_bins=256)
    # bins = linspace(-1, 1, 256): 0.0 falls in bin 128 -> token 31872 -> centre 127 = 0.0
    assert tok.encode(np.array([0.0])).tolist() == [31872]
    assert tok.decode(np.array([31872]))[0] == pytest.approx(0.0, abs=1e-12)
    # 1.0 -> digitize 256 -> token 31744 -> index clip(255, 0, 254) = 254 -> (bins[254] + 1) / 2
    assert tok.encode(np.array([1.0, -1.0])).tolist() == [31744, 31999]
    assert tok.decode(np.array([31744]))[0] == pytest.approx((1 - 2 / 255 + 1) / 2)
    assert tok.decode(np.array([31999]))[0] == pytest.approx(-(1 - 2 / 255 + 1) / 2)
    # anything outside the action range clips to the edge bins
    assert tok.decode(np.array([5, 40000])).tolist() == [tok.centers[-1], tok.centers[0]]
    x = np.linspace(-0.99, 0.99, 101)
    assert np.abs(tok.decode(tok.encode(x)) - x).max() <= 1 / 255 + 1e-12  # round trip within half a bin


def test_normalisation_round_trips_and_formulas():
    s = Stats(mean=np.array([1.0, -2.0]), std=np.array([0.5, 2.0]), q01=np.array([-1.0, 0.0]),
              q99=np.array([1.0, 4.0]), mask=np.array([True, False]))
    x = np.array([[1.5, 0.0, 9.0], [0.0, 4.0, -9.0]])  # third column: padding, passes through
    for mode in ("zscore", "quantile", "identity"):
        np.testing.assert_allclose(s.unnormalize(s.normalize(x, mode), mode), x, atol=1e-9)
    np.testing.assert_allclose(s.normalize(x, "zscore")[0, :2], [(1.5 - 1) / (0.5 + 1e-6), 2.0 / (2 + 1e-6)])
    np.testing.assert_allclose(s.normalize(x, "quantile")[1, :2], [(0 + 1) / (2 + 1e-6) * 2 - 1,
                                                                   4 / (4 + 1e-6) * 2 - 1])
    np.testing.assert_allclose(s.unnormalize_bounds(np.array([0.0, 0.7])), [0.0, 0.7])
    with pytest.raises(ValueError, match="lack"):
        Stats(mean=np.zeros(2)).normalize(x, "zscore")


def test_norm_stats_file_round_trip(tmp_path):
    stats = NormStats("quantile", Stats(q01=np.zeros(3), q99=np.ones(3)), Stats(mean=np.ones(2), std=np.ones(2)))
    stats.save(tmp_path)
    back = NormStats.load(tmp_path)
    assert back.mode == "quantile" and back.state.q99.tolist() == [1, 1, 1] and back.actions.std.tolist() == [1, 1]


def test_openpi_nested_norm_stats_load_and_unusable_files_fail_at_load(tmp_path):
    """openpi writes {"norm_stats": {"state": {mean, std, q01, q99}, "actions": {...}}} (no mode): it loaded as
    empty statistics and failed at the first inference."""
    import json

    stats = {"mean": [0.5, -1.0], "std": [2.0, 0.25], "q01": [-3.0, -2.0], "q99": [4.0, 0.0]}
    (tmp_path / "norm_stats.json").write_text(json.dumps({"norm_stats": {"state": stats, "actions": stats}}))
    back = NormStats.load(tmp_path)
    assert back.mode == "zscore" and back.state.std.tolist() == [2.0, 0.25] and back.actions.q99.tolist() == [4, 0]
    np.testing.assert_allclose(back.actions.unnormalize(np.array([[1.0, -2.0]]), "zscore"),
                               [[0.5 + 1.0 * (2.0 + 1e-6), -1.0 - 2.0 * (0.25 + 1e-6)]])
    np.testing.assert_allclose(back.actions.unnormalize(np.array([[0.0, 1.0]]), "quantile"),
                               [[0.5 * (7.0 + 1e-6) - 3.0, 1.0 * (2.0 + 1e-6) - 2.0]], atol=1e-12)
    for bad, text in (({"norm_stats": {}}, "no usable 'state'"), ({"state": {"mean": [0]}, "actions": {}},
                                                                 r"state: \['mean'\]"), ([], "no usable")):
        (tmp_path / "norm_stats.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=text):
            NormStats.load(tmp_path)
    (tmp_path / "norm_stats.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot read normalisation statistics"):
        NormStats.load(tmp_path)


def test_joint_action_spaces():
    grip = GripperMap("g", model_closed=0.0, model_open=1.0, closed=0.015, open=0.037)
    state = np.array([0.5, -0.2, 0.02])
    actions = np.array([[0.1, 0.2, 1.0], [0.2, 0.4, 0.0]])
    absolute = ActionSpace("joint_absolute", ["a", "b", "g"], ["a", "b", "g"], 0.1, [grip])
    np.testing.assert_allclose(absolute.to_targets(actions, state), [[0.1, 0.2, 0.037], [0.2, 0.4, 0.015]])
    delta = ActionSpace("joint_delta", ["a", "b", "g"], ["a", "b", "g"], 0.1, [grip])
    np.testing.assert_allclose(delta.to_targets(actions, state)[:, :2], [[0.6, 0.0], [0.7, 0.2]])
    vel = ActionSpace("joint_velocity", ["a", "b", "g"], ["a", "b", "g"], 0.1, [grip])
    np.testing.assert_allclose(vel.to_targets(actions, state)[:, :2], [[0.51, -0.18], [0.53, -0.14]])
    with pytest.raises(ValueError, match="NaN"):
        absolute.to_targets(np.array([[np.nan, 0, 0]]), state)
    assert grip.to_model(grip.to_joint(np.array([0.25]))) == pytest.approx(0.25)


def test_joint_valued_grippers_pass_through_over_the_joints_limits(monkeypatch):
    """The builtin model's grippers are joint values: an ALOHA follower's 0.021 (its lower limit, where the
    transfer expert squeezes the cube) must reach the controller, not stop at the preset's closed 0.044 (the
    fingers then rest open of the cube and the lift leaves it behind); beyond the limits it is clipped."""
    robot = load_robot("aloha")
    joints = {j.name: j for j in robot.urdf_model.joints}
    spec = ActionSpaceSpec("joint_delta", ActionGripperSpec(model_closed=None, model_open=None),
                           model_dims=list(robot.action_joints))
    space = from_preset(robot, 0.02, spec)
    for grip in robot.grippers:
        m = space.gripper_of(grip.joint)
        low = joints[grip.joint].lower
        assert low < grip.closed
        np.testing.assert_allclose(m.to_joint(np.array([low - 0.01, low, 0.03, grip.open + 0.01])),
                                   [low, low, 0.03, grip.open])
    # a model in the preset's own gripper units keeps the preset's range
    preset = from_preset(robot, 0.02).gripper_of(robot.grippers[0].joint)
    assert preset.to_joint(np.array([-0.5]))[0] == pytest.approx(robot.grippers[0].closed)
    for name in ("widowx", "franka"):  # their presets span the joint's limits: unchanged
        other = load_robot(name)
        grip = other.grippers[0]
        m = from_preset(other, 0.1, ActionSpaceSpec("joint_delta", ActionGripperSpec(None, None),
                                                    model_dims=list(other.action_joints))).gripper_of(grip.joint)
        assert (m.closed, m.open) == (grip.closed, grip.open)
    # a finger the description leaves unlimited (infinite bounds): the preset's range, never an infinite one
    finger = robot.urdf_model.joint(robot.grippers[0].joint)
    monkeypatch.setattr(finger, "lower", -np.inf)
    monkeypatch.setattr(finger, "upper", np.inf)
    m = from_preset(robot, 0.02, spec).gripper_of(finger.name)
    np.testing.assert_allclose(m.to_joint(np.array([0.0, 0.05, 1.0])), [robot.grippers[0].closed, 0.05,
                                                                        robot.grippers[0].open])


def test_end_effector_deltas_compose_onto_the_pose_at_capture():
    robot = load_robot("widowx")
    spec = ActionSpaceSpec("ee_delta", ActionGripperSpec(model_closed=0.0, model_open=1.0))
    space = from_preset(robot, 0.2, spec)
    chain = robot.chain()
    state = np.array([0.0, -0.3, 0.5, 0.0, 1.0, 0.0, 0.03])
    start = chain.fk(state[:6])
    actions = np.array([[0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], [0.0, 0.02, -0.01, 0.0, 0.0, 0.1, 0.0]])
    targets = space.to_targets(actions, state)
    first, second = chain.fk(targets[0, :6]), chain.fk(targets[1, :6])
    np.testing.assert_allclose(first[:3, 3] - start[:3, 3], [0.01, 0.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(second[:3, 3] - first[:3, 3], [0.0, 0.02, -0.01], atol=1e-3)
    yaw = np.arctan2(second[1, 0], second[0, 0]) - np.arctan2(first[1, 0], first[0, 0])
    assert yaw == pytest.approx(0.1, abs=2e-3)
    assert targets[0, 6] == pytest.approx(0.037) and targets[1, 6] == pytest.approx(0.015)


def test_bridge_rotation_deltas_are_static_xyz_euler_left_multiplied_in_the_base_frame():
    """BridgeData's rotation columns are roll, pitch, yaw about the base's fixed axes (transforms3d's default
    'sxyz', as SimplerEnv's Bridge eval converts them with euler2axangle): R_delta = Rz(yaw) Ry(pitch) Rx(roll),
    applied on the left of the tool's orientation (about base axes at the tool, not tool axes)."""
    robot = load_robot("widowx")
    space = from_preset(robot, 0.2, ActionSpaceSpec("ee_delta", ActionGripperSpec(model_closed=0.0, model_open=1.0)))
    chain = robot.chain()
    state = np.array([0.1, -0.3, 0.5, 0.0, 1.0, 0.0, 0.03])
    start = chain.fk(state[:6])[:3, :3]
    r, p, y = 0.08, -0.06, 0.1
    c, s = np.cos, np.sin
    rx = np.array([[1, 0, 0], [0, c(r), -s(r)], [0, s(r), c(r)]])
    ry = np.array([[c(p), 0, s(p)], [0, 1, 0], [-s(p), 0, c(p)]])
    rz = np.array([[c(y), -s(y), 0], [s(y), c(y), 0], [0, 0, 1]])
    target = space.to_targets(np.array([[0.0, 0.0, 0.0, r, p, y, 1.0]]), state)[0]
    reached = chain.fk(target[:6])[:3, :3]
    np.testing.assert_allclose(reached, rz @ ry @ rx @ start, atol=2e-3)
    for wrong in (rx @ ry @ rz @ start, start @ rz @ ry @ rx):  # other orders / the tool frame: measurably apart
        assert np.abs(reached - wrong).max() > 5e-3


def test_openpi_aloha_transforms_match_hand_computed_values():
    """openpi aloha_policy (adapt_to_pi) + DeltaActions(6, -1, 6, -1), for pi0 run in process."""
    from vla_ros.core.aloha import OpenpiAloha

    t = OpenpiAloha((0.021, 0.057))
    state = np.array([0.1, -0.9, 1.1, 0.0, -0.3, 0.2, 0.05, -0.1, -0.8, 1.0, 0.1, -0.2, 0.0, 0.03])
    model = t.state(state)
    np.testing.assert_allclose(model[:6], [0.1, 0.9, -1.1, 0.0, -0.3, 0.2])  # shoulder and elbow flipped
    # finger 0.05 m: sin t = (0.022^2 + 0.05^2 - 0.036^2) / (2 x 0.022 x 0.05) = 0.767273, t = 0.87458 rad,
    # normalised over the pi gripper range 0.5476 .. 1.6296: 0.30220; finger 0.03 m: sin t = 0.066667 -> -0.44444
    np.testing.assert_allclose(model[[6, 13]], [0.30220, -0.44444], atol=1e-5)
    actions = np.zeros((2, 14))
    actions[1, 1] = 0.1  # shoulder +0.1 in the model's (flipped) space
    actions[1, 6] = 0.5  # gripper motor at 0.5 + 0.5476 = 1.0476 rad
    targets = t.targets(actions, state)
    np.testing.assert_allclose(targets[0, [0, 1, 2]], state[[0, 1, 2]])  # zero deltas: the state
    assert targets[1, 1] == pytest.approx(-1.0)  # -0.9 flipped to 0.9, + 0.1, flipped back
    # motor 0.5476 rad: 0.022 sin + sqrt(0.036^2 - (0.022 cos)^2) = 0.011456 + 0.030712 = 0.042168 m
    # motor 1.0476 rad: 0.019060 + 0.034282 = 0.053342 m
    np.testing.assert_allclose(targets[:, 6], [0.042168, 0.053342], atol=1e-5)
    np.testing.assert_allclose(t.model_actions(targets, state), actions, atol=1e-12)
    absolute = OpenpiAloha((0.021, 0.057), delta=False).targets(actions, state)
    assert absolute[0, 1] == 0.0 and absolute[1, 1] == pytest.approx(-0.1)
