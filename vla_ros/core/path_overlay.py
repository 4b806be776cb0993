"""The planned tool path drawn over a camera image: base-frame points through the camera's pinhole model.

The camera is the preset's simulated one (``CameraSimSpec``: position and look-at point in the robot's base
frame, vertical field of view), as the simulator builds it: -Z looks at the target, +Y up in the image (MuJoCo /
OpenGL). Cameras riding on a link (wrist cameras) are not drawn on: their pose moves with the arm.
"""

from __future__ import annotations

import math

import numpy as np

from .transforms import look_at

PATH_COLOUR = (255, 0, 255)  # magenta: a colour the scenes do not use
START_COLOUR = (255, 255, 0)


class PinholeCamera:
    """Projection of base-frame points into a ``width`` x ``height`` image of a fixed camera."""

    def __init__(self, pos, lookat, fovy_deg: float, width: int, height: int, up=(0.0, 0.0, 1.0)):
        self.pos = np.asarray(pos, float)
        self.rotation = look_at(self.pos, np.asarray(lookat, float), np.asarray(up, float))  # columns in base frame
        self.width, self.height = int(width), int(height)
        self.focal = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)

    @classmethod
    def of(cls, camera) -> PinholeCamera | None:
        """A preset camera (``CameraSpec``) that the sim fixes in the base frame, else None."""
        sim = getattr(camera, "sim", None)
        if sim is None or sim.body:
            return None
        return cls(sim.pos, sim.lookat, sim.fovy, camera.width, camera.height, sim.up)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) pixel coordinates (x right, y down) of (N, 3) base-frame points, and which lie in front."""
        local = (np.asarray(points, float).reshape(-1, 3) - self.pos) @ self.rotation
        depth = -local[:, 2]
        front = depth > 1e-6
        safe = np.where(front, depth, 1.0)
        x = self.width / 2.0 + self.focal * local[:, 0] / safe
        y = self.height / 2.0 - self.focal * local[:, 1] / safe
        return np.stack([x, y], axis=1), front


def _line(image: np.ndarray, a: np.ndarray, b: np.ndarray, colour) -> None:
    steps = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)) + 1
    if steps > 4 * (image.shape[0] + image.shape[1]):
        return  # a segment far outside the image (a point just in front of the lens): skip it
    xs = np.rint(np.linspace(a[0], b[0], steps)).astype(int)
    ys = np.rint(np.linspace(a[1], b[1], steps)).astype(int)
    for dx, dy in ((0, 0), (1, 0), (0, 1)):  # 2 px wide: a 1 px line does not survive video compression
        x, y = xs + dx, ys + dy
        inside = (x >= 0) & (x < image.shape[1]) & (y >= 0) & (y < image.shape[0])
        image[y[inside], x[inside]] = colour


def draw_path(image: np.ndarray, camera: PinholeCamera, points: np.ndarray) -> np.ndarray:
    """A copy of ``image`` (HxWx3 uint8) with the path through ``points`` (base frame) as a polyline, its first
    point (the measured start) marked."""
    out = np.array(image, copy=True)
    if len(points) == 0:
        return out
    pixels, front = camera.project(points)
    for i in range(len(pixels) - 1):
        if front[i] and front[i + 1]:
            _line(out, pixels[i], pixels[i + 1], PATH_COLOUR)
    if front[0]:
        x, y = np.rint(pixels[0]).astype(int)
        out[max(0, y - 1): y + 2, max(0, x - 1): x + 2] = START_COLOUR
    return out
