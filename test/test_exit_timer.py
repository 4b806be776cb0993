"""The native exit timer ends a process whose only thread is stuck in native code holding the GIL."""

import subprocess
import sys
import time

STUCK = """
import ctypes, sys, time
from vla_ros.ros.exit_timer import ExitTimer
timer = ExitTimer()
print(timer.arm(0.3, 3), flush=True)
if sys.argv[1] == "cancel":
    timer.cancel()
    time.sleep(0.6)
    print("still running", flush=True)
    raise SystemExit(0)
ctypes.PyDLL(None).sleep(20)  # native, holding the GIL: no Python thread can run
"""


def _run(mode: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", STUCK, mode], capture_output=True, text=True, timeout=30)
    return done, time.monotonic() - start


def test_the_timer_exits_with_the_given_code_while_the_gil_is_held():
    done, took = _run("hold")
    assert done.stdout.splitlines() == ["True"] and done.returncode == 3, done
    assert took < 10  # not the 20 s native sleep


def test_a_cancelled_timer_leaves_the_process_running():
    done, _ = _run("cancel")
    assert done.stdout.splitlines() == ["True", "still running"] and done.returncode == 0, done
