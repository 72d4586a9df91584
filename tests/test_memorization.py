"""Memorisation: planted copies are flagged, a clean split passes, drift towards the training set is seen."""

from __future__ import annotations

import numpy as np
import pytest

from galgen.errors import InputError
from galgen.metrics.memorization import memorisation_report, summarise_distances


def galaxies(rng, n, size=16):
    """Normalised toy galaxies: elliptical Gaussian blobs of random size/brightness on sky noise."""
    yy, xx = np.mgrid[:size, :size] - size / 2
    width = rng.uniform(1.5, 4.0, (n, 1, 1))
    q = rng.uniform(0.4, 1.0, (n, 1, 1))
    blob = rng.uniform(0.3, 1.5, (n, 1, 1)) * np.exp(-(xx**2 + (yy / q) ** 2) / (2 * width**2))
    image = -0.9 + blob[:, None] * np.array([0.6, 1.0, 1.3])[None, :, None, None]
    return (image + rng.normal(0, 0.05, (n, 3, size, size))).astype(np.float32)


@pytest.fixture(scope="module")
def split():
    rng = np.random.default_rng(11)
    return galaxies(rng, 600), galaxies(rng, 200), galaxies(rng, 200)  # train, held-out real, mocks


def test_clean_split_shows_no_sign_of_memorisation(split):
    train, real, mocks = split
    report = memorisation_report(mocks, train, real, chunk_rows=128)
    assert report.near_copies == 0
    assert report.frac_mock_below_p5 < 0.12 and report.binomial_p_value > 1e-3
    assert report.verdict.startswith("no sign of memorisation")
    assert report.median_mock_to_train == pytest.approx(report.median_real_to_train, rel=0.1)


def test_planted_copies_are_flagged(split):
    train, real, mocks = split
    mocks = mocks.copy()
    planted = [3, 50, 170]
    rng = np.random.default_rng(12)
    mocks[planted] = train[[10, 20, 30]] + rng.normal(0, 0.005, mocks[planted].shape)  # copies, re-noised
    report = memorisation_report(mocks, train, real, chunk_rows=128)
    assert sorted(report.near_copy_indices) == planted
    assert report.verdict.startswith("3 of 200 mocks are near-copies")


def test_drift_towards_training_set_is_reported_without_copies():
    # a quarter of the mocks lie between the 1st and 5th real percentile: no single copy,
    # but far more than the 5 % that an unbiased model puts there
    rng = np.random.default_rng(13)
    d_real = rng.uniform(10, 20, 1000)
    p1, p5 = np.percentile(d_real, [1, 5])
    d_mock = np.concatenate([rng.uniform(p1, p5, 50), rng.uniform(10, 20, 150)])
    report = summarise_distances(d_mock, d_real, n_train=5000)
    assert report.near_copies == 0 and report.frac_mock_below_p5 >= 0.25
    assert report.verdict.startswith("possible memorisation")
    assert report.to_dict()["n_train"] == 5000


def test_too_few_held_out_images_is_refused(split):
    train, real, mocks = split
    with pytest.raises(InputError, match="at least 20"):
        memorisation_report(mocks, train, real[:5])
