"""SIGINT/SIGTERM for nodes: the first one stops the node, any later one is harmless.

A terminal's Ctrl-C reaches every process of its group, so under ``ros2 launch`` a node gets SIGINT
twice (terminal, then launch). Only the first raises KeyboardInterrupt; the rest arrive during
teardown and are ignored, so no traceback and a clean exit code. Installed before rclpy (or even
numpy) is imported, and before ``rclpy.init``, whose own handlers wake the executor and chain to these.
"""

from __future__ import annotations

import faulthandler
import signal
import threading

STOPPING = threading.Event()
REPORT_AFTER = 5.0  # s after a stop signal: dump every thread's stack to stderr if still running


def _on_stop_signal(signum, frame) -> None:
    if STOPPING.is_set():
        return
    STOPPING.set()
    faulthandler.dump_traceback_later(REPORT_AFTER, exit=False)  # if stopping hangs, show where
    raise KeyboardInterrupt


def install() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_stop_signal)


def stopping() -> None:
    """From now on stop signals are ignored (the node is on its way out)."""
    STOPPING.set()
