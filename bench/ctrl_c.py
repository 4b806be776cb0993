"""Ctrl-C from a terminal, repeated: the graph under ``vla-ros launch`` (and ``ros2 launch`` where
launch_ros is installed) must stop with no traceback, every node exiting 0.

    python -m bench.ctrl_c [--tries 10]

A terminal's Ctrl-C is SIGINT to its whole foreground process group: each try starts the launcher
in a new group, waits for the first chunk, and signals the group. Under launch_ros the nodes share
that group, so each gets SIGINT twice (terminal, then launch).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# LaunchService must run in a main thread (Jazzy refuses others): a subprocess, as `ros2 launch` does.
RUN_LAUNCH = """
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
service = LaunchService(argv=sys.argv[2:])
service.include_launch_description(IncludeLaunchDescription(
    PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=[a.split(":=", 1) for a in sys.argv[2:]]))
sys.exit(service.run())
"""
# As a shell's job: a process group of its own, SIGINT at its default (a script's background job ignores it).
NEW_GROUP = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setpgid(0, 0); "
             "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
COMMANDS = {
    "vla-ros launch": ["-m", "vla_ros", "launch", "robot:=widowx", "sim:=mujoco"],
    "ros2 launch": ["-c", RUN_LAUNCH, str(ROOT / "launch" / "policy.launch.py"), "robot:=widowx", "sim:=mujoco"],
}


def in_new_group(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", NEW_GROUP, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def try_once(launcher: str, repeat: bool = False, ready: str = "first chunk after start-up",
             timeout: float = 60.0) -> dict:
    """Start ``launcher``, wait for ``ready`` in its output, Ctrl-C its group (``repeat``: again 0.1 s later)."""
    proc = in_new_group(COMMANDS[launcher], dict(os.environ, PYTHONUNBUFFERED="1"))
    lines: list[str] = []
    seen = threading.Event()

    def pump() -> None:
        for line in proc.stdout:
            lines.append(line)
            if ready in line:
                seen.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    up = seen.wait(timeout)
    start = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    if repeat:
        time.sleep(0.1)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    took = time.monotonic() - start
    reader.join(5)
    out = "".join(lines)
    return {"up": up, "code": proc.returncode, "stop_s": took, "tracebacks": out.count("Traceback"),
            "errors": sum("ERROR" in line for line in lines), "output": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=10)
    ns = parser.parse_args(argv)
    try:
        import launch_ros  # noqa: F401

        launchers = list(COMMANDS)
    except ImportError:
        launchers = ["vla-ros launch"]
        print("launch_ros is not installed: ros2 launch is not tried")
    failed = 0
    for launcher in launchers:
        results = [try_once(launcher, repeat=k % 2 == 1) for k in range(ns.tries)]  # every other: Ctrl-C twice
        clean = [r for r in results if r["up"] and r["code"] == 0 and not r["tracebacks"] and not r["errors"]]
        failed += len(results) - len(clean)
        print(f"{launcher}: {len(clean)}/{len(results)} clean stops (exit 0, no traceback, no ERROR); stop "
              f"took {min(r['stop_s'] for r in results):.2f}-{max(r['stop_s'] for r in results):.2f} s")
        for r in results:
            if r not in clean:
                print(r["output"][-3000:])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
