"""Morphology: analytic known answers through statmorph, agreement with a direct statmorph call,
power spectrum of white noise, failure flags, and population distances."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy import optimize

from galgen.errors import InputError
from galgen.metrics.morphology import (
    FLAG_BAD,
    FLAG_NO_SOURCE,
    STATMORPH_NAMES,
    MorphologyConfig,
    compare_morphology,
    measure_galaxy,
    measure_stack,
    morphology_units,
    power_spectrum,
    usable_values,
)

YY, XX = np.mgrid[:64, :64]
R2 = (YY - 32) ** 2 + (XX - 32) ** 2


def gaussian_stamp(sigma=3.0, peak=100.0, noise=1e-3, seed=0):
    rng = np.random.default_rng(seed)
    return peak * np.exp(-R2 / (2 * sigma**2)) + rng.normal(0, noise, (64, 64))


def galsim_stack(n, seed=1):
    """DESI-like Sersic galaxies (r band 0.262"/px, Moffat seeing, r-band sky noise), 3 identical bands."""
    galsim = pytest.importorskip("galsim")
    rng = np.random.default_rng(seed)
    stamps = []
    for _ in range(n):
        profile = galsim.Sersic(n=rng.uniform(1, 4), half_light_radius=rng.uniform(1.0, 2.5),
                                flux=rng.uniform(20, 100)).shear(e1=rng.uniform(-0.3, 0.3), e2=rng.uniform(-0.3, 0.3))
        image = galsim.Convolve(profile, galsim.Moffat(beta=3, fwhm=1.2)).drawImage(nx=64, ny=64, scale=0.262).array
        stamps.append(image + rng.normal(0, 0.013, image.shape))
    return np.repeat(np.asarray(stamps, np.float32)[:, None], 3, axis=1)


def gaussian_truth():
    """Gini, M20 and C of a circular Gaussian as statmorph defines its regions, from the profile alone.

    With x = r^2 / 2 sigma^2 the Petrosian radius (eta = 0.2) solves x e^-x / (1 - e^-x) = 0.2;
    Gini and M20 use the pixels inside it (pixel values e^-x, x uniform in [0, X]); the
    concentration's total flux lies within 1.5 Petrosian radii.
    """
    X = optimize.brentq(lambda x: x * np.exp(-x) / (1 - np.exp(-x)) - 0.2, 0.5, 10)
    values = np.sort(np.exp(-np.linspace(0, X, 200001)))
    n, i = values.size, np.arange(1, values.size + 1)
    gini = ((2 * i - n - 1) * values).sum() / (values.mean() * n * (n - 1))
    moment = lambda x: 1 - np.exp(-x) * (1 + x)  # noqa: E731 - integral of x e^-x (second moment)
    x20 = -np.log(1 - 0.2 * (1 - np.exp(-X)))
    m20 = np.log10(moment(x20) / moment(X))
    total = 1 - np.exp(-2.25 * X)
    radius = lambda f: np.sqrt(-2 * np.log(1 - f * total))  # noqa: E731
    return gini, m20, 5 * np.log10(radius(0.8) / radius(0.2))


def test_gaussian_profile_matches_analytic_gini_m20_concentration():
    gini, m20, concentration = gaussian_truth()  # 0.399, -1.605, 2.142
    result = measure_galaxy(gaussian_stamp())
    assert result["flag"] == 0
    assert result["gini"] == pytest.approx(gini, abs=0.02)
    assert result["m20"] == pytest.approx(m20, abs=0.06)
    assert result["concentration"] == pytest.approx(concentration, abs=0.02)
    assert result["bulge"] == pytest.approx(-0.693 * result["m20"] + 4.95 * result["gini"] - 3.96)
    assert abs(result["asymmetry"]) < 0.01 and result["ellipticity"] < 0.01


def test_uniform_disc_has_gini_near_zero():
    disc = (R2 < 12**2).astype(float) + np.random.default_rng(2).normal(0, 1e-3, (64, 64))
    result = measure_galaxy(disc)
    assert result["flag"] == 0
    assert result["gini"] < 0.06  # 0 for a perfect disc; pixelised edges add a little


def test_all_flux_in_one_pixel_is_flagged_not_trusted():
    # Lotz's Gini of one bright pixel is 1, but statmorph rejects a lone hot pixel as an
    # outlier (a cosmic ray to it): the measurement must come back flagged, never crash
    point = np.random.default_rng(3).normal(0, 1e-3, (64, 64))
    point[32, 32] = 100.0
    assert measure_galaxy(point)["flag"] >= FLAG_BAD


def test_pipeline_agrees_with_direct_statmorph_call_per_galaxy(tmp_path):
    statmorph = pytest.importorskip("statmorph")
    from astropy.stats import sigma_clipped_stats
    from photutils.segmentation import detect_sources
    from scipy import ndimage

    stack = galsim_stack(3)
    path = tmp_path / "stack.npy"
    np.save(path, stack)
    table = measure_stack(np.load(path, mmap_mode="r"), workers=2, chunk_size=2)  # memmap, 2 chunks
    for i, image in enumerate(stack[:, 1].astype(np.float64)):
        edge = np.ones(image.shape, bool)
        edge[8:-8, 8:-8] = False
        _, median, rms = sigma_clipped_stats(image[edge], sigma=3.0, maxiters=5)
        image = image - median
        segmap = detect_sources(ndimage.gaussian_filter(image, 3.0 / 2.3548200450309493, mode="nearest"),
                                1.5 * rms, 5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            morphs = statmorph.source_morphology(image, segmap, weightmap=np.full(image.shape, rms))
        direct = next(m for m in morphs if m.label == segmap.data[32, 32])
        assert table["flag"][i] == direct.flag
        for name, attribute in STATMORPH_NAMES.items():
            assert table[name][i] == pytest.approx(direct[attribute], rel=1e-9, abs=1e-12), name


def test_white_noise_power_spectrum_is_flat_at_its_variance():
    # averaged over 16 realisations: a ring of a few hundred modes scatters by ~10 % alone
    rng = np.random.default_rng(4)
    power = np.mean([power_spectrum(rng.normal(0, 2.0, (128, 128)), wavelengths=(2, 3, 4, 8, 16))
                     for _ in range(16)], axis=0)
    np.testing.assert_allclose(power, 4.0, rtol=0.08)


def test_power_spectrum_peaks_at_a_planted_wavelength():
    wave = np.cos(2 * np.pi * XX / 8.0)
    power = power_spectrum(wave, wavelengths=(4, 8, 16))
    assert power[1] > 100 * max(power[0], power[2])


def test_failed_stamps_become_nan_with_a_flag():
    stack = np.stack([np.full((3, 64, 64), np.nan),
                      np.random.default_rng(5).normal(0, 1, (3, 64, 64))]).astype(np.float32)
    seen = []
    table = measure_stack(stack, chunk_size=1, advance=seen.append)
    assert seen == [1, 1]
    assert table["flag"].tolist() == [FLAG_NO_SOURCE, FLAG_NO_SOURCE]
    assert np.isnan(table["gini"]).all() and table["flag"].dtype == np.int16


def test_band_choice_and_shape_are_checked():
    with pytest.raises(InputError, match="band 'i'"):
        measure_stack(np.zeros((1, 3, 64, 64)), config=MorphologyConfig(band="i"))
    with pytest.raises(InputError, match="stack"):
        measure_stack(np.zeros((3, 64, 64)))


def test_wasserstein_per_statistic_is_the_shift_between_populations():
    x = np.random.default_rng(6).normal(0.5, 0.1, 500)
    a = {"gini": x, "m20": x, "flag": np.zeros(500, np.int16)}
    shifted = compare_morphology(a, {"gini": x + 0.1, "m20": x, "flag": np.zeros(500, np.int16)})
    assert shifted["gini"]["wasserstein"] == pytest.approx(0.1, rel=1e-9)
    assert shifted["m20"]["wasserstein"] == 0.0
    # flagged galaxies and NaN values are left out: wild values there change nothing
    flags = np.zeros(501, np.int16)
    flags[:10] = FLAG_BAD
    wild = np.concatenate([np.full(10, 99.0), x[10:], [np.nan]])
    cleaned = compare_morphology({"gini": x[10:], "flag": np.zeros(490, np.int16)}, {"gini": wild, "flag": flags})
    assert cleaned["gini"] == {"wasserstein": 0.0, "n_a": 490, "n_b": 490}


def test_usable_values_feed_the_population_comparison():
    from galgen.metrics.population import wasserstein1

    table = {"gini": np.array([0.1, 0.2, 0.9]), "flag": np.array([0, 1, 2], np.int16)}
    values = usable_values(table)
    assert list(values) == ["gini"] and np.isnan(values["gini"][2]) and values["gini"][:2].tolist() == [0.1, 0.2]
    assert wasserstein1(values["gini"], [0.1, 0.2]) == 0.0  # the SGD code drops the NaN
    assert set(morphology_units()) == set(MorphologyConfig().columns()) - {"flag"}


def test_real_decals_cutout_is_measured(decals_dir):
    from astropy.io import fits

    cube = fits.getdata(decals_dir / "example_b.fits").astype(np.float32)[None]
    cube = cube[..., 148:276, 148:276]  # the central 128 px: statmorph time grows with the stamp
    table = measure_stack(cube)
    assert table["flag"][0] <= 1
    assert 0.3 < table["gini"][0] < 0.8 and -3.5 < table["m20"][0] < -0.5
    assert 1.5 < table["concentration"][0] < 6


def test_metrics_never_import_torch():
    code = ("import sys, galgen.metrics.morphology, galgen.metrics.neighbours, "
            "galgen.metrics.memorization, galgen.metrics.frechet; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
