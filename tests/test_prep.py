import json
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from galgen.cli import app
from galgen.io.cube import Cube
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube
from galgen.dataset import open_dataset
from galgen.errors import InputError
from galgen.normalize import Normalizer
from galgen.io.regrid import centre_crop
from galgen.prep import PrepConfig, parse_band_values, prep_dataset

SKY = (0.007, 0.013, 0.029)  # DR9-like per-pixel noise, g r z (nanomaggies)
runner = CliRunner()


def _galaxy(rng, *, side=96, amplitude=1.0):
    """A round Gaussian galaxy, redder in z, on Gaussian sky noise: (3, side, side) nanomaggies."""
    y, x = np.mgrid[:side, :side] - (side - 1) / 2
    profile = np.exp(-(x**2 + y**2) / (2 * 5.0**2))
    planes = [amplitude * colour * profile + rng.normal(0, s, (side, side)) for colour, s in zip((0.5, 1, 1.5), SKY)]
    return np.stack(planes).astype(np.float32)


def _write(path, data, *, bands="grz", pixel_scale=0.262):
    wcs = make_wcs(data.shape[1:], pixel_scale=pixel_scale)
    write_cube(Cube(data=data, bands=bands, wcs=wcs), path)
    return path


@pytest.fixture
def cutouts(tmp_path):
    """Eight usable 96 px cutouts (six faint, two bright) in tmp_path/in."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, amplitude in enumerate([1, 1.2, 0.9, 1.1, 1.0, 0.8, 20, 25]):
        _write(folder / f"gal_{i}.fits", _galaxy(rng, amplitude=amplitude))
    return folder


def test_centre_crop_takes_the_middle():
    data = np.arange(2 * 6 * 7).reshape(2, 6, 7)
    crop = centre_crop(data, 2)
    np.testing.assert_array_equal(crop, data[:, 2:4, 2:4])


def test_prep_writes_a_normalised_memmapped_dataset(cutouts, tmp_path):
    out = tmp_path / "ds"
    assert PrepConfig(64).stretch == "asinh"  # the default; this test pins the paper's linear clip
    result = prep_dataset(sorted(cutouts.iterdir()), out, config=PrepConfig(64, stretch="linear"))
    ds = open_dataset(out)
    assert result.count == len(ds) == 8 and not result.skipped
    assert isinstance(ds.images, np.memmap) and ds.images.shape == (8, 3, 64, 64)
    assert ds.images.min() >= -1 and ds.images.max() <= 1
    # lower = -5 x the known sky sigma; upper between the faint and the bright galaxies' peaks
    np.testing.assert_allclose(ds.normalizer.lower, [-5 * s for s in SKY], rtol=0.05)
    # upper, by hand: a 99.9th percentile of 64 x 64 pixels lies between the 5th and 6th brightest, on
    # the ring of 8 pixels at r = sqrt(0.5^2 + 1.5^2) px of the sigma = 5 px Gaussian, so a galaxy's is
    # exp(-2.5 / 50) x amplitude x colour; the k-means clusters are the six faint galaxies (mean
    # amplitude 1.0) and the two bright ones (22.5), and the boundary is midway between their means
    ring = np.exp(-2.5 / 50)
    expected = [ring * colour * (1.0 + 22.5) / 2 for colour in (0.5, 1.0, 1.5)]
    np.testing.assert_allclose(ds.normalizer.upper, expected, rtol=0.01)
    # each row is the normalised centre crop of its source, in input order
    sources = list(ds.sources())
    source = sources[3]["path"]
    assert len(sources) == 8 and source.endswith("gal_3.fits")
    assert sources[3]["bytes"] == os.path.getsize(source) and sources[3]["sky_rms"][0] == pytest.approx(SKY[0], rel=0.1)
    from galgen.io.cube import read_cube

    expected = ds.normalizer.forward(centre_crop(read_cube(source).data, 64))
    np.testing.assert_array_equal(ds.images[3], expected)
    assert ds.meta["pixel_scale"] == 0.262 and ds.meta["unit"] == "nanomaggy"  # exactly: no WCS float noise
    assert ds.meta["galgen_version"] and ds.meta["provenance"]["date"]
    assert [(k, ds.meta[k]) for k in ("count", "size", "bands")] == [("count", 8), ("size", 64), ("bands", "grz")]


def test_inverse_recovers_the_flux_inside_the_range(cutouts, tmp_path):
    paths = sorted(cutouts.iterdir())[:2]
    config = PrepConfig(size=32, upper=(50.0, 50.0, 50.0), lower=(-1.0, -1.0, -1.0))
    prep_dataset(paths, tmp_path / "ds", config=config)
    ds = open_dataset(tmp_path / "ds")
    from galgen.io.cube import read_cube

    flux = centre_crop(read_cube(paths[1]).data, 32)
    np.testing.assert_allclose(ds.normalizer.inverse(ds.images[1]), flux, atol=5e-6)
    assert ds.meta["normalizer_choice"]["upper"]["method"] == "given"


def test_bad_inputs_are_skipped_with_reasons(cutouts, tmp_path):
    rng = np.random.default_rng(8)
    truncated = _write(tmp_path / "truncated.fits", _galaxy(rng))
    truncated.write_bytes(truncated.read_bytes()[:20000])
    small = _write(tmp_path / "small.fits", _galaxy(rng, side=40))
    holey = _galaxy(rng)
    holey[1, 30:66, 30:66] = np.nan  # 36 x 36 of the 64 x 64 crop in r
    holey = _write(tmp_path / "holey.fits", holey)
    two_band = _write(tmp_path / "two_band.fits", _galaxy(rng)[:2], bands="gr")
    speckled = _galaxy(rng)
    speckled[0, 40:45, 40:45] = np.nan  # 25 pixels: 0.6% of the crop, filled with the sky value
    speckled = _write(tmp_path / "speckled.fits", speckled)
    paths = [*sorted(cutouts.iterdir()), truncated, small, holey, two_band, speckled]
    result = prep_dataset(paths, tmp_path / "ds", config=PrepConfig(64))
    reasons = {os.path.basename(p): r for p, r in result.skipped}
    assert set(reasons) == {"truncated.fits", "small.fits", "holey.fits", "two_band.fits"}
    assert "truncated" in reasons["truncated.fits"]
    assert "smaller than the crop size 64" in reasons["small.fits"]
    assert reasons["holey.fits"].startswith("band r: 32%")
    assert "z" in reasons["two_band.fits"]
    assert all("\n" not in r for r in reasons.values())
    ds = open_dataset(tmp_path / "ds")
    assert len(ds) == 9 and result.bad_pixels_filled == 25
    sky = ds.normalizer.forward(np.zeros((3, 1, 1)))[0, 0, 0]
    np.testing.assert_allclose(ds.images[8, 0, 40 - 16 : 45 - 16, 40 - 16 : 45 - 16], sky, rtol=1e-6)
    assert [s["path"] for s in ds.meta["skipped"]] == [str(p) for p in (truncated, small, holey, two_band)]


def test_nothing_usable_is_an_input_error_and_writes_nothing(tmp_path):
    small = _write(tmp_path / "small.fits", _galaxy(np.random.default_rng(9), side=40))
    with pytest.raises(InputError, match="none of the 1 inputs is usable"):
        prep_dataset([small], tmp_path / "ds", config=PrepConfig(64))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.fits"]


def test_two_workers_give_the_same_dataset(cutouts, tmp_path):
    paths = sorted(cutouts.iterdir())
    prep_dataset(paths, tmp_path / "one", config=PrepConfig(size=48, workers=1))
    prep_dataset(paths, tmp_path / "two", config=PrepConfig(size=48, workers=2))
    one, two = open_dataset(tmp_path / "one"), open_dataset(tmp_path / "two")
    np.testing.assert_array_equal(one.images, two.images)
    assert one.normalizer == two.normalizer
    assert list(one.sources()) == list(two.sources())


def test_parse_band_values():
    assert parse_band_values("5", bands="grz", option="--upper") == (5.0, 5.0, 5.0)
    assert parse_band_values("z=6, g=5,r=5.5", bands="grz", option="--upper") == (5.0, 5.5, 6.0)
    with pytest.raises(InputError, match="each band"):
        parse_band_values("g=5,r=5", bands="grz", option="--upper")
    with pytest.raises(InputError, match="expected a number"):
        parse_band_values("five", bands="grz", option="--upper")


def test_cli_json_and_paper_lower_limit(cutouts, tmp_path):
    out = tmp_path / "ds"
    result = runner.invoke(app, ["prep", str(cutouts), "-o", str(out), "--size", "32", "--lower", "0", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["count"] == 8 and summary["normalizer"]["lower"] == [0.0, 0.0, 0.0]
    assert Normalizer.from_dict(summary["normalizer"]) == open_dataset(out).normalizer
    assert open_dataset(out).meta["command"].startswith("galgen")
    again = runner.invoke(app, ["prep", str(cutouts), "-o", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_cli_nothing_usable_exits_2_with_one_line(tmp_path):
    small = _write(tmp_path / "small.fits", _galaxy(np.random.default_rng(9), side=40))
    result = runner.invoke(app, ["prep", str(small), "-o", str(tmp_path / "ds")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("galgen prep: error: none of the 1 inputs is usable")
    assert not (tmp_path / "ds").exists()
    bad = runner.invoke(app, ["prep", str(small), "-o", str(tmp_path / "ds"), "--upper", "g=1"])
    assert bad.exit_code == 2 and "--upper" in bad.stderr


def test_real_decals_cutouts(decals_dir, tmp_path):
    out = tmp_path / "decals"
    proc = subprocess.run(
        [sys.executable, "-m", "galgen", "prep", str(decals_dir), "-o", str(out), "--json"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads(proc.stdout)
    reasons = {os.path.basename(s["path"]): s["reason"] for s in summary["skipped"]}
    # the truncated file, and the cutout whose g and r bands have no coverage at the centre
    assert set(reasons) == {"example_incomplete.fits", "example_bad_pix.fits"}
    assert "truncated" in reasons["example_incomplete.fits"] and "\n" not in reasons["example_incomplete.fits"]
    assert reasons["example_bad_pix.fits"].startswith("band g: 100%")
    ds = open_dataset(out)
    assert len(ds) == summary["count"] == 5 and ds.images.shape == (5, 3, 64, 64)
    assert -1 <= ds.images.min() and ds.images.max() <= 1
    lower, upper = np.array(ds.normalizer.lower), np.array(ds.normalizer.upper)
    assert np.all(lower < 0) and np.all(lower > -0.2) and np.all(upper > 0.5) and np.all(upper < 20)
    assert any("pixel scales differ" in w for w in summary["warnings"])


def test_subprocess_nothing_usable_is_one_line_and_exit_2(tmp_path):
    truncated = _write(tmp_path / "cut.fits", _galaxy(np.random.default_rng(3)))
    truncated.write_bytes(truncated.read_bytes()[:5000])
    proc = subprocess.run(
        [sys.executable, "-m", "galgen", "prep", str(truncated), "-o", str(tmp_path / "ds")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("galgen prep: error: none of the 1 inputs is usable") and "cut.fits" in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.fits"]
