"""JPEG camera frames on the openpi wire, for a robot that reaches its GPU server over Wi-Fi.

The client replaces each image in a request (a uint8 array, H x W x 3 or 3 x H x W, at least 16 x 16) by
``{"__jpeg__": bytes, "layout": "hwc" | "chw"}``; ``vla-ros serve`` turns them back into arrays before the
layout reads the request. Only a server whose metadata lists "jpeg" in ``frame_encodings`` receives them (an
openpi server does not: the client refuses to send JPEG there rather than send frames it cannot read).
"""

from __future__ import annotations

from typing import Any

import numpy as np

ENCODING = "jpeg"
KEY = "__jpeg__"


class FrameError(ValueError):
    """A frame that cannot be encoded or decoded."""


def _is_frame(value: Any) -> str | None:
    """'hwc' or 'chw' for an 8-bit colour image, else None."""
    if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.ndim != 3:
        return None
    if value.shape[2] == 3 and min(value.shape[:2]) >= 16:
        return "hwc"
    if value.shape[0] == 3 and min(value.shape[1:]) >= 16:
        return "chw"
    return None


def encode(value: Any, quality: int) -> Any:
    """``value`` (nested dicts/lists) with every image JPEG-encoded at ``quality`` (1-100)."""
    import cv2

    if isinstance(value, dict):
        return {k: encode(v, quality) for k, v in value.items()}
    if isinstance(value, list):
        return [encode(v, quality) for v in value]
    layout = _is_frame(value)
    if layout is None:
        return value
    hwc = value if layout == "hwc" else value.transpose(1, 2, 0)
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(hwc[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise FrameError(f"JPEG encoding failed for a {hwc.shape} image")
    return {KEY: data.tobytes(), "layout": layout}


def decode(value: Any) -> Any:
    """``value`` with every JPEG frame back as a uint8 array in the layout it was sent in."""
    import cv2

    if isinstance(value, dict):
        if KEY in value:
            data = np.frombuffer(value[KEY], np.uint8) if isinstance(value[KEY], bytes) else None
            bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
            if bgr is None:
                raise FrameError("a JPEG frame in the request could not be decoded")
            rgb = bgr[:, :, ::-1]
            return np.ascontiguousarray(rgb if value.get("layout") != "chw" else rgb.transpose(2, 0, 1))
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value
