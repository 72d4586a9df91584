"""Turn what the user typed (files, directories, globs, @lists) into a sorted list of paths.

Survey pipelines pass thousands of cutouts, so besides files, directories and globs a
text file of paths can be given as ``@list.txt`` (one path per line, ``#`` comments).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Iterable

from galgen.io.atomic import is_hidden
from galgen.errors import InputError

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fits.fz", ".fz")


def is_fits_name(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in FITS_SUFFIXES)


def expand_inputs(items: Iterable[str | Path], *, suffixes: tuple[str, ...] = FITS_SUFFIXES) -> list[Path]:
    """Expand files, directories (their FITS files, not recursive), globs and ``@list.txt`` files.

    Order is stable: each item's matches sorted by name, items in the order given, duplicates dropped.
    Hidden files (a leading dot: temporaries of a killed run, OS and editor files) found in a
    directory or by a glob are never inputs. Raises InputError when an item matches nothing or a
    listed file does not exist.
    """
    found: list[Path] = []
    for item in items:
        text = str(item)
        if text.startswith("@"):
            found.extend(_read_list(Path(text[1:])))
        elif Path(text).is_dir():
            matches = sorted(p for p in Path(text).iterdir()
                             if p.is_file() and _has_suffix(p, suffixes) and not is_hidden(p))
            if not matches:
                raise InputError("directory holds no FITS files", path=text)
            found.extend(matches)
        elif Path(text).exists():
            found.append(Path(text))
        elif glob.has_magic(text):
            matches = sorted(Path(p) for p in glob.glob(text) if not is_hidden(p))
            if not matches:
                raise InputError("pattern matches no file", path=text)
            found.extend(matches)
        else:
            raise InputError("no such file or directory", path=text)
    return list(dict.fromkeys(found))


def _has_suffix(path: Path, suffixes: tuple[str, ...]) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in suffixes)


def _read_list(list_path: Path) -> list[Path]:
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
            if not path.exists():
                raise InputError(f"line {number}: no such file: {path}", path=list_path)
            paths.append(path)
    if not paths:
        raise InputError("list of inputs is empty", path=list_path)
    return paths
