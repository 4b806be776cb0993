"""The recorder node in the real graph: an episode through the scripted expert becomes a readable bag."""

import subprocess
import sys

import pytest
from support import Probe, record_diagnostics, start_graph, wait_for_nodes

from vla_ros.episodes import EpisodeClient, run_episode
from vla_ros.learning.dataset import load_samples
from vla_ros.recording.bag import episode_info, read_topics
from vla_ros.robots import load_robot

pytestmark = pytest.mark.integration
ROBOT = load_robot("widowx")


def test_a_recorded_episode_holds_every_topic_and_becomes_training_samples(ros, tmp_path):
    probe = Probe("record_probe")
    record_diagnostics(probe)
    bags = tmp_path / "bags"
    graph = start_graph(tmp_path, overrides={"policy_node": {"start_paused": True},
                                             "recorder_node": {"record_commands": True}},
                        policy="scripted", record="true", record_dir=str(bags), driver="preset")
    try:
        with probe.guest(EpisodeClient(ROBOT.action_joints, None, max_frames=0)) as client:
            wait_for_nodes(probe, graph, ["sim_node", "policy_node", "controller_node", "recorder_node"])
            episode = run_episode(client, 0, seed=5, timeout=15.0, instruction="grab the green block", record=True)
            second = run_episode(client, 1, seed=6, timeout=15.0, instruction="pick up the red cube", record=True)
    finally:
        code = graph.stop()
        probe.close()
    assert code == 0 and episode.success and second.success, graph.log_path.read_text()[-3000:]
    # the named cube's yaw as the eval reads it from /sim/objects: as the sim places it for the seed
    from vla_ros.core.transforms import square_yaw_deg
    from vla_ros.sim.physics import ArmSim

    sim = ArmSim(ROBOT)
    for ep, name in ((episode, "green_cube"), (second, "red_cube")):
        sim.reset(ep.seed)
        assert ep.target_yaw == pytest.approx(square_yaw_deg(sim.object_poses()[name].quat_wxyz), abs=0.5)
    sim.close()
    home = [*ROBOT.sim.home, ROBOT.sim.gripper_home]
    for bag in (episode.bag, second.bag):  # each episode starts at home, not where the previous one ended
        _, first = read_topics(bag, ["/wx250s/joint_states"])["/wx250s/joint_states"][0]
        position = dict(zip(first.name, first.position))
        assert [position[j] for j in ROBOT.state_joints] == pytest.approx(home, abs=0.02), bag
    path = bags / "episode_000000"
    assert episode.bag == str(path)
    info = episode_info(path)
    assert info["success"] is True and info["instruction"] == "grab the green block" and info["seed"] == 5
    assert 1.0 < info["duration_s"] < 16.0
    msgs = read_topics(path, ["/camera/image_raw", "/wx250s/joint_states", "/vla/action_chunk", "/vla/controller/state",
                              "/wx250s/commands/joint_group", "/sim/task_success", "/vla/episode"])
    seconds = info["duration_s"]  # (wall time: a loaded machine runs the sim slower than real time)
    images = len(msgs["/camera/image_raw"])
    assert images >= 3 * seconds and len(msgs["/wx250s/joint_states"]) >= 20 * seconds  # 10 Hz, 100 Hz of sim time
    # the controller streams from when it is enabled (after the recording starts): the xs_sdk's JointGroupCommand
    # at 100 Hz (a type the bag registers from the installed definition) and its state at 100 Hz
    assert len(msgs["/wx250s/commands/joint_group"]) >= 30 * seconds
    assert len(msgs["/vla/controller/state"]) >= 30 * seconds
    assert len(msgs["/vla/action_chunk"]) >= 5 and len(msgs["/vla/episode"]) == 2
    assert any(m.data for _, m in msgs["/sim/task_success"])  # the lift was seen
    samples = load_samples(bags, {c.key: c.image_topic for c in ROBOT.cameras}, ROBOT.state_joints,
                           ROBOT.action_joints, 10, 0.1, 32, progress=False,
                           joint_states_topic=ROBOT.joint_states_topic)
    assert len(samples) >= images // 2 and samples.images.shape[1:] == (1, 3, 32, 32)  # (frames with a command)
    assert set(samples.instructions) == {"grab the green block", "pick up the red cube"}
    # the same bags as a LeRobotDataset: both episodes, every frame's state as the bag's joint states had it
    from vla_ros.datasets.episode_frames import read_episode
    from vla_ros.datasets.export import export_lerobot
    from vla_ros.datasets.lerobot_read import lerobot_samples

    report = export_lerobot([bags], tmp_path / "lerobot", progress=False)
    assert report.episodes == 2 and not report.skipped and report.frames >= 2 * seconds * 10 * 0.5
    frames = read_episode(path, ROBOT, 10)
    read_back = lerobot_samples(tmp_path / "lerobot", ROBOT, ["image_0"], ROBOT.state_joints, ROBOT.action_joints,
                                10, 0.1, 32, progress=False)
    assert read_back["state"][: len(frames)] == pytest.approx(frames.state)
    assert read_back["instructions"][0] == "grab the green block"


def test_the_episode_client_takes_no_ros_arguments_from_the_command_line():
    """`vla-ros eval robot:=widowx` hands its launch arguments to the graph, not to its own rcl context, where a
    ``name:=value`` word is an old-style remap rule (it remapped the client's topics and rcl warned). In a fresh
    process: the client initialises rclpy itself."""
    pytest.importorskip("rclpy")
    code = ("import sys; sys.argv = ['vla-ros', '/joint_states:=/elsewhere']\n"
            "from vla_ros.episodes import spinning_client\n"
            "with spinning_client(['waist'], None, 1, joint_states_topic='/joint_states') as client:\n"
            "    print(sorted(sub.topic_name for sub in client.subscriptions), flush=True)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "'/joint_states'" in out.stdout and "/elsewhere" not in out.stdout


def test_a_process_that_used_the_episode_client_exits_cleanly():
    """The client's spin thread is joined before rclpy shuts down: left inside rcl, it aborted the process at
    interpreter exit ("terminate called without an active exception", exit -6) in about 1 of 4 runs."""
    pytest.importorskip("rclpy")
    code = ("from vla_ros.episodes import spinning_client\n"
            "with spinning_client(['waist'], None, 1) as client:\n"
            "    client.get_name()\n"
            "print('closed', flush=True)\n")
    for _ in range(8):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and out.stdout == "closed\n", out.stderr
