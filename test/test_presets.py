"""Typed robot presets, one way to build a policy context, and the package's import structure."""

import ast
from pathlib import Path

import numpy as np
import pytest
import yaml

from vla_ros.config_schema import ConfigError, load
from vla_ros.params import CONTROLLER_PARAMS, control_config
from vla_ros.policies.context import policy_context
from vla_ros.robots import ActionSpaceSpec, RobotPreset, available_robots, load_robot

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", available_robots())
def test_every_shipped_preset_loads_typed(name):
    robot = load_robot(name)
    assert isinstance(robot, RobotPreset) and robot.name == name
    assert isinstance(robot.action_space, ActionSpaceSpec)
    limits = robot.limits_for()
    assert limits.names == robot.action_joints and np.all(limits.velocity > 0)


def write(tmp_path, mutate) -> Path:
    data = yaml.safe_load((ROOT / "config/robots/widowx.yaml").read_text())
    data["urdf"] = str(ROOT / "urdf/wx250s.urdf")
    mutate(data)
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["sim"].update(physic_rate=500.0), r"robot.yaml: sim.physic_rate: unknown key"),
    (lambda d: d["sim"]["actuators"]["waist"].update(kp="stiff"), r"sim.actuators.waist.kp: expected a number"),
    (lambda d: d.update(velocity_scale=2.0), r"velocity_scale: 2.0 must be in \(0, 1\]"),
    (lambda d: d.pop("base_link"), r"base_link: required key is missing"),
    (lambda d: d["task"].update(kind="stack_cubes"),
     r"task.kind: 'stack_cubes' is not one of \['pick_cube', 'transfer_cube'\]"),
    (lambda d: d["task"].update(target="purple_cube"), r"task.target: 'purple_cube' is not one of the objects"),
    (lambda d: d.update(state_joints=["waist", "elbw"]), r"state_joints: joints \['elbw'\] are not in"),
    (lambda d: d["cameras"][0].update(width="224"), r"cameras\[0\].width: expected an integer"),
    (lambda d: d.update(action_space={"kind": "joint_velocity", "gripper": {"model_open": "1"}}),
     r"action_space.gripper.model_open: expected a number"),
    (lambda d: d.update(output_interface="effort"), r"output_interface: 'effort' is not one of"),
])
def test_a_wrong_key_or_value_names_the_file_and_key(tmp_path, mutate, message):
    path = write(tmp_path, mutate)
    with pytest.raises(ConfigError, match=message) as info:
        load_robot(str(path))
    assert str(path) in str(info.value)


def test_defaults_are_defined_once():
    robot = load_robot("widowx")
    spec = {p.name: p for p in CONTROLLER_PARAMS}["velocity_scale"]
    assert spec.default == 0.0  # the controller's default defers to the preset ...
    assert robot.limits_for(velocity_scale=spec.default).velocity[0] == pytest.approx(
        robot.urdf_model.joint("waist").velocity * robot.velocity_scale)  # ... whose field holds the one default
    assert RobotPreset.__dataclass_fields__["velocity_scale"].default == 0.5
    # every gripper of the preset is unblended unless the parameter names other joints
    assert control_config({}, ["left_finger"]).unblended == ("left_finger",)
    assert control_config({"unblended_joints": ["waist"]}, ["left_finger"]).unblended == ("waist",)


def test_policy_context_from_parameters():
    robot = load_robot("aloha")
    ctx = policy_context(robot, {"backend": "openpi", "horizon": 25, "chunk_dt": 0.02, "openpi.port": 9000,
                                 "use_sim_time": False})
    assert ctx.image_keys == ["cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"]
    assert ctx.state_joints == robot.state_joints and ctx.horizon == 25 and ctx.options == {"port": 9000}
    assert ctx.image_size == (224, 224)
    with pytest.raises(ValueError, match=r"unknown openpi parameters \['prot'\]"):
        policy_context(robot, {"backend": "openpi", "openpi.prot": 9000})
    with pytest.raises(ValueError, match=r"unknown policy parameters \['horizn'\]"):
        policy_context(robot, {"backend": "openpi", "horizn": 3})
    with pytest.raises(ValueError, match=r"action_joints \['waist'\] are not joints of robot 'aloha'"):
        policy_context(robot, {"backend": "openpi", "action_joints": ["waist"]})
    # a backend that reads no images gets no cameras by default (no frames rendered or sent for it) ...
    assert policy_context(robot, {"backend": "scripted"}).image_keys == []
    # ... unless they are named
    named = {"backend": "scripted", "image_keys": ["cam_high"],
             "image_topics": ["/cam_high/camera/color/image_rect_raw"]}
    assert policy_context(robot, named).image_keys == ["cam_high"]


def test_the_aloha_preset_names_its_arms_and_the_transfer_hands():
    robot = load_robot("aloha")
    chains = robot.arm_chains()
    assert list(chains) == ["left", "right"]
    assert chains["right"].joint_names == robot.arm_joints[6:]
    np.testing.assert_allclose(chains["left"].origin, [0.5, 0.25, 0.079])  # mounts (aloha_bringup) + waist height
    np.testing.assert_allclose(chains["right"].origin, [0.5, -0.25, 0.079])
    assert robot.task.kind == "transfer_cube" and robot.task.receiver[0].startswith("left_")
    data = yaml.safe_load(robot.path.read_text())
    data["task"]["giver"] = []
    with pytest.raises(ConfigError, match="transfer_cube: name the giver"):
        load(RobotPreset, data, "aloha.yaml")
    data["task"]["giver"] = ["right_thumb_link"]
    bad = load(RobotPreset, data, "aloha.yaml")
    with pytest.raises(ValueError, match=r"task.giver/receiver: links \['right_thumb_link'\]"):
        bad.check_joints()


def _imports(folder: Path) -> dict[str, set[str]]:
    """Modules imported by each file of ``folder`` (absolute names)."""
    out = {}
    for path in folder.glob("*.py"):
        names = set()
        package = "vla_ros." + folder.name
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.rsplit(".", node.level - 1)[0] if node.level else ""
                names.add(f"{base}.{node.module}" if node.level and node.module else (node.module or base))
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
        out[path.name] = names
    return out


def test_remote_never_imports_policies_and_core_never_imports_ros_or_policies():
    for folder, banned in (("remote", ("vla_ros.policies", "vla_ros.ros", "rclpy")),
                           ("core", ("vla_ros.policies", "vla_ros.ros", "vla_ros.remote", "rclpy"))):
        for name, modules in _imports(ROOT / "vla_ros" / folder).items():
            bad = [m for m in modules if m.startswith(banned)]
            assert not bad, f"vla_ros/{folder}/{name} imports {bad}"
