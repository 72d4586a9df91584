"""Worker processes that never outlive the galgen process that started them.

`timeout`, a batch scheduler or the OOM killer signal the parent alone; workers that kept going
would write outputs nobody waits for. Every pool galgen starts (prep's readers, sgd's morphology
workers, the FITS writers of `galgen.io.writers`, simulate's drawers, sample's per-device workers)
runs `die_with_parent` first: on Linux the kernel sends the worker SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``), and SIGTERM unwinds the worker like an exception, so its half-written
temporary is removed. Elsewhere the worker checks its parent's pid every few seconds instead.

A `concurrent.futures` worker catches every exception of a task, SystemExit included, and goes
on to wait for the next task, for ever once its parent is dead. `process_pool` is the only way
galgen makes such a pool: each task runs under `_EndOnExit`, which ends the worker process
(``os._exit``) once SIGTERM has unwound the task. A worker that was told to stop leaves at once
(``os._exit`` after the unwinding, not the interpreter's slow shutdown of torch).

Standard library only.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
STOP_SECONDS = 60.0  # stopped workers still running this long after being told are killed
UNWIND_SECONDS = 10.0  # a worker told to stop leaves by os._exit after this even if its unwinding was lost


def spawn_context():
    """The multiprocessing context of every galgen pool: spawn (safe beside threads and CUDA)."""
    return multiprocessing.get_context("spawn")


def die_with_parent(parent_pid: int) -> None:
    """Run first in a worker: end this process when ``parent_pid`` (its parent) dies, or when told (SIGTERM).

    SIGTERM unwinds the worker (SystemExit); should that exception be lost (raised inside a finaliser,
    where Python only prints it), the worker still ends, by os._exit after UNWIND_SECONDS.
    """
    signal.signal(signal.SIGTERM, _unwind_then_exit)
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


def process_pool(workers: int, *, context=None):
    """A ``concurrent.futures.ProcessPoolExecutor`` whose workers die with this process (see the module docstring).

    ``context``: a multiprocessing context (default `spawn_context`). Leaving its ``with`` block on an
    error or an interrupt cancels the tasks not yet started instead of running them first.
    """
    from concurrent.futures import ProcessPoolExecutor  # here: the CLI imports this module at every start

    class Pool(ProcessPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # map() submits through here too
            return super().submit(_EndOnExit(fn), *args, **kwargs)

        def __exit__(self, kind, error, trace):
            self.shutdown(wait=True, cancel_futures=kind is not None)
            return False

    return Pool(max_workers=workers, mp_context=context or spawn_context(), initializer=die_with_parent,
                initargs=(os.getpid(),))


class _EndOnExit:
    """A pool task that ends its worker process when SystemExit (SIGTERM, the parent's death) unwinds it."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args, **kwargs):
        try:
            return self.fn(*args, **kwargs)
        except SystemExit as exc:  # the task's `finally` blocks have run: its temporaries are gone
            _end(exc)


def _end(exc: SystemExit) -> None:
    """Leave this worker process now with the code of ``exc`` (143 for SIGTERM)."""
    os._exit(exc.code if isinstance(exc.code, int) else 143)


def terminate_on_sigterm() -> None:
    """In the main process: turn SIGTERM into SystemExit(143), so cleanup code runs (the CLI's entry point)."""
    signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum, frame):
    raise SystemExit(128 + signum)


def _unwind_then_exit(signum, frame):
    timer = threading.Timer(UNWIND_SECONDS, os._exit, args=(128 + signum,))
    timer.daemon = True
    timer.start()
    raise SystemExit(128 + signum)


def _watch(parent_pid: int, every: float = 2.0) -> None:
    def loop():
        while not stop.wait(every):
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    stop = threading.Event()
    threading.Thread(target=loop, daemon=True, name="galgen-parent-watch").start()


def run_workers(target, shares: list[tuple], *, labels: list[str], advance=None) -> list:
    """Run ``target(*share, advance=...)`` in one spawned process per share; their results, in order.

    ``target`` is a module-level function; its ``advance(n)`` calls reach ``advance(n)`` here.
    A worker that raises or dies stops the others (their outputs are whole or absent, being atomic)
    and becomes a RuntimeFailure naming ``labels[rank]``.
    """
    from galgen.errors import RuntimeFailure

    context = spawn_context()  # CUDA cannot be used in forked children
    queue = context.Queue()
    jobs = [context.Process(target=_worker, daemon=True, args=(os.getpid(), rank, target, share, queue))
            for rank, share in enumerate(shares)]
    for job in jobs:
        job.start()
    results, failure, finished = {}, None, False
    try:
        while len(results) < len(jobs) and failure is None:
            kind, rank, payload = _next_message(queue, jobs)
            if kind == "progress" and advance is not None:
                advance(payload)
            elif kind == "done":
                results[rank] = payload
            elif kind == "error":
                failure = f"worker {rank} on {labels[rank]}: {payload}"
        finished = failure is None
    finally:
        if not finished:  # on an error or an interrupt the others stop too: all told at once, then awaited
            for job in jobs:
                if job.is_alive():
                    job.terminate()
        deadline = None if finished else time.monotonic() + STOP_SECONDS  # one wait for all, not one each
        for job in jobs:
            job.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if job.is_alive():  # deaf to SIGTERM (stuck in a library call): no hang
                job.kill()
                job.join()
    if failure is not None:
        raise RuntimeFailure(f"a worker process failed: {failure}")
    return [results[rank] for rank in range(len(jobs))]


def _next_message(queue, jobs):
    """The next worker message; an error message if a worker died without saying why."""
    import queue as queues

    while True:
        try:
            return queue.get(timeout=1.0)
        except queues.Empty:
            dead = [rank for rank, job in enumerate(jobs) if job.exitcode not in (None, 0)]
            if dead:
                return "error", dead[0], f"process exited with code {jobs[dead[0]].exitcode}"


def _worker(parent: int, rank: int, target, share: tuple, queue) -> None:
    """Body of one worker process: run ``target`` on its share, report progress, result or error."""
    die_with_parent(parent)
    try:
        result = target(*share, advance=lambda n: queue.put(("progress", rank, n)))
        queue.put(("done", rank, result))
    except SystemExit as exc:  # SIGTERM (the parent died or stopped us): nobody is left to tell
        queue.cancel_join_thread()
        _end(exc)  # unwound (temporaries removed); skip the interpreter's seconds-long shutdown of torch
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        queue.put(("error", rank, f"{type(exc).__name__}: {exc}"))
