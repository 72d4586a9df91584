"""The one running-moments accumulator (inpainting's uncertainty map, FID's feature statistics)."""

import numpy as np
import pytest

from galgen.metrics.moments import RunningMoments


def test_per_element_mean_and_std_match_the_whole_set_in_any_batching():
    values = np.random.default_rng(5).normal(1e4, 2.0, size=(23, 2, 3, 3))  # far from zero on purpose
    moments = RunningMoments()
    for start, stop in [(0, 5), (5, 6), (6, 20), (20, 23)]:
        moments.add(values[start:stop])
    assert moments.count == 23
    np.testing.assert_allclose(moments.mean, values.mean(0), rtol=1e-13)
    np.testing.assert_allclose(moments.std, values.std(0, ddof=1), rtol=1e-9)


def test_one_sample_has_zero_spread_and_no_covariance_without_asking():
    moments = RunningMoments()
    moments.add(np.ones((1, 4)))
    assert (moments.std == 0).all()
    with pytest.raises(ValueError, match="no covariance"):
        moments.statistics()


def test_covariance_mode_gives_the_diagonal_as_std():
    features = np.random.default_rng(2).normal(size=(100, 3)) @ np.array([[2, 0, 0], [1, 1, 0], [0, 0, 3.0]])
    moments = RunningMoments(covariance=True)
    moments.add(features[:40])
    moments.add(features[40:])
    mean, cov = moments.statistics()
    np.testing.assert_allclose(cov, np.cov(features, rowvar=False), rtol=1e-10)
    np.testing.assert_allclose(moments.std, np.sqrt(np.diag(cov)), rtol=1e-12)
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        moments.add(np.ones((2, 3, 3)))

