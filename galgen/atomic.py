"""Outputs appear whole or not at all: write to a temporary name beside the target, then rename.

Standard library only, so the engine (weights files) and the FITS layer share it.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from galgen.errors import InputError


@contextmanager
def atomic_output(path, *, parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success, remove it on error.

    The temporary name is hidden and ends with the final name, so suffix-driven writers
    (``.fits.gz``) behave the same. A missing directory is created when ``parents`` is true and
    is an InputError otherwise. ``os.replace`` is atomic within one file system, so readers (and
    a resumed run) never see a half-written file.
    """
    path = Path(path)
    directory = path.parent
    if parents:
        directory.mkdir(parents=True, exist_ok=True)
    elif not directory.is_dir():
        raise InputError("output directory does not exist", path=directory)
    tmp = directory / f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{path.name}"
    try:
        yield tmp
        # some writers (safetensors) create 0600 files: give outputs the usual umask-based mode
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
