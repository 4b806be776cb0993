"""MuJoCo sim without ROS: model, servo tracking, JTC input, seeds, cameras, and the scripted task."""

import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from vla_ros.policies import PolicyContext, PolicyError, create_policy  # noqa: E402
from vla_ros.policies.scripted import target_object  # noqa: E402
from vla_ros.robots import TaskSpec, load_robot  # noqa: E402
from vla_ros.sim.physics import ArmSim  # noqa: E402
from vla_ros.sim.rollout import controller_executor, run_closed_loop  # noqa: E402


@pytest.fixture(scope="module")
def robot():
    return load_robot("widowx")


@pytest.fixture(scope="module")
def sim(robot):
    s = ArmSim(robot)
    yield s
    s.close()


def test_model_has_the_urdf_joints_and_runs_at_500_hz(sim):
    assert sim.joint_names == ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate",
                               "left_finger", "right_finger"]
    assert 1.0 / sim.dt >= 500.0
    lo, hi = sim.model.jnt_range[sim.model.joint("shoulder").id]
    assert lo == pytest.approx(np.radians(-108), abs=1e-5) and hi == pytest.approx(np.radians(114), abs=1e-5)


def test_servos_track_a_forward_command(sim):
    sim.reset(0)
    target = np.array([0.3, -0.2, 0.6, 0.1, 1.0, -0.4])
    sim.set_forward_command("arm_controller", target)
    sim.set_forward_command("gripper_controller", np.array([0.025]))
    sim.step(int(1.5 / sim.dt))
    np.testing.assert_allclose(sim.positions()[:6], target, atol=0.01)
    assert sim.joint("left_finger") == pytest.approx(0.025, abs=1e-3)
    assert sim.joint("right_finger") == pytest.approx(-0.025, abs=1e-3)  # mimic joint
    with pytest.raises(ValueError, match="expects 6 values"):
        sim.set_forward_command("arm_controller", np.zeros(3))
    with pytest.raises(ValueError, match="non-finite"):
        sim.set_forward_command("arm_controller", np.full(6, np.nan))


def test_joint_trajectory_input_follows_jtc_timing(sim):
    sim.reset(0)
    start = sim.positions()[:6]
    goal = start + np.array([0.3, 0.2, -0.2, 0.0, 0.2, 0.3])
    joints = sim.controllers["arm_controller"]
    sim.set_trajectory("arm_controller", joints, 0.0, sim.time, np.array([1.0]), goal[None, :], None, None)
    sim.step(int(0.5 / sim.dt))
    halfway = sim.positions()[:6]
    np.testing.assert_allclose(halfway, (start + goal) / 2, atol=0.03)
    sim.step(int(1.0 / sim.dt))
    np.testing.assert_allclose(sim.positions()[:6], goal, atol=0.01)


def test_reset_is_seeded_and_objects_are_apart(sim):
    a, b, c = sim.reset(7), sim.reset(7), sim.reset(8)
    assert a == b and a != c
    xy = np.array([v[:2] for v in c.values()])
    dists = [np.linalg.norm(xy[i] - xy[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(dists) >= 0.075
    poses = sim.object_poses()
    assert all(abs(p.position[2] - 0.015) < 0.002 for p in poses.values())  # resting on the table
    assert not sim.task.success


def test_a_start_spread_varies_the_arm_pose_from_the_seed_and_leaves_the_scene(sim, robot):
    home = np.array(robot.sim.home)
    placed = sim.reset(7)
    np.testing.assert_allclose(sim.positions()[:6], home, atol=0.01)
    starts = []
    for seed in (7, 7, 8):
        assert sim.reset(seed, start_spread=0.35) == (placed if seed == 7 else sim.reset(8))
        starts.append(np.array([sim.targets()[j] for j in robot.arm_joints]))
        np.testing.assert_allclose(sim.positions()[:6], starts[-1], atol=0.02)  # the servos hold it
    offsets = np.array(starts) - home
    assert np.all(np.abs(offsets) <= 0.35) and np.abs(offsets).max() > 0.1
    np.testing.assert_array_equal(starts[0], starts[1])
    assert np.abs(starts[0] - starts[2]).max() > 0.05


def test_a_joint_spread_moves_only_its_joints_and_bad_ones_are_refused(sim, robot):
    home = np.array(robot.sim.home)
    wrist = robot.arm_joints.index("wrist_rotate")
    turns = []
    for seed in range(6):
        sim.reset(seed, joint_spread={"wrist_rotate": 0.6})
        start = np.array([sim.targets()[j] for j in robot.arm_joints])
        others = np.delete(start - home, wrist)
        np.testing.assert_array_equal(others, 0.0)
        turns.append(start[wrist] - home[wrist])
    assert max(np.abs(turns)) <= 0.6 and min(turns) < -0.1 and max(turns) > 0.1  # either way, seeded
    assert ArmSim.parse_joint_spread(" wrist_rotate=0.6, waist=0.1 ") == {"wrist_rotate": 0.6, "waist": 0.1}
    assert ArmSim.parse_joint_spread("") == {}
    for bad in ("wrist_rotate", "wrist_rotate=x", "=0.2", "waist=2"):
        with pytest.raises(ValueError, match="JOINT=RAD"):
            ArmSim.parse_joint_spread(bad)
    before = sim.targets()
    with pytest.raises(ValueError, match="not arm joints"):
        sim.reset(3, joint_spread={"left_finger": 0.3})
    assert sim.targets() == before  # refused before anything moved


def test_camera_renders_the_scene(sim, robot):
    sim.reset(0)
    cam = robot.cameras[0]
    img = sim.render(cam.name, cam.width, cam.height)
    assert img.shape == (224, 224, 3) and img.dtype == np.uint8
    assert img.std() > 20  # not a blank frame
    red = (img[:, :, 0] > 150) & (img[:, :, 1] < 80) & (img[:, :, 2] < 80)
    assert red.sum() > 10  # the red cube is in view


def test_instruction_parsing():
    objs = {"red_cube": {}, "green_cube": {}, "blue_cube": {}}
    assert target_object("Pick up the red cube", objs) == "red_cube"
    assert target_object("grab the GREEN block", objs) == "green_cube"
    assert target_object("lift blue cube now", objs) == "blue_cube"
    with pytest.raises(PolicyError, match="names none"):
        target_object("pick up the purple cube", objs)


@pytest.mark.parametrize("seed, instruction", [(0, "pick up the red cube"), (1, "pick up the red cube"),
                                               (2, "pick up the blue cube")])
def test_scripted_expert_solves_the_task_in_closed_loop(sim, robot, seed, instruction):
    sim.task.target = instruction.split()[-2] + "_cube"
    ctx = PolicyContext(robot, robot.state_joints, robot.action_joints, [], (224, 224), 0.1, 10, {})
    executor = controller_executor(robot, create_policy("scripted", ctx), latency=0.05)
    try:
        result = run_closed_loop(sim, executor, seed, instruction, timeout=15.0)
    finally:
        sim.task.target = "red_cube"
    assert result.success, f"seed {seed}: not lifted within 15 s"
    assert 2.0 < result.duration < 10.0 and sim.task.progress == 1  # (the pick's one stage: lifted)
    assert abs(sim.task.grasp_width - robot.task.cube_size) < 0.002  # square: across two faces


def test_a_cube_spans_its_width_square_and_more_across_a_diagonal(sim, robot):
    from vla_ros.core.transforms import square_yaw_deg  # noqa: PLC0415
    from vla_ros.episodes import Episode  # noqa: PLC0415
    from vla_ros.evaluate import grasps  # noqa: PLC0415
    from vla_ros.sim.tasks import extent_along  # noqa: PLC0415

    def yaw(deg):
        return np.array([np.cos(np.radians(deg) / 2), 0, 0, np.sin(np.radians(deg) / 2)])

    size = robot.task.cube_size
    assert extent_along(size, yaw(0), [1, 0, 0]) == pytest.approx(size)
    assert extent_along(size, yaw(90), [0, 3, 0]) == pytest.approx(size)
    assert extent_along(size, yaw(45), [1, 0, 0]) == pytest.approx(size * np.sqrt(2))
    assert extent_along(size, yaw(10), [1, 0, 0]) == pytest.approx(size * (np.cos(0.1745) + np.sin(0.1745)), 1e-3)
    sim.reset(3)
    assert np.isnan(sim.task.grasp_width)  # until a success
    assert size - 1e-9 <= sim.task.jaw_width(sim.data) <= size * np.sqrt(3) + 1e-9
    episodes = [Episode(i, i, ok, 1.0, 0.0, grasp_width=w) for i, (ok, w) in
                enumerate([(True, size + 0.0005), (True, size + 0.006), (False, size), (True, float("nan"))])]
    g = grasps(episodes, size)
    assert (g["measured"], g["square"]) == (2, 1) and g["excess_mm_median"] == pytest.approx(3.25)
    assert not any(n for _, n in g["by_yaw_deg"].values())  # no target yaw known
    for e, deg in zip(episodes, (44.0, -42.5, 3.0, -45.0)):
        e.target_yaw = deg
    episodes.append(Episode(9, 9, True, 1.0, 0.0, grasp_width=size, target_yaw=10.0))
    g = grasps(episodes, size)
    assert g["by_yaw_deg"] == {"0-20": [1, 1], "20-30": [0, 0], "30-35": [0, 0], "35-40": [0, 0], "40-45": [1, 2]}
    assert [square_yaw_deg(yaw(d)) for d in (44, 46, -44, 90, 135, -179)] == pytest.approx([44, -44, -44, 0, -45, 1])


def test_asynchronous_execution_never_stalls_and_stays_within_limits(sim, robot):
    """Latency below the execution horizon: no tick without a fresh target once the first chunk lands."""
    from vla_ros.core.chunk import ActionChunk  # noqa: PLC0415
    from vla_ros.sim.rollout import PerturbedPolicy  # noqa: PLC0415

    ctx = PolicyContext(robot, robot.state_joints, robot.action_joints, [], (224, 224), 0.1, 10, {})
    rng = np.random.default_rng(3)
    latencies = 0.2 * np.exp(0.2 * rng.standard_normal(1000))  # ~200 ms, below 3 steps x 0.1 s

    def perturb(k, chunk):  # chunk-to-chunk inconsistency of a learned model
        offset = np.r_[np.random.default_rng(k).normal(0, 0.01, 6), 0.0]
        return ActionChunk(chunk.stamp, chunk.names, chunk.times, chunk.values + offset)

    policy = PerturbedPolicy(create_policy("scripted", ctx), perturb)
    executor = controller_executor(robot, policy, lambda k: latencies[k], name="rtc")
    assert executor.config.unblended == ("left_finger",)  # the preset's gripper, as in the node
    result = run_closed_loop(sim, executor, 4, "pick up the red cube", timeout=15.0, record=True)
    assert result.success
    fresh = np.array(result.fresh)
    assert fresh[int(np.argmax(fresh)):].all()
    cmd = np.array(result.commands)
    limits = robot.limits_for(robot.action_joints)
    assert np.all(np.abs(np.diff(cmd, axis=0)) <= limits.velocity / 500.0 + 1e-9)
    acc = np.diff(cmd, 2, axis=0) * 500.0**2
    assert np.all(np.abs(acc) <= limits.acceleration + 1e-6)


def test_tool_twist_is_the_rate_of_the_tool_pose():
    from vla_ros.core.cartesian import joint_step_for_twist, tool_pose, tool_twist
    from vla_ros.core.transforms import rotation_log

    chain = load_robot("franka").chain()
    q = np.array([0.1, -0.6, 0.2, -2.2, 0.1, 1.7, 0.6])
    qdot = np.array([0.3, -0.2, 0.1, 0.4, -0.5, 0.2, 0.3])
    h = 1e-6
    a, b = tool_pose(chain, q), tool_pose(chain, q + qdot * h)
    twist = tool_twist(chain, q, qdot)
    np.testing.assert_allclose(twist[:3], (b[:3, 3] - a[:3, 3]) / h, atol=1e-5)
    np.testing.assert_allclose(twist[3:], rotation_log(b[:3, :3] @ a[:3, :3].T) / h, atol=1e-5)
    # and back: the joint step for that twist over 1 ms moves the tool by twist x 1 ms
    step = joint_step_for_twist(chain, q, twist, 1e-3, damping=1e-9)
    np.testing.assert_allclose(tool_twist(chain, q, step / 1e-3), twist, atol=1e-6)


def test_a_pose_target_moves_the_tool_there_and_a_twist_moves_it_at_its_rate_until_stale(sim, robot):
    chain = robot.chain()
    sim.reset(0)
    arm = [sim.joint_names.index(j) for j in chain.joint_names]
    goal_q = np.array(robot.sim.home) + np.array([0.3, 0.15, -0.1, 0.0, 0.2, -0.3])
    goal = chain.fk(goal_q)
    sim.set_ee_pose(goal)
    sim.step(int(1.5 / sim.dt))
    reached = chain.fk(sim.positions()[arm])
    assert np.linalg.norm(reached[:3, 3] - goal[:3, 3]) < 0.003
    # 0.05 m/s up, refreshed every 20 ms for 0.4 s, the last one valid for 0.1 s (0.08 s past the loop): 0.024 m
    # higher, then it holds
    start = chain.fk(sim.positions()[arm])[2, 3]
    for _ in range(20):
        sim.set_ee_twist(np.array([0.0, 0.0, 0.05, 0.0, 0.0, 0.0]), sim.time)
        sim.step(int(0.02 / sim.dt))
    sim.step(int(0.6 / sim.dt))  # the servos settle on the last target
    held = chain.fk(sim.positions()[arm])[2, 3]
    assert held - start == pytest.approx(0.024, abs=0.002)
    sim.step(int(0.5 / sim.dt))
    assert chain.fk(sim.positions()[arm])[2, 3] == pytest.approx(held, abs=5e-4)
    with pytest.raises(ValueError, match="6 finite"):
        sim.set_ee_twist(np.full(6, np.nan), sim.time)
    with pytest.raises(ValueError, match="finite 4x4"):
        sim.set_ee_pose(np.eye(3))


@pytest.mark.parametrize("seed, colour", [(0, "red"), (4, "green")])
def test_the_scripted_expert_picks_with_the_franka_in_closed_loop(seed, colour):
    """FR3 + hand: the 7th joint's freedom held near home (else the arm folds into its limits), the hand's z
    pointing down between the fingers."""
    robot = load_robot("franka")
    sim = ArmSim(robot)
    try:
        ctx = PolicyContext(robot, robot.state_joints, robot.action_joints, [], (224, 224), 0.1, 10, {})
        executor = controller_executor(robot, create_policy("scripted", ctx), latency=0.05)
        result = run_closed_loop(sim, executor, seed, f"pick up the {colour} cube", timeout=15.0)
    finally:
        sim.close()
    assert result.success and result.duration < 10.0, result.duration


@pytest.fixture(scope="module")
def aloha_sim():
    sim = ArmSim(load_robot("aloha"))
    yield sim
    sim.close()


def test_the_task_yaw_range_comes_from_the_preset(sim, aloha_sim):
    """WidowX cubes turn up to 45 degrees; ALOHA's cube lies axis-aligned (gym-aloha's sample_box_pose), the
    seeds still place it (one yaw draw either way); a range beyond pi is refused."""
    yaws = [abs(v[2]) for seed in range(5) for v in sim.reset(seed).values()]
    assert max(yaws) > 0.05 and max(yaws) <= np.pi / 4
    placed = [aloha_sim.reset(seed)["red_cube"] for seed in range(3)]
    assert all(p[2] == 0.0 for p in placed) and len({p[0] for p in placed}) == 3
    quat = aloha_sim.object_poses()["red_cube"].quat_wxyz
    np.testing.assert_allclose(np.abs(quat), [1.0, 0.0, 0.0, 0.0], atol=1e-3)
    with pytest.raises(ValueError, match="task.yaw"):
        TaskSpec(yaw=4.0)


@pytest.mark.parametrize("seed", [1, 6])
def test_the_scripted_experts_hand_the_cube_over_with_aloha_in_closed_loop(aloha_sim, seed):
    """Two ViperX 300s: the right one (nearer the cube) picks it up and holds it out, the left one takes it;
    success needs the cube lifted, touching the left fingers and not the right ones."""
    robot = aloha_sim.robot
    ctx = PolicyContext(robot, robot.state_joints, robot.action_joints, [], (224, 224), 0.1, 10, {})
    policy = create_policy("scripted", ctx)
    assert type(policy).__name__ == "ScriptedTransferPolicy"  # the task's kind picks the expert
    result = run_closed_loop(aloha_sim, controller_executor(robot, policy, latency=0.05), seed,
                             "transfer the red cube", timeout=15.0)
    assert result.success and result.duration < 12.0, result.duration
    assert aloha_sim.task.touching(aloha_sim.data) == (False, True)
    assert policy.giver == "right"
    assert aloha_sim.task.progress == 2  # both stages: lifted by the giver, touched by the receiver aloft


def test_a_cube_held_by_the_giver_alone_is_not_a_transfer(aloha_sim):
    """Lifted in the right hand (not the left): no success however long it is held."""
    sim = aloha_sim
    robot = sim.robot
    ctx = PolicyContext(robot, robot.state_joints, robot.action_joints, [], (224, 224), 0.1, 10, {})
    policy = create_policy("scripted", ctx)
    executor = controller_executor(robot, policy, latency=0.05)
    result = run_closed_loop(sim, executor, 2, "transfer the red cube", timeout=5.0)  # grasped, lifted, carried
    assert not result.success and policy.phase in ("lift", "carry")
    assert sim.task.touching(sim.data) == (True, False)
    assert sim.object_poses()["red_cube"].position[2] > 0.1
    assert sim.task.progress == 1  # lifted by the giver, never touched by the receiver
    sim.reset(2)
    assert sim.task.progress == 0


def test_the_aloha_scene_has_both_arms_four_cameras_and_open_grippers(aloha_sim):
    sim = aloha_sim
    sim.reset(0)
    names = [c.name for c in sim.robot.cameras]
    assert names == ["cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"]
    frames = {n: sim.render(n, 64, 48) for n in names}
    assert all(f.shape == (48, 64, 3) and f.std() > 5 for f in frames.values())  # each sees a scene, not a void
    for arm in ("left", "right"):
        assert abs(sim.joint(f"{arm}_left_finger") - 0.057) < 1e-3  # open (the description's upper limit)
        assert abs(sim.joint(f"{arm}_right_finger") + 0.057) < 2e-3  # the mimic finger follows
    cube = sim.object_poses()["red_cube"].position
    region = sim.robot.task.region
    assert region.x[0] <= cube[0] <= region.x[1] and region.y[0] <= cube[1] <= region.y[1]


def test_command_noise_moves_the_arm_off_its_commands_reproducibly():
    """The sim's command noise: an offset of about the given size on every arm servo target, the same for the
    same seed, none on the gripper; zero noise leaves the arm where it is commanded."""
    robot = load_robot("widowx")
    sim = ArmSim(robot)
    try:
        arm = [sim.joint_names.index(j) for j in robot.arm_joints]
        finals = []
        for noise, seed in ((0.05, 3), (0.05, 3), (0.05, 4), (0.0, 3)):
            sim.reset(seed, command_noise=noise)
            target = sim.positions()[arm]
            sim.step(1000)  # 2 s: four correlation times
            finals.append(sim.positions()[arm] - target)
            assert abs(sim.joint(robot.gripper.joint) - sim.targets()[robot.gripper.joint]) < 2e-3
    finally:
        sim.close()
    np.testing.assert_allclose(finals[0], finals[1], atol=1e-9)
    assert np.abs(finals[0] - finals[2]).max() > 0.01
    assert 0.01 < np.abs(finals[0]).max() < 0.25
    assert np.abs(finals[3]).max() < 5e-3
