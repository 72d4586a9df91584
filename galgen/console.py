"""Terminal output shared by the CLI: results on stdout, progress and errors on stderr.

Only the CLI uses this module; the library reports progress through callbacks
(galgen.progress) and never prints.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

STDOUT_GONE = 141  # exit code when stdout's reader went away: 128 + SIGPIPE, what a shell reports for `yes | head`


def stdout_gone():
    """Stdout cannot take the result (its reader closed the pipe, or it was closed): exit STDOUT_GONE, quietly.

    What is still buffered goes to /dev/null, so the interpreter's last flush cannot fail again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass
    raise SystemExit(STDOUT_GONE)


class ClosedStdout(io.TextIOBase):
    """``sys.stdout`` when the process started with descriptor 1 closed: writing is a broken pipe."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "standard output is closed")


class _Stdout(Console):
    def on_broken_pipe(self) -> None:  # rich's own exits 1
        self.quiet = True
        stdout_gone()


stdout = _Stdout(soft_wrap=True)
TABLE_WIDTH = 132  # columns a table may use even when stdout is not a terminal
stderr = Console(stderr=True, soft_wrap=True)


def print_json(obj) -> None:
    """One JSON object on stdout, one line, for pipelines (``--json``)."""
    text = json.dumps(obj, default=_jsonable, allow_nan=False) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_gone()


def print_table(title: str, header, rows, *, notes=()) -> None:
    """A rich table on stdout, then one line per note; cells are plain text, never rich markup."""
    from rich.table import Table

    table = Table(title=escape(title), title_justify="left")
    for name in header:
        table.add_column(escape(name), justify="left" if name in ("property", "band") else "right")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))  # units such as [arcsec] are text, not markup
    # a pipe or a log file gets rich's 80 columns, which would wrap every cell: tables may use more
    (stdout if stdout.is_terminal else _Stdout(file=sys.stdout, width=TABLE_WIDTH, soft_wrap=True)).print(table)
    for note in notes:
        stdout.print(f"note: {note}", markup=False, highlight=False)


def print_fields(title: str, fields: dict) -> None:
    """A bold title, then one ``key: value`` line per field; nested dicts as ``a.b``, lists as one JSON line."""

    def flat(prefix, value):
        if isinstance(value, dict) and value:
            for key, item in value.items():
                yield from flat(f"{prefix}.{key}" if prefix else str(key), item)
        else:
            yield prefix, value if isinstance(value, str) else json.dumps(value, default=str)

    stdout.print(title, style="bold", markup=False, highlight=False)
    for key, value in flat("", fields):
        stdout.print(f"  {key}: {value}", markup=False, highlight=False)


def _jsonable(value):
    # numpy scalars and arrays, paths: everything else is a bug worth a TypeError
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@contextmanager
def progress(*, disable: bool = False, every: float = 30.0):
    """Progress bars on stderr for a flow; yields its ``on_progress(stage, n, total, **fields)`` (galgen.progress).

    Each stage gets its own bar, opened when the flow announces it; extra fields (loss, it/s ...)
    are shown after the bar. When stderr is not a terminal (pipelines, batch jobs, nohup) a live
    bar shows nothing, so a plain line ``stage: done/total (pct) elapsed ... fields`` is printed
    every ``every`` seconds and when a stage completes.
    """
    if disable:
        yield lambda stage, n=0, total=None, **fields: None
        return
    if not stderr.is_terminal:
        bars: dict = {}

        def plain(stage, n=0, total=None, **fields):
            if stage not in bars:
                bars[stage] = _plain_progress(total, stage, every)
            bars[stage](n, **fields)

        yield plain
        return
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
    with Progress(*columns, console=stderr, transient=False) as bar:
        tasks: dict = {}

        def advance(stage, n=0, total=None, **fields):
            if stage not in tasks:
                tasks[stage] = bar.add_task(escape(stage), total=total, info="")
            bar.update(tasks[stage], advance=n, info=_format_fields(fields))

        yield advance


def _format_fields(fields: dict) -> str:
    return "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())


def _plain_progress(total: int | None, description: str, every: float):
    import time

    start = last = time.monotonic()
    done = 0

    def advance(n: int = 1, **fields):
        nonlocal done, last
        done += n
        now = time.monotonic()
        if n and (now - last >= every or (total is not None and done >= total)):
            last = now
            share = f" ({100 * done / total:.0f}%)" if total else ""
            line = f"{description}: {done:.0f}/{total if total is not None else '?'}{share} elapsed {now - start:.0f}s"
            extra = _format_fields(fields)
            sys.stderr.write(f"{line}  {extra}\n" if extra else f"{line}\n")
            sys.stderr.flush()

    return advance


# ----------------------------------------------------------------------------- the commands' own tables


def print_prep_warnings(result, *, shown: int = 10) -> None:
    """prep's skipped files (a table), its warnings and the cutouts no catalogue row matched, on stderr."""
    from rich.table import Table

    if result.skipped:
        table = Table(title=f"skipped {len(result.skipped)} of {result.inputs} inputs", title_justify="left")
        table.add_column("file", overflow="fold")
        table.add_column("reason", overflow="fold")
        for path, reason in result.skipped:
            table.add_row(path, reason)
        stderr.print(table)
    for warning in result.warnings:
        stderr.print(f"galgen prep: warning: {warning}", markup=False, highlight=False)
    unmatched = (result.labels or {}).get("unmatched", [])
    if unmatched:  # they train unconditionally
        more = f" (and {len(unmatched) - shown} more; --json lists all)" if len(unmatched) > shown else ""
        stderr.print(f"galgen prep: warning: {len(unmatched)} of {result.count} cutouts matched no catalogue row; "
                     f"they have no labels: {', '.join(unmatched[:shown])}{more}", markup=False, highlight=False)


def print_request_check(result) -> None:
    """The requested-vs-measured table of a conditional `sample` run."""

    def number(value, digits=3):
        return "-" if value is None else f"{value:.{digits}g}"

    rows = []
    for row in result.check:
        label = f"{row['name']} [{row['unit']}]" if row["unit"] else row["name"]
        if not row["measured"]:
            rows.append([label, number(row["requested_median"], 4), "-", "-", "-", "not measured by galgen"])
            continue
        ratio = f"ratio {row['median_ratio']:.3f}" if row.get("median_ratio") is not None else ""
        rows.append([label, number(row["requested_median"], 4), number(row["median_difference"]),
                     number(row["median_absolute"]), number(row["scatter"]), ratio])
    print_table(f"requested vs measured ({len(result.written) + len(result.skipped)} mocks, galgen's photometry)",
                ["property", "median requested", "median (measured - requested)", "median |difference|",
                 "robust scatter", ""], rows, notes=result.notes or ())


def print_sgd(report) -> None:
    """The tables of `galgen sgd`: the SGD, the diagnostics beside it, morphology, and the extra tests' lines."""
    result, extras = report.sgd, report.extras
    print_table(f"SGD ({result.mode} mode): {result.n_real} real vs {result.n_mock} mock", result.TABLE_HEADER,
                result.table_rows(), notes=result.notes)
    diagnostics = extras["diagnostics"]
    print_table("beside the SGD (not summed into it): sky level and axis ratio", result.TABLE_HEADER,
                diagnostics.table.table_rows(total=False), notes=[diagnostics.message])
    if "morphology" in extras:
        print_table("morphology (statmorph)", result.TABLE_HEADER, extras["morphology"].table_rows(),
                    notes=extras["morphology"].notes)
    if "memorisation" in extras:
        stdout.print(f"memorisation: {extras['memorisation'].verdict}", markup=False, highlight=False)
    for name in ("fid", "c2st"):
        if name in extras:
            stdout.print(extras[name].message, markup=False, highlight=False)


def fill_closed_streams() -> None:
    """A closed stdin, stdout or stderr gets /dev/null, so no file galgen opens takes its number (and then its
    writes); a closed stdout still ends the command like a broken pipe when the result is printed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            spare = os.open(os.devnull, os.O_RDWR)
            if spare != fd:
                os.dup2(spare, fd)
                os.close(spare)
            if fd == 1:
                sys.stdout = ClosedStdout()
