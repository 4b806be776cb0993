"""Evaluation conditions a real cell changes, applied by the sim at every reset from the episode's seed.

* ``camera_pose``: every fixed camera moved by up to +-2 cm per axis and turned by up to 3 degrees (a uniform
  random axis).
* ``lighting``: the scene light's intensity and the headlight's (ambient and diffuse) x U(0.7, 1.3) each, the
  light's direction turned by up to 30 degrees.
* ``table``: the table's colour (its wood texture x a random RGB in [0.45, 1]^3) and texture repeat changed.
* ``distractors``: a yellow sphere and a grey cylinder (objects of other shapes) on the table, apart from the
  cubes (they exist only in this condition's scene: the nominal scene is unchanged).
* ``latency``: every camera frame published 50 ms after it is rendered (stamped when rendered).

``randomized`` is for training data, not an evaluation condition: camera pose, lighting and table drawn together at
every reset (each as its condition draws it, from its own stream), and the distractors on the table in half the
episodes (under it in the others).

The same seed gives the same scene and the same perturbation; ``nominal`` changes nothing.
"""

from __future__ import annotations

import numpy as np

CONDITIONS = ("nominal", "camera_pose", "lighting", "table", "distractors", "latency")
TRAINING = ("randomized",)  # every visual condition at once: domain randomisation for recorded demonstrations
VISUAL = ("camera_pose", "lighting", "table", "distractors")
CAMERA_DELAY_S = 0.05
DISTRACTORS = (("distractor_sphere", "sphere", "0.022", "0.9 0.8 0.1 1"),
               ("distractor_cylinder", "cylinder", "0.018 0.03", "0.55 0.55 0.6 1"))


def has_distractors(kind: str) -> bool:
    """Whether the scene of condition ``kind`` is built with the distractor bodies."""
    return kind in ("distractors", "randomized")


def distractor_xml(contact: str) -> list[str]:
    """Two free bodies parked under the table (placed on it by ``Perturbation.apply``)."""
    return [f'    <body name="{name}" pos="{0.2 + 0.1 * i:.2f} 0 -0.7"><freejoint name="{name}"/>'
            f'<geom name="{name}" type="{shape}" size="{size}" mass="0.03" rgba="{rgba}" condim="4" {contact}/>'
            "</body>" for i, (name, shape, size, rgba) in enumerate(DISTRACTORS)]


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


class Perturbation:
    """One condition over a built MuJoCo model: nominal values kept, re-drawn at every ``apply``."""

    def __init__(self, model, kind: str, task_spec=None):
        import mujoco

        if kind not in CONDITIONS + TRAINING:
            raise ValueError(f"unknown perturbation {kind!r} (known: {', '.join(CONDITIONS + TRAINING)})")
        self.kind, self.task_spec = kind, task_spec
        self.camera_delay = CAMERA_DELAY_S if kind == "latency" else 0.0
        self.cams = [i for i in range(model.ncam) if model.cam_bodyid[i] == 0]  # fixed in the world
        self.nominal = {"cam_pos": model.cam_pos.copy(), "cam_quat": model.cam_quat.copy(),
                        "light_diffuse": model.light_diffuse.copy(), "light_dir": model.light_dir.copy(),
                        "headlight": model.vis.headlight.diffuse.copy(),
                        "ambient": model.vis.headlight.ambient.copy(), "mat_rgba": model.mat_rgba.copy(),
                        "mat_texrepeat": model.mat_texrepeat.copy()}
        self.table_mat = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, "table")
        self.distractors = []
        if has_distractors(kind):
            for name, *_ in DISTRACTORS:
                joint = model.joint(name)
                size = model.geom(name).size
                self.distractors.append((int(joint.qposadr[0]), float(size[1] if "cylinder" in name else size[0])))

    def apply(self, model, data, seed: int, placed: dict[str, list[float]]) -> None:
        """Restore the nominal scene, then draw this condition's changes from ``seed``."""
        n = self.nominal
        model.cam_pos[:], model.cam_quat[:] = n["cam_pos"], n["cam_quat"]
        model.light_diffuse[:], model.light_dir[:] = n["light_diffuse"], n["light_dir"]
        model.vis.headlight.diffuse[:], model.vis.headlight.ambient[:] = n["headlight"], n["ambient"]
        model.mat_rgba[:], model.mat_texrepeat[:] = n["mat_rgba"], n["mat_texrepeat"]
        if self.kind == "randomized":  # each part from its own stream: as its condition draws it
            for i, part in enumerate(VISUAL):
                if part != "distractors" or np.random.default_rng((seed, 8)).random() < 0.5:
                    self._draw(part, model, data, np.random.default_rng((seed, 7, i)), placed)
        else:
            self._draw(self.kind, model, data, np.random.default_rng((seed, 7)), placed)

    def _draw(self, kind: str, model, data, rng, placed) -> None:
        n = self.nominal
        if kind == "camera_pose":
            for i in self.cams:
                model.cam_pos[i] = n["cam_pos"][i] + rng.uniform(-0.02, 0.02, 3)
                axis, angle = rng.normal(size=3), np.radians(rng.uniform(-3.0, 3.0))
                axis /= np.linalg.norm(axis)
                turn = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
                model.cam_quat[i] = _quat_mul(turn, n["cam_quat"][i])
        elif kind == "lighting":
            scale = rng.uniform(0.7, 1.3)
            model.light_diffuse[:] = n["light_diffuse"] * scale
            head = rng.uniform(0.7, 1.3)
            model.vis.headlight.diffuse[:], model.vis.headlight.ambient[:] = n["headlight"] * head, n["ambient"] * head
            for i in range(model.nlight):
                axis = np.cross(n["light_dir"][i], rng.normal(size=3))
                model.light_dir[i] = _rotation(axis, np.radians(rng.uniform(-30.0, 30.0))) @ n["light_dir"][i]
        elif kind == "table" and self.table_mat >= 0:
            rgba = n["mat_rgba"][self.table_mat].copy()
            rgba[:3] = rng.uniform(0.45, 1.0, 3)
            model.mat_rgba[self.table_mat] = rgba
            model.mat_texrepeat[self.table_mat] = rng.uniform(1.0, 4.0, 2)
        elif kind == "distractors":
            self._place_distractors(data, rng, placed)

    def _place_distractors(self, data, rng, placed) -> None:
        spec = self.task_spec
        (x0, x1), (y0, y1) = spec.region.x, spec.region.y
        taken = [(p[0], p[1]) for p in placed.values()]
        for adr, half_height in self.distractors:
            for _ in range(1000):
                x, y = rng.uniform(x0, x1), rng.uniform(y0, y1)
                if all(np.hypot(x - a, y - b) >= spec.min_spacing for a, b in taken):
                    break
            else:
                raise RuntimeError("could not place the distractors apart from the objects")
            taken.append((x, y))
            data.qpos[adr: adr + 3] = [x, y, half_height + 0.0005]
            data.qpos[adr + 3: adr + 7] = [1.0, 0.0, 0.0, 0.0]
