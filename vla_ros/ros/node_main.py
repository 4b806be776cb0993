"""A main() for every node: init, spin, always shut down cleanly (Ctrl-C and SIGTERM included)."""

from __future__ import annotations

import signal
import sys
import traceback
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node


def run(make_node: Callable[[], Node], threads: int = 1, args: list[str] | None = None) -> int:
    """Create the node, spin it, and return a process exit code (non-zero when start-up fails)."""
    rclpy.init(args=args if args is not None else sys.argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    node = None
    code = 0
    try:
        node = make_node()
        executor = MultiThreadedExecutor(threads) if threads > 1 else SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, KeyError, FileNotFoundError) as exc:  # configuration errors: one clear line
        print(f"[{getattr(node, 'get_name', lambda: 'vla_ros')()}] fatal: {exc}", file=sys.stderr, flush=True)
        code = 1
    except Exception:
        if rclpy.ok():  # a real failure; after Ctrl-C/SIGTERM rclpy can raise from a half-shut-down wait set
            traceback.print_exc()
            code = 1
    finally:
        try:
            if node is not None:
                close = getattr(node, "close", None)
                if close:
                    close()
                node.destroy_node()
        except (KeyboardInterrupt, Exception):
            pass
        try:
            if rclpy.ok():
                rclpy.shutdown()
        except (KeyboardInterrupt, Exception):
            pass
    return code
