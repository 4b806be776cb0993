"""A process exit that needs no Python thread: a POSIX timer whose expiry calls libc's ``_exit(code)``.

A native call that hangs while holding the GIL (seen inside rclpy's ``Node.destroy_node``) stops every Python
thread, watchdogs included; faulthandler's C watchdog can still dump the stacks, but it always exits 1. This
timer's thread is started by glibc (``SIGEV_THREAD``) and calls ``_exit`` directly, with the node's own code.
"""

from __future__ import annotations

import ctypes

SIGEV_THREAD = 2  # <signal.h>: run the notify function on a new thread
CLOCK_MONOTONIC = 1  # <time.h>


class _SigEvent(ctypes.Structure):
    # struct sigevent (64 bytes on Linux): the union sigval, signo, notify, then the thread's function and
    # attributes (the rest of the kernel's padding)
    _fields_ = [("value", ctypes.c_void_p), ("signo", ctypes.c_int), ("notify", ctypes.c_int),
                ("function", ctypes.c_void_p), ("attributes", ctypes.c_void_p), ("_pad", ctypes.c_int * 8)]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("interval", _TimeSpec), ("value", _TimeSpec)]


class ExitTimer:
    """``arm(seconds, code)``: unless ``cancel()`` comes first, the process ends with ``code`` after ``seconds``."""

    def __init__(self) -> None:
        self._timer = ctypes.c_void_p()
        self._libc: ctypes.CDLL | None = None  # set once the timer is armed

    def arm(self, seconds: float, code: int) -> bool:
        """Start the timer; False where the C library offers no such timer (the caller keeps its fallback)."""
        try:
            libc = ctypes.CDLL("libc.so.6")
            exit_now = ctypes.cast(libc._exit, ctypes.c_void_p).value
            # _exit(int) reads the union sigval passed by value: its int member, in the first argument register
            event = _SigEvent(value=code & 0xFF, notify=SIGEV_THREAD, function=exit_now)
            if libc.timer_create(CLOCK_MONOTONIC, ctypes.byref(event), ctypes.byref(self._timer)) != 0:
                return False
            whole = int(seconds)
            spec = _ITimerSpec(value=_TimeSpec(whole, int((seconds - whole) * 1e9)))
            if libc.timer_settime(self._timer, 0, ctypes.byref(spec), None) != 0:
                libc.timer_delete(self._timer)
                return False
        except (OSError, AttributeError):
            return False
        self._libc = libc
        return True

    def cancel(self) -> None:
        if self._libc is not None:
            self._libc.timer_delete(self._timer)
            self._libc = None
