import json

import numpy as np
import pytest

from galgen.errors import InputError
from galgen.metrics.photometry import border_pixels
from galgen.normalize import Normalizer, kmeans_boundary, robust_sigma


def test_kmeans_boundary_lies_between_two_separated_clusters():
    rng = np.random.default_rng(0)
    low = rng.normal(1.0, 0.1, 900)
    high = rng.normal(10.0, 0.5, 100)
    boundary = kmeans_boundary(rng.permutation(np.concatenate([low, high])))
    assert boundary == pytest.approx((low.mean() + high.mean()) / 2, rel=1e-12)
    assert low.max() < boundary < high.min()


def test_kmeans_boundary_known_small_answer_and_brute_force():
    # clusters {0, 1, 2} and {10, 11}: centroids 1 and 10.5
    assert kmeans_boundary([11, 0, 2, 10, 1]) == pytest.approx(5.75)
    rng = np.random.default_rng(1)
    x = np.sort(rng.lognormal(0, 1, 60))
    within = [((x[:k] - x[:k].mean()) ** 2).sum() + ((x[k:] - x[k:].mean()) ** 2).sum() for k in range(1, x.size)]
    k = 1 + int(np.argmin(within))
    assert kmeans_boundary(x) == pytest.approx((x[:k].mean() + x[k:].mean()) / 2, rel=1e-12)


def test_kmeans_boundary_degenerate_inputs():
    assert kmeans_boundary([3.0]) == 3.0
    assert kmeans_boundary([2.0, 2.0, np.nan]) == 2.0
    with pytest.raises(InputError):
        kmeans_boundary([np.nan])


def test_robust_sigma_of_gaussian_noise_within_3_percent():
    rng = np.random.default_rng(2)
    noise = rng.normal(0.3, 0.013, 20000)
    assert robust_sigma(noise) == pytest.approx(0.013, rel=0.03)
    # a bright source in 10% of the pixels barely moves it
    noise[:2000] += 5.0
    assert robust_sigma(noise) == pytest.approx(0.013, rel=0.2)


def test_border_pixels_count():
    image = np.arange(100.0).reshape(10, 10)
    border = border_pixels(image, width=2)
    assert border.size == 100 - 36
    assert 44.0 not in border and 0.0 in border


def _normalizer(lower=(0.0, -0.05), upper=(5.0, 6.0)):
    return Normalizer(bands="gr", lower=lower, upper=upper)


def test_forward_inverse_round_trip_inside_range():
    norm = _normalizer()
    rng = np.random.default_rng(3)
    flux = np.stack([rng.uniform(0.0, 5.0, (8, 8)), rng.uniform(-0.05, 6.0, (8, 8))])[None]
    x = norm.forward(flux)
    assert x.dtype == np.float64 and x.min() >= -1 and x.max() <= 1
    np.testing.assert_allclose(norm.inverse(x), flux, rtol=0, atol=1e-12)
    x32 = norm.forward(flux.astype(np.float32))
    assert x32.dtype == np.float32
    np.testing.assert_allclose(norm.inverse(x32), flux, rtol=0, atol=2e-6)


def test_forward_clips_outside_and_maps_ends():
    norm = _normalizer()
    flux = np.array([[[-1.0, 0.0, 5.0, 99.0]], [[-1.0, -0.05, 6.0, 99.0]]], dtype=np.float32)
    x = norm.forward(flux)
    np.testing.assert_array_equal(x, [[[-1, -1, 1, 1]], [[-1, -1, 1, 1]]])
    assert np.isnan(norm.forward(np.full((2, 1, 1), np.nan))).all()


def test_lower_zero_reproduces_paper_equation_13_exactly():
    a = 5.0
    norm = Normalizer(bands="g", lower=(0.0,), upper=(a,))
    flux = np.random.default_rng(4).normal(1.0, 3.0, (4, 1, 16, 16)).astype(np.float32)
    paper = 2 * np.maximum(np.float32(0), np.minimum(flux, np.float32(a))) / np.float32(a) - 1
    np.testing.assert_array_equal(norm.forward(flux), paper)


def test_dict_round_trip_is_json_safe():
    norm = _normalizer()
    again = Normalizer.from_dict(json.loads(json.dumps(norm.to_dict())))
    assert again == norm


@pytest.mark.parametrize(
    "kwargs",
    [dict(bands="gr", lower=(0.0,), upper=(1.0, 2.0)), dict(bands="g", lower=(1.0,), upper=(1.0,))],
)
def test_invalid_normalizers_are_input_errors(kwargs):
    with pytest.raises(InputError):
        Normalizer(**kwargs)
    with pytest.raises(InputError, match="malformed"):
        Normalizer.from_dict({"bands": "g"})


def test_wrong_band_count_is_an_input_error():
    with pytest.raises(InputError, match="bands"):
        _normalizer().forward(np.zeros((3, 4, 4)))


def test_inverse_extrapolates_linearly_beyond_the_range():
    norm = Normalizer(bands="g", lower=(-0.05,), upper=(1.95,))  # 1 unit of x is 1.0 flux
    x = np.array([-3.0, -1.0, 0.0, 1.0, 2.5]).reshape(1, 1, 5)
    np.testing.assert_allclose(norm.inverse(x).ravel(), [-2.05, -0.05, 0.95, 1.95, 3.45])


def test_robust_sigma_of_nothing_is_nan():
    assert np.isnan(robust_sigma(np.array([])))
    assert np.isnan(robust_sigma(np.array([np.nan, np.inf])))
    assert robust_sigma(np.array([1.0, 1.0, 1.0])) == 0.0


def test_the_asinh_stretch_keeps_every_flux_and_the_sky_linear():
    norm = Normalizer(bands="gr", lower=(-0.05, -0.1), upper=(40.0, 80.0), stretch="asinh", softening=(0.02, 0.04))
    flux = np.array([[[-0.05, 0.0, 0.01, 40.0]], [[-0.1, 0.0, 0.02, 80.0]]], dtype=np.float64)
    x = norm.forward(flux)
    np.testing.assert_allclose(x[:, 0, 1], 0.0, atol=0)  # the sky (flux 0) sits at 0
    np.testing.assert_allclose(x[:, 0, 3], 1.0, rtol=1e-12)  # the brightest pixel at 1
    np.testing.assert_allclose(x[0, 0, 2], np.arcsinh(0.5) / np.arcsinh(2000.0), rtol=1e-12)
    np.testing.assert_allclose(norm.inverse(x), flux, rtol=1e-12, atol=1e-15)  # nothing lost
    assert (norm.zero == 0).all()
    back = Normalizer.from_dict(norm.to_dict())
    assert back == norm and norm.to_dict()["stretch"] == "asinh"
    assert "stretch" not in Normalizer(bands="g", lower=(0,), upper=(1,)).to_dict()  # linear files unchanged
    for bad in (dict(softening=None), dict(softening=(0.0, 1.0)), dict(lower=(-50.0, -0.1))):
        with pytest.raises(InputError):
            Normalizer(**{**dict(bands="gr", lower=(-0.05, -0.1), upper=(40.0, 80.0), stretch="asinh",
                             softening=(0.02, 0.04)), **bad})
    with pytest.raises(InputError, match="unknown stretch"):
        Normalizer(bands="g", lower=(0,), upper=(1,), stretch="log")
