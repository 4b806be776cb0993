"""Node executables: stop signals are handled from the first instruction, before heavy imports.

``sim_node``, ``policy_node`` and ``controller_node`` are console scripts (installed with an absolute
interpreter path into lib/vla_ros/, where launch_ros and ``ros2 run`` find them);
``python -m vla_ros.ros.entry <node>`` is what ``vla-ros launch`` runs.
"""

from __future__ import annotations

import faulthandler
import importlib
import sys

from . import stop_signals

NODES = {
    "sim_node": "vla_ros.sim.sim_node",
    "policy_node": "vla_ros.ros.policy_node",
    "controller_node": "vla_ros.ros.controller_node",
    "recorder_node": "vla_ros.ros.recorder_node",
    "joint_state_relay": "vla_ros.ros.joint_state_relay",
}


def run(name: str, args: list[str] | None = None) -> int:
    faulthandler.enable()  # a crash or SIGABRT (what the launcher sends a node that will not stop) dumps stacks
    stop_signals.install(raising=True)
    try:
        module = importlib.import_module(NODES[name])
    except KeyboardInterrupt:  # stopped while still importing: nothing runs yet
        return 0
    return module.main(args)


def sim_node() -> None:
    sys.exit(run("sim_node"))


def policy_node() -> None:
    sys.exit(run("policy_node"))


def controller_node() -> None:
    sys.exit(run("controller_node"))


def recorder_node() -> None:
    sys.exit(run("recorder_node"))


def joint_state_relay() -> None:
    sys.exit(run("joint_state_relay"))


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in NODES:
        sys.exit(f"usage: python -m vla_ros.ros.entry {{{','.join(NODES)}}} [--ros-args ...]")
    name = sys.argv.pop(1)
    sys.exit(run(name))
