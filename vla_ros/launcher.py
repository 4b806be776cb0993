"""Start the graph as separate processes without launch_ros (pip-only machines)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

from .graph import EXTERNAL_SIMS, GraphArgs, GraphError, NodeSpec, Provider, build_graph, write_params_file
from .paths import ensure_ament_prefix
from .ros.stop_signals import LAUNCHER_PID_ENV

COLOURS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m"]


def executable(provider: Provider) -> list[str]:
    """How to start a provider: this package's nodes through the entry module (a source checkout's code
    runs), anyone else's from lib/<package>/<executable> in the ament index, as launch_ros does."""
    if provider.package == "vla_ros" and provider.module:
        return [sys.executable, "-m", "vla_ros.ros.entry", provider.executable]
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        path = Path(get_package_prefix(provider.package)) / "lib" / provider.package / provider.executable
    except PackageNotFoundError:
        raise FileNotFoundError(f"package {provider.package!r} is not installed (ament index)") from None
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"{provider.package} has no executable {provider.executable!r} ({path})")
    return [str(path)]


def node_command(spec: NodeSpec, generated: Path) -> list[str]:
    cmd = [*executable(spec.provider), "--ros-args", "-r", f"__node:={spec.name}", "--params-file", str(generated)]
    for extra in spec.param_files:
        cmd += ["--params-file", extra]
    return cmd


class Graph:
    """The node processes of one graph; output lines are prefixed with the node name."""

    def __init__(self, args: GraphArgs, log: TextIO | None = None, env: dict[str, str] | None = None,
                 workdir: str | Path | None = None, overrides: dict[str, dict] | None = None, check: bool = True):
        if args.sim in EXTERNAL_SIMS:
            raise GraphError(f"sim:={args.sim} is started by launch files (launch/gazebo.launch.py) from a ROS "
                             f"install with Gazebo: use 'ros2 launch vla_ros policy.launch.py sim:={args.sim}'")
        self.specs = build_graph(args, overrides, check)
        self._tmpdir = None if workdir else tempfile.mkdtemp(prefix="vla_ros_")  # removed by stop()
        self.params_file = write_params_file(self.specs, workdir or self._tmpdir)
        self.log = log if log is not None else sys.stdout
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("MUJOCO_GL", "egl")
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env[LAUNCHER_PID_ENV] = str(os.getpid())  # nodes stop (the arm at rest) if this process dies
        self.env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "0")  # node logs appear as they happen
        ensure_ament_prefix()
        if "AMENT_PREFIX_PATH" in os.environ:
            self.env.setdefault("AMENT_PREFIX_PATH", os.environ["AMENT_PREFIX_PATH"])
        self.procs: dict[str, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> Graph:
        for spec in self.specs:
            self._spawn(spec)
        return self

    def restart(self, name: str) -> None:
        """Start node ``name`` again once its process has exited (a crashed or killed node, as a respawn
        would); the rest of the graph runs on."""
        proc = self.procs[name]
        if proc.poll() is None:
            raise RuntimeError(f"{name} is still running (pid {proc.pid})")
        self._spawn(next(s for s in self.specs if s.name == name))

    def _spawn(self, spec: NodeSpec) -> None:
        i = [s.name for s in self.specs].index(spec.name)
        colour = self.log.isatty() if hasattr(self.log, "isatty") else False
        proc = subprocess.Popen(node_command(spec, self.params_file), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=self.env, text=True, start_new_session=True)
        self.procs[spec.name] = proc
        prefix = f"{COLOURS[i % len(COLOURS)]}[{spec.name}]\033[0m " if colour else f"[{spec.name}] "
        t = threading.Thread(target=self._pump, args=(proc, prefix), daemon=True)
        t.start()
        self._threads.append(t)

    def _pump(self, proc: subprocess.Popen, prefix: str) -> None:
        for line in proc.stdout:
            with self._lock:
                self.log.write(prefix + line)
                self.log.flush()

    def failed(self) -> dict[str, int]:
        """Nodes that have exited, with their exit codes."""
        return {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}

    def wait(self) -> int:
        """Block until a node exits (or Ctrl-C / SIGTERM / SIGHUP); then stop the rest.

        Returns non-zero if any node failed. Nodes run in their own sessions, so the launcher must stop them
        itself whatever ends it; a stop signal only sets a flag (a second Ctrl-C changes nothing).
        """
        requested = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda *_: requested.set())
        while not requested.is_set() and not self.failed():
            requested.wait(0.2)
        for name, code in self.failed().items():
            self.log.write(f"[launcher] {'ERROR: ' if code else ''}{name} exited with code {code}; stopping the "
                           "graph\n")
        return self.stop()

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT to every node still running, SIGKILL after ``timeout``; non-zero if a node failed.

        Stop signals that arrive meanwhile (a second Ctrl-C) do not interrupt it."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)} \
            if threading.current_thread() is threading.main_thread() else {}
        try:
            return self._stop(timeout)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._tmpdir:
                shutil.rmtree(self._tmpdir, ignore_errors=True)

    def _stop(self, timeout: float) -> int:
        start = time.monotonic()
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        self.stop_seconds: dict[str, float] = {}
        killed = []
        for name, proc in self.procs.items():
            try:
                proc.wait(max(0.1, start + timeout - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGABRT)  # the node's faulthandler prints where every thread is
                try:
                    proc.wait(2.0)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                killed.append(name)
            self.stop_seconds[name] = time.monotonic() - start
        for t in self._threads:
            t.join(timeout=1.0)
        bad = {n: p.returncode for n, p in self.procs.items() if p.returncode != 0}
        for name, code in bad.items():
            how = f"did not stop within {timeout:.0f} s and was killed" if name in killed else (
                f"died of signal {-code}" if code < 0 else f"exited with code {code}")
            self.log.write(f"[launcher] ERROR: {name} {how}\n")
        return 1 if bad else 0

    def __enter__(self) -> Graph:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
