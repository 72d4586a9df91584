"""The one progress-callback shape of every flow: ``on_progress(stage, n, total, **fields)``.

A flow reports each stage of its work (``"reading"``, ``"sample"``, ``"neighbours"`` ...) by
calling ``on_progress(stage, n, total)`` when ``n`` more units of it are done (``n = 0``
announces the stage and its total, None when unknown); extra fields (a loss, a rate) may
follow as keywords. The CLI turns the calls into progress bars on stderr (galgen.console);
library code never prints.
"""

from __future__ import annotations

from typing import Callable, Optional

Progress = Callable[..., None]


def stage(on_progress: Optional[Progress], name: str, total: float | None) -> Callable[..., None]:
    """Announce stage ``name`` of ``total`` units; returns ``advance(n=1, **fields)`` (a no-op without a callback)."""
    if on_progress is None:
        return lambda n=1, **fields: None
    on_progress(name, 0, total)
    return lambda n=1, **fields: on_progress(name, n, total, **fields)
