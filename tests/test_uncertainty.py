"""The STD of a K-draw fill: known answers for the error of the mean about the noise-free flux."""

import numpy as np
import pytest

from galgen.uncertainty import fill_error, noise_rms


def test_a_constant_spread_gives_the_formula_inside_the_mask_and_zero_outside():
    mask = np.zeros((2, 20, 30), dtype=bool)
    mask[:, 5:9, :] = True
    variance = np.where(mask, 4.0, 99.0)  # what lies outside the mask never leaks in
    error = fill_error(variance, mask, np.array([1.0, 3.0])[:, None, None], draws=4)
    np.testing.assert_allclose(error[0][mask[0]], np.sqrt(4 * 1.25 - 1), rtol=1e-6)
    np.testing.assert_allclose(error[1][mask[1]], np.sqrt(9 / 4), rtol=1e-6)  # noise above the spread: the floor n^2 / K
    assert (error[~mask] == 0).all()


def test_the_pooling_follows_the_mask_not_the_image():
    mask = np.zeros((1, 200, 200), dtype=bool)
    mask[0, 100, 20:60] = True  # a thin trail far from the other pixels
    variance = np.ones(mask.shape)
    variance[0, 100, 40:] = 9.0  # the spread jumps halfway along the trail
    error = fill_error(variance, mask, 0.0, draws=2)
    along = error[0, 100, 20:60] / np.sqrt(1.5)
    assert along[0] == pytest.approx(1.0, rel=1e-4) and along[-1] == pytest.approx(3.0, rel=1e-4)
    assert np.all(np.diff(along) >= -1e-6)  # a smooth step, pooled over the trail's own pixels
    assert (error[0, :99] == 0).all() and (error[0, 101:] == 0).all()


def test_the_band_covers_a_calibrated_posterior_as_a_gaussian_would():
    """Truth and K draws from the same posterior (spread s), each draw with sky noise n: the truth lies
    within 1 and 2 errors of the draws' mean 68 and 95 % of the time, for noise-dominated and
    structure-dominated pixels alike, where the draws' own spread covers 87 and 60 %."""
    rng = np.random.default_rng(1)
    shape, draws, noise = (1, 120, 120), 4, 1.0
    mask = np.ones(shape, dtype=bool)
    for spread, raw_1std in ((0.3, 0.80), (3.0, 0.58)):
        truth = rng.normal(0.0, spread, shape)
        samples = rng.normal(0.0, spread, (draws, *shape)) + rng.normal(0.0, noise, (draws, *shape))
        z = np.abs(samples.mean(0) - truth) / fill_error(samples.var(0, ddof=1), mask, noise, draws=draws)
        assert np.mean(z <= 1) == pytest.approx(0.683, abs=0.02) and np.mean(z <= 2) == pytest.approx(0.954, abs=0.015)
        raw = np.abs(samples.mean(0) - truth) / samples.std(0, ddof=1)
        assert np.mean(raw <= 1) == pytest.approx(raw_1std, abs=0.03)


def test_one_draw_has_no_error_from_spread():
    with pytest.raises(ValueError, match="two draws"):
        fill_error(np.ones((1, 4, 4)), np.ones((1, 4, 4), dtype=bool), 0.0, draws=1)


def test_noise_rms_reads_the_known_border_pixels():
    rng = np.random.default_rng(2)
    image = rng.normal(0.0, 1.0, (2, 128, 128)) * np.array([0.5, 2.0])[:, None, None]
    image[:, 40:90, 40:90] += 50.0  # a galaxy in the middle is not noise
    mask = np.zeros(image.shape, dtype=bool)
    mask[:, :, :3] = True
    image[mask] = 1e6  # masked pixels (a trail along the edge) are not read
    np.testing.assert_allclose(noise_rms(image, mask), [0.5, 2.0], rtol=0.05)
