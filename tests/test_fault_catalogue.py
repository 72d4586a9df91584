"""The bad-input and fault catalogue: each case is what a hostile new user did, and what must happen.

Every case failed before the fix (data deleted, garbage written, a traceback, a late failure);
the item numbers follow the catalogue (issue "No data lost, no garbage out").
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import ROOT, assert_fitsverify_clean
from galgen.cli import app
from galgen.io.cube import Cube, read_provenance, read_table
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube

UNWRITABLE = Path("/sys/galgen-cannot-write-here")  # sysfs refuses new files, even to root


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, code: int = 2) -> str:
    """The single stderr line of a failed command (asserted: exit code, one line, no traceback)."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("galgen")]  # not progress
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    return lines[0]


def galaxies(directory: Path, count: int, *, size: int = 32, seed: int = 0, prefix: str = "gal") -> list[Path]:
    """``count`` FITS cubes of a Gaussian galaxy on noise, flux in nanomaggies, with a TAN WCS."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    paths = []
    for i in range(count):
        blob = rng.uniform(0.5, 2.0) * np.exp(-(x * x + y * y) / (2 * rng.uniform(1.5, 3.0) ** 2))
        data = (blob[None] * [[[0.6]], [[1.0]], [[1.4]]] + rng.normal(0, 0.01, (3, size, size))).astype(np.float32)
        cube = Cube(data=data, bands="grz", wcs=make_wcs((size, size), pixel_scale=0.262))
        paths.append(write_cube(cube, directory / f"{prefix}_{i:03d}.fits"))
    return paths


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    galaxies(root / "cut", 6, size=16)
    result = invoke("prep", root / "cut", "-o", root / "train", "--size", "16", "--json")
    assert result.exit_code == 0, result.output
    return root / "train"


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- 1-8: data loss and garbage


def test_1_prep_overwrite_never_deletes_its_inputs_or_foreign_directories(tmp_path):
    cut = tmp_path / "cut"
    galaxies(cut, 3, size=16)
    before = tree(cut)
    line = one_line_error(invoke("prep", cut, "-o", cut, "--size", "16", "--overwrite"))
    assert "not made by galgen" in line and tree(cut) == before
    thesis = tmp_path / "work" / "thesis.txt"
    thesis.parent.mkdir()
    thesis.write_text("four years")
    one_line_error(invoke("prep", cut, "-o", thesis.parent, "--size", "16", "--overwrite"))
    assert thesis.read_text() == "four years"
    # a dataset that holds an input is not replaced either; one that does not is
    data = tmp_path / "data"
    assert invoke("prep", cut, "-o", data, "--size", "16").exit_code == 0
    inside = data / "extra.fits"
    (cut / "gal_000.fits").rename(inside)
    assert "holds the input" in one_line_error(invoke("prep", cut, inside, "-o", data, "--size", "16", "--overwrite"))
    assert inside.exists()
    assert invoke("prep", cut, "-o", data, "--size", "16", "--overwrite").exit_code == 0
    assert not inside.exists() and (data / "dataset.json").exists()


def test_2_simulate_refuses_existing_galaxies_and_extends_the_truth_catalogue(tmp_path):
    out = tmp_path / "sims"
    args = ("simulate", "-n", 2, "-o", out, "--size", 16, "-j", 1, "--seed", 3)
    assert invoke(*args).exit_code == 0
    before = tree(out)
    assert "already exists" in one_line_error(invoke(*args))
    assert tree(out) == before
    assert invoke(*args, "--start", 2).exit_code == 0
    truth = read_table(out / "truth.fits")
    assert list(truth["index"]) == [0, 1, 2, 3] and len(list(out.glob("sim_*.fits"))) == 4
    assert read_provenance(out / "truth.fits")["count"] == 4
    assert (out / "sim_000000.fits").read_bytes() == before["sim_000000.fits"]
    # a truth catalogue of another run is never merged into
    assert "another run" in one_line_error(invoke("simulate", "-n", 1, "-o", out, "--size", 16, "-j", 1,
                                                  "--seed", 4, "--start", 9))
    # --overwrite replaces those indices and keeps the other rows
    assert invoke(*args, "--start", 1, "--overwrite").exit_code == 0
    assert list(read_table(out / "truth.fits")["index"]) == [0, 1, 2, 3]
    # a file galgen did not make is never replaced, even with --overwrite
    (out / "sim_000005.fits").write_text("mine")
    one_line_error(invoke(*args, "--start", 4, "--overwrite"))
    assert (out / "sim_000005.fits").read_text() == "mine"


@pytest.mark.slow  # an interpreter start-up importing torch
def test_3_non_ascii_command_lines_are_escaped_in_fits_and_read_back(model_file, tmp_path):
    out = tmp_path / "mocks été"
    run = subprocess.run([sys.executable, "-m", "galgen", "sample", "-n", "1", "-o", str(out), "--model",
                          str(model_file), "--steps", "1"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    mock = out / "mock_000000.fits"
    assert_fitsverify_clean(mock)
    info = json.loads(invoke("info", mock, "--json").stdout)["files"][0]
    assert f"-o '{out}'" in info["provenance"]["command"]  # the exact command line, read back
    assert any("%C3%A9" in line for line in info["history"])  # HISTORY holds it %-escaped
    picture = tmp_path / "galaxie à moi.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(picture)
    done = invoke("desify", picture, "-o", tmp_path / "désifié", "--model", model_file, "--steps", 1)
    assert done.exit_code == 0, done.output
    output = next((tmp_path / "désifié").glob("*.fits"))
    assert_fitsverify_clean(output)
    assert read_provenance(output)["inputs"][0]["path"] == str(picture)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow  # two spawned workers each import torch: about 15 s
@pytest.mark.parametrize("command, signum", [
    ("sample", signal.SIGKILL), ("sample", signal.SIGTERM), ("sample", signal.SIGINT), ("simulate", signal.SIGKILL),
])
def test_4_workers_die_with_their_parent(model_file, tmp_path, command, signum):
    out = tmp_path / "out"
    args = {"sample": ["sample", "-n", "200", "-o", str(out), "--model", str(model_file), "--steps", "300",
                       "--sampler", "ddim", "-j", "2", "--batch", "1"],
            "simulate": ["simulate", "-n", "5000", "-o", str(out), "-j", "2"]}[command]
    # Ctrl-C's disposition as a terminal gives it: a suite started in the background of a script (`.ci/run &`)
    # inherits SIGINT ignored, which Python then keeps, and the run would rightly go on
    parent = subprocess.Popen([sys.executable, "-m", "galgen", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list(out.glob("*_*.fits")) and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.2)
    workers = [pid for pid in _children(parent.pid) if _alive(pid)]
    assert len(workers) >= 2, parent.stderr.read() if parent.poll() is not None else workers
    parent.send_signal(signum)
    code = parent.wait(timeout=120)  # generous: a loaded 2-core machine (a stopped worker leaves at once)
    assert code == {signal.SIGKILL: -signal.SIGKILL, signal.SIGTERM: 143, signal.SIGINT: 130}[signum]
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
    made = len(list(out.glob("*_*.fits")))
    time.sleep(1.0)
    assert len(list(out.glob("*_*.fits"))) == made  # nobody writes on
    assert not (out / "truth.fits").exists() or command == "sample"
    if signum != signal.SIGKILL:  # unwound like Ctrl-C: no temporaries left behind
        assert not list(out.glob(".tmp-*"))


def test_5_a_killed_trainings_checkpoint_temporary_is_swept_when_training_starts(dataset, tmp_path):
    from galgen.io.atomic import temp_path

    gone = subprocess.Popen(["true"])
    gone.wait()
    parts = temp_path(tmp_path / "m.ckpt.safetensors").name.split("-", 4)
    parts[2] = str(gone.pid)
    stale = tmp_path / "-".join(parts)
    stale.write_bytes(b"51 MB of a checkpoint, cut short")
    assert invoke("train", dataset, "-o", tmp_path / "m.safetensors", "--steps", 1, "--batch", 2).exit_code == 0
    assert not stale.exists() and (tmp_path / "m.ckpt.safetensors").exists()


def test_5_hidden_temporaries_are_never_inputs_and_stale_ones_are_swept(model_file, tmp_path):
    from galgen.io.atomic import temp_path

    real = tmp_path / "real"
    galaxies(real, 4)
    galaxies(tmp_path / "mock", 4, seed=1)
    gone = subprocess.Popen(["true"])  # its pid, once it has exited, is a dead writer's
    gone.wait()
    stale = temp_path(real / "gal_009.fits").name.split("-")
    stale[2] = str(gone.pid)  # .tmp-<host>-<pid>-<hex>-<name>: a writer that died
    stale_file = real / "-".join(stale)
    stale_file.write_bytes(b"half a FITS file")
    assert invoke("sgd", real, tmp_path / "mock", "--bootstrap", 10, "--json").exit_code == 0
    assert invoke("calibrate", real, tmp_path / "mock", "--json").exit_code == 0
    prepped = invoke("prep", real, "-o", tmp_path / "ds", "--size", 16, "--json")
    assert prepped.exit_code == 0 and json.loads(prepped.stdout)["inputs"] == 4
    assert stale_file.exists()  # reading never deletes anything
    mocks = tmp_path / "mocks"
    mocks.mkdir()
    stale_mock = mocks / stale_file.name.replace("gal_009", "mock_000000")
    stale_mock.write_bytes(b"half")
    live = mocks / temp_path(mocks / "mock_000001.fits").name  # this process is alive: kept
    live.write_bytes(b"busy")
    assert invoke("sample", "-n", 1, "-o", mocks, "--model", model_file, "--steps", 1).exit_code == 0
    assert not stale_mock.exists() and live.exists()


def test_6_divergent_training_is_a_failure_and_writes_nothing(dataset, tmp_path):
    out = tmp_path / "model.safetensors"
    result = invoke("train", dataset, "-o", out, "--lr", "1e6", "--steps", 40, "--batch", 2, "--no-bf16")
    line = one_line_error(result, code=1)
    assert "NaN or infinite" in line or "became nan" in line.lower() or "became inf" in line.lower()
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_6_a_good_checkpoint_is_kept_when_the_loss_turns_nan_later(monkeypatch, tmp_path):
    import torch

    from galgen.engine import train as training
    from galgen.engine.weights import read_metadata
    from galgen.errors import RuntimeFailure

    real_loss, calls = training.Denoiser.loss, {"n": 0}

    def loss(self, *args, **kwargs):
        calls["n"] += 1
        value = real_loss(self, *args, **kwargs)
        return value * torch.tensor(float("nan")) if calls["n"] > 5 else value

    monkeypatch.setattr(training.Denoiser, "loss", loss)
    images = np.random.default_rng(0).uniform(-1, 1, (6, 3, 16, 16)).astype(np.float32)
    config = training.TrainConfig(steps=10, batch=2, checkpoint_every=4, log_every=1, bf16=False)
    out = tmp_path / "m.safetensors"
    with pytest.raises(RuntimeFailure, match="at step 6.*step 4, is kept"):
        training.train(images, unet=training.preset("tiny", bands=3, size=16), config=config, output=out)
    assert read_metadata(training.checkpoint_path(out))["step"] == 4 and not out.exists()


def test_6_non_finite_weights_are_never_loaded_or_sampled(model_file, tmp_path):
    from safetensors.torch import save_file

    from galgen.engine.weights import METADATA_KEY, load_tensors, read_metadata

    tensors = {k: v * float("nan") for k, v in load_tensors(model_file).items()}
    bad = tmp_path / "nan.safetensors"
    save_file(tensors, str(bad), metadata={METADATA_KEY: json.dumps(read_metadata(model_file))})
    line = one_line_error(invoke("sample", "-n", 1, "-o", tmp_path / "m", "--model", bad, "--steps", 1))
    assert "NaN or infinite" in line and str(bad) in line
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("args", [
    ("sample", "-n", 1, "-o", "{tmp}/m", "--ra", "nan"),
    ("sample", "-n", 1, "-o", "{tmp}/m", "--ra", "inf"),
    ("sample", "-n", 1, "-o", "{tmp}/m", "--ra", "400"),
    ("train", "{tmp}/none", "-o", "{tmp}/m.safetensors", "--lr", "inf"),
    ("simulate", "-n", 1, "-o", "{tmp}/m", "--pixel-scale", "inf"),
    ("desify", "{tmp}/none.png", "-o", "{tmp}/m", "--strength", "nan"),
])
def test_7_non_finite_options_are_usage_errors_up_front(tmp_path, args):
    line = one_line_error(invoke(*(str(a).format(tmp=tmp_path) for a in args)))
    assert "--" in line or "ra must be" in line
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("fill", [np.nan, 0.0])
def test_8_desify_refuses_a_cube_without_valid_pixels(model_file, tmp_path, fill):
    empty = tmp_path / "empty.fits"
    from astropy.io import fits

    fits.PrimaryHDU(np.full((3, 16, 16), fill, np.float32), header=fits.Header({"BANDS": "grz"})).writeto(empty)
    line = one_line_error(invoke("desify", empty, "-o", tmp_path / "out", "--model", model_file, "--steps", 1))
    assert "not enough valid pixels" in line and str(empty) in line
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


# ----------------------------------------------------------------------------- 9-15: error paths


def test_9_unwritable_outputs_are_refused_before_any_work(model_file, dataset, tmp_path):
    cases = [
        ("sample", "-n", 2, "-o", UNWRITABLE, "--model", model_file, "--steps", 1),
        ("train", dataset, "-o", UNWRITABLE / "m.safetensors", "--steps", 1, "--batch", 2),
        ("train", dataset, "-o", Path("/sys/m.safetensors"), "--steps", 1, "--batch", 2),
        ("prep", dataset.parent / "cut", "-o", Path("/sys/ds"), "--size", 16),
        ("simulate", "-n", 1, "-o", UNWRITABLE, "-j", 1),
    ]
    for args in cases:
        line = one_line_error(invoke(*args))
        assert ".tmp-" not in line and "internal error" not in line
        assert "/sys/" in line


def test_10_a_full_disk_is_one_line_naming_the_output(monkeypatch, model_file, tmp_path):
    from astropy.io import fits

    import galgen.io.write

    def full(name):
        Path(name).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(name))

    monkeypatch.setattr(fits.HDUList, "writeto", lambda self, name, *args, **kwargs: full(name))  # astropy's writer
    monkeypatch.setattr(galgen.io.write, "write_images_direct", lambda images, name: full(name))  # the direct one
    out = tmp_path / "mocks"
    line = one_line_error(invoke("sample", "-n", 1, "-o", out, "--model", model_file, "--steps", 1), code=1)
    assert line.count("No space left on device") == 1 and str(out / "mock_000000.fits") in line
    assert ".tmp-" not in line and list(out.iterdir()) == []


def test_11_every_output_and_side_input_is_checked_before_the_work(model_file, dataset, tmp_path):
    real, mock = tmp_path / "real", tmp_path / "mock"
    galaxies(real, 3)
    galaxies(mock, 3, seed=1)
    image = galaxies(tmp_path / "img", 1)[0]
    cases = [
        (("sgd", real, mock, "--plot", tmp_path / "fig.xyz"), "unsupported output format"),
        (("sgd", real, mock, "--train", tmp_path / "absent"), "no such dataset"),
        (("sgd", real, mock, "--fid-weights", tmp_path / "absent.pt"), "no such Inception"),
        (("calibrate", real, mock, "--write-to", tmp_path / "no" / "m.safetensors", "--model", model_file),
         "output directory does not exist"),
        (("inpaint", image, "--mask-nans", "-o", tmp_path / "fixed.txt", "--model", model_file),
         "unsupported output format"),
        (("sample", "-n", 1, "-o", tmp_path / "m", "--model", model_file, "--preview", tmp_path / "no" / "p.png"),
         "output directory does not exist"),
    ]
    for args, message in cases:
        assert message in one_line_error(invoke(*args)), args
    assert not (tmp_path / "m").exists()


@pytest.mark.slow  # writes a 1.7 GB sparse file and reads it back in blocks (a few seconds)
def test_12_info_reads_a_huge_image_in_blocks(tmp_path):
    from astropy.io import fits

    huge = tmp_path / "huge.fits"
    header = fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 3, "NAXIS1": 12000, "NAXIS2": 12000,
                          "NAXIS3": 3, "BANDS": "grz"})
    with open(huge, "wb") as f:
        f.write(header.tostring().encode())
        f.truncate(2880 + 4 * 3 * 12000 * 12000)  # zeros: sparse on disk
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30)); "
    run = subprocess.run([sys.executable, "-c", limit + "import sys; from galgen.cli import main; "
                          "sys.argv = ['galgen', 'info', '--json', sys.argv[1]]; main()", str(huge)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    described = json.loads(run.stdout)["files"][0]
    assert described["shape"] == [3, 12000, 12000] and described["masked_pixels"] == 3 * 12000 * 12000


def test_12_weights_claiming_a_huge_network_are_refused_before_it_is_built(model_file, tmp_path):
    from safetensors.torch import save_file

    from galgen.engine.weights import METADATA_KEY, load_tensors, read_metadata

    meta = read_metadata(model_file)
    meta["unet"] = {**meta["unet"], "base": 4096, "mults": [1, 2, 4]}  # ~20 G parameters if built
    save_file(load_tensors(model_file), str(tmp_path / "huge.safetensors"), metadata={METADATA_KEY: json.dumps(meta)})
    line = one_line_error(invoke("sample", "-n", 1, "-o", tmp_path / "m", "--model", tmp_path / "huge.safetensors"))
    assert "do not match their configuration" in line


def test_13_one_measurable_galaxy_is_an_input_error_naming_the_set(tmp_path):
    real, mock = tmp_path / "real", tmp_path / "mock"
    galaxies(real, 5)
    galaxies(mock, 1, seed=1)
    line = one_line_error(invoke("sgd", real, mock, "--bootstrap", 10))
    assert str(mock) in line and "at least 2" in line
    line = one_line_error(invoke("calibrate", real, mock))
    assert str(mock) in line and "at least 2" in line


@pytest.mark.parametrize("args", [
    ("sample", "-n", "0", "-o", "x"),
    ("train", "data", "-o", "m.safetensors", "--steps", "0"),
    ("sample", "-n", "1", "-o", "x", "--seed", "-1"),
    ("train", "data", "-o", "m.safetensors", "--seed", "-1"),
    ("train", "data", "-o", "m.safetensors", "--lr", "nan"),
    ("sample", "-n", "two", "-o", "x"),
    ("sample", "--no-such-option"),
    ("no-such-command",),
])
def test_14_usage_errors_are_one_line(args):
    line = one_line_error(invoke(*args))
    assert line.startswith("galgen")


def test_14_usage_errors_are_one_line_in_a_real_shell_too():
    run = subprocess.run([sys.executable, "-m", "galgen", "sample", "-n", "0", "-o", "x"], capture_output=True,
                         text=True, timeout=120, cwd=ROOT)
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1 and "-n" in run.stderr


def test_15_a_missing_list_entry_is_the_same_error_everywhere(model_file, tmp_path):
    paths = galaxies(tmp_path / "real", 3)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(map(str, paths)) + "\nabsent.fits\n")
    for args in (("prep", f"@{listing}", "-o", tmp_path / "ds", "--size", 16),
                 ("desify", f"@{listing}", "-o", tmp_path / "d", "--model", model_file),
                 ("sgd", f"@{listing}", tmp_path / "real")):
        line = one_line_error(invoke(*args))
        assert "line 4: no such file" in line and str(listing) in line


def test_15_prep_size_multiple_is_what_every_network_preset_needs():
    from galgen.engine.unet import PRESETS
    from galgen.prep import SIZE_MULTIPLE

    assert SIZE_MULTIPLE == max(2 ** len(config.mults) for config in PRESETS.values())


def test_15_prep_refuses_a_size_the_network_cannot_train(tmp_path):
    galaxies(tmp_path / "cut", 2)
    assert "multiple of 8" in one_line_error(invoke("prep", tmp_path / "cut", "-o", tmp_path / "ds", "--size", 30))
    assert not (tmp_path / "ds").exists()


def test_15_a_non_celestial_wcs_survives_inpaint_and_desify(model_file, tmp_path):
    from astropy.io import fits

    data = np.random.default_rng(0).normal(0.05, 0.01, (3, 16, 16)).astype(np.float32)
    header = fits.Header({"BANDS": "grz", "CTYPE1": "LINEAR", "CTYPE2": "LINEAR", "CRPIX1": 1.0, "CRPIX2": 1.0,
                          "CRVAL1": 100.0, "CRVAL2": 200.0, "CDELT1": 0.5, "CDELT2": 0.5, "CUNIT1": "mm",
                          "CUNIT2": "mm"})
    image = tmp_path / "detector.fits"
    fits.PrimaryHDU(data, header=header).writeto(image)
    mask = np.zeros((16, 16), np.uint8)
    mask[7:9] = 1
    fits.PrimaryHDU(mask).writeto(tmp_path / "mask.fits")
    fixed = tmp_path / "fixed.fits"
    done = invoke("inpaint", image, "--mask", tmp_path / "mask.fits", "-o", fixed, "--model", model_file,
                  "--steps", 2, "--resample", 1)
    assert done.exit_code == 0, done.output
    desified = invoke("desify", image, "-o", tmp_path / "d", "--model", model_file, "--steps", 1)
    assert desified.exit_code == 0, desified.output
    for output in (fixed, next((tmp_path / "d").glob("*.fits"))):
        written = fits.getheader(output)
        assert (written["CTYPE1"], written["CRVAL2"], written["CUNIT1"]) == ("LINEAR", 200.0, "mm"), output
        assert_fitsverify_clean(output)


def test_missing_extras_name_the_extra_to_install(monkeypatch, tmp_path):
    galaxies(tmp_path / "real", 2)
    monkeypatch.setitem(sys.modules, "statmorph", None)
    line = one_line_error(invoke("sgd", tmp_path / "real", tmp_path / "real", "--morphology"))
    assert "pip install 'galgen[morph]'" in line


def test_help_states_every_default_in_words():
    for command in ("prep", "train", "sample", "inpaint", "desify", "sgd", "calibrate", "simulate", "info"):
        text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "300"}).output
        assert not re.search(r" \.\s*(│|$)", text, flags=re.M), command  # a default removed from a sentence


def test_the_bundled_model_records_no_build_machine_paths():
    from galgen.engine.weights import read_metadata
    from galgen.model import bundled_model_path

    meta = read_metadata(bundled_model_path())
    for text in (meta["command"], meta["data"]["path"], meta["data"]["command"] or ""):
        assert not any(part.startswith("/") for part in text.split()), text


def test_figures_and_side_outputs_are_replaced_only_if_galgen_made_them(model_file, tmp_path):
    real, mock = tmp_path / "real", tmp_path / "mock"
    galaxies(real, 3)
    galaxies(mock, 3, seed=1)
    for name in ("fig.png", "fig.pdf", "fig.svg"):
        figure = tmp_path / name
        figure.write_text("a colleague's figure")
        assert "not made by galgen" in one_line_error(invoke("sgd", real, mock, "--plot", figure))
        assert figure.read_text() == "a colleague's figure"
        figure.unlink()
        assert invoke("sgd", real, mock, "--plot", figure, "--bootstrap", 10).exit_code == 0
        made = figure.stat().st_mtime_ns
        assert invoke("sgd", real, mock, "--plot", figure, "--bootstrap", 10).exit_code == 0  # galgen's: replaced
        assert figure.stat().st_mtime_ns != made
    preview = tmp_path / "holiday.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(preview)
    line = one_line_error(invoke("sample", "-n", 1, "-o", tmp_path / "m", "--model", model_file, "--steps", 1,
                                 "--preview", preview))
    assert "not made by galgen" in line and not (tmp_path / "m").exists()
    foreign = tmp_path / "notes.safetensors"
    foreign.write_bytes(b"not a model")
    line = one_line_error(invoke("calibrate", real, mock, "--model", model_file, "--write-to", foreign))
    assert "not made by galgen" in line and foreign.read_bytes() == b"not a model"
    picture = tmp_path / "cartoon.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(picture)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "cartoon_draw0.fits").write_text("mine")
    line = one_line_error(invoke("desify", picture, "-o", tmp_path / "d", "--model", model_file, "--overwrite"))
    assert "not made by galgen" in line and (tmp_path / "d" / "cartoon_draw0.fits").read_text() == "mine"


def test_5_desify_keeps_its_scratch_beside_the_output_and_sweeps_a_killed_runs(model_file, tmp_path):
    from galgen.io.atomic import temp_path

    gone = subprocess.Popen(["true"])
    gone.wait()
    parts = temp_path(tmp_path / "out.work").name.split("-", 4)
    parts[2] = str(gone.pid)
    stale = tmp_path / "-".join(parts)  # a killed desify's stack of inputs
    stale.mkdir()
    (stale / "images.npy").write_bytes(b"x" * 1000)
    picture = tmp_path / "cartoon.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(picture)
    assert invoke("desify", picture, "-o", tmp_path / "out", "--model", model_file, "--steps", 1).exit_code == 0
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartoon.png", "out"]  # no scratch left
    empty = tmp_path / "empty.fits"
    from astropy.io import fits

    fits.PrimaryHDU(np.zeros((3, 16, 16), np.float32), header=fits.Header({"BANDS": "grz"})).writeto(empty)
    one_line_error(invoke("desify", picture, empty, "-o", tmp_path / "out2", "--model", model_file))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartoon.png", "empty.fits", "out"]
