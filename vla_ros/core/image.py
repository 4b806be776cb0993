"""Image decoding (sensor_msgs/Image encodings) and resize-with-pad, without cv_bridge."""

from __future__ import annotations

import numpy as np

SUPPORTED_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


MAX_PIXELS = 4096 * 4096  # larger frames are rejected before any copy


class ImageError(ValueError):
    """An image that cannot be turned into HxWx3 uint8 RGB; ``kind`` is "encoding" or "layout"."""

    def __init__(self, message: str, kind: str = "layout"):
        super().__init__(message)
        self.kind = kind


def check_pixels(width: int, height: int) -> None:
    """Refuse a frame with no pixels or more than ``MAX_PIXELS``, from its declared size (before any copy)."""
    if height <= 0 or width <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if height * width > MAX_PIXELS:
        raise ImageError(f"image of {width}x{height} pixels exceeds the {MAX_PIXELS} pixel limit")


def decode_image(encoding: str, height: int, width: int, step: int, data: bytes | np.ndarray) -> np.ndarray:
    """Raw ``sensor_msgs/Image`` fields to an HxWx3 uint8 RGB array (a copy)."""
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(encoding)
    if channels is None:
        raise ImageError(f"unsupported image encoding {encoding!r}; expected one of {SUPPORTED_ENCODINGS}", "encoding")
    check_pixels(width, height)
    if step < width * channels:
        raise ImageError(f"image step {step} is shorter than width*channels = {width * channels}")
    buf = np.frombuffer(bytes(data) if not isinstance(data, np.ndarray) else data.tobytes(), dtype=np.uint8)
    if buf.size != step * height:
        raise ImageError(f"image data has {buf.size} bytes, expected step*height = {step * height}")
    rows = buf.reshape(height, step)[:, : width * channels].reshape(height, width, channels)
    if encoding == "rgb8":
        return rows.copy()
    if encoding == "bgr8":
        return rows[:, :, ::-1].copy()
    if encoding == "rgba8":
        return rows[:, :, :3].copy()
    if encoding == "bgra8":
        return rows[:, :, 2::-1].copy()
    return np.repeat(rows, 3, axis=2)


def decode_compressed(fmt: str, data: bytes | np.ndarray, decoder: str = "") -> np.ndarray:
    """``sensor_msgs/CompressedImage`` (JPEG or PNG, as image_transport's compressed plugin writes them)
    to HxWx3 uint8 RGB. The pixel count is checked from the header before the frame is decoded; decoded
    with OpenCV (``cv2.imdecode``, as image_transport does) where it is installed, else Pillow
    (``decoder``: "cv2" or "pillow" to choose)."""
    import io

    from PIL import Image, UnidentifiedImageError

    raw = bytes(data) if not isinstance(data, np.ndarray) else data.tobytes()
    kind = fmt.split(";")[-1].strip().split(" ")[0].lower() if fmt else ""
    if kind and kind not in ("jpeg", "jpg", "png"):
        raise ImageError(f"unsupported compressed format {fmt!r}; expected jpeg or png", "encoding")
    try:
        img = Image.open(io.BytesIO(raw))  # (reads the header only)
        check_pixels(img.width, img.height)
        cv2 = _cv2() if decoder != "pillow" else None
        if cv2 is None:
            if decoder == "cv2":
                raise ImageError("decoder 'cv2' requested but opencv is not installed", "encoding")
            return np.asarray(img.convert("RGB"))
        out = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR_RGB)  # (8-bit, alpha dropped)
        if out is None:
            raise ValueError("cv2.imdecode returned nothing")
        return out
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, ImageError):
            raise
        raise ImageError(f"compressed image ({fmt or 'no format'}, {len(raw)} bytes) cannot be decoded: {exc}",
                         "encoding") from None


def _cv2():
    """OpenCV where installed (opencv-python-headless), else None."""
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def resize_with_pad(image: np.ndarray, height: int, width: int, truncate: bool = False) -> np.ndarray:
    """Resize keeping the aspect ratio (bilinear), zero-padding to ``height`` x ``width`` (centred, the extra row
    or column at the bottom/right). ``truncate``: the resized side is cut to an integer as openpi's
    ``openpi_client.image_tools.resize_with_pad`` does (130x109 -> 224x187), else rounded (224x188; the built-in
    model's training images were made so)."""
    if image.shape[:2] == (height, width):
        return image
    from PIL import Image

    h, w = image.shape[:2]
    ratio = max(w / width, h / height)
    size = (lambda v: int(v)) if truncate else (lambda v: int(round(v)))
    new_w, new_h = max(1, size(w / ratio)), max(1, size(h / ratio))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), resample=Image.BILINEAR))
    out = np.zeros((height, width, image.shape[2]), dtype=image.dtype)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    return out


def resize_stretch(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize to ``height`` x ``width`` without keeping the aspect ratio (Lanczos, antialiased): OpenVLA's
    training images (RLDS frames squashed to 224x224, tf.image.resize lanczos3 with antialias)."""
    if image.shape[:2] == (height, width):
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((width, height), resample=Image.LANCZOS))


def center_crop(image: np.ndarray, area: float = 0.9) -> np.ndarray:
    """The centre ``area`` fraction of the image (sides x sqrt(area)) resized back to the full size
    (bilinear): OpenVLA's test-time counterpart of its random-crop augmentation (crop_scale 0.9)."""
    from PIL import Image

    h, w = image.shape[:2]
    side = float(np.sqrt(area))
    box = ((1 - side) / 2 * w, (1 - side) / 2 * h, (1 + side) / 2 * w, (1 + side) / 2 * h)
    return np.asarray(Image.fromarray(image).resize((w, h), resample=Image.BILINEAR, box=box))


def crop_fraction(image: np.ndarray, box) -> np.ndarray:
    """The part of ``image`` inside ``box`` = (x0, y0, x1, y1), fractions of its width and height (pixel bounds
    rounded; at least one pixel): a fixed region of a camera's frame at the camera's own resolution."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    c0, r0 = int(round(x0 * w)), int(round(y0 * h))
    return image[r0 : max(r0 + 1, int(round(y1 * h))), c0 : max(c0 + 1, int(round(x1 * w)))]


def check_crops(crops: dict, cameras=None) -> None:
    """``crops`` {key: [camera, x0, y0, x1, y1]}: each cut from one of ``cameras`` (None: any camera) with
    0 <= x0 < x1 <= 1 (same for y) and named unlike a camera; ValueError naming what is wrong."""
    for key, spec in crops.items():
        if len(spec) != 5 or (cameras is not None and spec[0] not in cameras):
            known = f" with a camera of {list(cameras)}" if cameras is not None else ""
            raise ValueError(f"crop {key!r}: {spec} must be [camera, x0, y0, x1, y1]{known}")
        x0, y0, x1, y1 = (float(v) for v in spec[1:])
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            raise ValueError(f"crop {key!r}: the box {spec[1:]} must lie in [0, 1] with x0 < x1 and y0 < y1")
        if key in (cameras or [c[0] for c in crops.values()]):
            raise ValueError(f"crop {key!r} has the name of a camera")


def crop_camera(key: str, crops: dict) -> str:
    """The camera image ``key`` is made from: a crop's camera, else the key itself."""
    return crops[key][0] if key in crops else key


def crop_sources(image_keys, crops: dict) -> list[str]:
    """The cameras whose frames images ``image_keys`` are made from (a crop's key: its camera), each once."""
    out: list[str] = []
    for key in image_keys:
        camera = crop_camera(key, crops)
        if camera not in out:
            out.append(camera)
    return out


RESIZE_MODES = {"pad": resize_with_pad, "stretch": resize_stretch}


def parse_size(text: str) -> tuple[int, int] | None:
    """``"WxH"`` (e.g. ``"640x480"``) to (height, width); ``""`` to None."""
    if not text:
        return None
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"image size {text!r} is not WIDTHxHEIGHT, e.g. '640x480'") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"image size {text!r} must be positive")
    return height, width


def fit_image(image: np.ndarray, size: tuple[int, int], declared: tuple[int, int] | None = None,
              mode: str = "pad") -> tuple[np.ndarray, str | None]:
    """Resize ``image`` to ``size`` (height, width) the backend's way (``mode``: pad keeps the aspect ratio,
    stretch does not); a problem message unless its size was expected.

    A frame at the backend's size or at the camera's ``declared`` size (what its driver publishes) is
    expected; any other size is still resized but reported. ``mode`` none: the frame is passed on unresized
    (a backend that resizes and crops frames itself, as its training data were made).
    """
    shape = image.shape[:2]
    if shape == size:
        return image, None
    if mode == "none":  # the backend sizes its frames itself: only a camera off its declared size is news
        off = declared is not None and shape != declared
        return image, (f"is {shape[1]}x{shape[0]}, declared {declared[1]}x{declared[0]}; passed on as is"
                       if off else None)
    problem = None
    if shape != declared:
        also = f" (declared camera size {declared[1]}x{declared[0]})" if declared else ""
        how = "with padding" if mode == "pad" else "(stretched)"
        problem = f"is {shape[1]}x{shape[0]}, expected {size[1]}x{size[0]}{also}; resizing {how}"
    return RESIZE_MODES[mode](image, *size), problem
