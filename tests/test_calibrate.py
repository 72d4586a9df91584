"""Flux calibration: rank-paired medians recover injected per-band multipliers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from galgen.calibrate import CalibrationConfig, calibrate, fit_line, image_medians, pair_by_rank
from galgen.cli import app

FACTORS = (1.18, 1.16, 1.23)  # the paper's g r z multipliers
SKY_RMS = np.array([0.007, 0.013, 0.029])[None, :, None, None]


def real_galaxies(count, *, size=32, seed=0, scale=(1.5, 4.0)):
    """Exponential discs of random brightness and size on Gaussian sky (nanomaggies)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - size // 2
    lengths = rng.uniform(*scale, count)[:, None, None]
    profile = np.exp(-np.hypot(x, y)[None] / lengths)
    peak = 10 ** rng.uniform(-1.3, 0.3, count)
    images = peak[:, None, None, None] * np.array([0.6, 1.0, 1.4])[None, :, None, None] * profile[:, None]
    return (images + rng.normal(size=images.shape) * SKY_RMS).astype(np.float32)


def make_mocks(real, *, seed=1, extra_noise=0.1):
    """mock = real / factor + fresh sky noise (``extra_noise`` x the scaled sky): what calibration must undo.

    The galaxy-pixel selection depends on the noise level, so mocks much noisier than the real
    data bias m (docs/metrics.md: about -7 % on independent draws when the noise is 12 % higher).
    """
    rng = np.random.default_rng(seed)
    factors = np.array(FACTORS)[None, :, None, None]
    return (real / factors + extra_noise * rng.normal(size=real.shape) * SKY_RMS / factors).astype(np.float32)


def test_recovers_the_injected_factors_within_one_percent():
    real = real_galaxies(400)
    result = calibrate(real, make_mocks(real), bands="grz")
    for fit, factor in zip(result.fits, FACTORS):
        assert fit.factor == pytest.approx(factor, rel=0.01), fit
        assert fit.pairs == 400
    assert "galaxy pixels" in result.method


@pytest.mark.parametrize("factors", [(1.0, 1.0, 1.0), FACTORS])
def test_independent_draws_of_one_population_give_the_true_factors(factors):
    # not copies: two independent draws of 1000, the second divided by the factors. The paper's
    # least-squares line is off by several per cent here (regression dilution); the default is not.
    # Its sampling sd on these discs is 1.7 % per band (docs/metrics.md), so 3.5 % is 2 sd
    real = real_galaxies(1000, seed=21)
    mock = real_galaxies(1000, seed=22) / np.array(factors, dtype=np.float32)[None, :, None, None]
    result = calibrate(real, mock, bands="grz")
    for fit, factor in zip(result.fits, factors):
        assert fit.factor == pytest.approx(factor, rel=0.035), fit
        assert fit.interval[0] <= factor <= fit.interval[1] and fit.offset == 0.0
    paper_line = calibrate(real, mock, bands="grz", config=CalibrationConfig(bootstrap=0))
    assert [f.factor for f in paper_line.fits] == [f.factor for f in result.fits]  # the interval changes nothing


def test_swapping_the_sets_gives_the_reciprocal_factor():
    real, mock = real_galaxies(300, seed=23), real_galaxies(300, seed=24)
    forward, backward = calibrate(real, mock, bands="grz"), calibrate(mock, real, bands="grz")
    for a, b in zip(forward.fits, backward.fits):
        assert a.factor * b.factor == pytest.approx(1.0, rel=1e-12)


def test_unequal_counts_pair_quantiles():
    # every mock twice: the doubled set's quantiles at the real set's ranks are the mocks
    # themselves, so the fit is the equal-count one
    real = real_galaxies(150, seed=4)
    mocks = make_mocks(real)
    once = calibrate(real, mocks, bands="grz")
    twice = calibrate(real, np.concatenate([mocks, mocks]), bands="grz")
    for a, b in zip(once.fits, twice.fits):
        assert b.factor == pytest.approx(a.factor, rel=1e-12) and b.pairs == 150


def test_paper_mode_uses_the_plain_median_on_galaxy_filled_stamps():
    # large bright galaxies fill the stamp, as in the paper's data: plain medians carry signal
    real = real_galaxies(300, seed=6, scale=(8.0, 20.0))
    result = calibrate(real, make_mocks(real), bands="grz", config=CalibrationConfig(paper=True))
    assert "Smith et al." in result.method
    for fit, factor in zip(result.fits, FACTORS):
        assert fit.factor == pytest.approx(factor, rel=0.01)


def test_image_medians_by_hand():
    stack = np.where(np.indices((16, 16)).sum(axis=0) % 2 == 0, 0.01, -0.01)[None, None]  # sky: RMS 0.01
    stack[0, 0, 6:10, 6:10] = [[1, 2, 3, 4]] * 4  # a 4 x 4 galaxy
    assert image_medians(stack, config=CalibrationConfig(paper=True))[0, 0] == np.median(stack)
    assert image_medians(stack)[0, 0] == pytest.approx(2.5)  # only the galaxy is above 2 x 0.01


def test_pair_by_rank_and_line_fit():
    real, mock = np.array([3.0, 1.0, 2.0]), np.array([0.5, 1.5, 1.0])
    paired_real, paired_mock = pair_by_rank(real, mock)
    np.testing.assert_array_equal(paired_real, [1, 2, 3])
    np.testing.assert_array_equal(paired_mock, [0.5, 1.0, 1.5])
    assert fit_line(paired_mock, paired_real) == pytest.approx((2.0, 0.0, 0.0))
    # unequal sizes: the larger is read at the smaller's quantiles
    paired_real, paired_mock = pair_by_rank(np.arange(11.0), np.array([0.0, 5.0]))
    np.testing.assert_array_equal(paired_real, [0.0, 10.0])


def write_population(directory, stack):
    from galgen.io.cube import Cube
    from galgen.io.cube import make_wcs
    from galgen.io.write import write_cube

    directory.mkdir()
    for i, stamp in enumerate(stack):
        write_cube(Cube(data=stamp, bands="grz", wcs=make_wcs(stamp.shape[-2:], pixel_scale=0.262)), directory / f"g{i:03d}.fits")


@pytest.mark.slow  # torch import and 120 FITS writes: about 10 s on a busy machine
def test_cli_writes_the_factors_into_a_model_file(tmp_path):
    import torch

    from galgen.engine.weights import MODEL_KIND, read_metadata, save_weights

    real = real_galaxies(60, seed=8)
    write_population(tmp_path / "real", real)
    write_population(tmp_path / "mock", make_mocks(real))
    save_weights(tmp_path / "model.safetensors", {"w": torch.zeros(2)}, {"kind": MODEL_KIND, "bands": "grz"})
    result = CliRunner().invoke(app, ["calibrate", str(tmp_path / "real"), str(tmp_path / "mock"), "--json",
                                      "--model", str(tmp_path / "model.safetensors"),
                                      "--write-to", str(tmp_path / "calibrated.safetensors")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    stored = read_metadata(tmp_path / "calibrated.safetensors")["calibration"]
    assert stored["factors"] == pytest.approx(summary["factors"])
    for band, factor in zip("grz", FACTORS):
        assert stored["factors"][band] == pytest.approx(factor, rel=0.02)
    assert "galaxy pixels" in stored["method"]
    assert "calibration" not in read_metadata(tmp_path / "model.safetensors")


def test_cli_table_and_missing_model(tmp_path):
    real = real_galaxies(30, seed=9)
    write_population(tmp_path / "real", real)
    write_population(tmp_path / "mock", make_mocks(real))
    table = CliRunner().invoke(app, ["calibrate", str(tmp_path / "real"), str(tmp_path / "mock"), "--paper"])
    assert table.exit_code == 0 and "scatter" in table.stdout and "Smith et al." in table.stdout
    missing = CliRunner().invoke(app, ["calibrate", str(tmp_path / "real"), str(tmp_path / "mock"),
                                       "--write-to", str(tmp_path / "none.safetensors")])
    assert missing.exit_code == 2 and "no such model file" in missing.output
