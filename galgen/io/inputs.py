"""Turn what the user typed (files, directories, globs, @lists) into a sorted list of paths.

Survey pipelines pass thousands of cutouts, so besides files, directories and globs a
text file of paths can be given as ``@list.txt`` (one path per line, ``#`` comments).
"""

from __future__ import annotations

import errno
import glob
import os
import stat
from pathlib import Path
from typing import Iterable

from galgen.errors import InputError

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")


_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def special_kind(path) -> str | None:
    """What ``path`` is when it is neither a regular file nor a directory ("a named pipe (FIFO)", ...), else None.

    Never opens it (``os.stat`` follows symbolic links). A missing path is None too; a path too long for the
    system is an InputError.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise InputError(f"path too long ({len(os.fsencode(path))} bytes)", path=path) from None
        return None  # missing or unreadable: the reader says so in its own words
    return next((kind for test, kind in _SPECIAL if test(mode)), None)


def refuse_special_file(path, *, what: str = "file") -> None:
    """InputError unless ``path`` is a regular file, a directory or absent; every reader calls it first.

    Reading a FIFO blocks until someone writes into it and /dev/zero never ends, so such inputs are refused
    before they are opened. Directories and missing paths are left to the caller, whose message says what it
    expected there.
    """
    kind = special_kind(path)
    if kind is not None:
        raise InputError(f"is {kind}, not a regular {what}", path=path)


def is_hidden(path) -> bool:
    """Hidden files (a leading dot: temporaries, editor and OS files) are never inputs."""
    return Path(path).name.startswith(".")


def is_fits_name(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in FITS_SUFFIXES)


def expand_inputs(items: Iterable[str | Path], *, suffixes: tuple[str, ...] = FITS_SUFFIXES) -> list[Path]:
    """Expand files, directories (their FITS files, not recursive), globs and ``@list.txt`` files.

    Order is stable: each item's matches sorted by name, items in the order given, duplicates dropped.
    Hidden files (a leading dot: temporaries of a killed run, OS and editor files) found in a
    directory or by a glob are never inputs. Raises InputError when an item matches nothing, a
    listed file does not exist, or an input is not a regular file (a FIFO, a device: `refuse_special_file`),
    before anything is read.
    """
    found: list[Path] = []
    for item in items:
        text = str(item)
        if not text:
            raise InputError("an input is an empty path")
        if text.startswith("@"):
            found.extend(_read_list(Path(text[1:])))
            continue
        refuse_special_file(text)
        if Path(text).is_dir():
            named = sorted(p for p in Path(text).iterdir() if _has_suffix(p, suffixes) and not is_hidden(p))
            for path in named:
                refuse_special_file(path)
            matches = [p for p in named if p.is_file()]
            if not matches:
                raise InputError("directory holds no FITS files", path=text)
            found.extend(matches)
        elif Path(text).exists():
            found.append(Path(text))
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text) if not is_hidden(p))
            if not matches:
                raise InputError("pattern matches no file", path=text)
            for path in matches:
                refuse_special_file(path)
            found.extend(matches)
        else:
            raise InputError("no such file or directory", path=text)
    return list(dict.fromkeys(found))


def _has_suffix(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def _read_list(list_path: Path) -> list[Path]:
    refuse_special_file(list_path)
    try:
        lines = list_path.read_text().splitlines()
    except OSError as exc:
        raise InputError(f"cannot read list of inputs ({exc.strerror})", path=list_path) from None
    base = list_path.parent
    paths = []
    for number, line in enumerate(lines, start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            path = Path(line)
            path = path if path.is_absolute() else base / path
            kind = special_kind(path)
            if kind is not None:
                raise InputError(f"line {number}: {path} is {kind}, not a regular file", path=list_path)
            if not path.exists():
                raise InputError(f"line {number}: no such file: {path}", path=list_path)
            paths.append(path)
    if not paths:
        raise InputError("list of inputs is empty", path=list_path)
    return paths
