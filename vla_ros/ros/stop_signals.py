"""SIGINT/SIGTERM for nodes: the first one stops the node, any later one is harmless.

A terminal's Ctrl-C reaches every process of its group, so under ``ros2 launch`` a node gets SIGINT
twice (terminal, then launch). Installed before rclpy (or even numpy) is imported, and before
``rclpy.init``, whose own handler chains to this one and then shuts the ROS context down.

* While the node's modules import, the first signal raises KeyboardInterrupt (nothing runs yet).
* From then on nothing is raised: rclpy's shutdown of the context ends the executor's spin (or the
  node is torn down as soon as it is built), so no thread or object is left half-made by an
  exception from an arbitrary line.
* Later signals are ignored; after teardown they are ignored by the OS (:func:`done`), because
  Python's finalisation resets Python-installed handlers to the default, and a second Ctrl-C during
  the last few hundred milliseconds of DDS clean-up would otherwise kill the process (exit -2).
"""

from __future__ import annotations

import faulthandler
import signal
import threading

LAUNCHER_PID_ENV = "VLA_ROS_LAUNCHER_PID"  # set by vla-ros launch: nodes stop when that process is gone
STOPPING = threading.Event()
REPORT_AFTER = 5.0  # s after a stop signal: dump every thread's stack to stderr if still running
_raise = False  # KeyboardInterrupt on the first signal (only while importing)


def _on_stop_signal(signum, frame) -> None:
    if STOPPING.is_set():
        return
    STOPPING.set()
    faulthandler.dump_traceback_later(REPORT_AFTER, exit=False)  # if stopping hangs, show where
    if _raise:
        raise KeyboardInterrupt


def install(raising: bool = False) -> None:
    """Handle SIGINT and SIGTERM (``raising``: the first one raises KeyboardInterrupt)."""
    global _raise
    _raise = raising
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_stop_signal)


def stopping() -> None:
    """From now on stop signals are ignored (the node is on its way out)."""
    STOPPING.set()


def done() -> None:
    """Teardown is over: the OS ignores stop signals for the rest of the process's life."""
    STOPPING.set()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
