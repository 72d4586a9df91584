"""Samplers against closed-form answers: on Gaussian data the ideal denoiser and the probability-flow
ODE solution are known exactly (x - mu grows like sqrt(s^2 + sigma^2) along the ODE)."""

import math

import pytest
import torch

from galgen.engine import samplers as S
from galgen.engine.schedules import LAMBDA_MIN, alphas_cumprod, sigmas_from_alphas_cumprod
from galgen.errors import InputError

LINEAR = sigmas_from_alphas_cumprod(alphas_cumprod("linear", 1000))
COSINE = sigmas_from_alphas_cumprod(alphas_cumprod("cosine", 1000))
DETERMINISTIC = ["ddim", "dpmpp_2m", "heun"]



class Gaussian:
    """Ideal denoiser for x0 ~ N(mu, s^2) per pixel: D(x, sigma) = (s^2 x + sigma^2 mu) / (s^2 + sigma^2)."""

    def __init__(self, mu, s, *, dtype=None):
        self.mu, self.s, self.dtype, self.calls = mu, s, dtype, 0

    def __call__(self, x, sigma):
        self.calls += 1
        assert sigma.shape == (x.shape[0],)
        var = sigma.view(-1, *[1] * (x.dim() - 1)) ** 2
        out = (self.s**2 * x + var * self.mu) / (self.s**2 + var)
        return out if self.dtype is None else out.to(self.dtype)

    def ode(self, x, sigma_from, sigma_to):
        """Exact probability-flow ODE transport of x from sigma_from to sigma_to."""
        return self.mu + (x - self.mu) * math.sqrt(self.s**2 + sigma_to**2) / math.sqrt(self.s**2 + sigma_from**2)


class RowNoise:
    """Per-row generators seeded by (seed, index): the runtime.ImageNoise contract, self-contained."""

    def __init__(self, seed, indices):
        self.generators = [torch.Generator().manual_seed(seed * 100003 + i) for i in indices]

    def __call__(self, like):
        rows = [torch.randn(like.shape[1:], generator=g, dtype=torch.float64) for g in self.generators]
        return torch.stack(rows).to(like.dtype)


def geometric(n, hi=80.0, lo=0.01):
    return torch.cat([torch.logspace(math.log10(hi), math.log10(lo), n, dtype=torch.float64), torch.zeros(1)])


def ode_error(sampler, sigmas, model, z):
    x = sigmas[0].item() * z
    out = S.run_sampler(sampler, model, x, sigmas)
    # every sampler ends with x = D(x, sigma_last): compare with that applied to the exact ODE state
    last = sigmas[-2].item()
    exact = model(model.ode(x, sigmas[0].item(), last), torch.full((len(z),), last, dtype=z.dtype))
    return (out - exact).abs().max().item()


@pytest.mark.parametrize("sampler,order", [("ddim", 1), ("dpmpp_2m", 2), ("heun", 2)])
def test_deterministic_samplers_converge_to_the_ode_solution_at_their_order(sampler, order):
    model = Gaussian(0.3, 0.5)
    z = torch.randn(256, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    errors = [ode_error(sampler, geometric(n), model, z) for n in (20, 40, 80)]
    ratios = [a / b for a, b in zip(errors, errors[1:])]
    # halving the step divides the error by 2^order
    assert all(2**order * 0.8 < r < 2**order * 1.3 for r in ratios), (errors, ratios)
    assert errors[-1] < (0.05 if order == 1 else 5e-3)


@pytest.mark.parametrize("sampler", DETERMINISTIC)
def test_deterministic_samplers_land_on_the_ode_solution_from_the_model_table(sampler):
    model = Gaussian(torch.tensor(-0.2), torch.tensor(0.4))
    z = torch.randn(128, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    coarse = ode_error(sampler, S.select_sigmas(LINEAR, sampler, 25), model, z)
    fine = ode_error(sampler, S.select_sigmas(LINEAR, sampler, 200), model, z)
    assert fine < coarse / 3
    assert fine < (0.03 if sampler == "ddim" else 0.01)  # ddim is first order


def spread_ratio(sampler, sigmas, s):
    """Output spread of a deterministic sampler on N(0, s^2) data over the data's own (the exact ODE's)."""
    model = Gaussian(0.0, s)
    x = torch.tensor([0.0, 1.0], dtype=torch.float64).view(2, 1, 1, 1) * sigmas[0]
    out, exact = S.run_sampler(sampler, model, x, sigmas), model.ode(x, sigmas[0].item(), 0.0)
    return ((out[1] - out[0]) / (exact[1] - exact[0])).item()


@pytest.mark.parametrize("sampler", ["dpmpp_2m", "heun"])
def test_default_spacing_keeps_the_spread_of_every_scale(sampler):
    steps = S.SAMPLERS[sampler].default_steps
    for table in (LINEAR, COSINE):
        # galaxy light down to the sky noise (in [-1, 1] units); the last step, D at sigma_min = 0.01,
        # takes 5 % off the finest of these scales whatever the solver
        for scale in (0.5, 0.1, 0.03):
            assert spread_ratio(sampler, S.select_sigmas(table, sampler, steps), scale) == pytest.approx(1, abs=0.1)
    # evenly spaced timesteps leave the fine scales to a few huge steps and flatten them
    assert spread_ratio(sampler, S.select_sigmas(LINEAR, sampler, steps, spacing="trailing"), 0.03) < 0.5


def ddpm_moments(model, sigmas, *, eta=1.0):
    """Exact mean and variance after the DDIM(eta) recursion on Gaussian data, started from N(0, sigma_0^2)."""
    values = sigmas.tolist()
    mean, var = 0.0, values[0] ** 2
    for sigma, sigma_next in zip(values, values[1:]):
        down, up = S.ancestral_step(sigma, sigma_next, eta)
        shrink = model.s**2 / (model.s**2 + sigma**2)  # D - mu = shrink (x - mu)
        gain = (1 - down / sigma) * shrink + down / sigma  # x_next - mu = gain (x - mu) + up z
        mean = model.mu + gain * (mean - model.mu)
        var = gain**2 * var + up**2
    return mean, var


@pytest.mark.parametrize("sampler,steps,eta", [("ddpm", 1000, 1.0), ("ddim", 100, 1.0), ("ddim", 50, 0.5)])
def test_stochastic_samplers_give_the_right_mean_and_variance(sampler, steps, eta):
    model = Gaussian(0.3, 0.5)
    sigmas = S.select_sigmas(LINEAR, sampler, steps)
    x = sigmas[0] * torch.randn(4, 1, 50, 50, generator=torch.Generator().manual_seed(2))
    noise_gen = torch.Generator().manual_seed(3)
    options = {} if sampler == "ddpm" else {"eta": eta}
    out = S.run_sampler(sampler, model, x, sigmas, noise=lambda like: torch.randn(like.shape, generator=noise_gen),
                        **options).double()
    mean, var = ddpm_moments(model, sigmas, eta=eta)
    n = out.numel()
    assert abs(out.mean().item() - mean) < 4 * math.sqrt(var / n)
    assert abs(out.var().item() / var - 1) < 4 * math.sqrt(2 / n)
    # the chain's mean is the data's; with few steps it is under-dispersed (6 % at 100 steps), at 1000 not
    assert mean == pytest.approx(0.3, abs=0.001)
    assert math.sqrt(var) == pytest.approx(0.5, rel=0.03 if steps == 1000 else 0.1)


def sde_draws(sampler, steps, model, *, seed=2):
    """One run of ``sampler`` over 10,000 independent pixels (float64)."""
    sigmas = S.select_sigmas(LINEAR, sampler, steps)
    x = sigmas[0] * torch.randn(4, 1, 50, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    generator = torch.Generator().manual_seed(seed + 1)
    return S.run_sampler(sampler, model, x, sigmas,
                         noise=lambda like: torch.randn(like.shape, generator=generator, dtype=like.dtype))


def test_dpmpp_2m_sde_without_curvature_is_the_ddpm_posterior():
    # a denoiser that ignores x leaves nothing for the second-order term: each step is ddpm's
    flat = lambda x, sigma: torch.full_like(x, 0.3)  # noqa: E731
    torch.testing.assert_close(sde_draws("dpmpp_2m_sde", 25, flat), sde_draws("ddpm", 25, flat), rtol=0, atol=1e-12)


@pytest.mark.parametrize("scale", [0.5, 0.03])
def test_dpmpp_2m_sde_gives_the_data_spread_in_25_steps(scale):
    out = sde_draws("dpmpp_2m_sde", 25, Gaussian(-0.9, scale))
    assert out.mean().item() == pytest.approx(-0.9, abs=3 * scale / 100)
    assert out.std().item() / scale == pytest.approx(1, abs=0.07)  # 0.03: sky noise in [-1, 1] units


def test_fresh_noise_forgets_a_denoisers_error_at_high_sigma():
    """An eps-network whose eps is 3.5 % too large (what the bundled model's is at sigma >> 1) shifts D by
    0.035 (x - D): at sigma = 150 that is 5 units of a [-1, 1] image. A deterministic solver carries the
    error to the end; the stochastic one replaces most of x with fresh noise at every step."""
    ideal = Gaussian(-0.9, 0.03)
    biased = lambda x, sigma: ideal(x, sigma) + 0.035 * (x - ideal(x, sigma))  # noqa: E731
    sde = sde_draws("dpmpp_2m_sde", 25, biased).std().item() / 0.03
    ode = sde_draws("dpmpp_2m", 25, biased).std().item() / 0.03
    assert abs(sde - 1) < 0.05 and abs(ode - 1) > 0.2, (sde, ode)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddpm_in_ve_form_is_ho_equation_12(schedule):
    abar = alphas_cumprod(schedule, 1000)
    sigmas_table = sigmas_from_alphas_cumprod(abar)
    model = Gaussian(0.1, 0.6)
    generator = torch.Generator().manual_seed(4)
    draws = torch.randn(1000, 3, 1, 4, 4, dtype=torch.float64, generator=generator)
    taken = iter(draws)
    x_start = sigmas_table[-1] * draws[0]
    next(taken)
    ve = S.sample_ddpm(model, x_start, S.select_sigmas(sigmas_table, "ddpm", 1000), noise=lambda like: next(taken))

    # Ho et al. 2020 eq. 12 in VP form, with eps from the same ideal denoiser
    alphas = torch.cat([abar[:1], abar[1:] / abar[:-1]])
    x = abar[-1].sqrt() * x_start
    for t in range(999, -1, -1):
        sigma = sigmas_table[t]
        x_ve = x / abar[t].sqrt()
        eps = (x_ve - model(x_ve, sigma.expand(3))) / sigma
        x = (x - (1 - alphas[t]) / (1 - abar[t]).sqrt() * eps) / alphas[t].sqrt()
        if t > 0:
            posterior_var = (1 - abar[t - 1]) / (1 - abar[t]) * (1 - alphas[t])
            x = x + posterior_var.sqrt() * draws[1000 - t]
    torch.testing.assert_close(ve, x, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sampler", list(S.SAMPLERS))
def test_bf16_denoiser_output_keeps_float32_arithmetic(sampler):
    sigmas = S.select_sigmas(LINEAR, sampler, 8)
    x = sigmas[0].float() * torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    bf16 = Gaussian(0.2, 0.5, dtype=torch.bfloat16)

    def rounded(x, sigma):  # the same bf16 outputs, handed over in float32
        return Gaussian(0.2, 0.5)(x, sigma).to(torch.bfloat16).float()

    def noise():
        generator = torch.Generator().manual_seed(6)
        return lambda like: torch.randn(like.shape, generator=generator)

    out = S.run_sampler(sampler, bf16, x.to(torch.bfloat16), sigmas, noise=noise())
    reference = S.run_sampler(sampler, rounded, x.to(torch.bfloat16).float(), sigmas, noise=noise())
    assert out.dtype == torch.float32
    assert torch.equal(out, reference)


@pytest.mark.parametrize("sampler,options", [("ddpm", {}), ("ddim", {"eta": 0.7}), ("dpmpp_2m_sde", {})])
def test_image_i_does_not_depend_on_the_batch(sampler, options):
    model = Gaussian(0.0, 0.5)
    sigmas = S.select_sigmas(LINEAR, sampler, 30)
    start = RowNoise(7, range(5))(torch.empty(5, 2, 3, 3)) * sigmas[0]
    together = S.run_sampler(sampler, model, start, sigmas, noise=RowNoise(8, range(5)), **options)
    for i in range(5):
        alone = S.run_sampler(sampler, model, start[i : i + 1], sigmas, noise=RowNoise(8, [i]), **options)
        assert torch.equal(alone[0], together[i])


def test_select_sigmas_full_table_clipping_and_strength():
    assert torch.equal(S.select_sigmas(LINEAR, "ddpm", 1000)[:-1], LINEAR.flip(0))
    # fewer ddpm steps: log-even down to the table's smallest sigma, where the sky noise lives;
    # trailing spacing would stop at sigma 0.076 (50 steps) and jump to 0 from there
    respaced = S.select_sigmas(LINEAR, "ddpm", 50)
    assert len(respaced) == 51 and respaced[-2] == LINEAR[0] and respaced[0] == LINEAR[-1]
    assert S.select_sigmas(LINEAR, "ddpm", 50, spacing="trailing")[-2] > 5 * LINEAR[0]
    # cosine: ddpm keeps sigma_max ~ 1e4, the few-step solvers start at lambda_min
    assert S.select_sigmas(COSINE, "ddpm", 50)[0] == COSINE[-1] > 1e3
    for sampler in DETERMINISTIC:
        first = S.select_sigmas(COSINE, sampler, 20)[0].item()
        assert -math.log(first) >= LAMBDA_MIN and -math.log(first) < LAMBDA_MIN + 0.1
        # the linear schedule never reaches lambda_min: clipping is a no-op there
        assert S.select_sigmas(LINEAR, sampler, 20)[0] == LINEAR[-1]
    for spacing in ("logsnr", "karras"):
        spaced = S.select_sigmas(LINEAR, "dpmpp_2m", 10, spacing=spacing)
        assert len(spaced) == 11 and spaced[-2] == LINEAR[0] and spaced[0] == LINEAR[-1]
        assert torch.all(spaced[1:] < spaced[:-1])
    # karras: Karras et al. 2022 eq. 5, rho = 7, by hand
    lo, hi = float(LINEAR[0]) ** (1 / 7), float(LINEAR[-1]) ** (1 / 7)
    expected = [(hi + i / 9 * (lo - hi)) ** 7 for i in range(10)] + [0.0]
    karras = S.select_sigmas(LINEAR, "dpmpp_2m", 10, spacing="karras")
    torch.testing.assert_close(karras.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-6, atol=0)
    steps = S.select_sigmas(LINEAR, "heun", 10).log()[:-1].diff()
    torch.testing.assert_close(steps, steps[:1].expand(9))  # logsnr: even steps in log(sigma)
    # SDEdit: the paper's t = 600 of 1000
    assert S.select_sigmas(LINEAR, "ddpm", 1000, strength=0.6)[0] == LINEAR[599]
    assert len(S.select_sigmas(LINEAR, "ddpm", 1000, strength=0.6)) == 601
    assert S.select_sigmas(LINEAR, "dpmpp_2m", 10, strength=0.6)[0] == LINEAR[599]
    assert torch.equal(S.select_sigmas(LINEAR, "ddim", 10, strength=0.0), torch.zeros(1, dtype=LINEAR.dtype))


@pytest.mark.parametrize("bad", [dict(sampler="euler"), dict(steps=0), dict(steps=1001), dict(strength=1.5),
                                 dict(spacing="leading")])
def test_select_sigmas_rejects_bad_choices(bad):
    args = dict(sampler="ddim", steps=10) | bad
    with pytest.raises(InputError):
        S.select_sigmas(LINEAR, args.pop("sampler"), args.pop("steps"), **args)


@pytest.mark.parametrize("sampler", list(S.SAMPLERS))
def test_nfe_counts_the_denoiser_calls(sampler):
    model = Gaussian(0.0, 0.5)
    steps = 7
    sigmas = S.select_sigmas(LINEAR, sampler, steps)
    S.run_sampler(sampler, model, sigmas[0] * torch.randn(1, 1, 2, 2), sigmas)
    assert model.calls == S.nfe(sampler, steps)
    assert S.nfe("heun", steps) == 2 * steps - 1 and S.nfe("dpmpp_2m", steps) == steps


@pytest.mark.parametrize("sampler", list(S.SAMPLERS))
def test_callback_and_project_see_every_step(sampler):
    sigmas = S.select_sigmas(LINEAR, sampler, 6)
    seen, projected = [], []
    S.run_sampler(sampler, Gaussian(0.0, 0.5), sigmas[0] * torch.randn(2, 1, 2, 2), sigmas,
                  callback=lambda i, x, sigma, denoised: seen.append((i, sigma)),
                  project=lambda x, sigma_next: projected.append(sigma_next) or x.clamp(-1, 1))
    assert [i for i, _ in seen] == list(range(6))
    assert [s for _, s in seen] == pytest.approx(sigmas[:-1].tolist())
    assert projected == pytest.approx(sigmas[1:].tolist())


def test_project_hook_output_is_what_the_next_step_sees():
    sigmas = S.select_sigmas(LINEAR, "dpmpp_2m", 5)
    out = S.sample_dpmpp_2m(Gaussian(0.0, 0.5), sigmas[0] * torch.randn(1, 1, 3, 3), sigmas,
                            project=lambda x, sigma_next: torch.full_like(x, 0.25))
    assert torch.all(out == 0.25)


def test_sdedit_strength_zero_returns_the_input_and_strength_one_ignores_it():
    model = Gaussian(0.0, 0.5)
    image = torch.rand(3, 2, 8, 8, generator=torch.Generator().manual_seed(9)) * 2 - 1
    for sampler in S.SAMPLERS:
        untouched = S.sdedit(model, image, S.select_sigmas(LINEAR, sampler, 20, strength=0.0), sampler=sampler)
        assert torch.equal(untouched, image)

    def run(img, strength):
        sigmas = S.select_sigmas(LINEAR, "ddpm", 100, strength=strength)
        return S.sdedit(model, img, sigmas, sampler="ddpm", noise=RowNoise(10, range(3)))

    opposite = -image
    far = (run(image, 1.0) - run(opposite, 1.0)).abs().max().item()
    near = (run(image, 0.2) - run(opposite, 0.2)).abs().mean().item()
    # from sigma_max ~ 157 the input is lost in the noise; at 0.2 x T it still shows
    assert far < 0.02 and near > 0.3
    # strength 0.01: sigma = 0.044, and the result differs from the input by ~sqrt(2) sigma
    assert 0.03 < (run(image, 0.01) - image).std().item() < 0.09


def test_samplers_reject_increasing_sigmas():
    with pytest.raises(ValueError):
        S.sample_ddim(Gaussian(0.0, 0.5), torch.zeros(1, 1, 2, 2), [1.0, 2.0, 0.0])


class ExactEps(torch.nn.Module):
    """The true eps-prediction network of Gaussian data, in the VP form the engine's Denoiser feeds it."""

    def __init__(self, mu, s):
        super().__init__()
        self.mu, self.s, self.t_to_sigma = mu, s, None

    def forward(self, x_vp, t):
        sigma = self.t_to_sigma(t).double().view(-1, 1, 1, 1)
        abar = 1 / (1 + sigma**2)
        eps = (1 - abar).sqrt() * (x_vp - abar.sqrt() * self.mu) / (abar * self.s**2 + 1 - abar)
        return eps.float()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_samplers_through_the_engine_denoiser_match_the_ideal_one(schedule):
    from galgen.engine import denoiser as denoiser_module
    from galgen.engine import runtime
    net = ExactEps(0.2, 0.4)
    engine = denoiser_module.Denoiser(net, schedule=schedule)
    net.t_to_sigma = engine.t_to_sigma
    ideal = Gaussian(0.2, 0.4)
    for sampler in S.SAMPLERS:
        # logsnr sigmas fall between table entries: the Denoiser's t interpolation is exercised too
        sigmas = S.select_sigmas(engine.sigmas, sampler, 12)
        x = sigmas[0] * runtime.ImageNoise(11, range(3))(torch.empty(3, 2, 4, 4))
        with torch.no_grad():
            out = S.run_sampler(sampler, engine, x, sigmas, noise=runtime.ImageNoise(12, range(3)))
        expected = S.run_sampler(sampler, ideal, x, sigmas, noise=runtime.ImageNoise(12, range(3)))
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)  # measured: <= 1.3e-5 (cosine ddpm)
