"""Population distances: Wasserstein-1, Cohen's d, bootstrap, and the SGD in both modes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from galgen.metrics import population as pop

SKY_RMS = (0.007, 0.013, 0.029)  # nanomaggies per pixel, DR9-like g r z


def galaxy_stack(count, *, size=48, seed=0):
    """Exponential discs at the stamp centre, random flux, size and colour, plus sky noise (nmgy)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - size // 2
    scale = rng.uniform(1.2, 3.5, count)[:, None, None]
    shape = np.exp(-np.hypot(x, y)[None] / scale)
    shape /= shape.sum(axis=(1, 2), keepdims=True)
    r_flux = 10 ** rng.uniform(0.5, 1.6, count)
    colour = np.stack([10 ** (-0.4 * rng.normal(0.7, 0.15, count)), np.ones(count), 10 ** (0.4 * rng.normal(0.4, 0.15, count))], 1)
    images = (r_flux[:, None] * colour)[:, :, None, None] * shape[:, None]
    images += rng.normal(size=images.shape) * np.array(SKY_RMS)[None, :, None, None]
    return images.astype(np.float32)


@pytest.mark.parametrize("sizes", [(10, 10), (7, 13), (1000, 333), (1, 5)])
def test_wasserstein_equals_scipy(sizes):
    rng = np.random.default_rng(sum(sizes))
    u, v = rng.normal(size=sizes[0]), rng.normal(0.5, 2.0, size=sizes[1])
    assert pop.wasserstein1(u, v) == pytest.approx(wasserstein_distance(u, v), abs=1e-12)


def test_wasserstein_drops_nan_and_shift_is_the_distance():
    u = np.array([1.0, 2.0, np.nan, 3.0])
    assert pop.wasserstein1(u, u + 0.25) == pytest.approx(0.25)
    assert np.isnan(pop.wasserstein1([np.nan], [1.0]))


def test_cohens_d_by_hand():
    u, v = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    # means 2 and 4; population variances 2/3 and 8/3: d = 2 * sqrt(2 / (10/3)) = 1.5492
    assert pop.cohens_d(u, v) == pytest.approx(2 * np.sqrt(2 / (10 / 3)))
    assert pop.cohens_d(u, u) == 0.0


def test_bootstrap_is_seeded_and_brackets_the_distance():
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=2000), rng.normal(0.2, 1.0, size=1500)
    first = pop.bootstrap_wasserstein1(u, v, draws=300, seed=4)
    again = pop.bootstrap_wasserstein1(u, v, draws=300, seed=4)
    np.testing.assert_array_equal(first, again)
    low, high = np.percentile(first, [2.5, 97.5])
    assert low < pop.wasserstein1(u, v) < high
    # every draw is a true W1 between resamples: check one by hand with the same generator
    g = np.random.default_rng(4)
    su, sv = np.sort(u), np.sort(v)
    u_star = su[np.sort(g.integers(0, u.size, size=(1, u.size), dtype=np.uint16), axis=1)][0]
    v_star = sv[np.sort(g.integers(0, v.size, size=(1, v.size), dtype=np.uint16), axis=1)][0]
    single = pop.bootstrap_wasserstein1(u, v, draws=1, seed=4)
    assert single[0] == pytest.approx(wasserstein_distance(u_star, v_star), abs=1e-12)


def test_split_half_baseline_is_small_for_one_distribution_and_rescaled_to_the_comparison():
    u = np.random.default_rng(1).normal(size=4000)
    raw = pop.split_half_wasserstein1(u, seed=0)
    assert 0 < raw < 0.1
    # two halves of 2000 vs a 4000 x 4000 comparison: sqrt((2 / 4000) / (4 / 4000)) = 1 / sqrt(2)
    assert pop.split_half_wasserstein1(u, seed=0, compared_with=4000) == pytest.approx(raw / np.sqrt(2))


def test_bootstrap_interval_removes_the_bootstrap_bias():
    draws = 0.5 + np.linspace(-0.1, 0.1, 1001)  # mean 0.5 for an estimate of 0.3: bias 0.2
    low, high = pop.bootstrap_interval(draws, 0.3, confidence=0.9)
    assert low == pytest.approx(0.3 - 0.09) and high == pytest.approx(0.3 + 0.09)
    assert pop.bootstrap_interval(draws, 0.0)[0] == 0.0  # floored at zero
    assert pop.bootstrap_interval([], 0.3) is None


@pytest.mark.parametrize("mode", ["default", "reference"])
def test_sgd_of_a_population_against_itself_is_zero(mode):
    stack = galaxy_stack(60)
    result = pop.synthetic_galaxy_distance(stack, stack, bands="grz", pixel_scale=0.262,
                                           config=pop.SGDConfig(mode=mode, bootstrap=50))
    assert result.mode == mode
    assert [p.name for p in result.properties] == ["g", "r", "z", "R_e", "g-r", "r-z"]
    assert result.sgd == 0.0
    assert all(p.cohens_d < 1e-9 and p.small for p in result.properties)


def test_default_mode_sees_a_pure_flux_scaling_as_a_magnitude_shift():
    # mocks = real x 10^(-0.4 dm): every measurement is linear in flux, so magnitudes move by
    # exactly dm while colours and sizes do not move at all
    real = galaxy_stack(80, seed=2)
    shift = 0.3
    mock = real * np.float32(10 ** (-0.4 * shift))
    result = pop.synthetic_galaxy_distance(real, mock, bands="grz", pixel_scale=0.262, config=pop.SGDConfig(bootstrap=200))
    w1 = {p.name: p.w1 for p in result.properties}
    for band in "grz":
        assert w1[band] == pytest.approx(shift, abs=1e-4)
    for name in ("g-r", "r-z", "R_e"):
        assert w1[name] == pytest.approx(0.0, abs=1e-5)
    assert result.sgd == pytest.approx(3 * shift, abs=1e-3)
    g = result.properties[0]
    assert g.ci[0] <= g.w1 <= g.ci[1] and g.baseline > 0
    assert result.sgd_ci[0] < result.sgd < result.sgd_ci[1] and result.baseline_sgd > 0


def test_default_mode_half_light_radius_is_in_arcsec():
    real = galaxy_stack(30, seed=5)
    at_1 = pop.default_properties(real, bands="grz", pixel_scale=1.0)["R_e"]
    at_half = pop.default_properties(real, bands="grz", pixel_scale=0.5)["R_e"]
    np.testing.assert_allclose(at_half, 0.5 * at_1)
    per_image = np.linspace(0.1, 0.3, 30)  # one scale per galaxy
    np.testing.assert_allclose(pop.default_properties(real, bands="grz", pixel_scale=per_image)["R_e"], per_image * at_1)
    assert np.nanmedian(at_1) > 1.5  # discs of 1.2-3.5 px scale length: R_e 2-6 px


def test_progress_counts_every_galaxy_once():
    done = []
    pop.synthetic_galaxy_distance(galaxy_stack(700), galaxy_stack(40, seed=1), bands="grz", pixel_scale=0.262,
                                  config=pop.SGDConfig(bootstrap=0), advance=done.append)
    assert sum(done) == 740 and len(done) == 3  # chunks of 512: 512 + 188 real, 40 mock


def test_reference_mode_shuffles_and_truncates_to_the_smaller_set():
    real, mock = galaxy_stack(50, seed=1), galaxy_stack(30, seed=3)
    result = pop.synthetic_galaxy_distance(real, mock, bands="grz", pixel_scale=None, config=pop.SGDConfig(mode="reference", seed=9))
    assert (result.n_real, result.n_mock) == (50, 30)
    assert len(result.real_values["g"]) == len(result.mock_values["g"]) == 30
    assert result.sgd_ci is None and result.baseline_sgd is None
    again = pop.synthetic_galaxy_distance(real, mock, bands="grz", pixel_scale=None, config=pop.SGDConfig(mode="reference", seed=9))
    assert again.sgd == result.sgd


def test_reference_magnitude_is_the_113_pixel_sum_minus_corner_background():
    stack = np.full((1, 3, 64, 64), 0.01, dtype=np.float32)  # background 0.01 per pixel
    stack[0, :, 32, 32] += 10.0  # a point source at (W // 2, H // 2)
    mags = pop.reference_properties(stack, bands="grz")
    assert mags["g"][0] == pytest.approx(22.5 - 2.5 * np.log10(10.0), abs=1e-5)


def test_result_to_dict_is_json_safe_and_says_the_mode():
    import json

    stack = galaxy_stack(20)
    stack[0] = -1.0  # unmeasurable galaxy: NaN magnitudes are dropped and reported
    result = pop.synthetic_galaxy_distance(stack, galaxy_stack(20, seed=1), bands="grz", pixel_scale=0.262,
                                           config=pop.SGDConfig(bootstrap=20))
    summary = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert summary["mode"] == "default" and summary["properties"]["g"]["n_real"] == 19
    assert any("not measurable" in note for note in summary["notes"])
    assert len(result.table_rows()) == 7


def test_reference_mode_sees_a_pure_flux_scaling_as_a_magnitude_shift():
    # the paper's 113-pixel aperture minus the corner background is linear in flux too
    real = galaxy_stack(60, seed=4)
    mock = real * np.float32(10 ** (-0.4 * 0.3))
    result = pop.synthetic_galaxy_distance(real, mock, bands="grz", config=pop.SGDConfig(mode="reference", seed=1))
    w1 = {p.name: p.w1 for p in result.properties}
    for band in "grz":
        assert w1[band] == pytest.approx(0.3, abs=1e-4)
    assert w1["g-r"] == pytest.approx(0.0, abs=1e-5) and w1["r-z"] == pytest.approx(0.0, abs=1e-5)


def test_reference_mode_keeps_a_seeded_random_subset_of_the_larger_set():
    real, mock = galaxy_stack(50, seed=1), galaxy_stack(30, seed=3)
    full = pop.reference_properties(real, bands="grz")["g"]

    def kept(seed):
        config = pop.SGDConfig(mode="reference", seed=seed)
        return pop.synthetic_galaxy_distance(real, mock, bands="grz", config=config).real_values["g"]

    one, other = kept(9), kept(10)
    assert len(one) == 30 and set(one.tolist()) <= set(full.tolist())  # a subset of the real galaxies
    assert set(one.tolist()) != set(other.tolist())  # which subset follows the seed
    assert set(one.tolist()) != set(np.sort(full)[:30].tolist()) and set(one.tolist()) != set(full[:30].tolist())


def test_cohens_d_small_only_below_the_threshold_with_a_real_effect():
    rng = np.random.default_rng(0)
    base = rng.normal(0.0, 1.0, 4000)
    units = {"x": "mag"}
    for shift, small in ((0.1, True), (0.5, False)):
        result = pop.compare_properties({"x": base}, {"x": rng.normal(shift, 1.0, 4000)}, units=units,
                                        config=pop.SGDConfig(bootstrap=0))
        row = result.properties[0]
        assert row.cohens_d == pytest.approx(shift, abs=0.05) and row.small is small


def test_mock_pixel_scale_sets_the_mocks_sizes_and_unknown_scales_are_noted():
    real = galaxy_stack(20, seed=6)
    same = pop.synthetic_galaxy_distance(real, real, bands="grz", pixel_scale=0.262, mock_pixel_scale=0.262,
                                         config=pop.SGDConfig(bootstrap=0))
    half = pop.synthetic_galaxy_distance(real, real, bands="grz", pixel_scale=0.262, mock_pixel_scale=0.131,
                                         config=pop.SGDConfig(bootstrap=0))
    np.testing.assert_allclose(half.mock_values["R_e"], 0.5 * same.mock_values["R_e"])
    np.testing.assert_allclose(half.real_values["R_e"], same.real_values["R_e"])
    assert {p.name: p.w1 for p in same.properties}["R_e"] == 0.0
    unknown = pop.synthetic_galaxy_distance(real, real, bands="grz", pixel_scale=None, mock_pixel_scale=[np.nan] * 20,
                                            config=pop.SGDConfig(bootstrap=0))
    assert "40 images without a pixel scale: assumed 0.262 arcsec/pixel" in unknown.notes
