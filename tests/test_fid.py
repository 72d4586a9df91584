"""FID: the Frechet distance's known answers, the RGB rendering, the skip message, and the
feature path through a tiny TorchScript stand-in for Inception (never real weights)."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from galgen.errors import InputError
from galgen.fid import SKIPPED, fid, render_rgb
from galgen.metrics.frechet import feature_statistics, frechet_distance
from galgen.metrics.moments import RunningMoments


def test_frechet_distance_of_one_dimensional_gaussians():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0, rel=1e-12)


def test_frechet_distance_of_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 4.0, 1.0])
    want = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()  # 5 + 1 + 0 + 0.25
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(want, rel=1e-12)


def test_frechet_distance_is_rotation_invariant_and_zero_on_itself():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    rot, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    mu = rng.normal(size=5)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-9)
    d = frechet_distance(mu, cov, mu + 1, 2 * cov)
    assert frechet_distance(rot @ mu, rot @ cov @ rot.T, rot @ (mu + 1), rot @ (2 * cov) @ rot.T) == pytest.approx(d)
    # same eigenbasis: sqrt(cov . 2cov) = sqrt(2) cov, so d = 5 + (3 - 2 sqrt 2) tr(cov)
    assert d == pytest.approx(5 + (3 - 2 * np.sqrt(2)) * np.trace(cov), rel=1e-9)


def test_running_moments_match_numpy_in_any_batching():
    features = np.random.default_rng(1).normal(1000.0, 2.0, size=(257, 6))  # far from zero on purpose
    moments = RunningMoments(covariance=True)
    for start in range(0, 257, 50):
        moments.add(features[start:start + 50])
    mean, cov = moments.statistics()
    np.testing.assert_allclose(mean, features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(features, rowvar=False), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(feature_statistics(features)[1], cov, rtol=1e-12)


def test_rgb_rendering_puts_z_in_red_and_g_in_blue():
    flux = np.zeros((2, 3, 8, 8), np.float32)
    flux[1, 2] = 10.0  # bright in z only
    rgb = render_rgb(flux)
    assert rgb.shape == (2, 8, 8, 3) and rgb.dtype == np.uint8
    assert rgb[0].max() == 0
    assert rgb[1, ..., 0].min() == 255 and rgb[1, ..., 1:].max() == 0
    with pytest.raises(InputError, match="three-band"):
        render_rgb(np.zeros((1, 2, 8, 8)))


def test_fid_is_skipped_without_weights():
    result = fid(np.zeros((4, 3, 8, 8)), np.zeros((4, 3, 8, 8)), weights=None)
    assert result.value is None and result.message == SKIPPED and SKIPPED.startswith("FID skipped: no Inception weights")
    assert result.to_dict()["fid"] is None


@pytest.fixture(scope="module")
def standin_weights(tmp_path_factory):
    """A scripted stand-in for Inception: per-channel means and spreads of the 299 px input.

    Like the StyleGAN/clean-fid TorchScript file it takes ``return_features`` and returns
    logits-like garbage without it, so the test also proves the flag is passed.
    """
    import torch

    class StandIn(torch.nn.Module):
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            assert x.shape[-2:] == (299, 299)
            if not return_features:
                return torch.zeros(x.shape[0], 1000)
            return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1) / 255.0

    path = tmp_path_factory.mktemp("fid") / "standin.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is what FID files ship as
        torch.jit.script(StandIn()).save(str(path))
    return path


def population(rng, n, brightness):
    yy, xx = np.mgrid[:32, :32] - 16
    profile = np.exp(-(xx**2 + yy**2) / (2 * rng.uniform(2, 5, (n, 1, 1)) ** 2))
    return (brightness * profile[:, None] * np.array([0.5, 1.0, 1.5])[:, None, None]
            + rng.normal(0, 0.01, (n, 3, 32, 32))).astype(np.float32)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_fid_feature_path_with_a_scripted_standin(standin_weights):
    rng = np.random.default_rng(2)
    real, same, brighter = population(rng, 40, 1.0), population(rng, 40, 1.0), population(rng, 40, 3.0)
    seen = []
    close = fid(real, same, weights=standin_weights, batch_size=16, advance=seen.append)
    far = fid(real, brighter, weights=standin_weights, batch_size=16)
    assert sum(seen) == 80 and close.n_real == close.n_mock == 40
    assert 0 <= close.value < 0.1 * far.value
    assert "stretch 0.5, Q 8" in close.message
    # the value is the Frechet distance of the stand-in's features, computed here by hand
    import torch
    import torch.nn.functional as F

    net = torch.jit.load(str(standin_weights))

    def features(flux):
        x = torch.from_numpy(render_rgb(flux)).permute(0, 3, 1, 2).float()
        return net(F.interpolate(x, size=(299, 299), mode="bilinear"), return_features=True).double().numpy()

    want = frechet_distance(*feature_statistics(features(real)), *feature_statistics(features(brighter)))
    assert far.value == pytest.approx(want, rel=1e-6)


def test_weights_that_are_not_torchscript_are_refused(tmp_path):
    bad = tmp_path / "inception.pkl"
    bad.write_bytes(pickle.dumps({"not": "a network"}))
    with pytest.raises(InputError, match="not a TorchScript network"):
        fid(np.zeros((2, 3, 8, 8)), np.zeros((2, 3, 8, 8)), weights=bad)
    with pytest.raises(InputError, match="not found"):
        fid(np.zeros((2, 3, 8, 8)), np.zeros((2, 3, 8, 8)), weights=tmp_path / "missing.pt")


def test_the_fid_extra_is_found_checked_and_gives_its_known_features(monkeypatch):
    import galgen.fid as fid_module
    from galgen.fid import inception_features, installed_inception, load_inception

    path = installed_inception()  # the test extra installs galgen's 'fid' extra
    assert path is not None and path.name == "default_1.pt"
    rgb = np.full((2, 64, 64, 3), 128, np.uint8)  # mid-grey, and a white square on black
    rgb[1] = 0
    rgb[1, 16:48, 16:48] = 255
    features = inception_features(rgb, load_inception(path))
    assert features.shape == (2, 2048)
    np.testing.assert_allclose(features[0, :5], [5.84520149, 0.11371811, 0.75639725, 0.60762453, 1.73144042],
                               rtol=1e-4)
    np.testing.assert_allclose(features.sum(axis=1), [729.60684284, 1518.85741129], rtol=1e-4)
    monkeypatch.setattr(fid_module, "INCEPTION_SHA256", "0" * 64)
    with pytest.raises(InputError, match="not the Inception file"):
        installed_inception()
