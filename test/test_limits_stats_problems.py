"""Safety filter, rolling statistics, and report-once problem tracking."""

import threading

import numpy as np
import pytest

from vla_ros.core.limits import JointLimits, SafetyFilter
from vla_ros.core.problems import (
    LINES_PER_WINDOW,
    MAX_KEYS,
    MAX_MESSAGE,
    MESSAGES_PER_KEY,
    OTHER,
    LogBudget,
    ProblemTracker,
)
from vla_ros.core.stats import RateMeter, RollingStats


@pytest.fixture
def limits():
    return JointLimits(["a", "b"], np.array([-1.0, 0.0]), np.array([1.0, 0.5]), np.array([2.0, 1.0]))


def test_position_clamp_and_velocity_step(limits):
    f = SafetyFilter(limits)
    res = f.apply(np.array([5.0, 0.2]), np.array([0.95, 0.2]), dt=0.01)
    np.testing.assert_allclose(res.command, [0.97, 0.2])  # clamped to 1.0, then 2 rad/s * 10 ms
    assert res.clipped_position == ["a"] and res.clipped_velocity == ["a"]


def test_non_finite_target_holds_the_previous_command(limits):
    res = SafetyFilter(limits).apply(np.array([np.nan, 0.1]), np.array([0.3, 0.2]), dt=0.01)
    assert res.rejected_nonfinite
    np.testing.assert_array_equal(res.command, [0.3, 0.2])


def test_filter_never_moves_further_outside_limits(limits):
    f = SafetyFilter(limits, margin=0.1)
    res = f.apply(np.array([1.0, 0.5]), np.array([0.95, 0.45]), dt=0.01)
    assert res.command[0] <= 0.95 and res.command[1] <= 0.45


def test_limits_validate_shapes_and_order():
    with pytest.raises(ValueError, match="lower limit above upper"):
        JointLimits(["a"], np.array([1.0]), np.array([0.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="positive"):
        JointLimits(["a"], np.array([0.0]), np.array([1.0]), np.array([0.0]))
    with pytest.raises(ValueError, match="values each"):
        JointLimits(["a", "b"], np.array([0.0]), np.array([1.0]), np.array([1.0]))


def test_rolling_stats_and_rate_meter():
    s = RollingStats(window=100)
    for v in range(1, 201):
        s.add(v)
    assert len(s) == 100 and s.count == 200
    assert s.percentile(50) == pytest.approx(150.5)
    assert s.summary(2.0)["max"] == 400.0
    meter = RateMeter(0.01)
    for k, jitter in enumerate([0, 0.001, -0.001, 0, 0.002]):
        meter.tick(k * 0.01 + jitter)
    assert meter.rate == pytest.approx(1 / 0.0105, rel=1e-6)
    np.testing.assert_allclose(meter.period_error(), [0.001, 0.002, 0.001, 0.002], atol=1e-12)


def test_rate_meter_reports_the_recent_rate_after_a_startup_stall():
    meter = RateMeter(0.002, window=5000, rate_window=1000)
    t = 0.0
    meter.tick(t)
    t += 0.5  # a start-up stall, then steady 500 Hz
    for _ in range(3000):
        meter.tick(t)
        t += 0.002
    assert meter.rate == pytest.approx(500.0, rel=1e-6)
    assert meter.period_error().max() == pytest.approx(0.498)  # the stall stays in the period statistics


def test_problem_tracker_logs_once_counts_and_recovers():
    errors, infos = [], []
    p = ProblemTracker(errors.append, infos.append, clear_after=1.0)
    assert p.report("img", "bad encoding", now=0.0)
    for t in range(1, 10):
        assert not p.report("img", "bad encoding", now=t * 0.1)
    assert len(errors) == 1 and p.active["img"].count == 10 and p.totals["img"] == 10
    p.expire(now=0.95)
    assert "img" in p.active
    p.expire(now=2.0)
    assert "img" not in p.active and len(infos) == 1
    assert p.report("img", "bad encoding", now=3.0) and len(errors) == 2
    assert not p.report("img", "bad encoding", now=3.1)
    assert p.report("img", "wrong size 320x240", now=3.2) and len(errors) == 3  # a new kind is logged
    assert not p.report("img", "wrong size 640x480", now=3.3)  # same kind, other numbers: not logged
    assert p.active["img"].message == "wrong size 640x480" and p.totals["img"] == 14


def test_problem_tracker_logs_are_bounded_whatever_the_messages():
    """A flood of distinct texts (random joint names, encodings) under one key: a few lines, not one each."""
    errors = []
    p = ProblemTracker(errors.append, clear_after=1.0)
    for k in range(10_000):
        p.report("joint_states:missing", f"joint_states lack joints ['j{k}x', 'q{k}y'] " + "z" * (k % 5000), 0.001 * k)
    assert len(errors) == MESSAGES_PER_KEY
    assert all(len(e) < MAX_MESSAGE + 100 for e in errors)
    assert p.totals["joint_states:missing"] == 10_000 and len(p.active["joint_states:missing"].seen) == MESSAGES_PER_KEY
    for k in range(1000):
        p.report(f"key{k}", "x", 11.0)
    assert len(p.totals) == MAX_KEYS + 1 and p.totals[OTHER] == 1000 - (MAX_KEYS - 1)


def test_a_problem_that_comes_and_goes_is_logged_within_a_budget_per_window():
    """A bad instruction, then a good one, 1000 times: each is a new problem and a recovery, but the key
    logs at most LINES_PER_WINDOW lines per window; the next line after the window counts the rest."""
    lines, clock = [], [0.0]
    p = ProblemTracker(lines.append, lines.append)
    p.budget = LogBudget(clock=lambda: clock[0])
    for k in range(1000):
        p.report("instruction", "instruction names none of the objects", now=k)
        p.resolve("instruction")
    assert len(lines) == LINES_PER_WINDOW and p.totals["instruction"] == 1000
    clock[0] = 10.5
    p.report("instruction", "instruction names none of the objects", now=2000.0)
    assert len(lines) == LINES_PER_WINDOW + 1 and lines[-1].endswith(f"[{2000 - LINES_PER_WINDOW} similar line(s) "
                                                                     "not logged]")
    budget = LogBudget(lines=2, window=1.0, clock=lambda: clock[0])
    assert [budget.take("a"), budget.take("a"), budget.take("a"), budget.take("b")] == ["", "", None, ""]


def test_problem_tracker_and_stats_can_be_read_while_another_thread_writes():
    """The diagnostics timer reads while input/worker threads write (dict/deque mutated during iteration)."""
    p = ProblemTracker(lambda m: None)
    stats = RollingStats(100_000)
    done = threading.Event()

    def writer():
        for k in range(60_000):
            p.report(f"key{k}", f"problem {k}", now=k * 1e-3)
            stats.add(k)
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set():
        assert len(p.messages()) <= len(p.counts()) + 1
        stats.percentile(50)
        reads += 1
    thread.join()
    assert reads > 0 and sum(p.counts().values()) == 60_000 and len(p.counts()) == MAX_KEYS + 1
    assert len(stats) == 60_000
