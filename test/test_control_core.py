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


@pytest.mark.parametrize("jump", [-50.0, 30.0])
def test_a_clock_jump_drops_the_plan_brakes_and_resumes_on_fresh_inputs(jump):
    """Sim time restarting (a reset, a looped bag) or leaping: the plan's times are meaningless after it.
    The arm brakes within its acceleration limit and holds; chunks stamped before the jump are refused;
    after fresh joint states, a chunk stamped in the new time runs."""
    limits = JointLimits(NAMES, -np.full(2, 3.0), np.full(2, 3.0), np.ones(2), np.full(2, 4.0), np.full(2, 200.0))
    c = ControlCore(limits, ControlConfig(rate=500.0))
    t = 100.0
    c.update_state(np.zeros(2), now=t)
    c.add_chunk(make_chunk(t, [[0.1 * k, -0.1 * k] for k in range(1, 11)]), now=t)
    for _ in range(150):  # moving at ~1 rad/s
        t += 0.002
        c.update_state(c.command, now=t)
        out = c.tick(t)
    assert not out.holding and np.abs(out.velocity).max() > 0.5
    old_stamp, t = t, t + jump
    commands, reasons = [], []
    for k in range(300):
        t += 0.002
        if k >= 5:  # the robot's driver stamps in the new time a few ticks later
            c.update_state(c.command, now=t)
        out = c.tick(t)
        commands.append(out.command.copy())
        reasons.append(out.reason)
    assert reasons[0].startswith(f"clock jumped {jump + 0.002:+.3f} s") and c.clock.count == 1
    assert reasons[1] == "joint states stale (none since the clock jumped)"
    assert all(r for r in reasons) and c.at_rest and c.plan is None  # held, no plan
    acc = np.diff(np.array(commands), 2, axis=0) / 0.002**2
    assert np.abs(acc).max() <= 4.0 + 1e-6  # braked within the acceleration limit, no step
    with pytest.raises(ChunkError):  # a chunk in flight from before the jump: stale or from the future
        c.add_chunk(make_chunk(old_stamp, [[0.0, 0.0]] * 10), now=t)
    rest = c.command.copy()
    c.add_chunk(make_chunk(t, [rest + 0.05] * 10), now=t)
    t += 0.002
    assert not c.tick(t).holding


def test_the_workspace_box_brakes_the_arm_before_the_wall_and_lets_it_move_back():
    """WidowX over a table: the box's floor at z = 0.10 m. A chunk lowering the tool to z = 0.047 m is cut short:
    the arm brakes within its limits and holds above the floor, the reason on the tick results; a chunk back up
    runs. Home puts the tool at (0.218, 0, 0.227) m (forward kinematics of the URDF)."""
    from vla_ros.core.workspace import WorkspaceBox
    from vla_ros.robots import load_robot

    robot = load_robot("widowx")
    joints = robot.action_joints
    box = WorkspaceBox(robot.chain(), joints, [0.05, -0.4, 0.10], [0.5, 0.4, 0.5])
    c = ControlCore(robot.limits_for(joints), ControlConfig(rate=500.0), box)
    home = np.array([0.0, -0.55, 0.45, 0.0, 1.3, 0.0, 0.03])
    np.testing.assert_allclose(box.position(home), [0.218, 0.0, 0.227], atol=1e-3)
    t = 10.0
    c.update_state(home, now=t)
    down = np.array([home + [0.0, 0.075 * k, 0, 0, 0, 0, 0] for k in range(1, 11)])  # shoulder to 0.2: z 0.047
    c.add_chunk(make_chunk(t, down, names=joints), now=t)
    zs, reasons, cmds = [], [], []
    for _ in range(1000):
        t += 0.002
        c.update_state(c.command, now=t)
        out = c.tick(t)
        zs.append(box.position(out.command)[2])
        reasons.append(out.reason if out.holding else "")
        cmds.append(out.command.copy())
    first = next(i for i, r in enumerate(reasons) if r)
    assert reasons[first].startswith("workspace: end effector would reach") and "outside the box" in reasons[first]
    assert all(r == reasons[first] for r in reasons[first:])  # held, with that reason, until a chunk is accepted
    assert min(zs) >= 0.10 - 0.002 and zs[first] > 0.10  # braked before the floor (look-ahead 0.2 s)
    assert c.at_rest and max(zs) - min(zs) > 0.05  # it had moved down a good way first
    acc = np.diff(np.array(cmds)[:, 1], 2) / 0.002**2
    assert np.abs(acc).max() <= 8.0 + 1e-6
    up = np.array([c.command + [0.0, -0.03 * k, 0, 0, 0, 0, 0] for k in range(1, 11)])
    c.add_chunk(make_chunk(t, up, names=joints), now=t)
    for _ in range(50):
        t += 0.002
        c.update_state(c.command, now=t)
        assert not c.tick(t).holding
    with pytest.raises(ValueError, match="min < max"):
        WorkspaceBox(robot.chain(), joints, [0.5, 0, 0], [0.1, 1, 1])


def test_an_arm_outside_its_box_may_move_back_in_but_not_further_out():
    from vla_ros.core.workspace import WorkspaceBox
    from vla_ros.robots import load_robot

    robot = load_robot("widowx")
    box = WorkspaceBox(robot.chain(), robot.action_joints, [0.05, -0.4, 0.10], [0.5, 0.4, 0.5])
    low = np.array([0.0, 0.2, 0.45, 0.0, 1.3, 0.0, 0.03])  # z 0.047: below the floor
    lower = low + [0, 0.1, 0, 0, 0, 0, 0]
    higher = low - [0, 0.1, 0, 0, 0, 0, 0]
    assert box.leaving(lower, low).startswith("workspace:")
    assert box.leaving(higher, low) == "" and box.leaving(low, low) == ""


def test_clock_jumps_are_counted_but_the_first_sim_time_is_not_one():
    from vla_ros.core.clock import ClockJumps

    c = ClockJumps()
    assert [c.check(t) for t in (0.0, 0.0, 1000.0, 1000.002, 1000.9, 1002.0, 950.0, 950.002)] == \
        [0.0, 0.0, 0.0, 0.0, 0.0, pytest.approx(1.1), pytest.approx(-52.0), 0.0]
    assert c.count == 2
