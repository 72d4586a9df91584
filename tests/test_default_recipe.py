"""The default path is the bundled recipe: prep measures labels, train conditions on them, sample draws them."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from galgen.cli import app
from galgen.conditioning import default_conditions
from galgen.io.cube import Cube, make_wcs
from galgen.io.write import write_cube

runner = CliRunner()


def galaxies(folder, count=6, *, wcs=True):
    """Round and elongated Gaussian galaxies of several sizes, brightnesses and colours on a noisy sky."""
    rng = np.random.default_rng(1)
    folder.mkdir()
    y, x = np.mgrid[:24, :24] - 12.0
    for i in range(count):
        width, q = 1.5 + 0.3 * i, 1.0 - 0.1 * i
        blob = np.exp(-0.5 * (x ** 2 + (y / q) ** 2) / width ** 2)
        colours = np.array([0.6 + 0.05 * i, 1.0, 1.3 - 0.04 * i])[:, None, None]
        data = (2.0 * (i + 1) * colours * blob + rng.normal(0, 0.01, (3, 24, 24))).astype(np.float32)
        grid = make_wcs((24, 24), pixel_scale=0.262) if wcs else None
        write_cube(Cube(data=data, bands="grz", wcs=grid), folder / f"g{i}.fits")
    return folder


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    done = invoke("prep", galaxies(root / "in"), "-o", root / "data", "--size", "16", "--json")
    assert done.exit_code == 0, done.output
    return root / "data"


def test_default_conditions_are_the_size_band_magnitude_size_shape_and_adjacent_colours():
    measured = ["mag_g", "mag_r", "mag_z", "r_e", "q", "g_r", "r_z"]
    assert default_conditions(measured, "grz") == ("mag_r", "r_e", "q", "g_r", "r_z")
    assert default_conditions(["MAG_G", "mag_r", "r_e", "redshift"], "grz") == ("mag_r", "r_e", "g_r")
    assert default_conditions(["g_r", "mag_i"], "gri") == ("g_r",)  # a colour column counts without its magnitudes
    assert default_conditions(["redshift", "ra", "dec"], "grz") == ()


def test_prep_measures_labels_unless_told_not_to(measured, tmp_path):
    info = json.loads((measured / "dataset.json").read_text())["labels"]
    assert info["names"] == ["mag_g", "mag_r", "mag_z", "r_e", "q", "g_r", "r_z"]
    assert "galgen's photometry" in info["source"]
    labels = np.load(measured / "labels.npy")
    assert labels.shape == (6, 7) and np.isfinite(labels).all()
    assert np.all(np.diff(labels[:, 1]) < 0)  # each galaxy brighter than the one before

    none = invoke("prep", galaxies(tmp_path / "in"), "-o", tmp_path / "none", "--size", "16", "--no-labels")
    assert none.exit_code == 0, none.output
    assert "labels" not in json.loads((tmp_path / "none" / "dataset.json").read_text())
    assert not (tmp_path / "none" / "labels.npy").exists()
    both = invoke("prep", tmp_path / "in", "-o", tmp_path / "both", "--labels", "measure", "--no-labels")
    assert both.exit_code == 2 and "exclude each other" in both.stderr and not (tmp_path / "both").exists()


def test_train_conditions_on_the_measured_labels_by_default_and_says_so(measured, tmp_path):
    model = tmp_path / "m.safetensors"
    base = ["train", measured, "--preset", "tiny", "--batch", "2", "--no-bf16", "--steps", "1"]
    done = invoke(*base, "-o", model)
    assert done.exit_code == 0, done.output
    assert "conditioned on mag_r, r_e, q, g_r, r_z" in done.stdout
    metadata = json.loads(invoke("info", model, "--json").stdout)["files"][0]["metadata"]
    assert [c["name"] for c in metadata["conditions"]] == ["mag_r", "r_e", "q", "g_r", "r_z"]

    plain = invoke(*base, "-o", tmp_path / "plain.safetensors", "--unconditional", "--json")
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.stdout)["conditions"] == []
    metadata = json.loads(invoke("info", tmp_path / "plain.safetensors", "--json").stdout)["files"][0]["metadata"]
    assert "conditions" not in metadata

    both = invoke(*base, "-o", tmp_path / "x.safetensors", "--unconditional", "--condition", "mag_r")
    assert both.exit_code == 2 and "exclude each other" in both.stderr
    assert not (tmp_path / "x.safetensors").exists()


def test_a_resume_keeps_the_checkpoints_conditioning(measured, tmp_path):
    base = ["train", measured, "--preset", "tiny", "--batch", "2", "--no-bf16", "-o", tmp_path / "plain.safetensors"]
    assert invoke(*base, "--steps", "1", "--unconditional").exit_code == 0
    resumed = invoke(*base, "--steps", "2", "--resume", tmp_path / "plain.ckpt.safetensors", "--json")
    assert resumed.exit_code == 0, resumed.output  # the dataset's labels are not added to an unconditional run
    assert json.loads(resumed.stdout)["conditions"] == []

    conditional = ["train", measured, "--preset", "tiny", "--batch", "2", "--no-bf16", "-o", tmp_path / "c.safetensors"]
    assert invoke(*conditional, "--steps", "1").exit_code == 0
    dropped = invoke(*conditional, "--steps", "2", "--resume", tmp_path / "c.ckpt.safetensors", "--unconditional")
    assert dropped.exit_code == 2 and "conditioned on mag_r,r_e,q,g_r,r_z" in dropped.stderr


def test_a_default_label_that_varies_nowhere_is_left_out(tmp_path):
    data = tmp_path / "data"
    done = invoke("prep", galaxies(tmp_path / "in", wcs=False), "-o", data, "--size", "16")
    assert done.exit_code == 0, done.output
    r_e = np.load(data / "labels.npy")[:, 3]
    assert np.isnan(r_e).all()  # no pixel scale: no size in arcsec
    trained = invoke("train", data, "-o", tmp_path / "m.safetensors", "--preset", "tiny", "--batch", "2",
                     "--no-bf16", "--steps", "1", "--json")
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["conditions"] == ["mag_r", "q", "g_r", "r_z"]
