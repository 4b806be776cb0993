"""Chunk validation and interpolants."""

import numpy as np
import pytest

from vla_ros.core.chunk import ActionChunk, ChunkError
from vla_ros.core.interpolation import Interpolant

NAMES = ("a", "b")


def chunk(times, values, stamp=100.0, names=NAMES):
    return ActionChunk(stamp, tuple(names), np.asarray(times, float), np.asarray(values, float))


def test_uniform_chunk_times_start_one_step_after_the_stamp():
    c = ActionChunk.uniform(10.0, NAMES, np.zeros((4, 2)), dt=0.1)
    np.testing.assert_allclose(c.times, [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(c.absolute_times, [10.1, 10.2, 10.3, 10.4])
    assert c.validate() is c


@pytest.mark.parametrize(
    "bad, reason",
    [
        (chunk(np.zeros(0), np.zeros((0, 2))), "no points"),
        (chunk([0.1, 0.1], np.zeros((2, 2))), "strictly increasing"),
        (chunk([0.2, 0.1], np.zeros((2, 2))), "strictly increasing"),
        (chunk([0.1, 0.2], [[0, np.nan], [0, 0]]), "NaN"),
        (chunk([0.1, 0.2], [[0, np.inf], [0, 0]]), "NaN"),
        (chunk([0.1], [[0, 0]], stamp=0.0), "stamp"),
        (chunk([0.1], [[0, 0]], names=("a", "a")), "repeats"),
        (chunk([0.1], [[0, 0, 0]]), "3 values for 2 joints"),
        (chunk([-0.1], [[0, 0]]), "non-negative"),
        (chunk([0.1, 2.0 ** 31], [[0, 0], [0, 0]]), "exceeds"),
        (chunk(np.arange(1, 10_002) * 1e-3, np.zeros((10_001, 2))), "exceeds"),
        (chunk([0.1, 0.10001], [[0, 0], [0, 0]]), "closer than 0.1 ms"),
        (chunk([0.1], [[0, 1e300]]), "beyond"),
        (ActionChunk(1.0, (), np.zeros(0), np.zeros((0, 0))), "no joint names"),
    ],
)
def test_invalid_chunks_are_rejected_with_a_reason(bad, reason):
    with pytest.raises(ChunkError, match=reason):
        bad.validate()


def test_select_reorders_and_names_missing_joints():
    c = chunk([0.1], [[1.0, 2.0]])
    np.testing.assert_array_equal(c.select(["b", "a"]), [[2.0, 1.0]])
    with pytest.raises(ChunkError, match="lacks"):
        c.select(["a", "z"])


def test_linear_interpolation_values():
    f = Interpolant(np.array([0.0, 1.0, 3.0]), np.array([[0.0], [1.0], [0.0]]), "linear")
    assert f.sample(0.5)[0][0] == pytest.approx(0.5)
    assert f.sample(2.0)[0][0] == pytest.approx(0.5)
    assert f.sample(2.0)[1][0] == pytest.approx(-0.5)
    assert f.sample(5.0)[0][0] == 0.0 and f.sample(5.0)[1][0] == 0.0
    assert f.sample(-1.0)[0][0] == 0.0


def test_cubic_passes_through_knots_with_continuous_velocity():
    t = np.array([0.0, 0.1, 0.25, 0.4, 0.5])
    y = np.array([[0.0], [0.2], [0.1], [0.5], [0.4]])
    f = Interpolant(t, y, "cubic", start_velocity=np.array([1.5]))
    for ti, yi in zip(t, y):
        assert f.sample(ti)[0][0] == pytest.approx(yi[0])
    assert f.sample(0.0)[1][0] == pytest.approx(1.5)
    eps = 1e-7
    for ti in t[1:-1]:
        left, right = f.sample(ti - eps)[1][0], f.sample(ti + eps)[1][0]
        assert left == pytest.approx(right, abs=1e-4)
    # numerical derivative of position agrees with the reported velocity
    for ti in np.linspace(0.01, 0.49, 17):
        num = (f.sample(ti + 1e-6)[0][0] - f.sample(ti - 1e-6)[0][0]) / 2e-6
        assert num == pytest.approx(f.sample(ti)[1][0], rel=1e-4, abs=1e-6)
    assert f.sample(0.5 - 1e-9)[1][0] == pytest.approx(0.0, abs=1e-6)


def test_interpolant_rejects_bad_knots():
    with pytest.raises(ValueError):
        Interpolant(np.array([0.0, 0.0]), np.zeros((2, 1)))
    with pytest.raises(ValueError):
        Interpolant(np.array([0.0, 1.0]), np.zeros((2, 1)), mode="spline9")
