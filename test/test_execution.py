"""Chunk execution: quintic interpolation, merge modes, RTC weights, scheduling, motion limits."""

import numpy as np
import pytest

from vla_ros.core.chunk import ActionChunk
from vla_ros.core.control import ControlConfig, ControlCore
from vla_ros.core.interpolation import Interpolant
from vla_ros.core.limits import JointLimits
from vla_ros.core.merge import TimedTargets, blend_prefix, prefix_for, rtc_weights, temporal_ensemble
from vla_ros.core.otg import MotionLimiter
from vla_ros.core.scheduling import InferenceScheduler


def test_quintic_is_continuous_in_position_velocity_and_acceleration():
    t = np.array([0.0, 0.1, 0.2, 0.35, 0.5])
    y = np.array([[0.0], [0.1], [0.05], [0.3], [0.2]])
    f = Interpolant(t, y, "quintic", start_velocity=np.array([0.4]), start_acceleration=np.array([2.0]))
    for ti, yi in zip(t, y):
        assert f.sample(ti)[0][0] == pytest.approx(yi[0])
    eps = 1e-5

    def acc(x):
        return (f.sample(x + 1e-6)[1][0] - f.sample(x - 1e-6)[1][0]) / 2e-6

    assert f.sample(0.0)[1][0] == pytest.approx(0.4)
    assert acc(1.5e-6) == pytest.approx(2.0, abs=0.01)
    for ti in t[1:-1]:
        assert f.sample(ti - eps)[1][0] == pytest.approx(f.sample(ti + eps)[1][0], abs=1e-3)
        assert acc(ti - 2 * eps) == pytest.approx(acc(ti + 2 * eps), abs=0.05)
    for ti in np.linspace(0.01, 0.49, 13):  # reported velocity is the derivative of position
        num = (f.sample(ti + 1e-6)[0][0] - f.sample(ti - 1e-6)[0][0]) / 2e-6
        assert num == pytest.approx(f.sample(ti)[1][0], rel=1e-4, abs=1e-6)


def test_rtc_weights_match_hand_computed_values():
    # H = 10, d = 2, s = 3: W = 1 for i < 2; (7 - i) / 6 for 2 <= i < 7; 0 from i = 7.
    w = rtc_weights(10, 2, 3, "linear")
    np.testing.assert_allclose(w, [1, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0, 0, 0])
    e = rtc_weights(10, 2, 3, "exp")
    c = np.array([1, 1, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6, 0, 0, 0])
    np.testing.assert_allclose(e, c * np.expm1(c) / np.expm1(1.0))
    assert np.all(np.diff(w) <= 0) and np.all(e <= w + 1e-12)
    with pytest.raises(ValueError):
        rtc_weights(10, 2, 3, "cosine")


def test_blend_prefix_uses_the_previous_plan_only_where_it_exists():
    prev = Interpolant(np.array([0.0, 1.0]), np.array([[1.0], [1.0]]), "linear")
    times = np.array([0.5, 1.0, 1.5])
    out = blend_prefix(prev, times, np.zeros((3, 1)), np.array([0.75, 0.5, 0.5]))
    np.testing.assert_allclose(out[:, 0], [0.75, 0.5, 0.0])


def test_temporal_ensemble_weights_the_oldest_prediction_most():
    old = TimedTargets(np.array([0.0, 1.0]), np.array([[0.0], [0.0]]))
    mid = TimedTargets(np.array([0.5, 1.5]), np.array([[1.0], [1.0]]))
    out = temporal_ensemble([old, mid], np.array([0.75, 1.25]), np.array([[2.0], [2.0]]), k=1.0)
    w = np.exp(-np.arange(3.0))
    assert out[0, 0] == pytest.approx((0 * w[0] + 1 * w[1] + 2 * w[2]) / w.sum())
    w2 = np.exp(-np.arange(2.0))
    assert out[1, 0] == pytest.approx((1 * w2[0] + 2 * w2[1]) / w2.sum())


def test_prefix_for_reads_the_previous_chunk_on_the_new_grid():
    prev = ActionChunk.uniform(10.0, ["a", "b"], np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0]]), dt=0.1)
    values, valid = prefix_for(prev, 10.1, np.array([0.05, 0.1, 0.2, 0.3]), ["b", "a"])
    np.testing.assert_allclose(values[:2], [[1.5, 0.5], [2.0, 1.0]])
    assert valid.tolist() == [True, True, True, False]


def test_latency_aware_scheduler_starts_early_enough():
    s = InferenceScheduler("latency_aware", period=0.25, dt=0.1, horizon=10, execution_horizon=3,
                           quantile=90, margin=0.01)
    assert s.next_start() == -np.inf
    s.started(100.0)
    for lat in (0.05, 0.06, 0.05, 0.2, 0.05, 0.06):
        s.latency.add(lat)
    s.finished(0.05, stamp=100.0)
    est = s.latency_estimate()
    assert 0.06 <= est <= 0.2
    assert s.next_start() == pytest.approx(100.0 + 0.3 - est - 0.01)
    assert s.delay_steps() == int(np.ceil(est / 0.1))
    assert s.should_start(100.29 - est, busy=False) and not s.should_start(100.29 - est, busy=True)
    # a model slower than the execution horizon runs back to back, never before the last start
    s.latency = type(s.latency)(50)
    for _ in range(5):
        s.latency.add(0.5)
    assert s.next_start() == pytest.approx(100.0 + s.min_interval)
    fixed = InferenceScheduler("fixed", period=0.25, dt=0.1, horizon=10, execution_horizon=3)
    fixed.started(5.0)
    assert fixed.next_start() == 5.25


def test_motion_limiter_respects_velocity_and_acceleration():
    dt = 0.002
    lim = MotionLimiter(np.array([1.0, 2.0]), np.array([5.0, 5.0]), np.array([np.inf, 200.0]), dt)
    lim.reset(np.zeros(2))
    pos = [lim.position.copy()]
    for _ in range(1500):
        pos.append(lim.step(np.array([0.5, -0.8]), np.zeros(2)))
    pos = np.array(pos)
    vel = np.diff(pos, axis=0) / dt
    acc = np.diff(vel, axis=0) / dt
    assert np.all(np.abs(vel) <= np.array([1.0, 2.0]) + 1e-6)
    assert np.all(np.abs(acc) <= 5.0 + 1e-3)
    np.testing.assert_allclose(pos[-1], [0.5, -0.8], atol=1e-6)


def make_core(merge: str, **kw) -> ControlCore:
    limits = JointLimits(["a"], np.array([-5.0]), np.array([5.0]), np.array([10.0]), np.array([200.0]))
    cfg = ControlConfig(rate=500.0, merge=merge, interpolation="linear", use_motion_limits=False, **kw)
    core = ControlCore(limits, cfg)
    core.update_state(np.zeros(1), now=10.0)
    return core


def test_rtc_merge_blends_the_new_chunk_into_the_running_plan():
    core = make_core("rtc", rtc_schedule="linear")
    core.add_chunk(ActionChunk.uniform(10.0, ["a"], np.ones((10, 1)), dt=0.1), now=10.0)
    core.add_chunk(ActionChunk.uniform(10.3, ["a"], np.full((10, 1), 2.0), dt=0.1), now=10.32)
    # new chunk due at 10.4..11.3; previous plan ends at 11.0 -> overlap 7 steps; the blend ends by half the
    # chunk (s = max(10 - 7, 5) = 5), delay 0
    w = rtc_weights(10, 0, 5, "linear")
    expected = w * 1.0 + (1 - w) * 2.0
    np.testing.assert_allclose(core.plan.y[1:, 0], expected)
    latest = make_core("latest")
    latest.add_chunk(ActionChunk.uniform(10.0, ["a"], np.ones((10, 1)), dt=0.1), now=10.0)
    latest.add_chunk(ActionChunk.uniform(10.3, ["a"], np.full((10, 1), 2.0), dt=0.1), now=10.32)
    np.testing.assert_allclose(latest.plan.y[1:, 0], 2.0)


def test_a_target_due_within_a_quarter_spacing_is_skipped_when_a_later_one_follows():
    core = make_core("latest")
    core.add_chunk(ActionChunk.uniform(10.0, ["a"], np.ones((10, 1)), dt=0.1), now=10.0)
    values = np.arange(1.0, 11.0)[:, None]
    accepted = core.add_chunk(ActionChunk.uniform(10.3, ["a"], values, dt=0.1), now=10.38)
    # due 10.4 (in 20 ms < 25 ms) is skipped: the plan runs from the command straight to 10.5's target
    assert accepted.kept == 9 and core.plan.t[1] == pytest.approx(10.5) and core.plan.y[1, 0] == 2.0
    single = make_core("latest")
    single.add_chunk(ActionChunk.uniform(10.0, ["a"], np.ones((1, 1)), dt=0.2), now=10.19)
    assert single.plan.t[1] == pytest.approx(10.2)  # the only target is kept however close it is


def test_ensemble_merge_averages_overlapping_predictions():
    core = make_core("ensemble", ensemble_k=0.0)
    core.add_chunk(ActionChunk.uniform(10.0, ["a"], np.ones((10, 1)), dt=0.1), now=10.0)
    core.add_chunk(ActionChunk.uniform(10.3, ["a"], np.full((10, 1), 2.0), dt=0.1), now=10.32)
    y = core.plan.y[1:, 0]
    np.testing.assert_allclose(y[:7], 1.5)  # both chunks cover 10.4 .. 11.0, equal weights
    np.testing.assert_allclose(y[7:], 2.0)


def test_hold_brakes_within_the_acceleration_limit():
    limits = JointLimits(["a"], np.array([-5.0]), np.array([5.0]), np.array([2.0]), np.array([4.0]))
    core = ControlCore(limits, ControlConfig(rate=500.0, state_timeout=0.05))
    core.update_state(np.zeros(1), now=10.0)
    core.add_chunk(ActionChunk.uniform(10.0, ["a"], np.linspace(0.2, 4.0, 20)[:, None], dt=0.1), now=10.0)
    t, cmds = 10.0, []
    for _ in range(400):  # moving at speed
        t += 0.002
        core.update_state(core.command, now=t)
        cmds.append(core.tick(t).command[0])
    assert (cmds[-1] - cmds[-2]) / 0.002 > 1.0
    entered = None
    for _ in range(1000):  # joint states stop arriving
        t += 0.002
        out = core.tick(t)
        cmds.append(out.command[0])
        if out.holding and entered is None:
            entered, speed = len(cmds) - 2, (cmds[-2] - cmds[-3]) / 0.002
    assert out.holding and "stale" in out.reason and entered is not None
    vel = np.diff(cmds) / 0.002
    assert np.all(np.abs(np.diff(vel)) / 0.002 <= 4.0 + 1e-3)  # no abrupt stop
    assert abs(vel[-1]) < 1e-6 and np.all(vel[entered:] >= -1e-5)  # came to rest without reversing
    assert cmds[-1] - cmds[entered] == pytest.approx(speed**2 / (2 * 4.0), rel=0.05)


def test_unblended_joints_take_the_newest_chunk():
    limits = JointLimits(["a", "g"], np.array([-5.0, 0.0]), np.array([5.0, 1.0]), np.array([10.0, 10.0]))
    core = ControlCore(limits, ControlConfig(rate=500.0, merge="rtc", interpolation="linear",
                                             use_motion_limits=False, unblended=("g",)))
    core.update_state(np.zeros(2), now=10.0)
    core.add_chunk(ActionChunk.uniform(10.0, ["a", "g"], np.tile([1.0, 1.0], (10, 1)), dt=0.1), now=10.0)
    core.add_chunk(ActionChunk.uniform(10.3, ["a", "g"], np.tile([2.0, 0.0], (10, 1)), dt=0.1), now=10.32)
    assert 1.05 < core.plan.y[1, 0] < 1.95  # blended
    np.testing.assert_allclose(core.plan.y[1:, 1], 0.0)  # the gripper closes now
