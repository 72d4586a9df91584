"""Terminal output shared by the CLI: results on stdout, progress and errors on stderr.

Only the CLI and the plain-Python glue use this module; the engine reports progress
through callbacks and never imports rich.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager

from rich.console import Console

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


def print_json(obj) -> None:
    """One JSON object on stdout, one line, for pipelines (``--json``)."""
    sys.stdout.write(json.dumps(obj, default=_jsonable, allow_nan=False) + "\n")
    sys.stdout.flush()


def _jsonable(value):
    # numpy scalars and arrays, paths: everything else is a bug worth a TypeError
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextmanager
def progress(total: int | None, description: str, *, disable: bool = False):
    """A rich progress bar on stderr; yields ``advance(n=1, **fields)``.

    Extra fields (loss, it/s ...) are shown after the bar when given.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    ]
    with Progress(*columns, console=stderr, disable=disable, transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields):
            info = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())
            bar.update(task, advance=n, info=info)

        yield advance
