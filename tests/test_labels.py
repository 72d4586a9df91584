"""Labels measured with galgen's photometry: known answers on analytic galaxies."""

from __future__ import annotations

import numpy as np
import pytest

from galgen.metrics.labels import label_units, measure_labels

SIDE = 64


def gaussian(total: float, sigma: float, *, q: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """An elliptical Gaussian of the given total flux centred on pixel (32, 32); sigma along the major axis."""
    y, x = np.mgrid[:SIDE, :SIDE] - SIDE // 2
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    profile = np.exp(-0.5 * ((u / sigma) ** 2 + (v / (q * sigma)) ** 2))
    return total * profile / profile.sum()


def test_total_magnitudes_half_light_radius_axis_ratio_and_colours_of_known_galaxies():
    fluxes = (10.0, 20.0, 40.0)  # nanomaggies: mags 20.0, 19.247, 18.495
    round_ = np.stack([gaussian(f, 3.0) for f in fluxes])
    flat = np.stack([gaussian(f, 4.0, q=0.4, angle=0.6) for f in fluxes])
    table = measure_labels(np.stack([round_, flat]), bands="grz", pixel_scale=0.25)
    assert list(table) == list(label_units("grz")) == ["mag_g", "mag_r", "mag_z", "r_e", "q", "g_r", "r_z"]
    expected = [22.5 - 2.5 * np.log10(f) for f in fluxes]
    for i, band in enumerate("grz"):
        assert table[f"mag_{band}"] == pytest.approx([expected[i]] * 2, abs=2e-3)
    # a circular Gaussian's half-light radius is sigma sqrt(2 ln 2) = 1.1774 sigma
    assert table["r_e"][0] == pytest.approx(1.1774 * 3.0 * 0.25, rel=0.01)
    assert table["q"] == pytest.approx([1.0, 0.4], abs=0.01)
    assert table["g_r"] == pytest.approx([2.5 * np.log10(2)] * 2, abs=2e-3)
    assert table["r_z"] == pytest.approx([2.5 * np.log10(2)] * 2, abs=2e-3)


def test_the_sky_level_is_subtracted_and_a_galaxy_without_flux_has_no_magnitude():
    galaxy = np.stack([gaussian(10.0, 2.0) + 0.05 for _ in range(3)])
    empty = np.zeros((3, SIDE, SIDE))
    table = measure_labels(np.stack([galaxy, empty]), bands="grz", pixel_scale=0.262)
    assert table["mag_r"][0] == pytest.approx(20.0, abs=2e-3)  # the 0.05 nmgy pedestal is the border's level
    assert np.isnan(table["mag_r"][1]) and np.isnan(table["r_e"][1]) and np.isnan(table["q"][1])
