import math

import pytest
import torch

from galgen.engine.schedules import alphas_cumprod, sigmas_from_alphas_cumprod, timestep_sigmas


def test_linear_schedule_matches_ho_et_al():
    abar = alphas_cumprod("linear", 1000)
    assert abar[0].item() == pytest.approx(1 - 1e-4)
    # Ho et al. 2020 quote abar_T ~ 4e-5 for this schedule
    assert abar[-1].item() == pytest.approx(4.04e-5, rel=0.02)
    assert torch.all(abar[1:] < abar[:-1])


def test_cosine_schedule_is_cos_squared():
    abar = alphas_cumprod("cosine", 1000)
    t, s = 500, 0.008
    expected = math.cos((t + 1) / 1000 / (1 + s) * math.pi / 2 + s / (1 + s) * math.pi / 2) ** 2 / math.cos(
        s / (1 + s) * math.pi / 2) ** 2
    assert abar[t].item() == pytest.approx(expected, rel=1e-9)


def test_sigma_table_and_trailing_steps():
    sigmas = sigmas_from_alphas_cumprod(alphas_cumprod("linear", 1000))
    picked = timestep_sigmas(sigmas, 10)
    assert len(picked) == 11 and picked[-1] == 0
    assert picked[0] == sigmas[-1]  # always start from the noisiest step
    assert torch.all(picked[1:] < picked[:-1])
    assert torch.equal(timestep_sigmas(sigmas, 1000)[:-1], sigmas.flip(0))
    with pytest.raises(ValueError):
        timestep_sigmas(sigmas, 0)


def test_fine_linear_schedule_keeps_sky_noise():
    # the final denoise shrinks white noise of rms s by s / sqrt(s^2 + sigma_min^2)
    fine = sigmas_from_alphas_cumprod(alphas_cumprod("linear-fine", 1000))
    paper = sigmas_from_alphas_cumprod(alphas_cumprod("linear", 1000))
    assert fine[0].item() == pytest.approx(1e-3, rel=1e-3)
    assert paper[0].item() == pytest.approx(1e-2, rel=1e-3)
    sky = 0.003  # g-band sky of a DECaLS stamp normalised with A = 5 nmgy
    assert sky / math.hypot(sky, fine[0].item()) > 0.94 > sky / math.hypot(sky, paper[0].item())
    # the noisy end is the same as the paper's: sampling still starts from pure noise
    assert fine[-1].item() == pytest.approx(paper[-1].item(), rel=0.05)
