"""`galgen info`: provenance of cubes, tables and weights files; one-line errors with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from galgen.cli import app
from galgen.io.cube import Cube
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube, write_table
from galgen.io.provenance import make_provenance

runner = CliRunner()


@pytest.fixture
def mock_cube(tmp_path):
    cube = Cube(data=np.ones((3, 8, 8), np.float32), bands="grz",
                wcs=make_wcs((8, 8), pixel_scale=0.262, ra=150.0, dec=2.0))
    cube.mask = np.zeros(cube.shape, bool)
    cube.mask[0, 0, :5] = True
    provenance = make_provenance(command="galgen sample -n 1 --seed 9", seed=9, index=0, sampler="ddim", nfe=20,
                                 model_sha256="ab" * 32)
    return write_cube(cube, tmp_path / "mock_000000.fits", provenance=provenance)


def test_info_json_reports_layout_grid_and_provenance(mock_cube):
    result = runner.invoke(app, ["info", str(mock_cube), "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)["files"]
    assert summary["kind"] == "image" and summary["shape"] == [3, 8, 8] and summary["bands"] == "grz"
    assert summary["unit"] == "nanomaggy" and summary["pixel_scale"] == pytest.approx(0.262)
    assert summary["centre"]["ra"] == pytest.approx(150.0, abs=1e-6)  # pixel 3.5 of 8 is the centre
    assert summary["centre"]["dec"] == pytest.approx(2.0, abs=1e-6)
    assert summary["masked_pixels"] == 5
    assert [h["name"] for h in summary["hdus"]] == ["PRIMARY", "MASK"]
    prov = summary["provenance"]
    assert (prov["seed"], prov["sampler"], prov["nfe"], prov["model_sha256"]) == (9, "ddim", 20, "ab" * 32)
    assert prov["command"] == "galgen sample -n 1 --seed 9"


def test_info_text_lists_every_provenance_field(mock_cube):
    result = runner.invoke(app, ["info", str(mock_cube)])
    assert result.exit_code == 0, result.output
    for line in ("bands: grz", "provenance.seed: 9", "provenance.sampler: ddim", "provenance.nfe: 20",
                 "shape: [3, 8, 8]", "unit: nanomaggy"):
        assert line in result.stdout


def test_info_describes_a_table(tmp_path):
    path = write_table({"mag_r": np.array([18.0, 19.5])}, tmp_path / "truth.fits", units={"mag_r": "mag"},
                       provenance=make_provenance(command="galgen simulate -n 2", seed=1))
    result = runner.invoke(app, ["info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)["files"]
    assert summary["kind"] == "table" and summary["rows"] == 2 and summary["columns"] == {"mag_r": "mag"}
    assert summary["provenance"]["seed"] == 1


def test_info_describes_a_weights_file(tmp_path):
    import hashlib

    import torch

    from galgen.engine import weights

    metadata = {"kind": weights.MODEL_KIND, "bands": "grz", "command": "galgen train data -o m.safetensors"}
    path = weights.save_weights(tmp_path / "m.safetensors", {"w": torch.zeros(2)}, metadata)
    result = runner.invoke(app, ["info", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)["files"]
    assert summary["kind"] == "weights" and summary["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert summary["metadata"]["bands"] == "grz"


def test_info_on_the_real_truncated_cutout_exits_2_with_one_line(decals_dir):
    result = runner.invoke(app, ["info", str(decals_dir / "example_incomplete.fits")])
    assert result.exit_code == 2
    assert "example_incomplete.fits" in result.stderr and "truncated" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_info_subprocess_exit_codes(mock_cube, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "galgen", "info", str(mock_cube), "--json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["files"][0]["provenance"]["seed"] == 9
    bad = tmp_path / "broken.fits"
    bad.write_bytes(mock_cube.read_bytes()[:3000])
    failed = subprocess.run([sys.executable, "-m", "galgen", "info", str(bad)], capture_output=True, text=True)
    assert failed.returncode == 2 and failed.stdout == ""
    assert "broken.fits" in failed.stderr and "Traceback" not in failed.stderr
    assert len(failed.stderr.strip().splitlines()) == 1


def test_info_on_a_missing_file_exits_2(tmp_path):
    result = runner.invoke(app, ["info", str(tmp_path / "nope.fits")])
    assert result.exit_code == 2 and "nope.fits: no such file" in result.stderr


@pytest.mark.parametrize("layout", ["cube+mask", "2d-mask", "int-blank", "2d", "compressed"])
def test_bad_pixel_count_in_blocks_equals_the_whole_image_reader(tmp_path, monkeypatch, layout):
    from astropy.io import fits

    from galgen.io import cube as cube_module

    monkeypatch.setattr(cube_module, "_BLOCK_PIXELS", 64)  # many blocks of a few rows
    rng = np.random.default_rng(4)
    data = rng.normal(size=(3, 37, 29)).astype(np.float32)
    data[1, 5, 6] = np.nan
    data[2, 30, 1] = 0.0  # no coverage in a file galgen did not write
    header = fits.Header({"BANDS": "grz"})
    path = tmp_path / "x.fits"
    if layout == "cube+mask":
        mask = np.zeros((3, 37, 29), np.uint8)
        mask[0, 10:12] = 1
        fits.HDUList([fits.PrimaryHDU(data, header=header), fits.ImageHDU(mask, name="MASK")]).writeto(path)
    elif layout == "2d-mask":
        mask = np.zeros((37, 29), np.uint8)
        mask[:, 3] = 1
        fits.HDUList([fits.PrimaryHDU(data, header=header), fits.ImageHDU(mask, name="FLAGS")]).writeto(path)
    elif layout == "int-blank":
        raw = rng.integers(-100, 100, (3, 37, 29)).astype(np.int16)
        raw[0, 0, :7] = -32768
        fits.PrimaryHDU(raw, header=fits.Header({"BANDS": "grz", "BLANK": -32768})).writeto(path)
    elif layout == "2d":
        fits.PrimaryHDU(data[1], header=fits.Header({"BANDS": "r"})).writeto(path)
    else:
        path = tmp_path / "x.fits.fz"
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header=header)]).writeto(path)
    described = cube_module.describe(path)
    whole = cube_module.read_cube(path)
    expected = 0 if whole.mask is None else int(whole.mask.sum())
    assert described["masked_pixels"] == expected > 0
    assert described["shape"] == list(whole.shape)
