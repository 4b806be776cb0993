"""MP4 video streams as LeRobotDataset v3 stores them: AV1 (SVT-AV1), yuv420p, frame i at exactly i / fps.

LeRobot's ``encode_video_frames`` settings (libsvtav1, yuv420p, g=2, preset 12; crf 20 here, 30 there); several
episodes follow each other in one file, each found by its first frame's timestamp. PyAV (libav* bundled in
its wheels) encodes and decodes without an ffmpeg binary.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

CODEC = "libsvtav1"
PIX_FMT = "yuv420p"
CRF = 20  # LeRobot's default is 30; 4:2:0 chroma caps a sharp wrist view near 35 dB PSNR, which 30 misses
OPTIONS = {"g": "2", "crf": str(CRF), "preset": "12"}


class VideoStream:
    """One open MP4 file: ``add`` appends frames (rgb uint8, H x W x 3), ``close`` finishes it."""

    def __init__(self, path: str | Path, fps: int, width: int, height: int, codec: str = CODEC,
                 options: dict[str, str] | None = None, crf: int | None = None):
        import av

        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole configuration at level 3
        if width % 2 or height % 2:
            raise ValueError(f"{PIX_FMT} needs an even image size, got {width}x{height}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps, self.width, self.height, self.codec = int(fps), width, height, codec
        self._container = av.open(str(self.path), "w", options={"movflags": "faststart"})
        self._stream = self._container.add_stream(codec, rate=self.fps)
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, PIX_FMT
        self._stream.options = dict(OPTIONS if options is None else options)
        if crf is not None:
            self._stream.options = {**self._stream.options, "crf": str(int(crf))}
        self.frames = 0
        self.bytes = 0  # encoded so far (the file fills as the muxer flushes)

    @property
    def seconds(self) -> float:
        """Where the next frame starts (s)."""
        return self.frames / self.fps

    def add(self, images: np.ndarray) -> None:
        import av

        for img in images:
            if img.shape != (self.height, self.width, 3):
                raise ValueError(f"frame of shape {img.shape} in a {self.width}x{self.height} video")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = self.frames
            frame.time_base = Fraction(1, self.fps)
            self._mux(self._stream.encode(frame))
            self.frames += 1

    def _mux(self, packets) -> None:
        self.bytes += sum(p.size for p in packets)
        self._container.mux(packets)

    def close(self) -> None:
        self._mux(self._stream.encode(None))
        self._container.close()


def decode(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of an MP4 file as (timestamps s, (n, H, W, 3) uint8 rgb)."""
    import av

    times, frames = [], []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            times.append(float(frame.pts * stream.time_base))
            frames.append(frame.to_ndarray(format="rgb24"))
    return np.array(times), np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


def info(stream: VideoStream) -> dict:
    """The ``info`` block LeRobot writes for a video feature (``get_video_info``)."""
    return {"video.height": stream.height, "video.width": stream.width,
            "video.codec": {"libsvtav1": "av1", "libx264": "h264"}.get(stream.codec, stream.codec),
            "video.pix_fmt": PIX_FMT, "video.is_depth_map": False, "video.fps": stream.fps, "video.channels": 3,
            "has_audio": False}
