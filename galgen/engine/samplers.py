"""Samplers: stateless functions over one denoiser contract (k-diffusion style, Karras et al. 2022).

Every sampler is ``sample_x(denoiser, x, sigmas, *, noise, callback, project, ...) -> x0`` where
``denoiser(x, sigma) -> denoised`` works in the variance-exploding form ``x = x0 + sigma * eps``,
``sigmas`` is a decreasing 1-D sequence ending in 0 (it may start below the model's sigma_max:
SDEdit starts mid-way) and ``x`` is already at the noise level ``sigmas[0]``.

Hooks shared by all samplers:
- ``noise(like) -> Tensor``: the only source of randomness (standard normal, shaped like ``like``);
  runtime.ImageNoise gives one generator per image, so image i never depends on the batch.
- ``callback(i, x, sigma, denoised)``: called once per step, after the step's first denoiser call.
- ``project(x, sigma_next) -> x``: called after every step; inpainting overwrites known pixels there.

Step coefficients are computed in float64 from the sigma list and applied to float32 tensors; the
denoiser's output is cast back to float32, so a bf16 network never makes the arithmetic bf16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from galgen.engine.schedules import clip_log_snr, karras_sigmas, log_snr_sigmas, timestep_sigmas
from galgen.errors import InputError

DenoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Noise = Callable[[torch.Tensor], torch.Tensor]
Callback = Callable[[int, torch.Tensor, float, torch.Tensor], None]
Project = Callable[[torch.Tensor, float], torch.Tensor]


def as_working(x: torch.Tensor) -> torch.Tensor:
    """x in the samplers' working dtype: float32 at least (bf16 is promoted, float64 stays)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _denoise(denoiser: DenoiseFn, x: torch.Tensor, sigma: float) -> torch.Tensor:
    sigma_batch = torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device)
    return denoiser(x, sigma_batch).to(x.dtype)


def standard_normal(like: torch.Tensor) -> torch.Tensor:
    """The default noise source (torch's global generator); pass runtime.ImageNoise for reproducibility."""
    return torch.randn_like(like)


def _finish_step(x, x_next, i, sigma, sigma_next, denoised, callback, project):
    # report the step from x (at sigma), then let inpainting project the new state at sigma_next
    if callback is not None:
        callback(i, x, sigma, denoised)
    return x_next if project is None else project(x_next, sigma_next)


def sigma_list(sigmas) -> list[float]:
    """Sigmas as Python floats (float64 step coefficients), checked: strictly decreasing, none negative.

    A full run ends in 0; a list ending above 0 runs part of the way (inpainting's RePaint segments).
    """
    values = [float(s) for s in (sigmas.tolist() if torch.is_tensor(sigmas) else sigmas)]
    if any(b >= a for a, b in zip(values, values[1:])) or (values and values[-1] < 0):
        raise ValueError("sigmas must be strictly decreasing and non-negative")
    return values


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """DDIM's split of a step into a deterministic part and fresh noise (Song et al. 2021, eq. 16).

    Returns ``(sigma_down, sigma_up)`` with ``sigma_down^2 + sigma_up^2 = sigma_next^2``; eta = 1 gives
    the DDPM posterior variance ``sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2``.
    """
    sigma_up = eta * math.sqrt(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2)
    sigma_up = min(sigma_up, sigma_next)
    return math.sqrt(sigma_next**2 - sigma_up**2), sigma_up


def sample_ddim(denoiser: DenoiseFn, x: torch.Tensor, sigmas, *, eta: float = 0.0, noise: Optional[Noise] = None,
                callback: Optional[Callback] = None, project: Optional[Project] = None) -> torch.Tensor:
    """DDIM (Song et al. 2021): deterministic for eta = 0, the DDPM posterior for eta = 1."""
    noise = noise or standard_normal
    x = as_working(x)
    values = sigma_list(sigmas)
    for i, (sigma, sigma_next) in enumerate(zip(values, values[1:])):
        denoised = _denoise(denoiser, x, sigma)
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        # move to sigma_down along the straight line through (x, sigma) and (denoised, 0)
        x_next = denoised + (sigma_down / sigma) * (x - denoised)
        if sigma_up > 0:
            x_next = x_next + sigma_up * noise(x_next).to(x.dtype)
        x = _finish_step(x, x_next, i, sigma, sigma_next, denoised, callback, project)
    return x


def sample_ddpm(denoiser: DenoiseFn, x: torch.Tensor, sigmas, *, noise: Optional[Noise] = None,
                callback: Optional[Callback] = None, project: Optional[Project] = None) -> torch.Tensor:
    """Ancestral DDPM (Ho et al. 2020, eq. 12 with the posterior variance beta-tilde), the paper's sampler.

    In the VE form, a step from sigma to sigma_next draws from the forward-process posterior
    q(x_next | x, x0 = denoised): mean denoised + (sigma_next/sigma)^2 (x - denoised), variance
    sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2. Over the full table this is eq. 12 exactly;
    over a subset it is the respaced DDPM of Nichol & Dhariwal 2021.
    """
    return sample_ddim(denoiser, x, sigmas, eta=1.0, noise=noise, callback=callback, project=project)


def _dpmpp_2m(denoiser, x, sigmas, *, eta, noise, callback, project) -> torch.Tensor:
    """DPM-Solver++(2M) with eta in [0, 1] (Lu et al. 2022): eta = 0 the ODE, eta = 1 the SDE.

    With h = log(sigma / sigma_next) and kept = exp(-(1 + eta) h), a step is
    x_next = kept x + (1 - kept) D + (1 - kept) (h / 2 h_prev) (D - D_prev) + sigma_next sqrt(1 - exp(-2 eta h)) z:
    first order plus the midpoint rule's multistep term in lambda = -log(sigma). The first step has
    no D_prev and the last (to sigma = 0) returns D itself.
    """
    noise = noise or standard_normal
    x = as_working(x)
    values = sigma_list(sigmas)
    previous, h_previous = None, None
    for i, (sigma, sigma_next) in enumerate(zip(values, values[1:])):
        denoised = _denoise(denoiser, x, sigma)
        if sigma_next == 0:
            x_next = denoised
        else:
            h = math.log(sigma / sigma_next)
            kept = math.exp(-(1 + eta) * h)  # the share of x the step keeps: (sigma_next/sigma)^(1 + eta)
            x_next = kept * x + (1 - kept) * denoised
            if previous is not None:
                x_next = x_next + (1 - kept) * (h / (2 * h_previous)) * (denoised - previous)
            if eta > 0:
                x_next = x_next + sigma_next * math.sqrt(-math.expm1(-2 * eta * h)) * noise(x_next).to(x.dtype)
            h_previous = h
        previous = denoised
        x = _finish_step(x, x_next, i, sigma, sigma_next, denoised, callback, project)
    return x


def sample_dpmpp_2m(denoiser: DenoiseFn, x: torch.Tensor, sigmas, *, noise: Optional[Noise] = None,
                    callback: Optional[Callback] = None, project: Optional[Project] = None) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, algorithm 2): second-order multistep in lambda = -log(sigma).

    x_next = (sigma_next/sigma) x + (1 - sigma_next/sigma) D, with D extrapolated linearly in lambda
    from the last two denoised estimates, D = (1 + 1/(2r)) D_i - 1/(2r) D_(i-1), r = h_(i-1)/h_i.
    The first step and the last (to sigma = 0) are first order. Deterministic: ``noise`` is unused.
    """
    return _dpmpp_2m(denoiser, x, sigmas, eta=0.0, noise=None, callback=callback, project=project)


def sample_dpmpp_2m_sde(denoiser: DenoiseFn, x: torch.Tensor, sigmas, *, noise: Optional[Noise] = None,
                        callback: Optional[Callback] = None, project: Optional[Project] = None) -> torch.Tensor:
    """DPM-Solver++(2M) SDE (Lu et al. 2022, section 5 with eta = 1): ancestral DDPM plus a second-order term.

    The first-order part of a step is exactly the DDPM posterior of `sample_ddpm`: mean
    D + (sigma_next/sigma)^2 (x - D), fresh noise of variance sigma_next^2 (1 - (sigma_next/sigma)^2).
    Fresh noise forgets the network's errors at high sigma, which a deterministic solver carries
    to the end (docs/sampling.md); the multistep term buys back the accuracy of a second-order step.
    """
    return _dpmpp_2m(denoiser, x, sigmas, eta=1.0, noise=noise, callback=callback, project=project)


def sample_heun(denoiser: DenoiseFn, x: torch.Tensor, sigmas, *, noise: Optional[Noise] = None,
                callback: Optional[Callback] = None, project: Optional[Project] = None) -> torch.Tensor:
    """Heun's second-order method on the probability-flow ODE dx/dsigma = (x - D)/sigma (Karras et al. 2022, alg. 1).

    Two denoiser calls per step, one (Euler) for the last step to sigma = 0. Deterministic.
    """
    x = as_working(x)
    values = sigma_list(sigmas)
    for i, (sigma, sigma_next) in enumerate(zip(values, values[1:])):
        denoised = _denoise(denoiser, x, sigma)
        slope = (x - denoised) / sigma
        x_next = x + (sigma_next - sigma) * slope
        if sigma_next > 0:
            slope_next = (x_next - _denoise(denoiser, x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma) * 0.5 * (slope + slope_next)
        x = _finish_step(x, x_next, i, sigma, sigma_next, denoised, callback, project)
    return x


@dataclass(frozen=True)
class SamplerSpec:
    """What the CLI and the flows need to know about one sampler."""

    run: Callable[..., torch.Tensor]  # sample_x(denoiser, x, sigmas, *, noise, callback, project, ...)
    stochastic: bool  # draws fresh noise at every step
    default_steps: int  # steps used when the user gives none
    clip_log_snr: bool  # drop the schedule's noisy end beyond schedules.LAMBDA_MIN
    spacing: str  # default sigma spacing, one of SPACINGS (see select_sigmas)
    calls_per_step: int  # denoiser evaluations per step (Heun: 2, but 1 for the last step to 0)
    summary: str  # one line for --help


SAMPLERS: dict[str, SamplerSpec] = {
    "ddpm": SamplerSpec(
        sample_ddpm, stochastic=True, default_steps=1000, clip_log_snr=False, spacing="logsnr",
        calls_per_step=1, summary="ancestral DDPM, the paper's sampler (Ho et al. 2020)"),
    "ddim": SamplerSpec(
        sample_ddim, stochastic=False, default_steps=50, clip_log_snr=True, spacing="logsnr",
        calls_per_step=1, summary="DDIM, deterministic at eta=0 (Song et al. 2021)"),
    "dpmpp_2m": SamplerSpec(
        sample_dpmpp_2m, stochastic=False, default_steps=25, clip_log_snr=True, spacing="logsnr",
        calls_per_step=1, summary="DPM-Solver++(2M), second order (Lu et al. 2022)"),
    "dpmpp_2m_sde": SamplerSpec(
        sample_dpmpp_2m_sde, stochastic=True, default_steps=25, clip_log_snr=True, spacing="logsnr",
        calls_per_step=1, summary="DPM-Solver++(2M) SDE: DDPM's noise with a second-order step (Lu et al. 2022)"),
    "heun": SamplerSpec(
        sample_heun, stochastic=False, default_steps=18, clip_log_snr=True, spacing="logsnr",
        calls_per_step=2, summary="Heun, second-order ODE solver (Karras et al. 2022)"),
}
SPACINGS = ("trailing", "logsnr", "karras")


def get_sampler(name: str) -> SamplerSpec:
    """The registry entry for ``name``; InputError listing the choices for an unknown name."""
    try:
        return SAMPLERS[name]
    except KeyError:
        raise InputError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}") from None


def nfe(sampler: str, steps: int, *, ends_at_zero: bool = True) -> int:
    """Denoiser evaluations that ``steps`` steps of ``sampler`` cost (what provenance records)."""
    spec = get_sampler(sampler)
    if steps < 0:
        raise InputError(f"steps must be >= 0, got {steps}")
    saved = 1 if spec.calls_per_step == 2 and ends_at_zero and steps > 0 else 0
    return steps * spec.calls_per_step - saved


def select_sigmas(sigma_table: torch.Tensor, sampler: str, steps: int, *, strength: float = 1.0, spacing: Optional[str] = None) -> torch.Tensor:
    """The decreasing sigma list (ending in 0) that ``sampler`` runs for ``steps`` steps.

    ``sigma_table`` is the model's ascending table of T discrete sigmas. ``strength`` < 1 keeps only
    timesteps below strength x T (SDEdit: the paper's t = 600 of 1000 is strength 0.6); strength 0
    gives ``[0]``, a list of no steps. Few-step samplers drop the table's noisy end beyond
    schedules.LAMBDA_MIN (a no-op for the linear schedule). ``spacing`` (default: the sampler's own):
    "trailing", evenly spaced discrete timesteps, noisiest first, ``steps`` capped by the timesteps
    that remain; "logsnr", even in log(sigma) between the smallest and the largest kept sigma (every
    sampler's default: trailing spacing starves the fine scales, where the sky noise lives, see
    docs/engine.md); "karras", rho = 7 over the same range. Asking for at least as many steps as
    there are kept timesteps gives every timestep, whatever the spacing: ddpm with 1000 steps is
    the paper's sampler exactly.
    """
    spec = get_sampler(sampler)
    spacing = spacing or spec.spacing
    if spacing not in SPACINGS:
        raise InputError(f"unknown spacing {spacing!r}; choose from {', '.join(SPACINGS)}")
    total = len(sigma_table)
    if not 1 <= steps <= total:
        raise InputError(f"steps must be in 1..{total} for this model, got {steps}")
    if not 0.0 <= strength <= 1.0:
        raise InputError(f"strength must be in [0, 1], got {strength}")
    kept = round(strength * total)
    if kept == 0:
        return sigma_table.new_zeros(1)
    table = sigma_table[:kept]
    if spec.clip_log_snr:
        table = clip_log_snr(table)
    if spacing == "trailing" or steps >= len(table):
        # as many steps as timesteps: every timestep, the discrete process itself (ddpm 1000: the paper's)
        return timestep_sigmas(table, min(steps, len(table)))
    spaced = log_snr_sigmas if spacing == "logsnr" else karras_sigmas
    return spaced(float(table[0]), float(table[-1]), steps).to(sigma_table.dtype)


def run_sampler(sampler: str, denoiser: DenoiseFn, x: torch.Tensor, sigmas, *, noise: Optional[Noise] = None,
                callback: Optional[Callback] = None, project: Optional[Project] = None, **options) -> torch.Tensor:
    """Run the registered sampler ``sampler`` (options such as ddim's ``eta`` are passed through)."""
    run = get_sampler(sampler).run
    return run(denoiser, x, sigmas, noise=noise, callback=callback, project=project, **options)


def sdedit(denoiser: DenoiseFn, image: torch.Tensor, sigmas, *, sampler: str = "ddpm", noise: Optional[Noise] = None,
           callback: Optional[Callback] = None, **options) -> torch.Tensor:
    """SDEdit (Meng et al. 2022): noise ``image`` forward to sigmas[0], then run the reverse process back.

    ``sigmas`` is usually ``select_sigmas(table, sampler, steps, strength=s)``; with strength 0 it is
    ``[0]`` and the image comes back unchanged.
    """
    noise = noise or standard_normal
    image = as_working(image)
    start = float(sigmas[0])
    if start == 0.0:
        return image
    x = image + start * noise(image).to(image.dtype)
    return run_sampler(sampler, denoiser, x, sigmas, noise=noise, callback=callback, **options)
