"""Camera frame decoding in the policy node: raw sensor_msgs/Image encodings and CompressedImage JPEG/PNG
(OpenCV, as the node decodes them, and the Pillow fallback), 640x480 (a RealSense colour stream) and 224x224,
then the resize to the model's 224x224."""

from __future__ import annotations

import io

import numpy as np

from vla_ros.core.image import decode_compressed, decode_image, fit_image

from .backends import timed


def frames(height: int, width: int) -> dict[str, tuple]:
    """A smooth test pattern (JPEG-friendly, like a camera image) in every transport."""
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([(x * 255 // width), (y * 255 // height), ((x + y) % 256)], axis=2).astype(np.uint8)
    out = {"rgb8": ("raw", "rgb8", rgb.tobytes(), 3), "bgr8": ("raw", "bgr8", rgb[:, :, ::-1].tobytes(), 3)}
    for fmt in ("jpeg", "png"):
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format=fmt.upper(), quality=90) if fmt == "jpeg" else \
            Image.fromarray(rgb).save(buf, format="PNG")
        out[fmt] = ("compressed", f"rgb8; {fmt} compressed bgr8", buf.getvalue(), "cv2")
        out[f"{fmt} (Pillow)"] = ("compressed", f"rgb8; {fmt} compressed bgr8", buf.getvalue(), "pillow")
    return out


def run(n: int) -> list[dict]:
    rows = []
    for height, width in ((480, 640), (224, 224)):
        for name, (transport, encoding, data, channels) in frames(height, width).items():
            if transport == "raw":
                def decode(e=encoding, d=data, c=channels, h=height, w=width):
                    return decode_image(e, h, w, w * c, d)
            else:
                def decode(e=encoding, d=data, c=channels):
                    return decode_compressed(e, d, decoder=c)
            stats = timed(decode, n)
            fitted = timed(lambda: fit_image(decode(), (224, 224))[0], n)
            rows.append({"size": f"{width}x{height}", "format": name, "bytes": len(data),
                         "decode_ms_p50": stats["p50"], "decode_and_fit_ms_p50": fitted["p50"]})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| frame | format | bytes | decode p50 (ms) | decode + fit to 224x224 p50 (ms) |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']} | {r['format']} | {r['bytes']:,} | {r['decode_ms_p50']:.2f} | "
                     f"{r['decode_and_fit_ms_p50']:.2f} |")
    return "\n".join(lines) + "\n"
