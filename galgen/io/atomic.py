"""Outputs appear whole or not at all, and never over something galgen did not make.

Every output is written under a hidden temporary name beside its target and renamed when it
is complete. The temporary name says which process made it (``.tmp-<host>-<pid>-<random>-<name>``),
so that a run can sweep away the temporaries of processes that were killed mid-write
(`sweep_stale`) without touching those of live ones, even when shards on several machines
write into one shared directory. `check_output` refuses, before any work, an output that
exists without ``overwrite``, that galgen did not make, or whose directory cannot be written.

Standard library only, so the engine (weights files) and the FITS layer share it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import socket
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from galgen.errors import InputError, RuntimeFailure

TEMP_PREFIX = ".tmp-"
NAME_MAX = 255  # bytes in one file name (Linux, macOS and their usual file systems)
PATH_MAX = 4096  # bytes in a whole path, its terminating NUL included
DIRECTORY_ROOM = 64  # bytes an output directory's path leaves for the names in it (mock_000000.fits, ...)
_KEPT_TAIL = 24  # characters of a long name that its shortened temporary keeps (the suffix: .fits.gz, .work)
_TEMP = re.compile(r"^\.tmp-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}-(?P<name>.+)$")
_swept: set[str] = set()  # directories already swept by this process


def _host() -> str:
    return f"{zlib.crc32(socket.gethostname().encode()):08x}"


def temp_path(path) -> Path:
    """A hidden temporary name beside ``path`` that records this host and process.

    It ends with ``path``'s name; when that would make it longer than NAME_MAX bytes, the name is
    shortened to a hash of it and its last characters (the suffix stays, so suffix-driven writers behave
    the same), and `final_path` no longer recovers it.
    """
    path = Path(path)
    head = f"{TEMP_PREFIX}{_host()}-{os.getpid()}-{secrets.token_hex(4)}-"
    name = path.name
    if len(os.fsencode(head + name)) > NAME_MAX:
        tail = name[-_KEPT_TAIL:]
        while len(os.fsencode(tail)) > _KEPT_TAIL:  # multi-byte characters
            tail = tail[1:]
        name = f"{hashlib.sha256(os.fsencode(name)).hexdigest()[:16]}~{tail}"
    return path.parent / f"{head}{name}"


def check_path_length(path, *, room: int = 0) -> None:
    """InputError, before any work, when ``path`` cannot be created: a name over NAME_MAX bytes, or the
    whole path (plus ``room`` bytes, for the names of files a directory will hold) over PATH_MAX; an
    empty path too."""
    if not str(path):
        raise InputError("the output is an empty path")
    raw = os.fsencode(path)
    longest = max(raw.split(b"/"), key=len)
    if len(longest) > NAME_MAX:
        raise InputError(f"file name too long ({len(longest)} bytes; the file system takes at most {NAME_MAX})",
                         path=path)
    if len(raw) + room >= PATH_MAX:
        limit = PATH_MAX - 1 - room
        raise InputError(f"path too long ({len(raw)} bytes; at most {limit}"
                         + (" for a directory of outputs)" if room else ")"), path=path)


def final_path(path) -> Path:
    """The output a temporary name stands for (``path`` itself when it is not a temporary)."""
    path = Path(path)
    match = _TEMP.match(path.name)
    return path.parent / match["name"] if match else path


def sweep_stale(directory) -> list[Path]:
    """Remove the temporaries that dead processes of this host left in ``directory``; returns them.

    A temporary belongs to a dead process when its pid no longer exists on this host. Temporaries of
    live processes, and of other hosts sharing the directory, are kept. Each directory is swept once
    per process (later calls return at once).
    """
    directory = Path(directory)
    key = str(directory.resolve()) if directory.exists() else ""
    if not key or key in _swept:
        return []
    _swept.add(key)
    removed, host = [], _host()
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        match = _TEMP.match(entry.name)
        if not match or match["host"] != host or _alive(int(match["pid"])):
            continue
        try:
            shutil.rmtree(entry.path) if entry.is_dir(follow_symlinks=False) else os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def check_output(path, *, overwrite: bool = False, made_by_galgen: Callable[[Path], bool] | None = None,
                 suffixes: tuple[str, ...] = (), directory: bool = False, parents: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written; raises InputError naming it.

    An existing ``path`` needs ``overwrite`` and, when ``made_by_galgen`` is given, must pass it
    (galgen replaces only its own files). ``suffixes`` (lower case) restricts the name. The
    directory that will hold it must exist (or, with ``parents``, be creatable) and accept a new
    file, which is tried rather than assumed (root ignores permission bits, not read-only mounts).
    """
    check_path_length(path)
    path = Path(path)
    if suffixes and not path.name.lower().endswith(suffixes):
        raise InputError(f"unsupported output format (use {', '.join(suffixes)})", path=path)
    if path.exists():
        if not (path.is_file() or path.is_dir()):  # a FIFO or a device: opening it to check it would block
            raise InputError("output exists and is not a regular file", path=path)
        if path.is_dir() != directory:
            kind = "not a directory" if directory else "a directory"
            raise InputError(f"output exists and is {kind}", path=path)
        if not overwrite:
            raise InputError("output already exists (choose another name or replace it)", path=path,
                             options="overwrite")
        if made_by_galgen is not None and not made_by_galgen(path):
            raise InputError("output exists and was not made by galgen; it is never replaced", path=path)
    parent = path.parent
    if not parent.is_dir():
        existing = next((p for p in parent.parents if p.exists()), Path("."))
        if not parents or not existing.is_dir():
            raise InputError("output directory does not exist", path=parent)
        parent = existing
    probe_directory(parent, output=path)
    return path


def probe_directory(directory, *, output=None) -> None:
    """InputError (naming ``output``, or the directory) unless a file can be created in ``directory``."""
    probe = temp_path(Path(directory) / "probe")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"cannot write here ({exc.strerror or exc})", path=output or directory) from None


def as_galgen_error(exc: OSError, path) -> Exception:
    """An OSError met while writing ``path`` as one line naming the real output (not its temporary).

    A full disk or quota is a failure of the work (exit 1); a read-only or forbidden place is a
    bad output path (exit 2).
    """
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return RuntimeFailure(f"{final_path(path)}: cannot write the output ({reason})")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return InputError(f"cannot write the output ({reason})", path=final_path(path))
    return RuntimeFailure(f"{final_path(path)}: cannot write the output ({reason})")


def output_mode(path) -> None:
    """Give a finished output the usual umask-based mode (safetensors and mkdtemp make 0600/0700)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask)


@contextmanager
def atomic_output(path, *, parents: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success, remove it on error.

    The temporary name is hidden and ends with the final name, so suffix-driven writers
    (``.fits.gz``) behave the same (a name too long for that is shortened, `temp_path`). A missing
    directory is created when ``parents`` is true and is an InputError otherwise. ``os.replace`` is atomic within one file system, so readers (and
    a resumed run) never see a half-written file. Stale temporaries of dead processes in the
    directory are swept on its first use, and an OSError becomes one line naming ``path``.
    """
    check_path_length(path)
    path = Path(path)
    directory = path.parent
    try:
        if parents:
            directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise as_galgen_error(exc, path) from None
    if not directory.is_dir():
        raise InputError("output directory does not exist", path=directory)
    sweep_stale(directory)
    tmp = temp_path(path)
    try:
        yield tmp
        output_mode(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise as_galgen_error(exc, path) from None
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def scratch_directory(beside) -> Iterator[Path]:
    """A temporary work directory beside ``beside`` (an output directory), removed when the block ends.

    It sits in the nearest existing directory above ``beside`` and is named like an output's
    temporary, so when the process is killed the next run there sweeps it (`sweep_stale`, called
    here first), rather than leaving it in the system's temporary directory.
    """
    beside = Path(beside)
    directory = next((p for p in beside.parents if p.is_dir()), Path("."))
    sweep_stale(directory)
    work = temp_path(directory / f"{beside.name}.work")
    try:
        work.mkdir()
    except OSError as exc:
        raise as_galgen_error(exc, beside) from None
    try:
        yield work
    finally:
        _remove(work)


def _remove(path: Path) -> None:
    try:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    except OSError:
        pass
