"""A main() for every node: init, spin, always shut down cleanly (Ctrl-C and SIGTERM included)."""

from __future__ import annotations

import ctypes
import faulthandler
import gc
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node

from . import stop_signals
from .exit_timer import ExitTimer

TEARDOWN_TIMEOUT = 3.0  # s for rclpy/DDS teardown once the node's own threads have stopped
NATIVE_EXIT_DELAY = 0.5  # s after faulthandler's stack dump: the native exit with the node's code
SPIN_WAKE = 0.25  # s: longest an idle executor waits before it looks for a stop request


def run(make_node: Callable[[], Node], threads: int = 1, args: list[str] | None = None) -> int:
    """Create the node, spin it, and return a process exit code (non-zero when start-up fails)."""
    stop_signals.install()  # before rclpy.init, whose handler chains to it; signals no longer raise
    rclpy.init(args=args if args is not None else sys.argv)
    node = executor = None
    code = 0
    try:
        executor = MultiThreadedExecutor(threads) if threads > 1 else SingleThreadedExecutor()
        if isinstance(make_node, type):  # hold the node before __init__ runs: a failed one is still closed
            node = make_node.__new__(make_node)
            node.__init__()
        else:
            node = make_node()
        executor.add_node(node)
        watch_launcher(node)
        trim_memory_periodically()
        # Not executor.spin(): rclpy's signal thread wakes executors and then shuts the context down, so an
        # executor that woke in between waits again, and with simulated time (its timers follow /clock,
        # which stops with the sim) nothing wakes it. The wait is bounded instead (steady clock).
        while not stop_signals.STOPPING.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_WAKE)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, KeyError, FileNotFoundError) as exc:  # configuration errors: one clear line
        print(f"[{_name(node)}] fatal: {exc}", file=sys.stderr, flush=True)
        code = 1
    except Exception:
        # After Ctrl-C/SIGTERM rclpy can raise from a call the signal interrupted, before its context
        # reports the shutdown: that is a clean stop, not a failure.
        if not stop_signals.STOPPING.is_set() and rclpy.ok():
            traceback.print_exc()
            code = 1
    finally:
        stop_signals.stopping()  # whatever ended the spin, later signals must not interrupt the teardown
        name = _name(node)
        try:
            close = getattr(node, "close", None)
            if close:
                close()  # the node's own threads stop first: nothing is commanded from here on
        except (KeyboardInterrupt, Exception):
            pass
        # From here watchdogs bound the ROS/DDS teardown: a Python one that reports and exits with the node's
        # code; and, in case a native call holds the GIL so that no Python thread can run, faulthandler's C
        # thread that dumps every stack, then a native timer that exits with the node's code (where the C
        # library has no such timer, faulthandler exits 1).
        code = code or getattr(node, "exit_code", 0)
        native_exit = ExitTimer()
        native = native_exit.arm(2 * TEARDOWN_TIMEOUT + NATIVE_EXIT_DELAY, code)
        faulthandler.dump_traceback_later(2 * TEARDOWN_TIMEOUT, exit=not native)
        watchdog = threading.Timer(TEARDOWN_TIMEOUT, _abandon_teardown, args=(name, code))
        watchdog.daemon = True
        watchdog.start()
        try:
            if node is not None and hasattr(node, "_Node__node"):  # (rclpy's own init finished)
                node.destroy_node()
        except (KeyboardInterrupt, Exception):
            pass
        try:
            if rclpy.ok():
                rclpy.shutdown()
        except (KeyboardInterrupt, Exception):
            pass
        watchdog.cancel()
        faulthandler.cancel_dump_traceback_later()
        native_exit.cancel()
        code = code or getattr(node, "exit_code", 0)
        node = executor = None
        gc.collect()  # native objects (ruckig, MuJoCo) go now, not during interpreter finalisation
        stop_signals.done()
    return code


def watch_launcher(node: Node, poll: float = 0.2) -> threading.Thread | None:
    """Under ``vla-ros launch`` (its pid in the environment and still this process's parent): when the
    launcher dies by any signal, SIGKILL included, bring the node to rest (``node.come_to_rest``, the
    controller's braking stop) and shut it down, so that no node runs on with nobody to stop it."""
    expected = os.environ.get(stop_signals.LAUNCHER_PID_ENV, "")
    if not expected.isdigit() or os.getppid() != int(expected):  # not started by it (or inherited the variable)
        return None

    def watch() -> None:
        while not stop_signals.STOPPING.is_set() and node.context.ok():
            if os.getppid() != int(expected):
                node.get_logger().warning(f"the launcher (pid {expected}) is gone; stopping this node")
                try:
                    rest = getattr(node, "come_to_rest", None)
                    if rest is not None:
                        rest("launcher exited")
                finally:
                    node.context.try_shutdown()
                return
            time.sleep(poll)

    thread = threading.Thread(target=watch, name="launcher-watch", daemon=True)
    thread.start()
    return thread


TRIM_PERIOD = 5.0  # s between malloc_trim calls


def trim_memory_periodically(period: float = TRIM_PERIOD) -> threading.Thread | None:
    """Return freed heap memory to the system every ``period`` s (glibc ``malloc_trim``; elsewhere nothing).

    A burst of large inputs (a flood of oversize messages, all rejected) leaves freed memory in the heap
    that glibc keeps; without this a node's RSS stays at its high-water mark."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim  # (ctypes releases the GIL during the call)
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int

    def loop() -> None:
        while not stop_signals.STOPPING.wait(period):
            trim(0)

    thread = threading.Thread(target=loop, name="malloc-trim", daemon=True)
    thread.start()
    return thread


class QuietLogger:
    """A node's logger for its own threads: silent once the ROS context is shut down (a stop signal
    shuts it down at once, and every line to /rosout would then print a publish failure)."""

    def __init__(self, node: Node):
        self._node = node

    # (one call site per severity: rclpy refuses a severity change at a call site)
    def info(self, message: str) -> None:
        if self._node.context.ok():
            self._node.get_logger().info(message)

    def warning(self, message: str) -> None:
        if self._node.context.ok():
            self._node.get_logger().warning(message)

    def error(self, message: str) -> None:
        if self._node.context.ok():
            self._node.get_logger().error(message)


def _name(node: Node | None) -> str:
    try:
        return node.get_name()
    except Exception:  # not built (far enough)
        return "vla_ros"


def fail(node: Node, message: str) -> None:
    """From any thread: log ``message`` as an error and stop ``node``'s process with exit code 1."""
    node.get_logger().error(message)
    node.exit_code = 1
    node.context.try_shutdown()  # the executor's spin ends; run() tears down and returns the code


def _abandon_teardown(name: str, code: int) -> None:
    """rclpy/DDS teardown hung (seen about once in 40 stops inside Node.destroy_node): say where, exit anyway."""
    print(f"[{name}] ROS teardown did not finish within {TEARDOWN_TIMEOUT:.0f} s; exiting without it "
          "(the OS releases the DDS resources). Where each thread was:", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
