"""JTC semantics for the sim, image decoding, and observation assembly."""

import numpy as np
import pytest

from vla_ros.core.image import ImageError, decode_image, fit_image, parse_size, resize_with_pad
from vla_ros.core.observation import MissingInput, ObservationBuffer
from vla_ros.core.trajectory import TrajectoryRejected, accept_trajectory

J = ["a", "b"]


def accept(stamp=0.0, now=5.0, times=(0.5, 1.0), positions=((1.0, 2.0), (2.0, 4.0)), vel=None, names=J):
    return accept_trajectory(J, list(names), stamp, now, np.array(times), np.array(positions, float),
                             None if vel is None else np.array(vel, float), None, np.zeros(2), np.zeros(2))


def test_zero_stamp_starts_now_from_the_measured_state_linearly():
    traj = accept()
    np.testing.assert_allclose(traj.sample(5.0), [0, 0])
    np.testing.assert_allclose(traj.sample(5.25), [0.5, 1.0])
    np.testing.assert_allclose(traj.sample(5.75), [1.5, 3.0])
    np.testing.assert_allclose(traj.sample(9.0), [2.0, 4.0])


def test_velocities_give_cubic_segments_and_joint_order_is_mapped():
    traj = accept(vel=((1.0, 1.0), (0.0, 0.0)), names=["b", "a"], positions=((2.0, 1.0), (4.0, 2.0)))
    assert traj.order == 3
    np.testing.assert_allclose(traj.sample(5.5), [1.0, 2.0])
    mid = traj.sample(5.25)
    assert mid[0] != pytest.approx(0.5)  # not linear


def test_past_stamp_samples_mid_trajectory():
    traj = accept(stamp=4.5, now=5.0)
    np.testing.assert_allclose(traj.sample(5.0), [1.0, 2.0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"names": []}, "empty joint_names"),
        ({"names": ["a", "zz"]}, "unknown joints"),
        ({"names": ["a"], "positions": ((1.0,), (2.0,))}, "all of"),
        ({"times": (1.0, 0.5)}, "strictly increasing"),
        ({"positions": ((np.nan, 1.0), (1.0, 1.0))}, "non-finite"),
        ({"vel": ((0, 0), (1.0, 0))}, "non-zero velocity"),
        ({"stamp": 1.0, "now": 5.0}, "in the past"),
        ({"times": (), "positions": np.zeros((0, 2))}, "no points"),
    ],
)
def test_jtc_rejections(kwargs, match):
    with pytest.raises(TrajectoryRejected, match=match):
        accept(**kwargs)


def test_decode_every_supported_encoding():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    np.testing.assert_array_equal(decode_image("rgb8", 2, 3, 9, rgb.tobytes()), rgb)
    np.testing.assert_array_equal(decode_image("bgr8", 2, 3, 9, rgb[:, :, ::-1].tobytes()), rgb)
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode_image("rgba8", 2, 3, 12, rgba.tobytes()), rgb)
    bgra = np.concatenate([rgb[:, :, ::-1], np.full((2, 3, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(decode_image("bgra8", 2, 3, 12, bgra.tobytes()), rgb)
    mono = decode_image("mono8", 2, 3, 3, bytes(range(6)))
    assert mono.shape == (2, 3, 3) and mono[1, 2].tolist() == [5, 5, 5]
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = rgb.reshape(2, 9)
    np.testing.assert_array_equal(decode_image("rgb8", 2, 3, 12, padded.tobytes()), rgb)


@pytest.mark.parametrize(
    "args, match",
    [
        (("16UC1", 2, 2, 4, bytes(8)), "unsupported image encoding"),
        (("yuv422", 2, 2, 4, bytes(8)), "unsupported"),
        (("rgb8", 2, 2, 6, bytes(10)), "expected step"),
        (("rgb8", 2, 2, 5, bytes(10)), "shorter"),
        (("rgb8", 0, 2, 6, b""), "no pixels"),
    ],
)
def test_bad_images_raise(args, match):
    with pytest.raises(ImageError, match=match):
        decode_image(*args)


def test_resize_with_pad_keeps_aspect_and_pads_with_zeros():
    img = np.full((100, 200, 3), 200, np.uint8)
    out = resize_with_pad(img, 224, 224)
    assert out.shape == (224, 224, 3)
    assert out[0, 0].tolist() == [0, 0, 0] and out[112, 112].tolist() == [200, 200, 200]
    assert (out[:, 112, 0] > 0).sum() == 112


def test_fit_image_is_quiet_for_the_declared_camera_size_only():
    frame = np.full((480, 640, 3), 90, np.uint8)
    out, problem = fit_image(frame, (224, 224), declared=(480, 640))  # a RealSense frame, as declared
    assert out.shape == (224, 224, 3) and problem is None
    assert out[0, 112].tolist() == [0, 0, 0] and out[112, 112].tolist() == [90, 90, 90]  # 224x168 band, padded
    out, problem = fit_image(np.zeros((240, 320, 3), np.uint8), (224, 224), declared=(480, 640))
    assert out.shape == (224, 224, 3)
    assert problem == "is 320x240, expected 224x224 (declared camera size 640x480); resizing with padding"
    same = np.zeros((224, 224, 3), np.uint8)
    assert fit_image(same, (224, 224))[0] is same and fit_image(same, (224, 224))[1] is None
    assert parse_size("640x480") == (480, 640) and parse_size("") is None
    for bad in ("640", "axb", "0x480"):
        with pytest.raises(ValueError, match="640x480|positive"):
            parse_size(bad)


def test_observation_buffer_names_missing_and_stale_inputs():
    buf = ObservationBuffer(["cam"], max_age=0.2)
    with pytest.raises(MissingInput, match="joint state: no data yet.*image 'cam': no data yet"):
        buf.build(1.0, "go", use_images=True)
    buf.set_state(np.array([1.0, 2.0]), stamp=0.95)
    buf.set_image("cam", np.zeros((2, 2, 3), np.uint8), stamp=0.5)
    with pytest.raises(MissingInput, match="image 'cam': stale"):
        buf.build(1.0, "go", use_images=True)
    obs = buf.build(1.0, "go", use_images=False)
    assert obs.stamp == 0.95 and obs.images == {}
    buf.set_image("cam", np.zeros((2, 2, 3), np.uint8), stamp=0.9)
    buf.set_extra("objects", {"x": 1}, stamp=0.97)
    obs = buf.build(1.0, "go", use_images=True, extra_keys=("objects",))
    assert obs.stamp == 0.9 and set(obs.images) == {"cam"} and obs.extras == {"objects": {"x": 1}}
    assert obs.instruction == "go"
    buf.set_image("cam", np.zeros((2, 2, 3), np.uint8), stamp=1.25)  # 0.25 s ahead: another clock, or time went back
    with pytest.raises(MissingInput, match="image 'cam': stamped 0.250 s in the future"):
        buf.build(1.0, "go", use_images=True)
    buf.set_image("cam", np.zeros((2, 2, 3), np.uint8), stamp=1.1)  # within max_age: clocks a little apart
    assert buf.build(1.0, "go", use_images=True).stamp == 0.95


def test_stretch_and_centre_crop_as_openvla_sees_frames():
    """OpenVLA trained on squashed frames (no bars); LIBERO checkpoints on random crops of 90% area, whose
    test-time counterpart is the centre crop resized back."""
    from vla_ros.core.image import center_crop, resize_stretch

    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, :320] = (255, 0, 0)
    frame[:, 320:] = (0, 255, 0)
    stretched, padded = resize_stretch(frame, 224, 224), resize_with_pad(frame, 224, 224)
    assert stretched[0, 0].tolist() == [255, 0, 0] and stretched[223, 223].tolist() == [0, 255, 0]
    assert padded[0, 0].tolist() == [0, 0, 0] and padded[28, 0].tolist() == [255, 0, 0]  # 28 rows of bars
    img = np.zeros((100, 100, 3), np.uint8)
    img[:] = (0, 255, 0)
    img[:3] = img[-3:] = img[:, :3] = img[:, -3:] = (255, 0, 0)  # a 3-pixel red frame
    out = center_crop(img, 0.9)
    # the crop spans 2.566 .. 97.434 px (side sqrt(0.9)); output pixel 0 samples x = 2.566 + 0.5 x 0.9487 = 3.040,
    # 0.46 of the way from red pixel 2 (centre 2.5) to green pixel 3: red 0.46 x 255 = 117.6
    assert abs(int(out[50, 0, 0]) - 118) <= 1 and out[50, 1].tolist() == [0, 255, 0]
    assert abs(int(out[0, 0, 0]) - round(255 * (1 - 0.54 * 0.54))) <= 1  # both axes: 180.6
    assert fit_image(frame, (224, 224), None, "stretch")[1].endswith("resizing (stretched)")


def test_compressed_frames_decode_to_rgb_and_bad_ones_are_refused(monkeypatch):
    """sensor_msgs/CompressedImage as image_transport's compressed plugin writes it (format
    '<encoding>; jpeg compressed bgr8'): PNG exactly, JPEG within its loss; anything else an ImageError."""
    import io

    from PIL import Image

    import vla_ros.core.image as image_mod
    from vla_ros.core.image import decode_compressed

    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:, :32] = (200, 30, 10)  # a red left half: colour order survives the round trip
    rgb[:, 32:] = (10, 30, 200)
    png, jpeg = io.BytesIO(), io.BytesIO()
    Image.fromarray(rgb).save(png, format="PNG")
    Image.fromarray(rgb).save(jpeg, format="JPEG", quality=95)
    np.testing.assert_array_equal(decode_compressed("rgb8; png compressed rgb8", png.getvalue()), rgb)
    got = decode_compressed("bgr8; jpeg compressed bgr8", np.frombuffer(jpeg.getvalue(), np.uint8))
    assert got.shape == (48, 64, 3) and np.abs(got[:, 4:28].astype(int) - rgb[:, 4:28]).max() <= 8
    assert decode_compressed("", png.getvalue()).shape == (48, 64, 3)  # format left empty: sniffed
    with pytest.raises(ImageError, match="cannot be decoded") as err:
        decode_compressed("jpeg", b"\xff\xd8 not a jpeg")
    assert err.value.kind == "encoding"
    with pytest.raises(ImageError, match="unsupported compressed format"):
        decode_compressed("16UC1; compressedDepth png", png.getvalue())
    monkeypatch.setattr(image_mod, "MAX_PIXELS", 1000)  # 64x48 = 3072 pixels: refused before decoding
    with pytest.raises(ImageError, match="pixel limit"):
        decode_compressed("png", png.getvalue())


def test_opencv_and_pillow_decode_the_same_pixels():
    """OpenCV (as image_transport decodes) and the Pillow fallback: PNG (RGB, grey, RGBA) identical, JPEG within
    one grey level (two IDCT implementations)."""
    import io

    from PIL import Image

    from vla_ros.core.image import decode_compressed

    pytest.importorskip("cv2")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:120, 0:160]
    rgb = np.stack([xx * 255 // 159, yy * 255 // 119, (xx + yy) % 256], axis=2).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rng.integers(-20, 20, rgb.shape), 0, 255).astype(np.uint8)
    for image, fmt in ((Image.fromarray(rgb), "PNG"), (Image.fromarray(rgb).convert("L"), "PNG"),
                       (Image.fromarray(rgb).convert("RGBA"), "PNG"), (Image.fromarray(rgb), "JPEG")):
        buf = io.BytesIO()
        image.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        a = decode_compressed(fmt.lower(), buf.getvalue(), decoder="cv2")
        b = decode_compressed(fmt.lower(), buf.getvalue(), decoder="pillow")
        assert a.shape == b.shape == (120, 160, 3) and a.dtype == np.uint8
        assert np.abs(a.astype(int) - b).max() <= (1 if fmt == "JPEG" else 0), (image.mode, fmt)


def test_a_backend_that_sizes_frames_itself_gets_them_as_the_camera_sent_them():
    frame = np.zeros((480, 640, 3), np.uint8)
    out, problem = fit_image(frame, (224, 224), declared=(480, 640), mode="none")
    assert out is frame and problem is None
    out, problem = fit_image(np.zeros((240, 320, 3), np.uint8), (224, 224), declared=(480, 640), mode="none")
    assert out.shape == (240, 320, 3) and problem == "is 320x240, declared 640x480; passed on as is"
    from vla_ros.policies.builtin import BuiltinPolicy
    assert BuiltinPolicy.resize == "none"  # (its crop boxes are fractions of the camera's own frame)
