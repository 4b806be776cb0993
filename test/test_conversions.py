"""Message conversions (run where the ROS message packages import)."""

import numpy as np
import pytest

pytest.importorskip("rclpy")

from sensor_msgs.msg import Image, JointState  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from vla_ros.core.chunk import ActionChunk, ChunkError  # noqa: E402
from vla_ros.core.image import SUPPORTED_ENCODINGS, ImageError  # noqa: E402
from vla_ros.ros.conversions import (  # noqa: E402
    array_to_image,
    chunk_to_msg,
    cv_bridge,
    image_to_array,
    joint_positions,
    markers_to_objects,
    msg_to_chunk,
    to_duration,
    to_sec,
    to_time,
)


@pytest.mark.parametrize("seconds", [0.0, 2.9999999999, 1795313764.337572, 0.1 * 3, 12.5])
def test_time_round_trip_never_goes_backwards(seconds):
    t = to_time(seconds)
    assert 0 <= t.nanosec < 1_000_000_000
    assert to_sec(t) == pytest.approx(seconds, abs=1e-9)
    assert to_sec(to_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


def test_chunk_message_round_trip():
    chunk = ActionChunk.uniform(1234.5, ["a", "b"], np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]), dt=0.1)
    back = msg_to_chunk(chunk_to_msg(chunk))
    assert back.names == ("a", "b") and back.stamp == pytest.approx(1234.5)
    np.testing.assert_allclose(back.times, chunk.times, atol=1e-9)
    np.testing.assert_allclose(back.values, chunk.values)


def test_ragged_chunk_points_fail_validation():
    msg = chunk_to_msg(ActionChunk.uniform(10.0, ["a", "b"], np.zeros((2, 2)), dt=0.1))
    msg.points[1].positions = [1.0]
    with pytest.raises(ChunkError, match="NaN"):
        msg_to_chunk(msg).validate()


def test_image_and_joint_state_helpers():
    img = np.random.default_rng(0).integers(0, 255, (4, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_array(array_to_image(img, to_time(1.0), "cam")), img)
    js = JointState(name=["b", "a", "c"], position=[2.0, 1.0, 3.0])
    q, missing = joint_positions(js, ["a", "b", "z"])
    assert missing == ["z"] and q[:2].tolist() == [1.0, 2.0] and np.isnan(q[2])


def raw_image(encoding: str, pixels: np.ndarray, pad: int = 3) -> Image:
    """An Image message with ``pad`` bytes of padding per row (step > width * channels)."""
    h, w = pixels.shape[:2]
    rows = pixels.reshape(h, -1)
    data = np.concatenate([rows, np.full((h, pad), 77, np.uint8)], axis=1)
    return Image(height=h, width=w, encoding=encoding, step=data.shape[1], data=data.tobytes())


def test_encodings_we_do_not_decode_are_refused_by_name_without_cv_bridge():
    if cv_bridge() is not None:
        pytest.skip("cv_bridge is installed: such encodings go to it")
    msg = raw_image("yuv422_yuy2", np.zeros((4, 6, 2), np.uint8))
    with pytest.raises(ImageError, match="yuv422_yuy2.*cv_bridge") as err:
        image_to_array(msg)
    assert err.value.kind == "encoding"


def test_our_decoding_matches_cv_bridge():
    """Where a ROS install has cv_bridge: every encoding we decode ourselves gives the pixels
    ``imgmsg_to_cv2(msg, "rgb8")`` gives, padded rows included; others are decoded by cv_bridge."""
    bridge = cv_bridge()
    if bridge is None:
        pytest.skip("cv_bridge is not installed (a ROS install has it)")
    rng = np.random.default_rng(1)
    for encoding in SUPPORTED_ENCODINGS:
        channels = {"mono8": 1, "rgba8": 4, "bgra8": 4}.get(encoding, 3)
        msg = raw_image(encoding, rng.integers(0, 255, (5, 7, channels), dtype=np.uint8))
        np.testing.assert_array_equal(image_to_array(msg), bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    yuv = image_to_array(raw_image("yuv422_yuy2", rng.integers(0, 255, (4, 6, 2), dtype=np.uint8)))
    assert yuv.shape == (4, 6, 3) and yuv.dtype == np.uint8


def test_markers_to_objects():
    m = Marker(ns="red_cube", action=Marker.ADD)
    m.pose.position.x, m.pose.orientation.w = 0.3, 1.0
    m.scale.x = m.scale.y = m.scale.z = 0.03
    objs = markers_to_objects(MarkerArray(markers=[m, Marker(ns="gone", action=Marker.DELETE)]))
    assert list(objs) == ["red_cube"]
    np.testing.assert_allclose(objs["red_cube"]["position"], [0.3, 0, 0])
    np.testing.assert_allclose(objs["red_cube"]["orientation"], [1, 0, 0, 0])
