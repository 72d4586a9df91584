"""Worker processes that never outlive the galgen process that started them.

`timeout`, a batch scheduler or the OOM killer signal the parent alone; workers that kept going
would write outputs nobody waits for. Every pool galgen starts (prep's readers, simulate's
drawers, sample's per-device workers) runs `die_with_parent` first: on Linux the kernel sends
the worker SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), and SIGTERM unwinds the worker
like an exception, so its half-written temporary is removed. Elsewhere the worker checks its
parent's pid every few seconds instead.

Standard library only.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1


def spawn_context():
    """The multiprocessing context of every galgen pool: spawn (safe beside threads and CUDA)."""
    return multiprocessing.get_context("spawn")


def die_with_parent(parent_pid: int) -> None:
    """Run first in a worker: end this process when ``parent_pid`` (its parent) dies."""
    signal.signal(signal.SIGTERM, _raise_exit)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            _watch(parent_pid)
    else:
        _watch(parent_pid)
    if os.getppid() != parent_pid:  # the parent died before the line above took effect
        os._exit(143)


def terminate_on_sigterm() -> None:
    """In the main process: turn SIGTERM into SystemExit(143), so cleanup code runs (the CLI's entry point)."""
    signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def _watch(parent_pid: int, every: float = 2.0) -> None:
    def loop():
        while not stop.wait(every):
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    stop = threading.Event()
    threading.Thread(target=loop, daemon=True, name="galgen-parent-watch").start()
