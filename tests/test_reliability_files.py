"""Inputs and outputs that must never hang a run or fail after the work (issue "No hang, no silent garbage: a
third hostile catalogue"): files that are not regular files, odd and over-long names, a closed stdout.

Each test failed before the fix. A FIFO is watched by a thread that opens its other end whenever a reader
has opened it (so a regression fails the test instead of hanging it) and records that it was read.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT
from test_fault_catalogue import dataset, galaxies, invoke, one_line_error  # noqa: F401 - dataset is a fixture



@contextlib.contextmanager
def watched_fifo(path: Path):
    """Make a FIFO at ``path``; yield a list that gets an entry each time someone opens it to read."""
    os.mkfifo(path)
    opened: list[float] = []
    stop = threading.Event()

    def unblock():
        while not stop.is_set():
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # succeeds only while a reader waits
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    return
                time.sleep(0.02)
                continue
            opened.append(time.monotonic())
            os.close(fd)  # the reader sees an empty file and goes on
            time.sleep(0.02)

    thread = threading.Thread(target=unblock, daemon=True)
    thread.start()
    try:
        yield opened
    finally:
        stop.set()
        thread.join(timeout=10)


def refused_unread(result, fifo: Path, opened: list) -> None:
    line = one_line_error(result)
    assert not opened, f"the FIFO was opened: {line}"
    assert "named pipe (FIFO), not a regular file" in line and str(fifo) in line, line


# ----------------------------------------------------------------------------- MAJOR 2: not regular files


@pytest.mark.parametrize("name", ["x.fits", "x.safetensors"])
def test_info_refuses_a_fifo_unread(tmp_path, name):
    fifo = tmp_path / name
    with watched_fifo(fifo) as opened:
        refused_unread(invoke("info", fifo), fifo, opened)


def test_info_refuses_dev_zero_before_reading_it():
    # before: read for ever (19 GB resident); here the address space is capped so a regression ends soon
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
    run = subprocess.run([sys.executable, "-c", limit + "import sys; from galgen.cli import main; "
                          "sys.argv = ['galgen', 'info', '/dev/zero']; main()"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == "galgen info: error: /dev/zero: is a character device, not a regular file"


def test_sample_refuses_a_fifo_catalogue_unread(model_file, tmp_path):
    fifo = tmp_path / "cat.csv"
    with watched_fifo(fifo) as opened:
        refused_unread(invoke("sample", "-o", tmp_path / "m", "--model", model_file, "--catalog", fifo, "--steps", 1),
                       fifo, opened)
    assert not (tmp_path / "m").exists()


def test_prep_refuses_a_fifo_in_its_list_unread(tmp_path):
    paths = galaxies(tmp_path / "cut", 2, size=16)
    fifo = tmp_path / "cut" / "zz.fits"
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(map(str, [*paths, fifo])) + "\n")
    with watched_fifo(fifo) as opened:
        line = one_line_error(invoke("prep", f"@{listing}", "-o", tmp_path / "ds", "--size", 16))
    assert not opened and f"line 3: {fifo} is a named pipe (FIFO), not a regular file" in line
    assert str(listing) in line and not (tmp_path / "ds").exists()


def test_a_list_of_inputs_that_is_a_fifo_is_refused_unread(tmp_path):
    fifo = tmp_path / "list.txt"
    with watched_fifo(fifo) as opened:
        refused_unread(invoke("prep", f"@{fifo}", "-o", tmp_path / "ds", "--size", 16), fifo, opened)


@pytest.mark.parametrize("how", ["glob", "directory"])
def test_sgd_refuses_a_fifo_among_its_inputs_unread(tmp_path, how):
    real = tmp_path / "A"
    galaxies(real, 3)
    galaxies(tmp_path / "m", 3, seed=1)
    fifo = tmp_path / "m" / "zz.fits"
    with watched_fifo(fifo) as opened:
        mock = f"{tmp_path / 'm'}/*.fits" if how == "glob" else tmp_path / "m"
        refused_unread(invoke("sgd", real, mock, "--bootstrap", 10), fifo, opened)


def test_train_refuses_a_fifo_checkpoint_unread(dataset, tmp_path):
    fifo = tmp_path / "m.ckpt.safetensors"
    with watched_fifo(fifo) as opened:
        refused_unread(invoke("train", dataset, "-o", tmp_path / "m.safetensors", "--resume", fifo, "--steps", 1),
                       fifo, opened)


def test_a_dataset_whose_description_is_a_fifo_is_refused_unread(dataset, tmp_path):
    copy = tmp_path / "train"
    copy.mkdir()
    for name in ("images.npy", "sources.jsonl"):
        (copy / name).write_bytes((dataset / name).read_bytes())
    fifo = copy / "dataset.json"
    with watched_fifo(fifo) as opened:
        refused_unread(invoke("train", copy, "-o", tmp_path / "m.safetensors", "--steps", 1), fifo, opened)


def test_inpaint_refuses_a_fifo_mask_unread(model_file, tmp_path):
    image = galaxies(tmp_path / "img", 1, size=16)[0]
    fifo = tmp_path / "mask.fits"
    with watched_fifo(fifo) as opened:
        refused_unread(invoke("inpaint", image, "--mask", fifo, "-o", tmp_path / "fixed.fits", "--model", model_file,
                              "--steps", 1), fifo, opened)
    assert not (tmp_path / "fixed.fits").exists()


def test_prep_refuses_a_fifo_label_catalogue_unread(tmp_path):
    galaxies(tmp_path / "cut", 2, size=16)
    fifo = tmp_path / "labels.csv"
    with watched_fifo(fifo) as opened:
        refused_unread(invoke("prep", tmp_path / "cut", "-o", tmp_path / "ds", "--size", 16, "--labels", fifo),
                       fifo, opened)


def test_sgd_refuses_fifo_inception_weights_unread(tmp_path):
    galaxies(tmp_path / "A", 3)
    galaxies(tmp_path / "B", 3, seed=1)
    fifo = tmp_path / "inception.pt"
    with watched_fifo(fifo) as opened:
        refused_unread(invoke("sgd", tmp_path / "A", tmp_path / "B", "--fid-weights", fifo), fifo, opened)


def test_an_output_that_exists_as_a_fifo_is_refused_unread(tmp_path):
    galaxies(tmp_path / "A", 3)
    galaxies(tmp_path / "B", 3, seed=1)
    fifo = tmp_path / "fig.png"
    with watched_fifo(fifo) as opened:
        line = one_line_error(invoke("sgd", tmp_path / "A", tmp_path / "B", "--plot", fifo, "--bootstrap", 10))
    assert not opened and "output exists and is not a regular file" in line and str(fifo) in line


# ----------------------------------------------------------------------------- minor: stdout gone


@pytest.mark.parametrize("json_out", [True, False])
def test_a_broken_pipe_on_stdout_ends_quietly_with_141(tmp_path, json_out):
    image = galaxies(tmp_path, 1)[0]
    reader, writer = os.pipe()
    os.close(reader)  # `| head -c1` that has already left
    try:
        run = subprocess.run([sys.executable, "-m", "galgen", "info", str(image), *(["--json"] if json_out else [])],
                             stdout=writer, stderr=subprocess.PIPE, text=True, timeout=300, cwd=ROOT)
    finally:
        os.close(writer)
    assert (run.returncode, run.stderr) == (141, "")


def test_a_closed_stdout_ends_quietly_with_141(tmp_path):
    image = galaxies(tmp_path, 1)[0]
    run = subprocess.run(["bash", "-c", 'exec "$0" -m galgen info "$1" --json >&-', sys.executable, str(image)],
                         stderr=subprocess.PIPE, text=True, timeout=300, cwd=ROOT)
    assert (run.returncode, run.stderr) == (141, "")


# ----------------------------------------------------------------------------- minor: odd names


@pytest.mark.slow  # two interpreter start-ups, one importing torch
def test_paths_that_are_not_utf8_are_written_and_read_back_exactly(model_file, tmp_path):
    from galgen.io.cube import read_provenance

    model = tmp_path / os.fsdecode(b"mod\xe8le.safetensors")  # Latin-1 bytes: not UTF-8
    model.write_bytes(model_file.read_bytes())
    out = tmp_path / os.fsdecode(b"mocks\xff")
    run = subprocess.run([sys.executable, "-m", "galgen", "sample", "-n", "1", "-o", str(out), "--model", str(model),
                          "--steps", "1", "--preview", str(out) + ".png"], capture_output=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    assert os.fsencode(out) in run.stdout  # the summary names the directory by its own bytes
    mock = out / "mock_000000.fits"
    provenance = read_provenance(mock)
    assert provenance["model"] == model.name and f"-o '{out}'" in provenance["command"]
    described = subprocess.run([sys.executable, "-m", "galgen", "info", str(mock), "--json"], capture_output=True,
                               timeout=300, cwd=ROOT)
    assert described.returncode == 0, described.stderr
    assert json.loads(described.stdout)["files"][0]["provenance"]["model"] == model.name


def test_an_output_name_of_250_characters_is_written(tmp_path):
    galaxies(tmp_path / "A", 3)
    galaxies(tmp_path / "B", 3, seed=1)
    out = tmp_path / ("a" * 246 + ".png")  # 250 bytes: its temporary's name would be 280
    done = invoke("sgd", tmp_path / "A", tmp_path / "B", "--plot", out, "--bootstrap", 10)
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["A", "B", out.name])  # no temporary left


def test_an_output_name_too_long_is_refused_before_the_work(model_file, tmp_path):
    image = galaxies(tmp_path / "img", 1, size=16)[0]
    out = tmp_path / ("b" * 251 + ".fits")
    line = one_line_error(invoke("inpaint", image, "--mask-nans", "-o", out, "--model", model_file, "--steps", 1))
    assert "file name too long (256 bytes" in line and str(out) in line
    line = one_line_error(invoke("sample", "-n", 1, "-o", tmp_path / ("m" * 256), "--model", model_file))
    assert "file name too long" in line and not list(tmp_path.glob("m*"))


@pytest.mark.parametrize("command", ["sample", "prep", "sgd"])
def test_a_5000_character_path_is_one_line(model_file, tmp_path, command):
    huge = tmp_path / "/".join(["x"] * 2500)
    galaxies(tmp_path / "cut", 2, size=16)
    args = {"sample": ("sample", "-n", 1, "-o", huge, "--model", model_file),
            "prep": ("prep", tmp_path / "cut", "-o", huge, "--size", 16),
            "sgd": ("sgd", huge, tmp_path / "cut")}[command]
    line = one_line_error(invoke(*args))
    assert "path too long" in line and "internal error" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut"]


@pytest.mark.parametrize("command", ["prep", "train", "sample", "inpaint", "desify", "simulate"])
def test_an_empty_output_path_is_refused(model_file, dataset, tmp_path, monkeypatch, command):
    image = galaxies(tmp_path / "in", 1, size=16)[0]
    monkeypatch.chdir(tmp_path)  # before: `-o ''` wrote into the current directory
    args = {"prep": ("prep", tmp_path / "in", "--size", 16),
            "train": ("train", dataset, "--steps", 1, "--batch", 2),
            "sample": ("sample", "-n", 1, "--model", model_file, "--steps", 1),
            "inpaint": ("inpaint", image, "--mask-nans", "--model", model_file, "--steps", 1),
            "desify": ("desify", image, "--model", model_file, "--steps", 1),
            "simulate": ("simulate", "-n", 1, "--size", 16, "-j", 1)}[command]
    line = one_line_error(invoke(*args, "-o", ""))
    assert line.startswith(f"galgen {command}: error:") and "'--output': an empty path" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
