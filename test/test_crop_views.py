"""Crop views: a fixed box of a camera's full-resolution frame, read by the built-in model as one more camera."""

import numpy as np
import pytest

from vla_ros.cli import parse_crops
from vla_ros.core.image import check_crops, crop_fraction, crop_sources


def test_a_box_in_fractions_cuts_those_pixels():
    frame = np.arange(480 * 640 * 3, dtype=np.int64).reshape(480, 640, 3)
    cut = crop_fraction(frame, (0.5, 0.25, 0.75, 0.5))
    assert cut.shape == (120, 160, 3)
    np.testing.assert_array_equal(cut, frame[120:240, 320:480])
    assert crop_fraction(frame, (0.1, 0.1, 0.1001, 0.1001)).shape == (1, 1, 3)  # at least one pixel


def test_crops_are_checked_and_name_their_cameras():
    check_crops({"top": ["cam_high", 0.5, 0.3, 0.75, 0.63]}, ["cam_high", "cam_low"])
    for bad, match in (({"top": ["cam_mid", 0, 0, 1, 1]}, "camera of"), ({"top": ["cam_high", 0.5, 0, 0.4, 1]},
                       "x0 < x1"), ({"top": ["cam_high", 0, 0, 1.5, 1]}, "lie in"),
                       ({"cam_low": ["cam_high", 0, 0, 1, 1]}, "name of a camera"), ({"top": ["cam_high", 0, 0]},
                                                                                    "must be")):
        with pytest.raises(ValueError, match=match):
            check_crops(bad, ["cam_high", "cam_low"])
    assert crop_sources(["cam_high", "top", "cam_left_wrist"], {"top": ["cam_high", 0, 0, 1, 1]}) == [
        "cam_high", "cam_left_wrist"]
    assert crop_sources(["top"], {"top": ["cam_high", 0, 0, 1, 1]}) == ["cam_high"]
    with pytest.raises(ValueError, match=r"must be \[camera, x0, y0, x1, y1\]$"):  # (a checkpoint's: any camera)
        check_crops({"top": ["cam_high", 0, 0]})


def test_the_train_command_reads_crops_and_says_the_form_of_a_bad_one():
    assert parse_crops(["top=cam_high:0.5,0.3,0.75,0.63"]) == {"top": ["cam_high", 0.5, 0.3, 0.75, 0.63]}
    for bad in ("top=cam_high:0.5,0.3", "cam_high:0,0,1,1", "top=cam_high:a,b,c,d"):
        with pytest.raises(ValueError, match="KEY=CAMERA:X0,Y0,X1,Y1"):
            parse_crops([bad])


def test_a_trained_models_crops_come_after_its_cameras_and_cut_the_presets_cameras():
    pytest.importorskip("torch")
    from vla_ros.learning.train import model_config
    from vla_ros.robots import load_robot

    aloha = load_robot("aloha")
    cfg = model_config(aloha, ["cam_high", "cam_left_wrist"], crops={"table": ["cam_high", 0.5, 0.3, 0.75, 0.63]})
    assert cfg.image_keys == ["cam_high", "cam_left_wrist", "table"] and cfg.cameras == ["cam_high", "cam_left_wrist"]
    with pytest.raises(ValueError, match="camera of"):
        model_config(aloha, crops={"table": ["cam_top", 0.5, 0.3, 0.75, 0.63]})
