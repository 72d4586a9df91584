"""`galgen simulate`'s population settings: each moves what is drawn, and only that; runs record them."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import assert_fitsverify_clean

galsim = pytest.importorskip("galsim")

from galgen.cli import app  # noqa: E402
from galgen.errors import InputError  # noqa: E402
from galgen.galaxies import Population, draw_params, render  # noqa: E402
from galgen.io.cube import read_provenance, read_table  # noqa: E402

runner = CliRunner()
COUNT = 200


def draws(population=Population(), seed=3):
    return [draw_params(seed, i, population=population) for i in range(COUNT)]


def test_the_default_population_is_the_one_without_settings():
    assert Population().changed() is None
    assert draws() == [draw_params(3, i) for i in range(COUNT)]


def test_each_setting_moves_its_own_property():
    base = draws()
    bright = draws(Population(mag_range=(16.0, 17.0)))
    assert all(16.0 <= p.mag_r <= 17.0 for p in bright)
    size = np.median([p.disk_hlr for p in base])
    larger, smaller = (np.median([p.disk_hlr for p in draws(Population(size_scale=k))]) / size for k in (2.0, 0.5))
    assert 1.5 < larger < 2.05 and 0.45 < smaller < 0.6  # the stamp (64 px) truncates the largest disks
    assert np.mean([p.bulge_fraction >= 0.6 for p in draws(Population(early_fraction=1.0))]) == 1.0
    shifted = draws(Population(colour_shift=(0.2, -0.1)))
    for a, b in zip(base, shifted):
        np.testing.assert_allclose(np.subtract(b.colours, a.colours), [0.2, -0.1] * 3, atol=1e-12)
        assert (a.mag_r, a.disk_hlr) == (b.mag_r, b.disk_hlr)
    sharp = draws(Population(seeing=(0.6, 0.6)))
    assert all(p.psf_fwhm[1] == pytest.approx(0.6) for p in sharp)


def test_neighbours_join_a_fraction_of_the_stamps_and_leave_the_central_galaxy_alone():
    base = draws()
    crowded = draws(Population(neighbours=0.5))
    share = np.mean([p.neighbour is not None for p in crowded])
    assert 0.38 < share < 0.62
    for a, b in zip(base, crowded):
        assert replace(b, neighbour=None) == a  # the central galaxy is the same draw
        if b.neighbour is not None:
            assert 0.25 * 64 <= np.hypot(b.neighbour.dx, b.neighbour.dy) <= 0.42 * 64
            assert b.neighbour.psf_fwhm == b.psf_fwhm
    params = next(p for p in crowded if p.neighbour is not None)
    alone = render(replace(params, neighbour=None), size=64, pixel_scale=0.262)
    both = render(params, size=64, pixel_scale=0.262)
    np.testing.assert_allclose(both - alone, render(params.neighbour, size=64, pixel_scale=0.262), atol=1e-6)


@pytest.mark.parametrize("settings, message", [
    (dict(mag_range=(20.0, 16.0)), "population mag_range"),
    (dict(size_scale=0.0), "population size_scale"),
    (dict(early_fraction=1.5), "population early_fraction"),
    (dict(seeing=(1.0, float("nan"))), "population seeing"),
    (dict(neighbours=-0.1), "population neighbours"),
    (dict(colour_shift=(2.0, 0.0)), "population colour_shift"),
])
def test_impossible_settings_are_refused(settings, message):
    with pytest.raises(InputError, match=message):
        Population(**settings)


def simulate(out, *args):
    return runner.invoke(app, ["simulate", "-n", "3", "-o", str(out), "--workers", "1", "--size", "32",
                               *map(str, args)])


def test_a_run_records_its_population_and_a_resume_must_name_the_same(tmp_path):
    out = tmp_path / "sims"
    done = simulate(out, "--neighbours", "1", "--mag-range", "16,18", "--seeing", "0.8,0.9")
    assert done.exit_code == 0, done.output
    wanted = {"mag_range": [16.0, 18.0], "seeing": [0.8, 0.9], "neighbours": 1.0}
    assert read_provenance(out / "sim_000000.fits")["population"] == wanted
    assert read_provenance(out / "truth.fits")["population"] == wanted
    truth = read_table(out / "truth.fits")
    assert np.isfinite(truth["neighbour_mag_r"]).all() and ((16 <= truth["mag_r"]) & (truth["mag_r"] <= 18)).all()
    assert_fitsverify_clean(out / "sim_000000.fits")
    assert_fitsverify_clean(out / "truth.fits")
    again = simulate(out, "--start", "3", "--neighbours", "1", "--mag-range", "16,18", "--seeing", "0.8,0.9")
    assert again.exit_code == 0, again.output  # the same population extends the run
    other = simulate(out, "--start", "6", "--neighbours", "0.5", "--mag-range", "16,18", "--seeing", "0.8,0.9")
    assert other.exit_code == 2 and "population" in other.stderr and "differ" in other.stderr
    plain = simulate(tmp_path / "plain")
    assert plain.exit_code == 0 and "population" not in read_provenance(tmp_path / "plain" / "truth.fits")
    assert "neighbour_mag_r" not in read_table(tmp_path / "plain" / "truth.fits")


@pytest.mark.parametrize("args, message", [
    (["--mag-range", "20,16"], "population mag_range"),
    (["--seeing", "fast"], "population seeing 'fast': give two numbers"),
    (["--neighbours", "1.5"], "population neighbours"),
])
def test_bad_population_options_exit_2_in_one_line_before_any_file(tmp_path, args, message):
    done = simulate(tmp_path / "x", *args)
    assert done.exit_code == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    assert json.dumps(done.stderr)  # printable
