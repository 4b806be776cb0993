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


def test_randomized_training_scenes_draw_every_visual_condition_within_bounds(sims):
    """``randomized`` (record --perturb, training data only): camera, light and table changed in every episode,
    the distractors on the table in about half of them, reproducibly; never one of the evaluation conditions."""
    from vla_ros.sim.perturb import TRAINING

    assert "randomized" in TRAINING and "randomized" not in CONDITIONS
    sim, nominal = ArmSim(ROBOT, "randomized"), sims["nominal"].model
    try:
        np.testing.assert_array_equal(frame(sim, 5), frame(sim, 5))
        on_table = 0
        for seed in range(12):
            placed = sim.reset(seed)
            i = sim.perturbation.cams[0]
            assert 0 < np.abs(sim.model.cam_pos[i] - nominal.cam_pos[i]).max() <= 0.02 + 1e-12
            ratio = sim.model.light_diffuse[0][0] / nominal.light_diffuse[0][0]
            assert 0.7 - 1e-9 <= ratio <= 1.3 + 1e-9 and ratio != 1.0
            mat = sim.perturbation.table_mat
            assert not np.array_equal(sim.model.mat_rgba[mat], nominal.mat_rgba[mat])
            heights = [sim.data.body(name).xpos[2] for name, *_ in DISTRACTORS]
            if all(0.0 < h < 0.05 for h in heights):
                on_table += 1
                for name, *_ in DISTRACTORS:
                    pos = sim.data.body(name).xpos
                    assert min(np.hypot(pos[0] - p[0], pos[1] - p[1]) for p in placed.values()) >= 0.07
            else:
                assert all(h < 0.0 for h in heights)  # parked under the table, out of the task's way
        assert 3 <= on_table <= 9
    finally:
        sim.close()
