"""The eps- and v-prediction network as a denoiser D(x, sigma), and the training loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from galgen.engine.denoiser import Denoiser
from galgen.engine.schedules import alphas_cumprod, sigmas_from_alphas_cumprod


class TrueNoise(nn.Module):
    """A perfect network: it knows x0, so from x_t and t it returns the exact eps."""

    def __init__(self, x0: torch.Tensor):
        super().__init__()
        self.x0 = x0
        self.denoiser: Denoiser | None = None

    def forward(self, x_vp, t):
        abar = 1 / (1 + self.denoiser.t_to_sigma(t) ** 2)[:, None, None, None]
        return (x_vp - abar.sqrt() * self.x0) / (1 - abar).sqrt()


class TrueVelocity(TrueNoise):
    """A perfect v-prediction network: v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022)."""

    def forward(self, x_vp, t):
        abar = 1 / (1 + self.denoiser.t_to_sigma(t) ** 2)[:, None, None, None]
        return abar.sqrt() * super().forward(x_vp, t) - (1 - abar).sqrt() * self.x0


def perfect_denoiser(x0, schedule="linear", prediction="eps"):
    net = TrueNoise(x0) if prediction == "eps" else TrueVelocity(x0)
    denoiser = Denoiser(net, schedule=schedule, prediction=prediction)
    net.denoiser = denoiser
    return denoiser


@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_a_network_predicting_the_true_noise_recovers_x0(schedule, prediction):
    torch.manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8) * 2 - 1
    denoiser = perfect_denoiser(x0, schedule, prediction)
    # table entries and values between them, from nearly clean to the noisiest
    sigma = torch.stack([denoiser.sigmas[0], denoiser.sigmas[10] * 1.01, torch.tensor(1.0), denoiser.sigmas[-1]])
    x = x0 + sigma[:, None, None, None] * torch.randn_like(x0)
    assert torch.allclose(denoiser(x, sigma), x0, atol=2e-3 * float(sigma.max()) * 1e-2 + 1e-4)


def test_scalar_sigma_applies_to_every_image():
    x0 = torch.zeros(3, 1, 4, 4)
    denoiser = perfect_denoiser(x0)
    x = torch.randn_like(x0)
    assert torch.allclose(denoiser(x, torch.tensor(2.0)), x0, atol=1e-5)


def test_tables_match_the_schedule():
    denoiser = Denoiser(nn.Identity(), schedule="cosine", timesteps=1000)
    expected = sigmas_from_alphas_cumprod(alphas_cumprod("cosine", 1000)).float()
    assert torch.equal(denoiser.sigmas, expected)
    assert denoiser.sigma_min == expected[0] and denoiser.sigma_max == expected[-1]
    assert denoiser.timesteps == 1000
    # tables are not weights
    assert denoiser.state_dict() == {}


def test_sigma_and_t_convert_both_ways():
    denoiser = Denoiser(nn.Identity())
    steps = torch.arange(1000, dtype=torch.float32)
    assert torch.allclose(denoiser.sigma_to_t(denoiser.sigmas), steps, atol=1e-3)
    t = torch.linspace(0, 999, 777)
    assert torch.allclose(denoiser.sigma_to_t(denoiser.t_to_sigma(t)), t, atol=1e-3)
    # half-way in t is the geometric mean in sigma
    mid = denoiser.t_to_sigma(torch.tensor(10.5))
    assert torch.isclose(mid, (denoiser.sigmas[10] * denoiser.sigmas[11]).sqrt(), rtol=1e-5)
    # outside the table: clamped to its ends
    assert denoiser.sigma_to_t(torch.tensor(0.0)) == 0
    assert denoiser.sigma_to_t(torch.tensor(1e9)) == 999


def test_loss_is_zero_for_the_perfect_network_and_known_for_a_blind_one():
    torch.manual_seed(1)
    x0 = torch.rand(6, 3, 8, 8) * 2 - 1
    noise, t = torch.randn_like(x0), torch.randint(0, 1000, (6,))
    assert perfect_denoiser(x0).loss(x0, t=t, noise=noise) < 1e-8
    blind = Denoiser(lambda x, t: torch.zeros_like(x))
    assert torch.isclose(blind.loss(x0, t=t, noise=noise, kind="l2"), noise.square().mean())
    assert torch.isclose(blind.loss(x0, t=t, noise=noise, kind="l1"), noise.abs().mean())
    with pytest.raises(ValueError, match="unknown loss"):
        blind.loss(x0, t=t, noise=noise, kind="huber")


def test_v_prediction_errors_do_not_grow_with_sigma_as_eps_errors_do():
    # the same output error 0.01 costs eps-prediction sigma x 0.01 in D, v-prediction at most 0.01
    x0 = torch.zeros(1, 1, 4, 4)
    for prediction in ("eps", "v"):
        exact = perfect_denoiser(x0, prediction=prediction)
        off = Denoiser(lambda x, t, net=exact.net: net(x, t) + 0.01, prediction=prediction)
        for sigma in (0.1, 10.0, 100.0):
            x = x0 + sigma * torch.randn_like(x0)
            error = (off(x, torch.tensor(sigma)) - exact(x, torch.tensor(sigma))).abs().max().item()
            bound = 0.01 * sigma if prediction == "eps" else 0.01 * sigma / (1 + sigma**2) ** 0.5
            assert error == pytest.approx(bound, rel=1e-3)


def test_v_loss_targets_velocity_and_unknown_predictions_are_refused():
    torch.manual_seed(2)
    x0 = torch.rand(6, 3, 8, 8) * 2 - 1
    noise, t = torch.randn_like(x0), torch.randint(0, 1000, (6,))
    assert perfect_denoiser(x0, prediction="v").loss(x0, t=t, noise=noise) < 1e-8
    blind = Denoiser(lambda x, t: torch.zeros_like(x), prediction="v")
    abar = blind.alphas_cumprod[t][:, None, None, None]
    velocity = abar.sqrt() * noise - (1 - abar).sqrt() * x0
    assert torch.isclose(blind.loss(x0, t=t, noise=noise), velocity.square().mean())
    with pytest.raises(ValueError, match="unknown prediction"):
        Denoiser(nn.Identity(), prediction="x0")


class TrueF(TrueNoise):
    """A perfect EDM network: from c_in x and t it recovers x and sigma, and returns (x0 - c_skip x) / c_out."""

    def forward(self, x_in, t):
        sigma = self.denoiser.t_to_sigma(t)
        c_skip, c_out, c_in = self.denoiser._edm_scalings(sigma)
        return (self.x0 - c_skip * (x_in / c_in)) / c_out


def test_edm_with_a_perfect_network_recovers_x0_and_a_blind_one_is_the_wiener_filter():
    torch.manual_seed(3)
    x0 = torch.rand(4, 3, 8, 8) * 0.4 - 0.2
    net = TrueF(x0)
    edm = Denoiser(net, prediction="edm", sigma_data=0.3)
    net.denoiser = edm
    sigma = torch.stack([edm.sigmas[5], torch.tensor(0.3), torch.tensor(2.0), edm.sigmas[-1]])
    x = x0 + sigma[:, None, None, None] * torch.randn_like(x0)
    assert torch.allclose(edm(x, sigma), x0, atol=1e-4)
    # F = 0: D = sd^2 / (sigma^2 + sd^2) x, the ideal denoiser of N(0, sd^2) pixels, exactly
    blind = Denoiser(lambda x, t: torch.zeros_like(x), prediction="edm", sigma_data=0.3)
    expected = 0.09 / (sigma**2 + 0.09)[:, None, None, None] * x
    assert torch.allclose(blind(x, sigma), expected, rtol=1e-6, atol=0)


def test_edm_loss_draws_lognormal_noise_levels_and_vanishes_for_the_perfect_network():
    torch.manual_seed(4)
    x0 = torch.rand(6, 3, 8, 8) * 0.4 - 0.2
    noise, z = torch.randn_like(x0), torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 1.5])
    net = TrueF(x0)
    edm = Denoiser(net, prediction="edm", sigma_data=0.3, p_mean=-1.2, p_std=1.2)
    net.denoiser = edm
    assert edm.loss(x0, t=None, noise=noise, z=z) < 1e-8
    blind = Denoiser(lambda x, t: torch.zeros_like(x), prediction="edm", sigma_data=0.3)
    sigma = (-1.2 + 1.2 * z)[:, None, None, None].exp()
    x = x0 + sigma * noise
    c_skip, c_out = 0.09 / (sigma**2 + 0.09), sigma * 0.3 / (sigma**2 + 0.09).sqrt()
    target = (x0 - c_skip * x) / c_out
    assert torch.isclose(blind.loss(x0, t=None, noise=noise, z=z), target.square().mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="needs z"):
        blind.loss(x0, t=None, noise=noise)
    with pytest.raises(ValueError, match="sigma_data"):
        Denoiser(nn.Identity(), prediction="edm", sigma_data=0.0)
