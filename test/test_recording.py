"""Episode bags (rosbag2/MCAP) and the training samples read from them, checked by hand."""

import json

import numpy as np
import pytest

pytest.importorskip("rosbags")

from vla_ros.learning.dataset import (  # noqa: E402
    episode_dirs,
    episode_samples,
    load_folders,
    load_samples,
    read_workers,
)
from vla_ros.recording.bag import EpisodeWriter, episode_info, read_topics, typestore  # noqa: E402

STORE = typestore()
JOINTS = ["a", "b"]


def cdr(msgtype: str, **fields) -> bytes:
    return bytes(STORE.serialize_cdr(STORE.types[msgtype](**fields), msgtype))


def header(t: float):
    stamp = STORE.types["builtin_interfaces/msg/Time"](sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
    return STORE.types["std_msgs/msg/Header"](stamp=stamp, frame_id="")


def image(t: float, value: int, size: int = 8):
    data = np.full(size * size * 3, value, np.uint8)
    return cdr("sensor_msgs/msg/Image", header=header(t), height=size, width=size, encoding="rgb8",
               is_bigendian=0, step=size * 3, data=data)


def joints(t: float, q):
    return cdr("sensor_msgs/msg/JointState", header=header(t), name=JOINTS, position=np.asarray(q, float),
               velocity=np.array([], float), effort=np.array([], float))


def write_episode(path, success=True, instruction="pick up the red cube", interventions=None):
    topics = {"/cam/image_raw": "sensor_msgs/msg/Image", "/joint_states": "sensor_msgs/msg/JointState",
              "/vla/controller/state": "sensor_msgs/msg/JointState"}
    writer = EpisodeWriter(path, topics, {"seed": 7})
    writer.event(0, event="start", instruction=instruction)
    for k in range(101):  # joint states at 100 Hz: q = (t, 2t); commands lead them: (t + 0.05, 2t)
        t = 100.0 + 0.01 * k
        writer.write("/joint_states", int(t * 1e9), joints(t, [t - 100, 2 * (t - 100)]))
        writer.write("/vla/controller/state", int(t * 1e9), joints(t, [t - 100 + 0.05, 2 * (t - 100)]))
    for k in range(6):  # frames at 5 Hz, pixel value = 10 k
        t = 100.005 + 0.2 * k
        writer.write("/cam/image_raw", int(t * 1e9), image(t, 10 * k))
    writer.event(int(1e9), event="end", success=success)
    return writer.close(success=success, **({"interventions_ns": interventions} if interventions else {}))


def test_a_bag_round_trips_messages_events_and_episode_facts(tmp_path):
    path = write_episode(tmp_path / "episode_000000")
    assert (path / "metadata.yaml").exists() and (path / "episode_000000.mcap").exists()
    assert episode_info(path) == {"seed": 7, "success": True}
    msgs = read_topics(path, ["/joint_states", "/vla/episode", "/cam/image_raw"])
    assert len(msgs["/joint_states"]) == 101 and len(msgs["/cam/image_raw"]) == 6
    events = [json.loads(m.data) for _, m in msgs["/vla/episode"]]
    assert events == [{"event": "start", "instruction": "pick up the red cube"}, {"event": "end", "success": True}]
    np.testing.assert_allclose(msgs["/joint_states"][10][1].position, [0.1, 0.2])


def test_samples_pair_each_frame_with_the_newest_state_and_the_commanded_future(tmp_path):
    path = write_episode(tmp_path / "episode_000000")
    arrays, texts = episode_samples(path, {"cam": "/cam/image_raw"}, JOINTS, JOINTS, horizon=3, dt=0.1, size=4)
    assert texts == ["pick up the red cube"] * 6
    assert arrays["images"].shape == (6, 1, 3, 4, 4)
    np.testing.assert_array_equal(arrays["images"][:, 0, 0, 0, 0], [0, 10, 20, 30, 40, 50])  # frame k: value 10 k
    # frame at 100.205: the newest joint state is the one stamped 100.20 -> (0.20, 0.40)
    np.testing.assert_allclose(arrays["state"][1], [0.20, 0.40], atol=1e-6)
    # its targets: commands at 100.305, 100.405, 100.505 -> a = t - 100 + 0.05, b = 2 (t - 100)
    np.testing.assert_allclose(arrays["targets"][1], [[0.355, 0.61], [0.455, 0.81], [0.555, 1.01]], atol=1e-6)
    # past the last command (stamped 101.00: (1.05, 2.0)) the targets hold it
    np.testing.assert_allclose(arrays["targets"][5][-1], [1.05, 2.0], atol=1e-6)


def test_frames_inside_a_recorded_takeover_are_marked(tmp_path):
    # a teleoperator had the arm from 100.3 s to 100.7 s: frames at 100.405 and 100.605 (not 100.205, 100.805)
    path = write_episode(tmp_path / "episode_000000", interventions=[[100_300_000_000, 100_700_000_000]])
    arrays, _ = episode_samples(path, {"cam": "/cam/image_raw"}, JOINTS, JOINTS, horizon=3, dt=0.1, size=4)
    assert arrays["intervention"].tolist() == [False, False, True, True, False, False]
    samples = load_samples(tmp_path, {"cam": "/cam/image_raw"}, JOINTS, JOINTS, 3, 0.1, 4, progress=False)
    assert samples.intervention.tolist() == [False, False, True, True, False, False]
    assert samples.subset(samples.intervention).state.shape == (2, 2)


def test_only_finished_successful_episodes_are_loaded_and_the_result_is_cached(tmp_path):
    write_episode(tmp_path / "episode_000000")
    write_episode(tmp_path / "episode_000001", success=False)
    (tmp_path / "episode_000002").mkdir()  # a crash mid-episode: no metadata.yaml
    assert [p.name for p in episode_dirs(tmp_path)] == ["episode_000000"]
    samples = load_samples(tmp_path, {"cam": "/cam/image_raw"}, JOINTS, JOINTS, 3, 0.1, 4, progress=False)
    assert len(samples) == 6 and set(samples.episode) == {0}
    assert len(list(tmp_path.glob("samples_*.npz"))) == 1
    again = load_samples(tmp_path, {"cam": "/cam/image_raw"}, JOINTS, JOINTS, 3, 0.1, 4, progress=False)
    np.testing.assert_array_equal(again.targets, samples.targets)


def test_folders_load_as_one_set_with_distinct_episodes(tmp_path):
    for folder in ("a", "b"):
        write_episode(tmp_path / folder / "episode_000000")
    one = load_samples(tmp_path / "a", {"cam": "/cam/image_raw"}, JOINTS, JOINTS, 3, 0.1, 4, progress=False)
    both = load_folders([tmp_path / "a", tmp_path / "b"], {"cam": "/cam/image_raw"}, JOINTS, JOINTS, 3, 0.1, 4,
                        progress=False)
    assert len(both) == 2 * len(one) and len(both.instructions) == len(both)
    np.testing.assert_array_equal(both.episode, [0] * len(one) + [1] * len(one))
    np.testing.assert_array_equal(both.targets[len(one):], one.targets)


def test_recorded_and_evaluated_instructions_name_the_presets_task_objects():
    """ALOHA's transfer has one red cube: every instruction names it (a green one would name nothing)."""
    from vla_ros.core.instructions import task_colours
    from vla_ros.evaluate import default_instructions
    from vla_ros.recording.collect import instruction_for

    assert task_colours(["red_cube", "green_cube", "blue_cube"]) == ("red", "green", "blue")
    assert task_colours(["red_cube"]) == ("red",) and task_colours(["widget"]) == ()
    assert default_instructions(False, "aloha") == ["pick up the red cube"]
    assert len(default_instructions(True, "franka")) == 3 + 3 * 2  # one trained, two held out per colour
    assert {instruction_for(k, 3, ("red",)).split()[-2] for k in range(6)} == {"red"}
    assert [instruction_for(k, 3).split()[-2] for k in range(3)] == ["red", "green", "blue"]


def test_a_glimpse_models_samples_hold_the_frames_at_the_glimpse_size_too(tmp_path):
    write_episode(tmp_path / "episode_000000")
    args = ({"cam": "/cam/image_raw"}, JOINTS, JOINTS, 3, 0.1, 4)
    plain = load_samples(tmp_path, *args, progress=False)
    samples = load_samples(tmp_path, *args, progress=False, glimpse_size=8)
    assert plain.glimpses is None and samples.glimpses.shape == (6, 1, 3, 8, 8)
    np.testing.assert_array_equal(samples.glimpses[:, 0, 0, 3, 3], [0, 10, 20, 30, 40, 50])  # the same frames
    assert len(list(tmp_path.glob("samples_*.npz"))) == 2  # cached apart
    again = load_samples(tmp_path, *args, progress=False, glimpse_size=8)
    np.testing.assert_array_equal(again.glimpses, samples.glimpses)
    both = load_folders([tmp_path, tmp_path], *args, progress=False, glimpse_size=8)
    assert both.glimpses.shape == (12, 1, 3, 8, 8) and both.subset(both.episode == 1).glimpses.shape[0] == 6


def test_a_glimpse_of_some_cameras_holds_only_their_frames_and_is_cached_apart(tmp_path):
    write_episode(tmp_path / "episode_000000")
    topics = {"wide": "/cam/image_raw", "wrist": "/cam/image_raw"}  # (one recorded camera under two keys)
    every = load_samples(tmp_path, topics, JOINTS, JOINTS, 3, 0.1, 4, progress=False, glimpse_size=8)
    named = load_samples(tmp_path, topics, JOINTS, JOINTS, 3, 0.1, 4, progress=False, glimpse_size=8,
                         glimpse_keys=["wide"])
    assert every.glimpses.shape == (6, 2, 3, 8, 8) and named.glimpses.shape == (6, 1, 3, 8, 8)
    np.testing.assert_array_equal(named.glimpses[:, 0], every.glimpses[:, 0])
    assert len(list(tmp_path.glob("samples_*.npz"))) == 2
    again = load_samples(tmp_path, topics, JOINTS, JOINTS, 3, 0.1, 4, progress=False, glimpse_size=8,
                         glimpse_keys=["wide", "wrist"])  # naming every camera: the same cache as none named
    assert again.glimpses.shape == (6, 2, 3, 8, 8) and len(list(tmp_path.glob("samples_*.npz"))) == 2


def test_a_crop_views_images_are_the_box_of_its_cameras_frames(tmp_path):
    write_episode(tmp_path / "episode_000000")
    topics = {"cam": "/cam/image_raw", "cam_top": "/cam/image_raw"}  # the crop reads its camera's topic
    crops = {"cam_top": ["cam", 0.0, 0.0, 1.0, 0.5]}  # the top half: 8x4 pixels, padded to 4x4 as 4x2
    samples = load_samples(tmp_path, topics, JOINTS, JOINTS, 3, 0.1, 4, progress=False, crops=crops)
    whole, top = samples.images[:, 0, 0], samples.images[:, 1, 0]
    np.testing.assert_array_equal(whole[:, :, 1], np.arange(0, 60, 10)[:, None] * np.ones(4))
    np.testing.assert_array_equal(top[:, 0], 0)  # padding: a box of another shape than the frame
    np.testing.assert_array_equal(top[:, 1:3, 1], np.arange(0, 60, 10)[:, None] * np.ones(2))
    plain = load_samples(tmp_path, topics, JOINTS, JOINTS, 3, 0.1, 4, progress=False)
    np.testing.assert_array_equal(plain.images[:, 1], plain.images[:, 0])  # cached apart from the crop's
    assert len(list(tmp_path.glob("samples_*.npz"))) == 2


def test_episodes_read_by_reader_threads_come_back_in_order_and_equal(tmp_path):
    """Two reader threads give the same samples, in episode order, as reading on the calling thread."""
    for k, colour in enumerate(["red", "green", "blue", "red", "green", "blue", "red", "green", "blue"]):
        write_episode(tmp_path / f"episode_{k:06d}", instruction=f"pick up the {colour} cube")
    args = ({"cam": "/cam/image_raw"}, JOINTS, JOINTS, 3, 0.1, 4)
    alone = load_samples(tmp_path, *args, cache=False, progress=False, workers=1)
    pooled = load_folders([tmp_path], *args, cache=False, progress=False, workers=2)
    assert pooled.instructions == alone.instructions and len(set(pooled.instructions)) == 3
    np.testing.assert_array_equal(pooled.episode, np.repeat(np.arange(9), 6))
    np.testing.assert_array_equal(pooled.images, alone.images)
    np.testing.assert_array_equal(pooled.targets, alone.targets)
    assert read_workers(9) >= 1 and read_workers(3) == 1 and read_workers(3, 2) == 2
    with pytest.raises(ValueError, match="read workers"):
        load_samples(tmp_path, *args, cache=False, progress=False, workers=-1)


def test_every_success_count_lies_in_its_own_interval_and_plots(tmp_path):
    """Wilson's bounds for 0/n and n/n came out a hair inside 0 or 1 by rounding (77 of the counts up to n=199,
    6/6 among them), and the success plot then refused the negative error bar: `vla-ros eval --episodes 6`
    ended with "'yerr' must not contain negative values" instead of its table."""
    from vla_ros.evaluate import plot, wilson

    for n in range(1, 200):
        for k in range(n + 1):
            low, high = wilson(k, n)
            assert 0.0 <= low <= k / n <= high <= 1.0, (k, n)
    rows = [{"success_rate": 1.0, "ci95": wilson(6, 6), "held_out": False, "instruction": "pick up the red cube"},
            {"success_rate": 0.0, "ci95": wilson(0, 11), "held_out": True, "instruction": "take the blue one"}]
    assert plot(rows, tmp_path / "success.png").stat().st_size > 0
