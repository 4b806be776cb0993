"""Message <-> numpy conversions (no sensor_msgs_py; cv_bridge only for the encodings our decoder lacks)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import CompressedImage, Image, JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from ..core.chunk import ActionChunk
from ..core.image import SUPPORTED_ENCODINGS, ImageError, check_pixels, decode_compressed, decode_image


def to_sec(stamp: Time | Duration) -> float:
    return float(stamp.sec) + 1e-9 * float(getattr(stamp, "nanosec", 0))


def _split(seconds: float) -> tuple[int, int]:
    sec, nanosec = divmod(int(round(seconds * 1e9)), 1_000_000_000)
    return sec, nanosec


def to_time(seconds: float) -> Time:
    sec, nanosec = _split(seconds)
    return Time(sec=sec, nanosec=nanosec)


def to_duration(seconds: float) -> Duration:
    sec, nanosec = _split(seconds)
    return Duration(sec=sec, nanosec=nanosec)


def image_to_array(msg: Image) -> np.ndarray:
    """sensor_msgs/Image to HxWx3 uint8 RGB (raises core.image.ImageError). The common encodings
    (``SUPPORTED_ENCODINGS``) are decoded here; any other (yuv422, bayer, 16-bit, ...) goes to cv_bridge where
    a ROS install has it (``imgmsg_to_cv2(msg, "rgb8")``), and is refused naming the encoding where not."""
    if msg.encoding in SUPPORTED_ENCODINGS:
        return decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.data)
    bridge = cv_bridge()
    if bridge is None:
        raise ImageError(f"unsupported image encoding {msg.encoding!r}; expected one of {SUPPORTED_ENCODINGS} "
                         "(others need cv_bridge, which is not installed)", "encoding")
    check_pixels(msg.width, msg.height)
    try:
        return np.ascontiguousarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
    except Exception as exc:  # noqa: BLE001 (CvBridgeError, or cv2.error from a conversion it cannot do)
        raise ImageError(f"cv_bridge cannot turn {msg.encoding!r} into rgb8: {exc}", "encoding") from None


@lru_cache(maxsize=1)
def cv_bridge():
    """A ``cv_bridge.CvBridge`` where importable (a ROS install), else None (looked up once)."""
    try:
        from cv_bridge import CvBridge
    except ImportError:
        return None
    return CvBridge()


def compressed_to_array(msg: CompressedImage) -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG/PNG) to HxWx3 uint8 RGB (raises core.image.ImageError)."""
    return decode_compressed(msg.format, msg.data)


def array_to_image(image: np.ndarray, stamp: Time, frame_id: str) -> Image:
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(image, dtype=np.uint8).tobytes()
    return msg


def joint_positions(msg: JointState, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Positions in ``names`` order (NaN where absent) and the names that were missing."""
    index = {n: i for i, n in enumerate(msg.name)}
    out = np.full(len(names), np.nan)
    missing = []
    for k, name in enumerate(names):
        i = index.get(name)
        if i is None or i >= len(msg.position):
            missing.append(name)
        else:
            out[k] = msg.position[i]
    return out, missing


def chunk_to_msg(chunk: ActionChunk) -> JointTrajectory:
    msg = JointTrajectory()
    msg.header.stamp = to_time(chunk.stamp)
    msg.joint_names = list(chunk.names)
    for t, row in zip(chunk.times, chunk.values):
        msg.points.append(JointTrajectoryPoint(positions=[float(v) for v in row], time_from_start=to_duration(t)))
    return msg


def msg_to_chunk(msg: JointTrajectory) -> ActionChunk:
    """A chunk from a JointTrajectory; ragged points give a chunk that fails validation."""
    width = len(msg.joint_names)
    rows = [list(p.positions) if len(p.positions) == width else [np.nan] * width for p in msg.points]
    values = np.array(rows, dtype=float).reshape(len(rows), width) if rows else np.zeros((0, width))
    times = np.array([to_sec(p.time_from_start) for p in msg.points])
    return ActionChunk(to_sec(msg.header.stamp), tuple(msg.joint_names), times, values)


def trajectory_arrays(msg: JointTrajectory) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """times, positions and (if every point has them) velocities and accelerations."""
    width = len(msg.joint_names)
    times = np.array([to_sec(p.time_from_start) for p in msg.points])
    if any(len(p.positions) != width for p in msg.points):
        raise ValueError("a point's positions differ in size from joint_names")
    positions = np.array([list(p.positions) for p in msg.points], dtype=float).reshape(len(msg.points), width)

    def optional(field: str) -> np.ndarray | None:
        rows = [list(getattr(p, field)) for p in msg.points]
        if rows and all(len(r) == width for r in rows):
            return np.array(rows, dtype=float)
        return None

    return times, positions, optional("velocities"), optional("accelerations")


def markers_to_objects(msg: MarkerArray) -> dict[str, dict[str, np.ndarray]]:
    """ns -> {position, orientation (w, x, y, z), size, rgba}."""
    objects = {}
    for m in msg.markers:
        if m.action != Marker.ADD:
            continue
        p, o = m.pose.position, m.pose.orientation
        objects[m.ns] = {
            "position": np.array([p.x, p.y, p.z]),
            "orientation": np.array([o.w, o.x, o.y, o.z]),
            "size": np.array([m.scale.x, m.scale.y, m.scale.z]),
            "rgba": np.array([m.color.r, m.color.g, m.color.b, m.color.a]),
        }
    return objects
