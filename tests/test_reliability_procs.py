"""Processes and files that must never hang a run (issue "No hang, no silent garbage: a third hostile catalogue").

Every pool galgen starts dies with a SIGKILLed parent; inputs that are not regular files (a FIFO,
/dev/zero) are refused before anything reads them; a closed or broken stdout ends quietly.
Each test failed before the fix. Waits are generous (a loaded 2-core machine) and nothing is timed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT
from test_fault_catalogue import galaxies

GONE_WITHIN = 60.0  # seconds a killed parent's children get to disappear (a loaded machine)
BUSY_WITHIN = 240.0  # seconds the workers get to start and be busy


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    """Live child processes of ``pid`` (from /proc: psutil may not be installed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None and int(fields[1]) == pid and _alive(int(entry.name)):
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return 0.0 if fields is None else (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kill_parent_when_busy(command: list[str], *, busy, cwd=ROOT) -> None:
    """Start ``command``; once ``busy(children)`` is true, SIGKILL it; assert that every child it had is gone
    within GONE_WITHIN seconds."""
    parent = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + BUSY_WITHIN
        while time.monotonic() < deadline and parent.poll() is None:
            kids = _children(parent.pid)
            seen.update(kids)
            if busy(kids):
                break
            time.sleep(0.2)
        assert parent.poll() is None, f"the command ended before its workers were busy: {parent.stderr.read()}"
        assert busy(_children(parent.pid)), f"workers never got busy: {seen}"
        parent.kill()
        parent.wait(timeout=60)
        deadline = time.monotonic() + GONE_WITHIN
        while any(_alive(pid) for pid in seen) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in seen if _alive(pid)], "workers outlived their SIGKILLed parent"
    finally:
        for pid in [parent.pid, *seen]:  # a failed test leaves no process behind
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        parent.wait()
        parent.stderr.close()


def _used_cpu(seconds: float, workers: int = 2):
    """Busy once ``workers`` children have each used ``seconds`` of CPU (load-independent)."""
    return lambda kids: sum(_cpu_seconds(pid) >= seconds for pid in kids) >= workers


def _links(directory: Path, sources: list[Path], count: int) -> Path:
    """``count`` symbolic links to ``sources`` in ``directory``: many inputs, written in no time."""
    directory.mkdir(parents=True)
    for i in range(count):
        os.symlink(sources[i % len(sources)], directory / f"gal_{i:05d}.fits")
    return directory


# ----------------------------------------------------------------------------- MAJOR 1: workers and SIGKILL


@pytest.mark.slow  # two spawned readers importing astropy, then a few seconds of reading
def test_prep_readers_die_with_a_sigkilled_parent(tmp_path):
    big = _links(tmp_path / "big", galaxies(tmp_path / "src", 4, size=64), 20000)
    _kill_parent_when_busy([sys.executable, "-m", "galgen", "prep", str(big), "-o", str(tmp_path / "data"),
                            "--size", "8", "-j", "2"], busy=_used_cpu(3.0))
    assert not (tmp_path / "data").exists()


@pytest.mark.slow  # statmorph in two forked workers: about 0.3 s a galaxy
def test_sgd_morphology_workers_die_with_a_sigkilled_parent(tmp_path):
    real = _links(tmp_path / "A", galaxies(tmp_path / "srcA", 4), 150)
    mock = _links(tmp_path / "B", galaxies(tmp_path / "srcB", 4, seed=1), 150)
    _kill_parent_when_busy([sys.executable, "-m", "galgen", "sgd", "--morphology", "-j", "2", str(real), str(mock),
                            "--bootstrap", "10"], busy=_used_cpu(1.5))


@pytest.mark.slow  # two spawned helpers importing galgen.io.writers
def test_fits_writer_helpers_die_with_a_sigkilled_parent(tmp_path):
    # the CLI starts writer helpers on a GPU only: this parent starts them as `galgen sample` does there, and
    # hands them writes that take long (each in its atomic temporary, which the unwinding must remove)
    out, started = tmp_path / "out", tmp_path / "started"
    out.mkdir()
    started.mkdir()
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from galgen.io.atomic import atomic_output
        from galgen.io.writers import Writers


        def slow_write(name):
            with atomic_output(Path({str(out)!r}) / name) as tmp:
                tmp.write_bytes(b"half")
                (Path({str(started)!r}) / str(os.getpid())).touch()
                while True:
                    time.sleep(0.05)


        if __name__ == "__main__":
            with Writers(2) as writers:
                for i in range(8):
                    writers.submit(slow_write, f"m{{i}}.fits")
                writers.results()
    """))
    _kill_parent_when_busy([sys.executable, str(script)],
                           busy=lambda kids: len({int(p.name) for p in started.iterdir()} & set(kids)) >= 2)
    assert list(out.iterdir()) == []  # the helpers unwound: no temporary left


def test_a_worker_whose_unwinding_is_lost_still_ends_when_told(tmp_path):
    """SIGTERM raised inside a finaliser is printed and dropped by Python; the worker must end anyway."""
    script = tmp_path / "deaf.py"
    script.write_text(textwrap.dedent("""
        import os, sys, time
        from galgen.processes import die_with_parent
        die_with_parent(os.getppid())
        print("ready", flush=True)
        while True:  # every SystemExit is swallowed, as in a finaliser
            try:
                time.sleep(0.05)
            except SystemExit:
                pass
    """))
    worker = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, cwd=ROOT)
    assert worker.stdout.readline().strip() == b"ready"
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=GONE_WITHIN) == 128 + signal.SIGTERM
