"""Package layout: package.xml, pip install into the venv (ament index), colcon build, README tables."""

import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.ctrl_c import COMMANDS, in_new_group
from vla_ros import docs

ROOT = Path(__file__).resolve().parent.parent
# `make test` installs the package first and sets this, so these checks cannot silently skip there.
REQUIRE_INSTALL = os.environ.get("VLA_ROS_REQUIRE_INSTALL") == "1"


def test_package_xml_declares_an_ament_python_package():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "vla_ros"
    assert root.find("export/build_type").text == "ament_python"
    deps = {e.text for e in root if e.tag.endswith("depend")}
    for dep in ("rclpy", "sensor_msgs", "geometry_msgs", "trajectory_msgs", "std_msgs", "std_srvs",
                "diagnostic_msgs", "launch_ros", "cv_bridge", "python3-numpy", "python3-mujoco-pip"):
        assert dep in deps, dep
    assert (ROOT / "resource" / "vla_ros").exists()


def test_readme_reference_tables_match_the_code():
    text = (ROOT / "README.md").read_text()
    assert docs.update(text) == text, "run: python -m vla_ros.docs --write README.md"


def _installed_prefix() -> Path | None:
    marker = Path(sys.prefix) / "share" / "ament_index" / "resource_index" / "packages" / "vla_ros"
    return Path(sys.prefix) if marker.exists() else None


@pytest.fixture
def prefix():
    found = _installed_prefix()
    if found is None:
        assert not REQUIRE_INSTALL, "vla_ros is not installed in this environment"
        pytest.skip("vla_ros not pip-installed in this interpreter's prefix")
    return found


def test_ament_index_finds_the_pip_installed_share_dir_and_executables(prefix):
    code = (
        "from ament_index_python.packages import get_package_share_directory, get_package_prefix;"
        "print(get_package_share_directory('vla_ros')); print(get_package_prefix('vla_ros'))"
    )
    env = dict(os.environ, AMENT_PREFIX_PATH=str(prefix))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    share, pkg_prefix = out.stdout.split()
    assert Path(share) == prefix / "share" / "vla_ros"
    for rel in ("launch/policy.launch.py", "config/robots/widowx.yaml", "config/policies/scripted.yaml",
                "urdf/wx250s.urdf", "package.xml"):
        assert (Path(share) / rel).exists(), rel
    for exe in ("sim_node", "policy_node", "controller_node", "vla-ros"):  # ros2 run vla_ros <exe>
        path = Path(pkg_prefix) / "lib" / "vla_ros" / exe
        assert path.exists() and os.access(path, os.X_OK), path


def test_installed_executables_run(prefix, tmp_path):
    """From a venv that is not activated: its bin/ is not on PATH, VIRTUAL_ENV is unset."""
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p).resolve() != prefix / "bin")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(PATH=path, AMENT_PREFIX_PATH=str(prefix))
    exe = prefix / "lib" / "vla_ros" / "controller_node"
    out = subprocess.run([str(exe), "--ros-args", "-p", "robot:=no_such_robot"], env=env, capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 1 and "unknown robot 'no_such_robot'" in out.stderr + out.stdout
    cli = subprocess.run([str(prefix / "lib" / "vla_ros" / "vla-ros"), "list"], env=env, capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)  # what `ros2 run vla_ros vla-ros list` runs
    assert cli.returncode == 0 and "widowx" in cli.stdout and "scripted" in cli.stdout


def _colcon_build(tmp_path: Path, *options: str) -> Path:
    """colcon build of this checkout in a workspace at ``tmp_path``; the package's install folder."""
    colcon = shutil.which("colcon") or (str(Path(sys.prefix) / "bin" / "colcon")
                                        if (Path(sys.prefix) / "bin" / "colcon").exists() else None)
    if colcon is None:
        assert not REQUIRE_INSTALL, "colcon is not installed"
        pytest.skip("colcon not installed")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "vla_ros").symlink_to(ROOT)
    env = dict(os.environ, PATH=f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ['PATH']}")
    env.setdefault("AMENT_PREFIX_PATH", sys.prefix)
    out = subprocess.run([colcon, "build", *options, "--base-paths", "src", "--build-base", str(tmp_path / "build"),
                          "--install-base", str(tmp_path / "install")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return tmp_path / "install" / "vla_ros"


def test_colcon_symlink_install_is_editable_and_launchable(tmp_path):
    """The documented developer set-up (make dev): edits in the checkout are live, and ros2 launch / ros2 run
    find the package (share/vla_ros, lib/vla_ros), which `pip install -e .` does not give."""
    install = _colcon_build(tmp_path, "--symlink-install")
    for rel in ("launch/policy.launch.py", "config/robots/widowx.yaml"):
        assert (install / "share" / "vla_ros" / rel).resolve() == ROOT / rel
    assert (tmp_path / "build" / "vla_ros" / "vla_ros").resolve() == ROOT / "vla_ros"  # the egg-link's target
    link = next(install.glob("lib/python*/site-packages/vla-ros.egg-link")).read_text().split()[0]
    assert Path(link).resolve() == (tmp_path / "build" / "vla_ros").resolve()
    for exe in ("controller_node", "vla-ros"):
        assert os.access(install / "lib" / "vla_ros" / exe, os.X_OK), exe


def test_colcon_build(tmp_path):
    install = _colcon_build(tmp_path)
    assert (install / "share" / "vla_ros" / "launch" / "policy.launch.py").exists()
    assert (install / "share" / "ament_index" / "resource_index" / "packages" / "vla_ros").exists()
    for exe in ("sim_node", "policy_node", "controller_node", "vla-ros"):  # ros2 run vla_ros <exe>
        path = install / "lib" / "vla_ros" / exe
        assert os.access(path, os.X_OK), path
        shebang = path.read_text().splitlines()[0]
        interpreter = shebang[2:].split()[0]  # an absolute interpreter, not `/usr/bin/env python3`
        assert Path(interpreter).is_absolute() and "python" in Path(interpreter).name, shebang
    shipped = list(install.glob("lib/python*/site-packages/vla_ros/models/builtin_widowx"))
    assert shipped, "the built-in model is installed with the package"
    for name in ("config.json", "model.safetensors", "norm_stats.json", "tokenizer.json"):
        assert (shipped[0] / name).is_file(), name


def test_launch_file_with_launch_ros():
    """Runs only where launch_ros is importable (a ROS 2 install); pip-only machines use `vla-ros launch`."""
    pytest.importorskip("launch_ros")
    import importlib.util

    from launch.actions import DeclareLaunchArgument

    from vla_ros.graph import LAUNCH_ARGUMENTS

    spec = importlib.util.spec_from_file_location("policy_launch", ROOT / "launch" / "policy.launch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    declared = {e.name: e.default_value for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    assert list(declared)[:5] == ["robot", "policy", "sim", "use_sim_time", "params_file"]
    assert list(declared) == [a.name for a in LAUNCH_ARGUMENTS]
    assert [d[0].text for d in declared.values()] == [a.default for a in LAUNCH_ARGUMENTS]


def test_ros2_launch_refuses_a_robot_policy_pair_without_a_model(tmp_path):
    """Where ROS 2 is installed: the same refusal as `vla-ros launch`, before any node starts."""
    pytest.importorskip("launch_ros")
    ros2 = shutil.which("ros2")
    if ros2 is None:
        pytest.skip("no ros2 command")
    from support import preset_without_model

    out = subprocess.run([ros2, "launch", "vla_ros", "policy.launch.py", f"robot:={preset_without_model(tmp_path)}"],
                         capture_output=True, text=True, timeout=120)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "no model is shipped for robot 'nomodel'" in text, text
    assert "Traceback" not in text and "process started" not in text, text


@pytest.fixture
def launched(ros, tmp_path):
    """``launch/policy.launch.py`` running under launch_ros in its own process group, and a probe."""
    pytest.importorskip("launch_ros")
    try:
        from ament_index_python.packages import get_package_prefix

        get_package_prefix("vla_ros")
    except Exception:
        pytest.skip("vla_ros is not installed in the ament index")
    from support import Probe, record_diagnostics

    probe = Probe("launch_probe")
    record_diagnostics(probe)
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = in_new_group(COMMANDS["ros2 launch"], env)  # LaunchService in a subprocess's main thread
    try:
        probe.wait_for(lambda: all(probe.diagnostics(n) for n in ("sim_node", "policy_node", "controller_node")),
                       60, "diagnostics from the launched nodes")
        yield proc, probe, tmp_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        probe.close()


def test_launch_file_starts_the_graph_and_ctrl_c_stops_it_cleanly(launched):
    proc, _, tmp_path = launched
    os.killpg(proc.pid, signal.SIGINT)  # every node gets SIGINT twice: from the terminal and from launch
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Traceback" not in out and "process has died" not in out and "ERROR" not in out, out
    assert out.count("process has finished cleanly") == 3, out
    assert not list(tmp_path.glob("vla_ros_*")), "the generated parameter file was left behind"


def test_launch_reports_a_crashed_node_and_exits_non_zero(launched):
    proc, _, _ = launched
    pids = subprocess.run(["pgrep", "-g", str(proc.pid), "-f", "controller_node"], capture_output=True,
                          text=True).stdout.split()
    assert pids, "controller_node not found in the launch's process group"
    os.kill(int(pids[0]), signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    assert "controller_node exited with code -9" in out and "[ERROR]" in out, out


def test_graph_parameters_come_from_the_robot_preset(tmp_path):
    from vla_ros.graph import GraphArgs, build_graph
    from vla_ros.robots import load_robot

    nodes = {n.name: n for n in build_graph(GraphArgs.from_strings({"robot": "aloha", "policy": "openpi",
                                                                    "sim": "none"}))}
    assert set(nodes) == {"joint_state_relay", "policy_node", "controller_node"}  # (per-arm drivers merged)
    policy = nodes["policy_node"].parameters
    assert policy["image_keys"] == ["cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"]
    assert policy["image_topics"][0] == "/cam_high/camera/color/image_rect_raw"
    assert policy["image_sizes"] == ["640x480"] * 4  # RealSense frames: resized for the model without a warning
    scripted = {n.name: n for n in build_graph(GraphArgs.from_strings({"robot": "aloha", "policy": "scripted"}))}
    assert scripted["policy_node"].parameters["image_keys"] == []  # it reads no images: none rendered or sent
    # a built-in checkpoint names the cameras it reads: only those are subscribed (and rendered, and sent)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text('{"image_keys": ["cam_high", "cam_right_wrist"]}')
    builtin = {n.name: n for n in build_graph(GraphArgs.from_strings({"robot": "aloha", "policy": "builtin"}),
                                              {"policy_node": {"builtin.model_path": str(tmp_path / "ckpt")}})}
    assert builtin["policy_node"].parameters["image_keys"] == ["cam_high", "cam_right_wrist"]
    # the controller takes its defaults from the same preset: both grippers always follow the newest chunk
    from vla_ros.params import control_config

    robot = load_robot("aloha")
    config = control_config(nodes["controller_node"].parameters, [g.joint for g in robot.grippers])
    assert config.unblended == ("left_left_finger", "right_left_finger")
    assert nodes["controller_node"].parameters["output_interface"] == ""  # the preset's driver's own
    assert nodes["controller_node"].parameters["driver"] == "" and robot.driver.kind == "interbotix_xs"


def test_the_demo_runs_the_shipped_model_or_else_the_robots_scripted_expert(capsys, tmp_path):
    from support import preset_without_model

    from vla_ros.cli import demo_args

    for robot in ("widowx", "franka", "aloha"):  # a model is shipped for each
        assert demo_args([f"robot:={robot}"]).policy == "builtin"
    assert "no built-in model is shipped" not in capsys.readouterr().out
    other = preset_without_model(tmp_path)
    assert demo_args([f"robot:={other}"]).policy == "scripted"
    assert "no built-in model is shipped for robot 'nomodel'" in capsys.readouterr().out
    assert demo_args([f"robot:={other}", "policy:=builtin"]).policy == "builtin"  # named: kept (fails loudly)
