"""LeRobotDataset v3.0 export and import: the files LeRobot 0.4.4 itself writes (fixtures made with LeRobot's own
writer, see test/fixtures/lerobot_v3/README.md), the frame rule on hand-made bags, bad episodes, and training
samples read back from an exported dataset."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyarrow")
pytest.importorskip("av")
pytest.importorskip("rosbags")

import pyarrow.parquet as pq  # noqa: E402

from vla_ros.datasets import lerobot_stats as st  # noqa: E402
from vla_ros.datasets import naming  # noqa: E402
from vla_ros.datasets.episode_frames import BadEpisode, EpisodeFrames, read_episode  # noqa: E402
from vla_ros.datasets.export import export_lerobot  # noqa: E402
from vla_ros.datasets.lerobot_read import DatasetError, flat_names, lerobot_samples  # noqa: E402
from vla_ros.datasets.lerobot_v3 import Layout, LeRobotWriter  # noqa: E402
from vla_ros.datasets.video import decode  # noqa: E402
from vla_ros.recording.bag import EpisodeWriter, typestore  # noqa: E402
from vla_ros.robots import load_robot  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot_v3"
STORE = typestore()
WIDOWX = load_robot("widowx")


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def reference():
    return json.loads((FIXTURES / "reference.json").read_text())


@pytest.fixture(scope="module")
def ours(tmp_path_factory):
    """The fixture's frames written by vla_ros (the same frames LeRobot wrote for reference.json)."""
    data = np.load(FIXTURES / "frames.npz")
    cams = {"front": (48, 64), "high": (240, 320)}
    layout = Layout(str(data["robot_type"]), int(data["fps"]), [str(x) for x in data["state_names"]],
                    [str(x) for x in data["action_names"]], cams, str(data["names_key"]))
    writer = LeRobotWriter(tmp_path_factory.mktemp("ours") / "ds", layout)
    for e in range(2):
        writer.add(EpisodeFrames("synthetic", str(data[f"e{e}_task"]), 10.0, data[f"e{e}_state"],
                                 data[f"e{e}_action"], {c: data[f"e{e}_img_{c}"] for c in cams}))
    return writer.close(), data


def test_info_tasks_data_and_schemas_are_the_files_lerobot_writes(ours, reference):
    root, _ = ours
    assert json.loads((root / "meta/info.json").read_text()) == reference["info"]
    assert pq.read_table(root / "meta/tasks.parquet").to_pylist() == reference["tasks"]
    assert pq.read_table(root / "data/chunk-000/file-000.parquet").to_pylist() == reference["data"]
    for name, path in [("tasks", "meta/tasks.parquet"), ("episodes", "meta/episodes/chunk-000/file-000.parquet"),
                       ("data", "data/chunk-000/file-000.parquet")]:
        assert pq.read_schema(root / path).to_string(show_schema_metadata=False) == reference["schemas"][name]
    assert not root.with_name("ds.partial").exists()


def _close(a, b) -> bool:
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-6, atol=1e-9)


def test_episode_rows_and_statistics_match_lerobot_except_its_uint8_image_std(ours, reference):
    root, data = ours
    episodes = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    stats = json.loads((root / "meta/stats.json").read_text())
    assert len(episodes) == len(reference["episodes"]) == 2
    for row, ref in zip(episodes, reference["episodes"]):
        assert set(row) == set(ref)
        for key in ref:
            if key.startswith("stats/observation.images") and key.endswith("/std"):
                assert np.all(np.asarray(ref[key]) == 0.0)  # LeRobot 0.4.4 squares uint8 pixels: it wraps
                assert np.all(np.asarray(row[key]) > 0.2)
            elif key == "tasks":
                assert row[key] == ref[key]
            else:
                assert _close(row[key], ref[key]), key
    for feature, ref in reference["stats"].items():
        assert set(stats[feature]) == set(ref) == {"min", "max", "mean", "std", "count", *st.QUANTILE_KEYS}
        for key in ref:
            if not (feature.startswith("observation.images") and key == "std"):
                assert _close(stats[feature][key], ref[key]), (feature, key)
    # the image std is the true one: recompute it from the frames LeRobot samples (every one of these short
    # episodes, the 320x240 camera subsampled by 2)
    for cam, step in (("front", 1), ("high", 2)):
        pixels = np.concatenate([data[f"e{e}_img_{cam}"][:, ::step, ::step].reshape(-1, 3) for e in range(2)]) / 255.0
        assert np.allclose(np.ravel(stats[f"observation.images.{cam}"]["std"]), pixels.std(axis=0), rtol=1e-3)


def test_videos_hold_every_episode_at_exact_timestamps_within_codec_tolerance(ours):
    root, data = ours
    for cam in ("front", "high"):
        times, frames = decode(root / f"videos/observation.images.{cam}/chunk-000/file-000.mp4")
        source = np.concatenate([data[f"e{e}_img_{cam}"] for e in range(2)])
        assert np.array_equal(times, np.arange(len(source)) / 10.0)  # episode 1 from 1.2 s, as its row says
        assert psnr(frames, source) >= 30.0  # random 16-px blocks, 4:2:0 chroma: the hardest case for the codec


def test_statistics_follow_lerobots_histogram_quantiles():
    rows = np.arange(1, 101, dtype=np.float32).reshape(-1, 1)
    stats = st.vector_stats(rows)
    assert stats["min"][0] == 1 and stats["max"][0] == 100 and stats["count"][0] == 100
    # the value whose histogram bin holds the q * n-th count (np.quantile would say 50.5, 1.99 and 99.01)
    assert stats["q50"][0] == pytest.approx(50.0, abs=0.02)
    assert stats["q01"][0] == pytest.approx(1.0, abs=0.02) and stats["q99"][0] == pytest.approx(99.0, abs=0.02)
    assert list(st.sample_indices(5)) == [0, 1, 2, 3, 4] and len(st.sample_indices(1000)) == 177
    both = st.aggregate([st.vector_stats(rows[:50]), st.vector_stats(rows[50:])])
    assert both["mean"][0] == pytest.approx(50.5) and both["std"][0] == pytest.approx(rows.std(), rel=1e-6)


# ---- recorded bags: the frame rule, bad episodes, export and import ----

def _header(t: float):
    stamp = STORE.types["builtin_interfaces/msg/Time"](sec=int(t), nanosec=int(round((t - int(t)) * 1e9)))
    return STORE.types["std_msgs/msg/Header"](stamp=stamp, frame_id="")


def _cdr(msgtype: str, **fields) -> bytes:
    return bytes(STORE.serialize_cdr(STORE.types[msgtype](**fields), msgtype))


def _joints(t: float, values) -> bytes:
    return _cdr("sensor_msgs/msg/JointState", header=_header(t), name=list(WIDOWX.state_joints),
                position=np.asarray(values, float), velocity=np.array([], float), effort=np.array([], float))


def write_bag(path, t0: float = 100.0, seconds: float = 2.0, instruction: str = "pick up the red cube",
              camera: bool = True, nan_at: float | None = None, robot: str = "widowx") -> Path:
    """A WidowX episode: joint states 100 Hz starting at t0 (value = time), commands 100 Hz from t0 + 0.013
    (value = 2 x time), camera 10 Hz from t0 + 0.05 (16x16, every pixel = 10 x frame number)."""
    topics = {"/camera/image_raw": "sensor_msgs/msg/Image", "/wx250s/joint_states": "sensor_msgs/msg/JointState",
              "/vla/controller/state": "sensor_msgs/msg/JointState"}
    writer = EpisodeWriter(path, topics, {"seed": 3, "instruction": instruction, "robot": robot})
    n = len(WIDOWX.state_joints)
    for k in range(int(seconds * 100)):
        t = t0 + k * 0.01
        q = np.full(n, np.nan if nan_at is not None and abs(t - nan_at) < 1e-6 else t - t0)
        writer.write("/wx250s/joint_states", int(t * 1e9), _joints(t, q))
        writer.write("/vla/controller/state", int(t * 1e9), _joints(t + 0.013, np.full(n, 2 * (t + 0.013 - t0))))
        if camera and k % 10 == 5:
            img = np.full(16 * 16 * 3, 10 * (k // 10), np.uint8)
            writer.write("/camera/image_raw", int(t * 1e9), _cdr(
                "sensor_msgs/msg/Image", header=_header(t), height=16, width=16, encoding="rgb8", is_bigendian=0,
                step=48, data=img))
    writer.close(success=True)
    return Path(path)


def test_frames_follow_the_stated_rule(tmp_path):
    ep = read_episode(write_bag(tmp_path / "episode_000000"), WIDOWX, fps=10)
    # start = the first moment every stream has a message: the camera's first frame at t0 + 0.05; the last frame
    # is the last camera frame (t0 + 1.95): 20 frames at 10 fps
    assert len(ep) == 20 and ep.task == "pick up the red cube"
    t = 0.05 + np.arange(20) / 10
    assert np.allclose(ep.state[:, 0], np.floor(t * 100 + 1e-6) / 100, atol=1e-6)  # newest state at or before t_i
    # the commanded position at t_i + 1/fps; past the last command (stamped t0 + 2.003) it holds
    assert np.allclose(ep.action[:, 0], 2 * np.minimum(t + 0.1, 2.003), atol=1e-5)
    assert [int(f[0, 0, 0]) // 10 for f in ep.images["image_0"]] == list(range(20))  # newest frame at or before t_i
    assert np.array_equal(ep.timestamps, (np.arange(20) / 10).astype(np.float32))
    faster = read_episode(tmp_path / "episode_000000", WIDOWX, fps=20)
    assert len(faster) == 39 and [int(f[0, 0, 0]) // 10 for f in faster.images["image_0"]][:4] == [0, 0, 1, 1]


@pytest.mark.parametrize("case", ["truncated", "no_camera", "nan", "no_task", "other_robot"])
def test_a_bad_recording_is_refused_with_the_reason(tmp_path, case):
    path = write_bag(tmp_path / "episode_000000", camera=case != "no_camera", nan_at=100.5 if case == "nan" else None,
                     instruction="" if case == "no_task" else "lift it",
                     robot="aloha" if case == "other_robot" else "widowx")
    if case == "truncated":
        (path / "metadata.yaml").unlink()  # what a killed recorder leaves
    reason = {"truncated": "not a finished episode bag", "no_camera": "no camera image_0", "nan": "non-finite",
              "no_task": "no instruction", "other_robot": "recorded with robot 'aloha'"}[case]
    with pytest.raises(BadEpisode, match=reason):
        read_episode(path, WIDOWX, fps=10)


def test_export_skips_bad_episodes_and_never_leaves_a_half_written_dataset(tmp_path):
    bags = tmp_path / "bags"
    write_bag(bags / "episode_000000")
    write_bag(bags / "episode_000001", instruction="lift the blue block", seconds=1.5)
    broken = write_bag(bags / "episode_000002")
    (broken / "metadata.yaml").unlink()
    out = tmp_path / "ds"
    report = export_lerobot([bags], out, image_size=(16, 16), progress=False, log=lambda _: None)
    assert report.episodes == 2 and report.frames == 20 + 15 and len(report.skipped) == 1
    assert "episode_000002" in report.skipped[0] and not Path(f"{out}.partial").exists()
    info = json.loads((out / "meta/info.json").read_text())
    assert info["total_episodes"] == 2 and info["robot_type"] == "widowx" and info["fps"] == 10
    assert info["features"]["observation.state"]["names"] == naming.names(WIDOWX, WIDOWX.state_joints)
    assert info["features"]["observation.state"]["names"][-1] == "gripper.pos"
    assert [r["task"] for r in [dict(zip(["task_index", "task"], row.values()))
                                for row in pq.read_table(out / "meta/tasks.parquet").to_pylist()]] \
        == ["pick up the red cube", "lift the blue block"]
    shutil.rmtree(bags / "episode_000000")
    shutil.rmtree(bags / "episode_000001")
    with pytest.raises(ValueError, match="none of the 1 episodes"):
        export_lerobot([bags], tmp_path / "empty", image_size=(16, 16), progress=False, log=lambda _: None)
    assert not (tmp_path / "empty").exists() and not (tmp_path / "empty.partial").exists()


def test_an_exported_dataset_reads_back_as_training_samples(tmp_path):
    bags = tmp_path / "bags"
    write_bag(bags / "episode_000000")
    export_lerobot([bags], tmp_path / "ds", image_size=(16, 16), progress=False)
    joints = list(WIDOWX.state_joints)
    arrays = lerobot_samples(tmp_path / "ds", WIDOWX, ["image_0"], joints, joints, horizon=3, dt=0.1, size=16,
                             progress=False)
    t = 0.05 + np.arange(20) / 10
    assert arrays["state"].shape == (20, 7) and arrays["targets"].shape == (20, 3, 7)
    assert np.allclose(arrays["state"][:, 0], np.floor(t * 100 + 1e-6) / 100, atol=1e-6)
    # the target k steps ahead = the command at t_i + k * dt (held at the last past the end)
    future = np.minimum(t[:, None] + 0.1 * np.arange(1, 4), 2.003)
    assert np.allclose(arrays["targets"][:, :, 0], 2 * future, atol=1e-4)
    assert arrays["instructions"] == ["pick up the red cube"] * 20
    assert [int(round(img[0, 0, 8, 8] / 10)) for img in arrays["images"]] == list(range(20))  # (codec: +-2)
    assert "glimpses" not in arrays
    both = lerobot_samples(tmp_path / "ds", WIDOWX, ["image_0"], joints, joints, horizon=3, dt=0.1, size=8,
                           progress=False, glimpse_size=16)  # a glimpse model's: the frames at two sizes
    assert both["images"].shape == (20, 1, 3, 8, 8) and both["glimpses"].shape == (20, 1, 3, 16, 16)
    np.testing.assert_array_equal(both["glimpses"], arrays["images"])  # (16 px: as recorded, one decoding)
    with pytest.raises(DatasetError, match="dataset.joints"):
        lerobot_samples(tmp_path / "ds", load_robot("franka"), ["exterior_image_1_left"],
                        list(load_robot("franka").state_joints), list(load_robot("franka").state_joints), 3, 0.1, 16,
                        progress=False)


def test_presets_name_rows_as_lerobots_datasets_of_that_robot_do():
    aloha, franka = load_robot("aloha"), load_robot("franka")
    names = naming.names(aloha, aloha.state_joints)
    assert names[6] == "left_gripper" and names[13] == "right_gripper" and names[0] == "left_waist"
    fingers = np.zeros((2, 14))
    fingers[:, 6] = [0.0440, 0.0579]  # closed, open
    unit = naming.to_dataset(aloha, aloha.state_joints, fingers)
    assert unit[:, 6] == pytest.approx([0.0, 1.0])  # ALOHA: 0 closed .. 1 open
    assert naming.from_dataset(aloha, aloha.state_joints, unit)[:, 6] == pytest.approx([0.0440, 0.0579])
    hand = np.zeros((2, 8))
    hand[:, 7] = [0.04, 0.0]  # open, closed
    assert naming.to_dataset(franka, franka.state_joints, hand)[:, 7] == pytest.approx([0.0, 1.0])  # DROID
    assert naming.camera_name(franka, "exterior_image_1_left") == "exterior_1_left"
    for written in (["a", "b"], {"motors": ["a", "b"]}, {"axes": ["a", "b"]}, [["a", "b"]]):
        assert flat_names(written) == ["a", "b"]


def test_the_built_in_model_trains_from_an_exported_dataset(tmp_path):
    torch = pytest.importorskip("torch")
    from vla_ros.learning.train import train

    bags = tmp_path / "bags"
    for k, colour in enumerate(("red", "green", "blue")):
        write_bag(bags / f"episode_{k:06d}", instruction=f"pick up the {colour} cube")
    export_lerobot([bags], tmp_path / "ds", image_size=(32, 32), progress=False)
    report = train([tmp_path / "ds"], tmp_path / "model", "widowx", image_size=32, epochs=1, val_fraction=0.34,
                   progress=False)
    assert report["episodes"] == 3 and report["samples"] == 60 and report["intervention_samples"] == 0
    assert (tmp_path / "model" / "model.safetensors").exists() and np.isfinite(report["history"]["val_loss"][-1])
    turned = train([tmp_path / "ds"], tmp_path / "turned", "widowx", image_size=32, epochs=1, val_fraction=0.34,
                   progress=False, turn={"waist": 1.0, "wrist_rotate": -1.0}, turn_joint="wrist_rotate",
                   precision="bf16")
    assert turned["config"]["turn"] == {"waist": 1.0, "wrist_rotate": -1.0}  # (the turn to the nearest face)
    # bfloat16 autocast trains the steps; the weights it saves stay float32
    from safetensors.torch import load_file

    weights = load_file(str(tmp_path / "turned" / "model.safetensors"))
    assert turned["precision"] == "bf16" and {w.dtype for w in weights.values()} == {torch.float32}
    with pytest.raises(ValueError, match="precision must be one of"):
        train([tmp_path / "ds"], tmp_path / "other", "widowx", precision="fp16", progress=False)
    assert np.isfinite(turned["history"]["val_turn_error"][-1]) and np.isnan(report["history"]["val_turn_error"][-1])
    with pytest.raises(ValueError, match="has cameras"):  # a camera the preset lacks: refused, naming its cameras
        train([tmp_path / "ds"], tmp_path / "other", "widowx", cameras=["cam_high"], progress=False)

    # --init on other data: the checkpoint's normalisation and word ids are kept (its weights were fitted to
    # them); data with a word the checkpoint never saw is refused, naming it
    more = tmp_path / "more"
    for k, colour in enumerate(("blue", "red")):
        write_bag(more / f"episode_{k:06d}", instruction=f"lift the {colour} cube")
    with pytest.raises(ValueError, match=r"never saw: \['lift'\]"):
        train([more], tmp_path / "tuned", "widowx", image_size=32, epochs=1, init=tmp_path / "model",
              progress=False)
    longer = tmp_path / "longer"  # 2.5 s episodes: other statistics than the checkpoint's 2 s ones
    for k, colour in enumerate(("blue", "red")):
        write_bag(longer / f"episode_{k:06d}", instruction=f"pick up the {colour} cube", seconds=2.5)
    train([longer], tmp_path / "tuned", "widowx", image_size=32, epochs=1, val_fraction=0.5,
          init=tmp_path / "model", progress=False)
    for name in ("norm_stats.json", "tokenizer.json"):
        assert (tmp_path / "tuned" / name).read_text() == (tmp_path / "model" / name).read_text()
