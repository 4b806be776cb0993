"""Property tests (hypothesis) of the paths every untrusted message takes: image decoding, chunk
validation, and the control core under arbitrary chunks and joint states."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vla_ros.core.chunk import ActionChunk, ChunkError
from vla_ros.core.control import ControlConfig, ControlCore
from vla_ros.core.image import ImageError, decode_image
from vla_ros.core.limits import JointLimits

NAMES = ("a", "b", "c")
LOWER, UPPER = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 2.0, 0.04])
VELOCITY = np.array([1.0, 2.0, 0.1])
floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
encodings = st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "16UC1", "", "RGB8", "yuv422", "x" * 300])


@settings(max_examples=300, deadline=None)
@given(encodings, st.integers(-5, 70), st.integers(-5, 70), st.integers(-5, 300), st.binary(max_size=20_000))
def test_any_raw_image_decodes_to_rgb_or_is_rejected(encoding, height, width, step, data):
    try:
        image = decode_image(encoding, height, width, step, data)
    except ImageError as exc:
        assert exc.kind in ("encoding", "layout") and str(exc)
        return
    assert image.shape == (height, width, 3) and image.dtype == np.uint8


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(floats, min_size=3, max_size=3), max_size=12), st.lists(floats, max_size=12), floats)
def test_any_chunk_is_valid_or_rejected_with_a_reason(rows, times, stamp):
    n = min(len(rows), len(times))
    chunk = ActionChunk(stamp, NAMES, np.array(times[:n]), np.array(rows[:n]).reshape(n, 3))
    try:
        chunk.validate()
    except ChunkError as exc:
        assert str(exc)
        return
    assert np.all(np.isfinite(chunk.values)) and np.all(np.diff(chunk.times) > 0) and chunk.stamp > 0


events = st.lists(st.one_of(
    st.tuples(st.just("chunk"), st.lists(st.lists(floats, min_size=3, max_size=3), min_size=1, max_size=6),
              st.floats(-0.5, 0.5), st.floats(1e-5, 2.0)),
    st.tuples(st.just("state"), st.lists(floats, min_size=3, max_size=3)),
    st.tuples(st.just("tick"), st.integers(1, 60)),
    st.tuples(st.just("halt"), st.booleans()),
), max_size=40)


@pytest.mark.parametrize("motion_limits", [True, False])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events)
def test_control_core_commands_stay_within_limits_whatever_it_is_fed(motion_limits, events):
    """NaN/inf/huge targets and states, stamps off by up to 0.5 s, any spacing, halts: every command is
    finite, inside the position limits, and moves at most the velocity limit per tick."""
    limits = JointLimits(list(NAMES), LOWER, UPPER, VELOCITY, np.array([4.0, 8.0, 1.0]), np.array([100.0] * 3))
    core = ControlCore(limits, ControlConfig(rate=500.0, use_motion_limits=motion_limits))
    now, dt = 1.0, 0.002
    core.update_state(np.zeros(3), now)
    previous = core.command.copy()
    for event in events:
        if event[0] == "chunk":
            values, offset, spacing = np.array(event[1]), event[2], event[3]
            chunk = ActionChunk.uniform(now + offset, NAMES, values, spacing)
            try:
                core.add_chunk(chunk, now)
            except ChunkError:
                pass
        elif event[0] == "state":
            state = np.array(event[1])
            if np.all(np.isfinite(state)):  # (the nodes drop non-finite states before the core)
                core.update_state(state, now)
        elif event[0] == "halt":
            if event[1]:
                core.halt("test")
            else:
                core.resume()  # re-syncs to the measured state: the command starts again from there
                previous = core.command.copy()
        else:
            for _ in range(event[1]):
                now += dt
                result = core.tick(now)
                cmd = result.command
                assert np.all(np.isfinite(cmd)) and np.all(cmd >= LOWER - 1e-12) and np.all(cmd <= UPPER + 1e-12)
                assert np.all(np.abs(cmd - previous) <= VELOCITY * dt * (1 + 1e-9) + 1e-12)
                previous = cmd.copy()
            if np.all(np.isfinite(core.measured)):
                core.update_state(core.command, now)  # the arm follows
