"""Evaluation conditions in the sim (vla_ros.sim.perturb): seeded, bounded, and the nominal scene unchanged."""

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
mujoco = pytest.importorskip("mujoco")

from vla_ros.robots import load_robot  # noqa: E402
from vla_ros.sim.perturb import CONDITIONS, DISTRACTORS  # noqa: E402
from vla_ros.sim.physics import ArmSim  # noqa: E402

ROBOT = load_robot("widowx")


@pytest.fixture(scope="module")
def sims():
    out = {kind: ArmSim(ROBOT, kind) for kind in CONDITIONS}
    yield out
    for s in out.values():
        s.close()


def frame(sim, seed):
    sim.reset(seed)
    cam = ROBOT.cameras[0]
    return sim.render(cam.name, cam.width, cam.height)


def test_the_nominal_scene_is_the_unperturbed_one(sims):
    plain = ArmSim(ROBOT)
    try:
        assert plain.model.nbody == sims["nominal"].model.nbody == sims["camera_pose"].model.nbody
        np.testing.assert_array_equal(frame(plain, 3), frame(sims["nominal"], 3))
        np.testing.assert_array_equal(frame(sims["latency"], 3), frame(sims["nominal"], 3))  # it delays frames only
        assert sims["latency"].perturbation.camera_delay == 0.05 and sims["nominal"].perturbation.camera_delay == 0
    finally:
        plain.close()


@pytest.mark.parametrize("kind", ["camera_pose", "lighting", "table", "distractors"])
def test_each_condition_changes_the_image_reproducibly_and_seed_by_seed(sims, kind):
    sim = sims[kind]
    a, b, c = frame(sim, 11), frame(sim, 11), frame(sim, 12)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - frame(sims["nominal"], 11).astype(int)).mean() > 0.2
    assert not np.array_equal(a, c)


def test_the_changes_stay_within_their_bounds(sims):
    cam_sim, light_sim, nominal = sims["camera_pose"], sims["lighting"], sims["nominal"].model
    for seed in range(20):
        cam_sim.reset(seed)
        light_sim.reset(seed)
        i = cam_sim.perturbation.cams[0]
        assert np.abs(cam_sim.model.cam_pos[i] - nominal.cam_pos[i]).max() <= 0.02 + 1e-12
        dot = abs(float(np.dot(cam_sim.model.cam_quat[i], nominal.cam_quat[i])))
        assert 2 * np.degrees(np.arccos(min(1.0, dot))) <= 3.0 + 1e-6
        ratio = light_sim.model.light_diffuse[0] / nominal.light_diffuse[0]
        assert 0.7 - 1e-9 <= ratio[0] <= 1.3 + 1e-9
        turn = np.degrees(np.arccos(np.clip(np.dot(light_sim.model.light_dir[0], nominal.light_dir[0]) /
                                            np.linalg.norm(light_sim.model.light_dir[0]), -1, 1)))
        assert turn <= 30.0 + 1e-6


def test_distractors_stand_on_the_table_apart_from_the_cubes(sims):
    sim = sims["distractors"]
    assert all(n not in [sims["nominal"].model.body(b).name for b in range(sims["nominal"].model.nbody)]
               for n, *_ in DISTRACTORS)
    for seed in range(5):
        placed = sim.reset(seed)
        for _ in range(250):
            sim.step()
        for name, *_ in DISTRACTORS:
            pos = sim.data.body(name).xpos
            assert 0.0 < pos[2] < 0.05  # resting on the table top
            assert min(np.hypot(pos[0] - p[0], pos[1] - p[1]) for p in placed.values()) >= 0.07
