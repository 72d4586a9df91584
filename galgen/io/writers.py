"""Output files written by helper processes while the network works on the next batch.

On a GPU the network draws a thousand 64 px mocks in about 2 s, while building and checking one
FITS file's header through astropy took about 12 ms of pure Python: writing inline made 80 % of
`galgen sample -n 1000` on an H200 (docs/sampling.md, "On a GPU"). galgen's direct writer takes
about 1 ms of CPU a file, handing one over 0.3-0.7 ms of the caller's. `Writers` hands each write to one of a few
spawned processes (they import astropy, not torch) and keeps at most a few writes per process in
flight, so memory stays flat. With no helpers it writes inline, in the caller's process.

Errors come back as they are (an OSError of a full disk, say): the files already renamed into
place are whole, the others absent (every write is atomic).
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future
from typing import Callable

from galgen.processes import process_pool

MAX_WRITERS = 8  # helper processes at most: more contend for the same disk
IN_FLIGHT = 4  # writes queued per helper before `submit` waits for the oldest


def spare_cores(processes: int = 1) -> int:
    """Helpers a run of ``processes`` busy processes can use: the cores they leave, up to MAX_WRITERS."""
    return max(0, min(MAX_WRITERS, (os.cpu_count() or 1) - processes))


class Writers:
    """``submit(fn, *args)`` runs in ``count`` helper processes (0: at once, here); ``results()`` in order.

    ``fn`` must be a module-level function (it is pickled by name); its arguments are pickled too.
    Use as a context manager: leaving it early (an error, an interrupt) cancels the queued writes.
    """

    def __init__(self, count: int):
        self.count = count
        self._pool = None
        self._pending: deque[Future] = deque()
        self._done: list = []

    def __enter__(self) -> "Writers":
        if self.count > 0:
            self._pool = process_pool(self.count)  # helpers that die with this process
        return self

    def submit(self, fn: Callable, *args, **kwargs) -> None:
        if self._pool is None:
            self._done.append(fn(*args, **kwargs))
            return
        self._pending.append(self._pool.submit(fn, *args, **kwargs))
        while len(self._pending) > IN_FLIGHT * self.count:
            self._done.append(self._pending.popleft().result())

    def results(self) -> list:
        """Every result so far, in the order submitted (waits for the pending writes)."""
        while self._pending:
            self._done.append(self._pending.popleft().result())
        return self._done

    def __exit__(self, kind, error, trace) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=kind is not None)
