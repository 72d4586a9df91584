"""Inpainting by guided diffusion with RePaint resampling (Lugmayr et al. 2022), composed from the samplers.

At every reverse step the known pixels are replaced by a fresh forward-process draw of the original
at the new noise level, ``x_known = x0 + sigma * n`` (VE form; N(sqrt(abar) x0, (1 - abar) I) in VP
form), so only the masked pixels come from the model. RePaint's resampling harmonises the boundary:
after descending ``jump`` steps, the state is sent back up those ``jump`` steps with fresh forward
noise and descended again, ``resample`` times in all. At the end the known pixels are pasted back
bit for bit. Pure torch.

Gradient guidance (``pull`` > 0; the manifold-constrained gradient of Chung et al. 2022) makes each
denoised estimate agree with the known pixels: the estimate is moved by ``-pull`` times the gradient,
with respect to the noisy state, of half the squared misfit between its known pixels and the
observation. The masked pixels move through the network's Jacobian, so they follow what the known
pixels beside them say, which replacement alone leaves to the resampling to harmonise. It costs a
backward pass per evaluation (the denoiser must be differentiable: `LoadedModel.denoise` with grad).
"""

from __future__ import annotations

import math
from typing import Optional

import torch

from galgen.engine.samplers import Callback, DenoiseFn, Noise, as_working, get_sampler, nfe, sigma_list, standard_normal
from galgen.errors import InputError


def repaint_moves(steps: int, *, jump: int = 1, resample: int = 1) -> list[tuple[int, int]]:
    """The RePaint walk over step indices 0..steps as moves ``(start, end)``.

    ``start < end`` descends with the sampler over sigmas[start..end]; ``start > end`` jumps back up
    with fresh forward noise. Resampling happens after every block of ``jump`` steps that ends at
    a nonzero sigma (index < steps); a walk without resampling is the single move ``(0, steps)``.
    """
    if jump < 1 or resample < 1:
        raise InputError(f"jump and resample must be >= 1, got {jump} and {resample}")
    moves: list[tuple[int, int]] = []
    descent_from = 0
    for block_start in range(0, steps, jump):
        block_end = min(block_start + jump, steps)
        if resample == 1 or block_end == steps:
            continue
        # descend to the block's end, then go back up and down again resample - 1 times
        moves.append((descent_from, block_end))
        for _ in range(resample - 1):
            moves += [(block_end, block_start), (block_start, block_end)]
        descent_from = block_end
    moves.append((descent_from, steps))
    return moves


def repaint_steps(steps: int, *, jump: int = 1, resample: int = 1) -> int:
    """Sampler steps of one inpainting run: the callback count, the total of a progress bar."""
    return sum(end - start for start, end in repaint_moves(steps, jump=jump, resample=resample) if start < end)


def repaint_nfe(sampler: str, steps: int, *, jump: int = 1, resample: int = 1) -> int:
    """Denoiser evaluations of one inpainting run (what provenance and progress bars need)."""
    return sum(
        nfe(sampler, end - start, ends_at_zero=end == steps)
        for start, end in repaint_moves(steps, jump=jump, resample=resample)
        if start < end
    )


def inpaint(
    denoiser: DenoiseFn,
    image: torch.Tensor,
    mask: torch.Tensor,
    sigmas,
    *,
    sampler: str = "ddpm",
    jump: int = 1,
    resample: int = 1,
    pull: float = 0.0,
    noise: Optional[Noise] = None,
    callback: Optional[Callback] = None,
    **options,
) -> torch.Tensor:
    """Fill the pixels where ``mask`` is True, guided diffusion with RePaint resampling (Lugmayr et al. 2022).

    ``image`` (B, C, H, W) is in the model's [-1, 1] space; its masked pixels may hold anything, NaN
    included. ``mask`` is boolean and broadcasts against it. ``sigmas`` is a decreasing list ending
    in 0, e.g. samplers.select_sigmas(table, sampler, steps); the masked pixels start as pure noise
    at sigmas[0], so start at the top of the table (strength 1). Multistep samplers restart their
    history at every resampling jump. ``callback(i, x, sigma, denoised)`` numbers steps across the
    whole walk. ``pull`` > 0 adds gradient guidance (module docstring). The result equals ``image``
    outside the mask, bit for bit.
    """
    noise = noise or standard_normal
    image = as_working(image)
    mask = mask.to(device=image.device, dtype=torch.bool)
    known = torch.where(mask, torch.zeros((), dtype=image.dtype, device=image.device), image)
    values = sigma_list(sigmas)
    steps = len(values) - 1
    run = get_sampler(sampler).run
    if pull:
        denoiser = pulled_onto(denoiser, known, mask, pull)

    def project(x: torch.Tensor, sigma: float) -> torch.Tensor:
        guide = known if sigma == 0 else known + sigma * noise(x).to(x.dtype)
        return torch.where(mask, x, guide)

    counter = _StepCounter(callback)
    x = known + values[0] * noise(known).to(image.dtype)
    for start, end in repaint_moves(steps, jump=jump, resample=resample):
        if start < end:
            x = run(denoiser, x, values[start : end + 1], noise=noise, callback=counter, project=project, **options)
        else:
            # forward process from sigma_start up to sigma_end: independent increments add in variance
            x = x + math.sqrt(values[end] ** 2 - values[start] ** 2) * noise(x).to(x.dtype)
    return torch.where(mask, x, image)


def pulled_onto(denoiser: DenoiseFn, known: torch.Tensor, mask: torch.Tensor, pull: float) -> DenoiseFn:
    """``denoiser`` with each estimate D(x) moved by ``-pull * grad_x 0.5 |(known - D(x))[~mask]|^2``.

    ``known`` (B, C, H, W) holds the observation outside ``mask``. Each image's misfit depends on its
    own state only (the network mixes no images), so one backward pass of the summed misfit gives
    every image's gradient.
    """

    def pulled(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            state = x.detach().requires_grad_(True)
            denoised = denoiser(state, sigma)
            misfit = torch.where(mask, torch.zeros((), dtype=denoised.dtype, device=denoised.device), known - denoised)
            (gradient,) = torch.autograd.grad(0.5 * misfit.square().sum(), state)
        return (denoised - pull * gradient.to(denoised.dtype)).detach()

    return pulled


class _StepCounter:
    """Renumbers the per-segment callbacks into one running step count."""

    def __init__(self, callback: Optional[Callback]):
        self.callback, self.count = callback, 0

    def __call__(self, i, x, sigma, denoised):
        if self.callback is not None:
            self.callback(self.count, x, sigma, denoised)
        self.count += 1
