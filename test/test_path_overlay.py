"""The planned path drawn over the sim camera: the pinhole model agrees with MuJoCo's camera (pose and a rendered
object's pixels)."""

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
mujoco = pytest.importorskip("mujoco")

from vla_ros.core.path_overlay import PATH_COLOUR, START_COLOUR, PinholeCamera, draw_path  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402
from vla_ros.sim.physics import ArmSim  # noqa: E402


@pytest.fixture(scope="module")
def widowx():
    robot = load_robot("widowx")
    sim = ArmSim(robot)
    yield robot, sim
    sim.close()


def test_the_camera_model_is_mujocos_camera(widowx):
    robot, sim = widowx
    cam = robot.cameras[0]
    model = PinholeCamera.of(cam)
    i = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_CAMERA, cam.name)
    np.testing.assert_allclose(sim.data.cam_xpos[i], model.pos, atol=1e-9)
    np.testing.assert_allclose(sim.data.cam_xmat[i].reshape(3, 3), model.rotation, atol=1e-6)
    assert sim.model.cam_fovy[i] == pytest.approx(cam.sim.fovy)


def test_a_rendered_cube_lies_where_its_centre_projects(widowx):
    robot, sim = widowx
    sim.reset(0)
    cam = robot.cameras[0]
    model = PinholeCamera.of(cam)
    image = sim.render(cam.name, cam.width, cam.height)
    for name, pose in sim.object_poses().items():
        pixels, front = model.project(np.asarray(pose.position)[None])
        assert front[0]
        x, y = np.rint(pixels[0]).astype(int)
        px = image[y, x]
        colour = name.split("_")[0]
        channel = {"red": 0, "green": 1, "blue": 2}[colour]
        assert px[channel] == px.max() and px[channel] > 1.3 * np.sort(px)[1], (name, px)


def test_draw_path_marks_the_start_and_the_segments_in_view(widowx):
    robot, _ = widowx
    cam = robot.cameras[0]
    model = PinholeCamera.of(cam)
    points = np.array([[0.25, -0.05, 0.15], [0.3, 0.0, 0.1], [0.35, 0.05, 0.05]])
    image = np.zeros((cam.height, cam.width, 3), np.uint8)
    out = draw_path(image, model, points)
    assert image.max() == 0  # the input is left alone
    assert (out == PATH_COLOUR).all(-1).sum() > 20 and (out == START_COLOUR).all(-1).sum() >= 4
    behind = draw_path(image, model, np.array(cam.sim.pos) + np.array([[1.0, -1.0, 0.5], [1.2, -1.2, 0.6]]))
    assert behind.max() == 0
    assert PinholeCamera.of(load_robot("franka").cameras[1]) is None  # the wrist camera moves with the hand
