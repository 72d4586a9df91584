"""Aperture photometry: exact geometry against photutils, known-answer profiles, backgrounds, magnitudes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from galgen.metrics import photometry as phot


def supersampled(profile, shape=(64, 64), *, factor=8, center=None):
    """Pixel-integrated image of ``profile(radius)`` about ``center`` (default (W // 2, H // 2))."""
    height, width = shape
    xc, yc = (width // 2, height // 2) if center is None else center
    offsets = (np.arange(factor) + 0.5) / factor - 0.5
    y = (np.arange(height)[:, None] + offsets[None, :]).ravel() - yc
    x = (np.arange(width)[:, None] + offsets[None, :]).ravel() - xc
    fine = profile(np.hypot(x[None, :], y[:, None]))
    return fine.reshape(height, factor, width, factor).mean(axis=(1, 3))


@pytest.mark.parametrize("radius", [0.3, 1.0, 2.5, 6.0, 17.2])
def test_flat_image_sum_is_the_aperture_area(radius):
    flat = np.ones((3, 64, 64), dtype=np.float32)
    sums = phot.aperture_sums(flat, [radius])
    np.testing.assert_allclose(sums[..., 0], np.pi * radius**2, rtol=1e-12)


def test_circle_cut_by_the_edge_keeps_only_the_inside():
    # centred on a corner pixel's outer corner: exactly a quarter of the circle lies on the grid
    area = phot.circle_pixel_overlap((40, 40), 10.0, center=(-0.5, -0.5)).sum()
    assert area == pytest.approx(np.pi * 100 / 4, rel=1e-12)


def test_agrees_with_photutils_exact_on_random_images():
    from photutils.aperture import CircularAperture, aperture_photometry

    rng = np.random.default_rng(7)
    image = rng.normal(size=(45, 52))
    for radius in (0.4, 1.0, 3.3, 6.0, 12.7, 22.0):
        for center in ((26.0, 22.0), (25.3, 21.8), (4.5, 3.25), (0.0, 44.0)):
            expected = aperture_photometry(image, CircularAperture(center, radius), method="exact")["aperture_sum"][0]
            got = phot.aperture_sums(image, [radius], center=center)[0]
            assert abs(got - expected) < 1e-6, (radius, center)


def test_nan_pixels_contribute_nothing():
    image = np.ones((1, 32, 32))
    image[0, 16, 16] = np.nan
    assert phot.aperture_sums(image, [5.0])[0, 0] == pytest.approx(np.pi * 25 - 1, rel=1e-12)


def test_gaussian_half_light_radius_is_1_1774_sigma():
    sigma = 4.0
    image = supersampled(lambda r: np.exp(-0.5 * (r / sigma) ** 2))
    radii = phot.growth_radii(image.shape)
    cog = phot.curve_of_growth(image[None], radii, background=np.zeros(1))
    assert phot.half_light_radius(cog, radii)[0] == pytest.approx(1.1774 * sigma, rel=0.01)


def test_exponential_half_light_radius_is_1_678_scale_lengths():
    scale = 3.0
    image = supersampled(lambda r: np.exp(-r / scale))
    radii = phot.growth_radii(image.shape)
    cog = phot.curve_of_growth(image[None], radii, background=np.zeros(1))
    assert phot.half_light_radius(cog, radii)[0] == pytest.approx(1.678 * scale, rel=0.01)


def test_half_light_radius_survives_a_background_and_noise():
    rng = np.random.default_rng(3)
    sigma = 3.0
    clean = 50 * supersampled(lambda r: np.exp(-0.5 * (r / sigma) ** 2))
    stack = clean + 0.2 + rng.normal(0, 0.01, size=(20, 64, 64))
    level, _ = phot.border_background(stack)
    radii = phot.growth_radii(stack.shape)
    sizes = phot.half_light_radius(phot.curve_of_growth(stack, radii, background=level), radii)
    assert np.median(sizes) == pytest.approx(1.1774 * sigma, rel=0.02)


def test_half_light_radius_is_nan_without_flux():
    radii = phot.growth_radii((32, 32))
    cog = phot.curve_of_growth(-np.ones((1, 32, 32)), radii)
    assert np.isnan(phot.half_light_radius(cog, radii)[0])


def test_magnitudes_use_the_nanomaggy_zero_point_and_reject_non_positive_flux():
    mags = phot.magnitudes([1.0, 100.0, 0.0, -3.0, np.nan])
    np.testing.assert_allclose(mags[:2], [22.5, 17.5])
    assert np.isnan(mags[2:]).all()
    assert phot.magnitudes(10.0, zero_point=30.0) == pytest.approx(27.5)


def test_colours_are_adjacent_band_differences():
    mags = np.array([[20.0, 19.5, 19.0]])
    out = phot.colours(mags, "grz")
    assert out["g-r"][0] == pytest.approx(0.5) and out["r-z"][0] == pytest.approx(0.5)


def test_corner_background_is_the_median_of_the_four_corner_patches():
    image = np.zeros((2, 64, 64))
    image[0, :20, :20] = 1.0
    image[0, :20, -20:] = 2.0
    image[0, -20:, :20] = 3.0
    image[0, -20:, -20:] = 4.0
    image[0, 32, 32] = 1e6  # the galaxy does not matter
    np.testing.assert_allclose(phot.corner_background(image), [2.5, 0.0])


def test_border_background_matches_astropy_sigma_clipped_stats():
    from astropy.stats import sigma_clipped_stats

    rng = np.random.default_rng(11)
    stack = rng.normal(0.1, 0.5, size=(4, 3, 48, 48))
    stack[0, 0, 0, :12] = 40.0  # a star on the border
    stack[1, 2, 5, 5] = np.nan
    level, rms = phot.border_background(stack)
    frames = phot.border_pixels(stack)
    for index in np.ndindex(stack.shape[:2]):
        _, median, std = sigma_clipped_stats(frames[index], sigma=3.0, maxiters=5)
        assert level[index] == pytest.approx(median, abs=1e-12)
        assert rms[index] == pytest.approx(std, rel=1e-9)


def test_reference_aperture_has_113_pixels():
    assert phot.pixel_disk((64, 64), 6).sum() == 113
    assert phot.pixel_disk((424, 424), 6).sum() == 113


def test_reference_size_proxy_on_a_hand_made_image():
    # a flat disk of radius 4.5 px (69 pixels of value 1) on zero sky, reference median 1:
    # the median within r - 1 drops to 0 once more than 138 pixels lie within r - 1, which
    # first happens at r - 1 = 7 (149 pixels; 113 at 6)
    inside = phot.pixel_disk((41, 41), 4.5)
    assert inside.sum() == 69
    assert phot.pixel_disk((41, 41), 6).sum() == 113 and phot.pixel_disk((41, 41), 7).sum() == 149
    image = np.where(inside, 1.0, 0.0)
    assert phot.reference_size_proxy(image[None])[0] == pytest.approx(7 * 0.262)
    assert phot.reference_size_proxy(image[None], pixel_scale=1.0)[0] == 7.0
    assert np.isnan(phot.reference_size_proxy(np.ones((1, 41, 41)))[0])


def test_whole_stacks_at_once_equal_one_by_one():
    rng = np.random.default_rng(5)
    stack = rng.normal(size=(7, 3, 32, 32))
    radii = [2.0, 6.0]
    together = phot.aperture_sums(stack, radii)
    for i in range(7):
        np.testing.assert_allclose(together[i], phot.aperture_sums(stack[i], radii), rtol=1e-12)


def test_metrics_never_import_torch():
    code = (
        "import sys; import galgen.metrics.photometry, galgen.metrics.population, galgen.calibrate, galgen.populations;"
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("q, angle", [(1.0, 0.0), (0.5, 0.0), (0.3, 30.0), (0.7, 100.0)])
def test_axis_ratio_of_an_elliptical_gaussian_is_b_over_a(q, angle):
    height = width = 64
    y, x = np.mgrid[:height, :width] - 32.0
    theta = np.radians(angle)
    u, v = x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta)
    image = np.exp(-0.5 * ((u / 4.0) ** 2 + (v / (4.0 * q)) ** 2))
    stack = np.stack([image, image + 0.25])  # a flat background, subtracted
    found = phot.axis_ratio(stack, radius=30.0, background=np.array([0.0, 0.25]))
    np.testing.assert_allclose(found, q, rtol=2e-3)
    assert np.isnan(phot.axis_ratio(np.zeros((1, 8, 8)), radius=3.0)[0])  # no flux, no shape
