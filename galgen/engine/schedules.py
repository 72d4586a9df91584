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

SCHEDULES = ("linear", "cosine")


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
