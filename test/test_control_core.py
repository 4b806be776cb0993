"""The controller core: stamp alignment, watchdog, limits, look-ahead."""

import numpy as np
import pytest

from vla_ros.core.chunk import ActionChunk, ChunkError
from vla_ros.core.control import ControlConfig, ControlCore
from vla_ros.core.limits import JointLimits

NAMES = ["j0", "j1"]


@pytest.fixture
def core():
    limits = JointLimits(NAMES, np.array([-1.0, -1.0]), np.array([1.0, 1.0]), np.array([1.0, 1.0]))
    c = ControlCore(limits, ControlConfig(rate=100.0, interpolation="linear", chunk_timeout=0.5,
                                          state_timeout=0.1, max_chunk_age=1.0))
    c.update_state(np.zeros(2), now=10.0)
    return c


def make_chunk(stamp, values, dt=0.1, names=NAMES):
    return ActionChunk.uniform(stamp, names, np.asarray(values, float), dt)


def test_no_command_before_the_first_joint_state():
    limits = JointLimits(NAMES, -np.ones(2), np.ones(2), np.ones(2))
    assert ControlCore(limits).tick(1.0) is None


def test_targets_already_due_are_dropped(core):
    # stamp 9.75: targets due at 9.85, 9.95 (past), 10.05, 10.15 (future)
    accepted = core.add_chunk(make_chunk(9.75, [[0.1, 0], [0.2, 0], [0.3, 0], [0.4, 0]]), now=10.0)
    assert accepted.kept == 2 and accepted.dropped_due == 2
    np.testing.assert_allclose(core.plan.t, [10.0, 10.05, 10.15])
    np.testing.assert_allclose(core.plan.y[:, 0], [0.0, 0.3, 0.4])


def test_plan_is_followed_and_first_tick_reports_the_chunk_stamp(core):
    core.add_chunk(make_chunk(10.0, [[0.05, -0.05]] * 3), now=10.0)
    first = core.tick(10.01)
    assert first.new_chunk_stamp == 10.0 and not first.holding
    assert core.tick(10.02).new_chunk_stamp is None
    for k in range(3, 40):
        core.update_state(core.command, now=10.0 + k * 0.01)
        out = core.tick(10.0 + k * 0.01)
    np.testing.assert_allclose(out.command, [0.05, -0.05], atol=1e-9)


def test_velocity_limit_bounds_every_step(core):
    core.add_chunk(make_chunk(10.0, [[0.9, -0.9]]), now=10.0)
    prev = core.command.copy()
    for k in range(1, 10):
        core.update_state(prev, now=10.0 + k * 0.01)
        out = core.tick(10.0 + k * 0.01)
        assert np.all(np.abs(out.command - prev) <= 1.0 * 0.01 + 1e-12)
        prev = out.command.copy()


def test_out_of_limit_targets_are_reported_and_clamped(core):
    accepted = core.add_chunk(make_chunk(10.0, [[5.0, 0.0]], dt=0.01), now=10.0)
    assert accepted.outside_limits == ["j0"]
    for k in range(1, 300):
        core.update_state(core.command, now=10.0 + k * 0.01)
        out = core.tick(10.0 + k * 0.01)
        assert out.command[0] <= 1.0
    assert out.command[0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "stamp, now, match",
    [(8.0, 10.0, "stale"), (11.0, 10.0, "future"), (9.0, 10.0, "already due")],
)
def test_late_stale_or_future_chunks_are_rejected(core, stamp, now, match):
    with pytest.raises(ChunkError, match=match):
        core.add_chunk(make_chunk(stamp, [[0.1, 0.1]] * 5 if match != "already due" else [[0.1, 0.1]]), now=now)


def test_unknown_joints_rejected_and_partial_chunk_holds_the_rest(core):
    with pytest.raises(ChunkError, match="unknown joints"):
        core.add_chunk(make_chunk(10.0, [[0.1]], names=["elbow"]), now=10.0)
    core.command = np.array([0.2, 0.3])
    core.add_chunk(make_chunk(10.0, [[0.25]], names=["j0"]), now=10.0)
    np.testing.assert_allclose(core.plan.y[-1], [0.25, 0.3])


def test_watchdog_holds_on_stale_state_and_stale_chunks(core):
    core.add_chunk(make_chunk(10.0, [[0.5, 0.5]] * 20), now=10.0)
    out = core.tick(10.05)
    assert not out.holding
    held = core.tick(10.2)  # last joint state at 10.0, timeout 0.1
    assert held.holding and "joint states stale" in held.reason
    np.testing.assert_array_equal(held.command, out.command)
    core.update_state(out.command, now=10.7)
    stale = core.tick(10.7)  # last chunk at 10.0, timeout 0.5, plan still running
    assert stale.holding and "chunks stale" in stale.reason and core.plan is None


def test_reset_resyncs_to_the_measured_state(core):
    core.add_chunk(make_chunk(10.0, [[0.5, 0.5]] * 5), now=10.0)
    core.tick(10.05)
    core.update_state(np.array([0.7, -0.2]), now=10.06)
    core.reset()
    assert core.plan is None
    np.testing.assert_array_equal(core.command, [0.7, -0.2])


def test_lookahead_points_are_limited_and_end_at_rest(core):
    core.add_chunk(make_chunk(10.0, [[0.9, 0.0]] * 5), now=10.0)
    core.tick(10.0)
    pos, vel = core.lookahead(10.0, 5, 0.02)
    steps = np.abs(np.diff(np.vstack([core.command, pos]), axis=0))
    assert np.all(steps <= 1.0 * 0.02 + 1e-12)
    assert np.all(vel[-1] == 0.0)


def test_halt_brakes_within_the_acceleration_limit_holds_and_resumes_from_the_measured_state():
    limits = JointLimits(NAMES, -np.full(2, 3.0), np.full(2, 3.0), np.ones(2), np.full(2, 4.0), np.full(2, 200.0))
    c = ControlCore(limits, ControlConfig(rate=500.0))
    c.update_state(np.zeros(2), now=1.0)
    c.add_chunk(make_chunk(1.0, [[0.1 * k, -0.1 * k] for k in range(1, 21)], dt=0.1), now=1.0)
    t = 1.0
    while t < 1.6:  # up to speed (1 rad/s on each joint)
        t += 0.002
        c.update_state(c.command, now=t)
        c.tick(t)
    assert np.all(np.abs(c.velocity) > 0.9)
    c.halt("launcher exited")
    with pytest.raises(ChunkError, match="halted"):
        c.add_chunk(make_chunk(t, [[0.0, 0.0]] * 5), now=t)
    velocities, commands = [c.velocity.copy()], []
    for _ in range(1000):
        t += 0.002
        c.update_state(c.command, now=t)
        out = c.tick(t)
        assert out.holding and out.reason == "launcher exited"
        velocities.append(out.velocity)
        commands.append(out.command)
    v = np.array(velocities)
    assert np.abs(np.diff(v, axis=0)).max() / 0.002 <= 4.0 * 1.01  # never a harder stop than allowed
    stopped = int(np.argmax(np.all(np.abs(v) < 1e-3, axis=1)))
    assert 0.2 < stopped * 0.002 < 0.5  # 1 rad/s at 4 rad/s^2 (jerk-limited ramps): ~0.3 s, not frozen
    assert c.at_rest and np.ptp(np.array(commands[stopped:]), axis=0).max() < 1e-6
    c.update_state(np.array([0.3, -0.2]), now=t)
    c.resume()
    assert not c.halted and np.allclose(c.command, [0.3, -0.2])
    c.add_chunk(make_chunk(t, [[0.35, -0.2]] * 3), now=t)
    assert not c.tick(t + 0.002).holding


def test_a_deviation_beyond_the_limit_brakes_and_holds_until_reset():
    """The arm stops following (blocked, unpowered): commanded vs measured beyond max_deviation on a checked
    joint halts the plan and holds, with the joint and gap as the reason; a gripper joint is exempt; reset()
    re-syncs to the measured state and clears it."""
    limits = JointLimits(NAMES + ["finger"], -np.full(3, 3.0), np.full(3, 3.0), np.ones(3), np.full(3, 4.0),
                         np.full(3, 200.0))
    c = ControlCore(limits, ControlConfig(rate=500.0, max_deviation=0.2, deviation_exempt=("finger",)))
    c.update_state(np.zeros(3), now=1.0)
    c.add_chunk(make_chunk(1.0, [[0.1 * k, 0.0, -0.1 * k] for k in range(1, 21)], dt=0.1, names=NAMES + ["finger"]),
                now=1.0)
    t = 1.0
    for _ in range(300):  # the finger is blocked at 0 (grasping): no stop however far its command goes
        t += 0.002
        c.update_state(np.array([c.command[0], c.command[1], 0.0]), now=t)
        out = c.tick(t)
        assert not out.holding
    assert c.command[2] < -0.25
    blocked = c.command[0]  # joint 0 now blocked too: its measured position stays
    reasons = []
    for _ in range(400):
        t += 0.002
        c.update_state(np.array([blocked, 0.0, 0.0]), now=t)
        out = c.tick(t)
        reasons.append(out.reason if out.holding else "")
    first = next(i for i, r in enumerate(reasons) if r)
    assert reasons[first].startswith("deviation: j0 commanded 0.20") and "held until reset" in reasons[first]
    assert 0.2 <= first * 0.002 * 1.0 + 0.002 <= 0.25  # tripped as the gap passed 0.2 rad at ~1 rad/s
    assert all(r.startswith("deviation") for r in reasons[first:]) and c.at_rest  # braked, then held
    with pytest.raises(ChunkError, match="halted"):  # chunks are dropped while it holds
        c.add_chunk(make_chunk(t, [[0.0, 0.0, 0.0]] * 2, names=NAMES + ["finger"]), now=t)
    c.reset()
    assert not c.deviation and np.allclose(c.command, [blocked, 0.0, 0.0])
    c.add_chunk(make_chunk(t, [[blocked, 0.0, 0.0]] * 3, names=NAMES + ["finger"]), now=t)
    assert not c.tick(t + 0.002).holding
