"""Noise schedules as plain functions returning tensors (Ho et al. 2020; Nichol & Dhariwal 2021).

The discrete DDPM forward process is ``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for
t = 0 .. T-1. Samplers work in the equivalent variance-exploding form
``x = x_0 + sigma eps`` with ``sigma_t = sqrt((1 - abar_t) / abar_t)`` (Karras et al. 2022), so
every schedule is finally a table of sigmas. Tables are float64: the cosine schedule's noisy end
(abar ~ 1e-9) loses everything in float32.
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("linear", "linear-fine", "cosine")

# Ho et al.'s linear schedule starts at beta_1 = 1e-4, i.e. sigma_min = 0.01 in the [-1, 1] units
# of the data. The last reverse step returns D(x, sigma_min), which shrinks any white noise of rms s
# in the data by s / sqrt(s^2 + sigma_min^2): survey sky noise is ~0.003-0.02 in those units, so
# mocks would come out 20-70 % too smooth. "linear-fine" keeps the linear betas but starts them at
# 1e-6 (sigma_min = 0.001): sky noise survives (>= 0.94 of its rms at s = 0.003).
FINE_BETA_START = 1e-6


def linear_betas(steps: int = 1000, *, start: float = 1e-4, end: float = 0.02) -> torch.Tensor:
    """Ho et al. 2020: betas rising linearly from 1e-4 to 0.02 (the paper's schedule)."""
    return torch.linspace(start, end, steps, dtype=torch.float64)


def cosine_betas(steps: int = 1000, *, offset: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021: abar(t) = cos^2(((t/T + s) / (1 + s)) pi/2), betas capped at 0.999."""
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    abar = f / f[0]
    return (1 - abar[1:] / abar[:-1]).clamp(max=max_beta)


def alphas_cumprod(schedule: str = "linear", steps: int = 1000) -> torch.Tensor:
    """abar_t for t = 0..steps-1 of a named schedule (float64)."""
    if schedule == "linear":
        betas = linear_betas(steps)
    elif schedule == "linear-fine":
        betas = linear_betas(steps, start=FINE_BETA_START)
    elif schedule == "cosine":
        betas = cosine_betas(steps)
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose from {', '.join(SCHEDULES)}")
    return torch.cumprod(1 - betas, dim=0)


def sigmas_from_alphas_cumprod(abar: torch.Tensor) -> torch.Tensor:
    """Variance-exploding noise levels sigma_t = sqrt((1 - abar_t) / abar_t), rising with t."""
    return ((1 - abar) / abar).sqrt()


def timestep_sigmas(sigma_table: torch.Tensor, steps: int) -> torch.Tensor:
    """``steps`` noise levels picked from a discrete table, noisiest first, with 0 appended.

    Timesteps are evenly spaced and always include the noisiest one, T-1 ("trailing" spacing,
    Lin et al. 2024): starting below T-1 would leave noise that the model was never asked to remove.
    """
    total = len(sigma_table)
    if not 1 <= steps <= total:
        raise ValueError(f"steps must be in 1..{total}, got {steps}")
    index = torch.round(torch.arange(total, 0, -total / steps, dtype=torch.float64)).long() - 1
    return torch.cat([sigma_table[index], sigma_table.new_zeros(1)])


# Half log-SNR below which the noisy end of a table is dropped for few-step solvers. The linear
# schedule already starts at lambda_T = -log(157) = -5.06; the cosine schedule runs on to
# sigma ~ 2e4 (lambda ~ -9.9) where its betas are capped at 0.999 and a multistep solver's first
# step spans a huge h. Clipping at -5.1 (the value DPM-Solver's authors used for guided-diffusion's
# cosine models) starts both schedules at the same noise level, where x is already 99.99 % noise.
LAMBDA_MIN = -5.1


def clip_log_snr(sigma_table: torch.Tensor, lambda_min: float = LAMBDA_MIN) -> torch.Tensor:
    """The ascending table without its noisy end, where lambda = -log(sigma) < lambda_min (Lu et al. 2022)."""
    kept = sigma_table[sigma_table <= math.exp(-lambda_min)]
    if len(kept) == 0:
        raise ValueError(f"every sigma in the table lies beyond lambda_min = {lambda_min}")
    return kept


def karras_sigmas(sigma_min: float, sigma_max: float, steps: int, *, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. 2022 eq. 5: ``steps`` sigmas from sigma_max to sigma_min, even in sigma^(1/rho), then 0.

    rho = 7 spends the steps near sigma_min, where image detail is decided; the sigmas fall between
    the table's entries, which the denoiser handles by interpolating t in log-sigma.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if steps == 1:
        return torch.tensor([sigma_max, 0.0], dtype=torch.float64)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sigmas = (hi + ramp * (lo - hi)) ** rho
    sigmas[0], sigmas[-1] = sigma_max, sigma_min  # exact ends, whatever the rounding of the powers
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def log_snr_sigmas(sigma_min: float, sigma_max: float, steps: int) -> torch.Tensor:
    """``steps`` sigmas from sigma_max to sigma_min, even in lambda = -log(sigma), then 0 (Lu et al. 2022).

    DPM-Solver's "logSNR" spacing, recommended for low-resolution pixel-space models: every scale
    of the image, down to the sky noise, gets its share of the steps.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if steps == 1:
        return torch.tensor([sigma_max, 0.0], dtype=torch.float64)
    sigmas = torch.linspace(math.log(sigma_max), math.log(sigma_min), steps, dtype=torch.float64).exp()
    sigmas[0], sigmas[-1] = sigma_max, sigma_min  # exact ends, whatever the rounding of exp(log)
    return torch.cat([sigmas, sigmas.new_zeros(1)])
