"""galgen simulate: GalSim ground truth checked against its own truth catalogue."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import ROOT, assert_fitsverify_clean

galsim = pytest.importorskip("galsim")

from galgen import galaxies as gal, simulate as sim  # noqa: E402
from galgen.cli import app  # noqa: E402
from galgen.errors import InputError  # noqa: E402

SIZE = 64
SCALE = gal.PIXEL_SCALE


def _curve_of_growth_r50(plane: np.ndarray, x0: float, y0: float, total: float) -> float:
    """Radius (arcsec) where exact circular apertures about (x0, y0) hold half of ``total``."""
    from photutils.aperture import CircularAperture, aperture_photometry

    radii = np.linspace(0.5, 25.0, 197)  # pixels
    table = aperture_photometry(plane, [CircularAperture((x0, y0), r=r) for r in radii], method="exact")
    enclosed = np.array([table[f"aperture_sum_{i}"][0] for i in range(len(radii))])
    return float(np.interp(0.5 * total, enclosed, radii)) * SCALE


def _find(predicate, *, seed=11, tries=500):
    """The first galaxy parameters of run ``seed`` satisfying ``predicate`` (draws are cheap)."""
    for index in range(tries):
        params = gal.draw_params(seed, index)
        if predicate(params):
            return params
    raise AssertionError("no galaxy matched")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Galaxies 0-2 of seed 7, written in this process."""
    out = tmp_path_factory.mktemp("sims") / "run"
    summary = sim.simulate(3, out, seed=7, workers=1)
    assert summary.count == 3 and summary.to_dict()["truth"] == str(out / "truth.fits")
    return out


# ----------------------------------------------------------------------------- reproducibility


def test_same_seed_and_index_give_identical_images_and_truth():
    image_a, truth_a = gal.draw_galaxy(5, 7)
    image_b, truth_b = gal.draw_galaxy(5, 7)
    assert image_a.dtype == np.float32 and image_a.shape == (3, SIZE, SIZE)
    assert np.array_equal(image_a, image_b)
    assert truth_a == truth_b
    assert not np.array_equal(image_a, gal.draw_galaxy(5, 8)[0])
    assert not np.array_equal(image_a, gal.draw_galaxy(6, 7)[0])


def test_negative_seed_is_an_input_error():
    with pytest.raises(InputError):
        gal.draw_params(-1, 0)


@pytest.mark.slow
def test_image_i_is_the_same_whatever_n_start_or_workers(run_dir, tmp_path):
    """A real subprocess with two workers, drawing galaxies 1-2 only, matches the 1-worker run of 0-2."""
    from galgen.io.cube import read_cube, read_table

    out = tmp_path / "shard"
    cmd = [sys.executable, "-m", "galgen", "simulate", "-n", "2", "--start", "1", "-o", str(out),
           "--seed", "7", "--workers", "2", "--json"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["workers"] == 2 and summary["count"] == 2 and summary["start"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["sim_000001.fits", "sim_000002.fits", "truth.fits"]
    for name in ("sim_000001.fits", "sim_000002.fits"):
        assert np.array_equal(read_cube(out / name).data, read_cube(run_dir / name).data)
    shard, full = read_table(out / "truth.fits"), read_table(run_dir / "truth.fits")
    assert list(shard["index"]) == [1, 2]
    for column in shard:
        assert np.array_equal(shard[column], full[column][1:]), column


# ----------------------------------------------------------------------------- truth vs measurement


def test_noise_free_stamp_flux_matches_catalogue_and_noisy_sum_within_noise():
    sigma = np.asarray(gal.SKY_SIGMA)
    for index in range(4):
        params = gal.draw_params(3, index)
        clean = gal.render(params)
        truth = gal.truth_row(params, clean, size=SIZE)
        noisy = gal.add_sky_noise(clean, params)
        for b, band in enumerate(gal.BANDS):
            stamp = truth[f"flux_stamp_{band}"]
            assert clean[b].sum(dtype=np.float64) == pytest.approx(stamp, rel=1e-6)
            assert 0.85 * truth[f"flux_{band}"] < stamp <= truth[f"flux_{band}"] * (1 + 1e-4)
            # the sum of SIZE**2 independent noise pixels has sigma SIZE * sky sigma
            assert abs(noisy[b].sum(dtype=np.float64) - stamp) < 4 * SIZE * sigma[b]


def test_sky_noise_measured_on_faint_galaxy_borders_matches_configuration():
    frames = []
    for index in range(200):
        params = gal.draw_params(4, index)
        if params.mag_r > 18.5 and params.disk_hlr < 1.5:
            image = gal.add_sky_noise(gal.render(params), params)
            border = np.ones((SIZE, SIZE), bool)
            border[8:-8, 8:-8] = False
            frames.append(image[:, border])
        if len(frames) == 6:
            break
    pixels = np.concatenate(frames, axis=1)
    mad = np.median(np.abs(pixels - np.median(pixels, axis=1, keepdims=True)), axis=1)
    measured = 1.4826 * mad
    assert np.allclose(measured, gal.SKY_SIGMA, rtol=0.10), measured


def test_sersic_enclosed_fraction_known_answers():
    # half the light lies within the half-light radius of a round profile, whatever n
    for n in (1.0, 2.5, 4.0):
        assert gal.sersic_enclosed_fraction(1.3, n=n, hlr=1.3) == pytest.approx(0.5, abs=1e-9)
    # exponential: the half-light radius is 1.678 scale lengths
    assert gal.sersic_enclosed_fraction(1.678347, n=1.0, hlr=1.678347) == pytest.approx(0.5, abs=1e-9)
    fraction = gal.sersic_enclosed_fraction(2.0, n=1.0, hlr=1.678347)  # R = 2 h: 1 - 3 e^-2
    assert fraction == pytest.approx(1 - 3 * np.exp(-2.0), rel=1e-5)
    # an elongated profile puts less light inside a circle of its half-light radius
    assert gal.sersic_enclosed_fraction(1.0, n=1.0, hlr=1.0, q=0.3) < 0.5


def test_sersic_enclosed_fraction_agrees_with_a_finely_drawn_galsim_profile():
    from photutils.aperture import CircularAperture, aperture_photometry

    scale, npix = 0.03, 500
    profile = galsim.Sersic(n=3.5, half_light_radius=0.8).shear(q=0.4, beta=25 * galsim.degrees)
    image = profile.drawImage(nx=npix, ny=npix, scale=scale).array
    centre = ((npix - 1) / 2, (npix - 1) / 2)  # GalSim centres even images between pixels
    for radius in (0.4, 0.8, 1.6, 3.0):
        measured = aperture_photometry(image, CircularAperture(centre, r=radius / scale), method="exact")
        expected = gal.sersic_enclosed_fraction(radius, n=3.5, hlr=0.8, q=0.4)
        assert measured["aperture_sum"][0] == pytest.approx(expected, rel=0.01)


def test_exponential_disk_half_light_radius_curve_of_growth_matches_catalogue():
    """Known answer: a pure inclined exponential disk without PSF, r50 from exact circular apertures."""
    base = gal.draw_params(1, 0)
    disk = replace(base, bulge_fraction=0.0, knot_count=0, knot_fraction=0.0, disk_hlr=1.2, disk_q=0.55)
    clean = gal.render(disk, psf=False)
    truth = gal.truth_row(disk, clean, size=SIZE)
    round_disk = replace(disk, disk_q=1.0)
    assert gal.half_light_radii(round_disk) == pytest.approx(1.2, rel=1e-5)
    assert truth["r50_r"] > 1.2  # an elongated disk needs a wider circle for half its light
    measured = _curve_of_growth_r50(clean[1], truth["x_center"], truth["y_center"], truth["flux_r"])
    assert measured == pytest.approx(truth["r50_r"], rel=0.03)


def test_composite_galaxy_with_knots_half_light_radius_matches_catalogue():
    params = _find(lambda p: p.knot_fraction > 0.1 and p.bulge_fraction > 0.1 and 1.0 < p.disk_hlr < 2.5)
    clean = gal.render(params, psf=False)
    truth = gal.truth_row(params, clean, size=SIZE)
    for b, band in enumerate(gal.BANDS):
        measured = _curve_of_growth_r50(clean[b], truth["x_center"], truth["y_center"], truth[f"flux_{band}"])
        assert measured == pytest.approx(truth[f"r50_{band}"], rel=0.03), band
    # the red bulge makes the galaxy more compact in z than in g
    assert truth["r50_z"] < truth["r50_g"]


def test_knots_are_deposited_where_galsim_puts_them():
    params = _find(lambda p: p.knot_count >= 20)
    _, _, knots, offsets = gal._components(params)
    shot = knots.drawImage(
        nx=SIZE, ny=SIZE, scale=SCALE, method="phot", n_photons=20000, rng=galsim.BaseDeviate(1),
        use_true_center=False, offset=(params.dx, params.dy),
    ).array  # fmt: skip
    ours = np.zeros((SIZE, SIZE), np.float32)
    gal._deposit_points(ours, offsets / SCALE + gal.centre(params, SIZE), 1.0)
    assert np.array_equal(shot > 0, ours > 0)


def test_catalogue_centre_is_the_light_centroid():
    params = _find(lambda p: p.knot_count == 0)
    clean = gal.render(params)
    x0, y0 = gal.centre(params, SIZE)
    for plane in clean:
        y, x = np.indices(plane.shape)
        assert (plane * x).sum() / plane.sum() == pytest.approx(x0, abs=0.03)
        assert (plane * y).sum() / plane.sum() == pytest.approx(y0, abs=0.03)


def test_population_looks_like_desi_bright_galaxies():
    population = [gal.draw_params(2, i) for i in range(300)]
    mags = gal.ZERO_POINT - 2.5 * np.log10([p.fluxes().sum(axis=0) for p in population])  # (galaxy, band)
    mag_r = mags[:, 1]
    assert mag_r.min() >= 15.0 and mag_r.max() <= 19.5
    assert np.median(mag_r) > 17.5  # counts rise towards the faint end
    g_r, r_z = mags[:, 0] - mags[:, 1], mags[:, 1] - mags[:, 2]
    assert 0.5 < np.median(g_r) < 0.85 and np.percentile(g_r, 5) > 0.3 and np.percentile(g_r, 95) < 1.05
    assert 0.35 < np.median(r_z) < 0.7 and np.percentile(r_z, 5) > 0.2 and np.percentile(r_z, 95) < 0.85
    r50 = np.array([gal.half_light_radii(p)[1] for p in population[:100]])
    assert 0.6 < np.median(r50) < 1.6 and np.percentile(r50, 95) < 3.0
    assert all(2.0 <= p.bulge_n <= 4.0 for p in population)
    fwhm = np.array([p.psf_fwhm for p in population])
    assert np.all((fwhm[:, 0] > fwhm[:, 1]) & (fwhm[:, 1] > fwhm[:, 2]))
    assert fwhm.min() > 1.05 and fwhm.max() < 1.45
    assert 0.2 < np.mean([p.knot_count > 0 for p in population]) < 0.9


# ----------------------------------------------------------------------------- files and CLI


def test_written_cube_and_truth_table(run_dir):
    from astropy.io import fits

    from galgen.io.cube import read_cube, read_table
    from galgen.io.provenance import provenance_from_header

    assert sorted(p.name for p in run_dir.iterdir()) == [
        "sim_000000.fits", "sim_000001.fits", "sim_000002.fits", "truth.fits",
    ]  # fmt: skip
    cube = read_cube(run_dir / "sim_000002.fits")
    assert cube.bands == "grz" and cube.unit == "nanomaggy" and cube.shape == (3, SIZE, SIZE)
    assert cube.pixel_scale == pytest.approx(SCALE, rel=1e-9)
    image, truth = gal.draw_galaxy(7, 2)
    assert np.array_equal(cube.data, image)
    provenance = provenance_from_header(fits.getheader(run_dir / "sim_000002.fits"))
    assert provenance["seed"] == 7 and provenance["index"] == 2
    table = read_table(run_dir / "truth.fits")
    assert list(table["index"]) == [0, 1, 2] and set(table["seed"]) == {7}
    assert list(table["file"]) == ["sim_000000.fits", "sim_000001.fits", "sim_000002.fits"]
    for name, value in truth.items():
        assert table[name][2] == pytest.approx(value, rel=1e-12), name
    assert fits.getheader(run_dir / "truth.fits", "TABLE")["TUNIT" + str(list(table).index("r50_r") + 1)] == "arcsec"
    assert_fitsverify_clean(run_dir / "sim_000000.fits")
    assert_fitsverify_clean(run_dir / "truth.fits")


def test_cli_simulate_json(tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["simulate", "-n", "2", "-o", str(out), "--seed", "9", "-j", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["count"] == 2 and summary["seed"] == 9 and summary["workers"] == 1
    assert (out / "sim_000001.fits").is_file() and (out / "truth.fits").is_file()


@pytest.mark.parametrize(
    "args",
    [["-n", "0"], ["-n", "2", "--workers", "many"], ["-n", "2", "--workers", "0"], ["-n", "2", "--size", "8"]],
)
def test_cli_rejects_bad_arguments_with_exit_2(tmp_path, args):
    result = CliRunner().invoke(app, ["simulate", "-o", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_cli_output_that_is_a_file_is_one_line_input_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    result = CliRunner().invoke(app, ["simulate", "-n", "1", "-o", str(target), "-j", "1"])
    assert result.exit_code == 2
    assert "not a directory" in result.stderr and "Traceback" not in result.output
    assert target.read_text() == "not a directory"


def test_missing_galsim_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "galsim", None)  # import galsim -> ImportError
    with pytest.raises(InputError, match=r"pip install 'galgen\[sim\]'"):
        gal.draw_galaxy(0, 0)
    result = CliRunner().invoke(app, ["simulate", "-n", "1", "-o", str(tmp_path / "out")])
    assert result.exit_code == 2  # a missing extra is the user's to fix, in one line
    assert "galgen[sim]" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_theta_is_counter_clockwise_from_x_towards_y():
    """theta = 30 deg: the light's second moments put the major axis at 30 deg from +x towards +y (row)."""
    base = gal.draw_params(1, 0)
    disk = replace(base, bulge_fraction=0.0, knot_count=0, knot_fraction=0.0, disk_hlr=1.2, disk_q=0.3, theta=30.0)
    image = gal.render(disk, psf=False)
    plane = image[1]
    y, x = np.indices(plane.shape)
    x0, y0 = gal.centre(disk, SIZE)
    dx, dy = x - x0, y - y0
    mxx, myy, mxy = ((plane * m).sum() / plane.sum() for m in (dx * dx, dy * dy, dx * dy))
    assert np.degrees(0.5 * np.arctan2(2 * mxy, mxx - myy)) == pytest.approx(30.0, abs=1.0)
    assert gal.truth_row(disk, image, size=SIZE)["pa"] == pytest.approx(120.0)  # east of north, east left


def test_noise_free_extension_holds_the_galaxy_before_the_sky_noise(tmp_path):
    from galgen.io.cube import read_cube

    result = CliRunner().invoke(app, ["simulate", "-n", "2", "-o", str(tmp_path / "s"), "--size", "32", "-j", "1",
                                      "--seed", "5", "--noise-free"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "s" / "sim_000001.fits"
    observed, clean = read_cube(path), read_cube(path, hdu="NOISEFREE")
    expected_observed, expected_clean, _ = gal.draw_observation(5, 1, size=32)
    np.testing.assert_array_equal(observed.data, expected_observed)
    np.testing.assert_array_equal(clean.data, expected_clean)
    assert clean.bands == "grz" and clean.unit == "nanomaggy" and clean.pixel_scale == pytest.approx(0.262)
    residual = (observed.data - clean.data).reshape(3, -1).std(axis=1)  # what is left is the sky noise
    np.testing.assert_allclose(residual, gal.SKY_SIGMA, rtol=0.1)
    assert np.array_equal(gal.draw_galaxy(5, 1, size=32)[0], expected_observed)  # the same draw as before
    assert_fitsverify_clean(path)
