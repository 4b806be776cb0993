"""Start the graph as separate processes without launch_ros (pip-only machines)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

from .graph import GraphArgs, NodeSpec, build_graph, write_params_file
from .paths import ensure_ament_prefix

COLOURS = ["\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m"]


def node_command(spec: NodeSpec, generated: Path) -> list[str]:
    cmd = [sys.executable, "-m", spec.module, "--ros-args", "-r", f"__node:={spec.name}", "--params-file",
           str(generated)]
    for extra in spec.param_files:
        cmd += ["--params-file", extra]
    return cmd


class Graph:
    """The node processes of one graph; output lines are prefixed with the node name."""

    def __init__(self, args: GraphArgs, log: TextIO | None = None, env: dict[str, str] | None = None,
                 workdir: str | Path | None = None, overrides: dict[str, dict] | None = None):
        self.specs = build_graph(args, overrides)
        self.params_file = write_params_file(self.specs, workdir)
        self.log = log if log is not None else sys.stdout
        self.env = dict(os.environ if env is None else env)
        self.env.setdefault("MUJOCO_GL", "egl")
        self.env["PYTHONUNBUFFERED"] = "1"
        self.env.setdefault("RCUTILS_LOGGING_BUFFERED_STREAM", "0")  # node logs appear as they happen
        ensure_ament_prefix()
        if "AMENT_PREFIX_PATH" in os.environ:
            self.env.setdefault("AMENT_PREFIX_PATH", os.environ["AMENT_PREFIX_PATH"])
        self.procs: dict[str, subprocess.Popen] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> Graph:
        colour = self.log.isatty() if hasattr(self.log, "isatty") else False
        for i, spec in enumerate(self.specs):
            proc = subprocess.Popen(node_command(spec, self.params_file), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=self.env, text=True, start_new_session=True)
            self.procs[spec.name] = proc
            prefix = f"{COLOURS[i % len(COLOURS)]}[{spec.name}]\033[0m " if colour else f"[{spec.name}] "
            t = threading.Thread(target=self._pump, args=(proc, prefix), daemon=True)
            t.start()
            self._threads.append(t)
        return self

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
        itself whatever ends it.
        """

        def interrupt(*_):
            raise KeyboardInterrupt

        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, interrupt)
        try:
            while not self.failed():
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        return self.stop()

    def stop(self, timeout: float = 10.0) -> int:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for t in self._threads:
            t.join(timeout=1.0)
        codes = {name: p.returncode for name, p in self.procs.items()}
        bad = {n: c for n, c in codes.items() if c not in (0, -signal.SIGINT)}
        if bad:
            self.log.write(f"[launcher] nodes exited with errors: {bad}\n")
        return 1 if bad else 0

    def __enter__(self) -> Graph:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
