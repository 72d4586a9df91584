"""Inpainting on a correlated Gaussian image model whose ideal denoiser and conditional law are closed form."""


import pytest
import torch

from galgen.engine import samplers as S
from galgen.engine.inpaint import inpaint, pulled_onto, repaint_moves, repaint_nfe, repaint_steps
from galgen.errors import InputError
from galgen.engine.schedules import alphas_cumprod, sigmas_from_alphas_cumprod
from test_samplers import Gaussian, RowNoise

LINEAR = sigmas_from_alphas_cumprod(alphas_cumprod("linear", 1000))
SIZE = 5
TRAIL = [11, 12, 13]  # three pixels across the centre of a 5 x 5 image


class CorrelatedGaussian:
    """x0 ~ N(0, C) over a 5 x 5 image, C a squared-exponential kernel (2 px) plus a small nugget.

    The ideal denoiser is D(x, sigma) = C (C + sigma^2 I)^-1 x, applied in C's eigenbasis.
    """

    def __init__(self):
        yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
        points = torch.stack([yy.flatten(), xx.flatten()], 1).double()
        distance2 = ((points[:, None] - points[None]) ** 2).sum(-1)
        self.cov = 0.2 * torch.exp(-distance2 / 8) + 0.002 * torch.eye(SIZE * SIZE, dtype=torch.float64)
        self.eigenvalues, self.eigenvectors = torch.linalg.eigh(self.cov)
        self.calls = 0

    def __call__(self, x, sigma):
        self.calls += 1
        shrink = self.eigenvalues / (self.eigenvalues + float(sigma[0]) ** 2)
        flat = x.reshape(x.shape[0], -1).double()
        return (((flat @ self.eigenvectors) * shrink) @ self.eigenvectors.T).reshape(x.shape).to(x.dtype)

    def draw(self, seed):
        generator = torch.Generator().manual_seed(seed)
        return (torch.linalg.cholesky(self.cov) @ torch.randn(SIZE * SIZE, dtype=torch.float64, generator=generator))

    def conditional(self, image, missing):
        """Mean and standard deviation of the missing pixels given the others."""
        known = ~missing
        gain = self.cov[missing][:, known] @ torch.linalg.inv(self.cov[known][:, known])
        mean = gain @ image[known]
        var = self.cov[missing][:, missing] - gain @ self.cov[known][:, missing]
        return mean, var.diagonal().sqrt()


def trail_case(draws):
    model = CorrelatedGaussian()
    truth = model.draw(seed=0)
    missing = torch.zeros(SIZE * SIZE, dtype=torch.bool)
    missing[TRAIL] = True
    image = truth.float().reshape(1, 1, SIZE, SIZE).repeat(draws, 1, 1, 1)
    image.reshape(draws, -1)[:, missing] = float("nan")  # whatever lies under the trail is never read
    return model, truth, missing, image, missing.reshape(1, 1, SIZE, SIZE)


@pytest.mark.parametrize("sampler,jump,resample",
                         [("ddpm", 1, 1), ("ddpm", 3, 2), ("dpmpp_2m", 2, 2), ("heun", 1, 1)])
def test_known_pixels_come_back_bit_for_bit(sampler, jump, resample):
    model, _, missing, _, mask = trail_case(3)
    image = torch.randn(3, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 3  # also outside [-1, 1]
    image.reshape(3, -1)[:, missing] = float("nan")
    sigmas = S.select_sigmas(LINEAR, sampler, 12)
    out = inpaint(model, image, mask, sigmas, sampler=sampler, jump=jump, resample=resample,
                  noise=RowNoise(2, range(3)))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    known = ~mask.expand_as(image)
    assert torch.equal(out[known].view(torch.int32), image[known].view(torch.int32))


def test_inpainting_recovers_the_conditional_mean():
    draws = 400
    model, truth, missing, image, mask = trail_case(draws)
    expected_mean, expected_std = model.conditional(truth, missing)
    out = inpaint(model, image, mask, S.select_sigmas(LINEAR, "ddpm", 100), sampler="ddpm",
                  noise=RowNoise(3, range(draws)))
    filled = out.reshape(draws, -1)[:, missing].double()
    prior_std = model.cov[0, 0].sqrt().item()  # 0.45
    # the truth lies far from the prior mean 0 and the fill recovers > 90 % of that shift (replacement
    # guidance is known to be biased a little towards the prior: here 1-6 %)
    assert expected_mean.abs().min() > 2 * prior_std
    assert torch.all((filled.mean(0) - expected_mean).abs() < 0.1 * expected_mean.abs())
    # the spread is the conditional one (0.06), far below the prior's
    assert torch.all(filled.std(0) < 1.5 * expected_std) and torch.all(filled.std(0) > 0.7 * expected_std)


def against_the_conditional(sampler: str, steps: int, *, draws: int = 300, **options):
    """Fill the trail case ``draws`` times (known pixels checked bit for bit); per trail pixel, the mean
    fill's distance from the exact conditional mean and the fills' spread, in conditional sd."""
    model, truth, missing, image, mask = trail_case(draws)
    expected_mean, expected_std = model.conditional(truth, missing)
    out = inpaint(model, image, mask, S.select_sigmas(LINEAR, sampler, steps), sampler=sampler,
                  noise=RowNoise(4, range(draws)), **options)
    known = ~mask.expand_as(image)
    assert torch.equal(out[known].view(torch.int32), image[known].view(torch.int32))
    filled = out.reshape(draws, -1)[:, missing].double()
    return ((filled.mean(0) - expected_mean) / expected_std).abs(), filled.std(0) / expected_std


def test_resampling_brings_the_fill_closer_to_the_conditional_mean():
    (plain, _), (resampled, _) = (against_the_conditional("ddpm", 100, jump=5, resample=r) for r in (1, 3))
    assert resampled.mean() < 0.7 * plain.mean(), (plain, resampled)  # 0.33-0.91 sd -> 0.06-0.16


def test_repaint_walk_and_its_denoiser_calls():
    assert repaint_moves(6, jump=2, resample=2) == [(0, 2), (2, 0), (0, 2), (2, 4), (4, 2), (2, 4), (4, 6)]
    assert repaint_moves(6, jump=2, resample=1) == [(0, 6)]
    steps, jump, resample = 20, 5, 3
    # every block but the last (which ends at sigma = 0) is descended `resample` times
    assert repaint_nfe("ddpm", steps, jump=jump, resample=resample) == steps + (resample - 1) * jump * 3
    for sampler in S.SAMPLERS:
        model = Gaussian(0.0, 0.5)
        sigmas = S.select_sigmas(LINEAR, sampler, steps)
        image = torch.zeros(2, 1, 4, 4)
        mask = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
        mask[..., 1:3] = True
        counted = []
        inpaint(model, image, mask, sigmas, sampler=sampler, jump=jump, resample=resample,
                callback=lambda i, x, sigma, denoised: counted.append(i))
        assert model.calls == repaint_nfe(sampler, steps, jump=jump, resample=resample)
        assert counted == list(range(repaint_steps(steps, jump=jump, resample=resample)))
    assert repaint_steps(steps, jump=jump, resample=resample) == steps + (resample - 1) * jump * 3
    with pytest.raises(InputError):
        repaint_moves(10, jump=0)


def test_the_pull_moves_a_linear_denoiser_by_its_known_answer():
    # D(x) = A x with A symmetric: grad_x 0.5 |P (y - A x)|^2 = -A P (y - A x), so D' = A x + pull A P (y - A x)
    model, truth, missing, image, mask = trail_case(2)
    known = torch.nan_to_num(image)
    x = torch.randn(2, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    sigma = torch.full((2,), 0.7)
    pulled = pulled_onto(model, known, mask, 1.5)(x, sigma)
    misfit = torch.where(mask, 0.0, known - model(x, sigma))
    expected = model(x, sigma) + 1.5 * model(misfit, sigma)
    assert not torch.allclose(pulled, model(x, sigma), atol=1e-3)
    assert torch.allclose(pulled, expected, atol=1e-5)
    assert not pulled.requires_grad


def test_gradient_guidance_brings_a_plain_walk_closer_to_the_conditional_mean():
    # on the exact Gaussian denoiser, replacement without resampling is biased towards the prior
    # (0.3-0.9 conditional sd); the pull removes most of it at one walk's cost (backward passes aside)
    (plain, plain_spread), (pulled, pulled_spread) = (against_the_conditional("ddim", 50, eta=1.0, pull=pull)
                                                      for pull in (0.0, 1.0))  # bias 0.31-0.94 sd -> 0.09-0.30
    assert pulled.mean() < 0.5 * plain.mean(), (plain, pulled)
    assert torch.all(pulled_spread > 0.8) and torch.all(pulled_spread < 1.2)  # and the spread is the conditional one
    assert torch.all(plain_spread > 1.2)
