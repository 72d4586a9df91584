"""Every sentence `galgen inpaint` writes, HISTORY lines and notes, built from the facts of a fill.

The fill (galgen.flows.fill) records what happened as numbers (`FillFacts`, `Clipping`); the
functions here only word them, each sentence from a list of its parts. They name no command-line
option: the library's words are the same for a Python caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class Clipping:
    """Known pixels beside the mask brighter than any fill there can be (the normaliser's cap)."""

    bright: int  # known pixels within reach of the mask above the cap
    bands: str
    upper: tuple[float, ...]  # the cap per band at flux scale 1 (upper truncation x calibration factor)
    scaled: bool  # some tiles were filled scaled down, so the cap there is S times higher
    capped: Optional[int] = None  # filled pixels at the cap (None: not measured)
    lost: tuple[float, ...] = ()  # flux missing at least, per band, in ``unit``
    unit: str = ""


@dataclass(frozen=True)
class Walk:
    """How one tile was filled: the reverse walk and its guidance (the inpaint configuration's numbers)."""

    sampler: str
    eta: Optional[float]  # ddim only
    steps: int
    jump: int
    resample: int
    pull: float
    nfe: int  # network evaluations per tile and draw
    tiles: int
    waves: int
    size: int  # tile side in pixels


def history(walk: Walk, *, filled: int, bands: str, draws: int, pool_width: float, sky_known: bool) -> list[str]:
    """HISTORY lines saying what was filled and how; ``sky_known``: the model records its training sky RMS."""
    how = ["known pixels replaced at each step"]
    if walk.resample > 1:
        how.append("RePaint resampling (Lugmayr et al. 2022)")
    if walk.pull:
        how.append("gradient guidance (Chung et al. 2022)")
    nfe = f"{walk.nfe} NFE per tile"
    if walk.pull:
        nfe += f" (each with a backward pass: gradient guidance, pull {walk.pull:g})"
    sampler = walk.sampler if walk.eta is None else f"{walk.sampler} eta={walk.eta:g}"
    steps = [sampler, f"{walk.steps} steps", f"jump {walk.jump}", f"resample {walk.resample}", nfe,
             f"{walk.tiles} tile(s) of {walk.size} px filled in {walk.waves} wave(s)"]
    lines = [f"inpaint: filled {filled} masked pixels of bands {bands} by guided diffusion ({', '.join(how)}): "
             f"{', '.join(steps)}",
             "inpaint: pixels outside the MASK extension are the input's, unchanged"]
    if draws > 1:
        noise = "the model's training sky RMS" if sky_known else "the image's border RMS; the model records no sky RMS"
        lines.append(f"inpaint: primary image = mean of {draws} draws; STD extension = its error about the "
                     f"noise-free flux: the draws' variance pooled over the mask ({pool_width:g} px), times 1 + 1/K, "
                     f"less the variance of the sky noise a draw carries ({noise}); 0 outside the mask")
    return lines


def scale_note(image_scale: Optional[float], model_scale: Optional[float], *, tolerance: float) -> Optional[str]:
    """A sentence when the image's pixel scale (arcsec; None: no WCS) differs from the model's, else None."""
    if model_scale is None:
        return None
    if image_scale is None:
        return f"the image has no WCS; its pixels are taken to be the model's {model_scale:.3f} arcsec"
    ratio = image_scale / model_scale
    if abs(ratio - 1) <= tolerance:
        return None
    return (f"image pixel scale {image_scale:.3f} arcsec differs from the model's {model_scale:.3f} "
            f"(x{ratio:.2f}): the fill has the training data's structure per pixel, not per arcsec")


def grid_note(grid_shape: tuple[int, int], *, image_scale: float, model_scale: float) -> str:
    """The sentence saying that the fill ran on a model-scale grid of ``grid_shape`` (h, w) and came back."""
    h, w = grid_shape
    return (f"filled on a {w} x {h} px grid at the model's {model_scale:.3f} arcsec (the image's {image_scale:.3f}; "
            "reproject_exact, flux kept) and brought back by bicubic interpolation, the masked pixels only, matched "
            "to the image's own pixels at the mask's edges (thin-plate fill of the difference)")


def brightness_note(scales: Sequence[float], *, peak_fraction: float) -> Optional[str]:
    """A sentence when tiles were filled scaled down by S > 1 (`fill.flux_scales`), else None."""
    scaled = [s for s in scales if s > 1]
    if not scaled:
        return None
    return (f"{len(scaled)} of {len(scales)} tiles held known pixels brighter than the model's training galaxies "
            f"(up to {max(scaled) * peak_fraction:.3g} times its upper truncation): they were filled at 1/S of their "
            f"flux and scaled back, S up to {max(scaled):.3g}, so fills there are not capped")


def clipping_note(clipping: Optional[Clipping]) -> Optional[str]:
    """The sentence for known pixels beside the mask brighter than the cap (`fill.clipping`), else None."""
    if clipping is None:
        return None
    limits = ", ".join(f"{b} {a:.3g}" for b, a in zip(clipping.bands, clipping.upper))
    times = " times the tile's flux scale" if clipping.scaled else ""
    note = (f"{clipping.bright} known pixels beside the mask exceed the model's upper truncation ({limits}){times}: "
            "no fill can exceed it, so fills there are too faint")
    if clipping.capped is None:
        return note
    if not clipping.capped:
        return f"{note}; no filled pixel reached the cap"
    losses = ", ".join(f"{b} {v:.3g}" for b, v in zip(clipping.bands, clipping.lost))
    return f"{note}; {clipping.capped} filled pixels sit at the cap, missing at least {losses} {clipping.unit} in all"


def std_note(beyond: int, tiles: int, *, measured: tuple[float, float, float, float]) -> Optional[str]:
    """A sentence when the STD was written for tiles whose measured labels lie beyond the model's training range
    (``beyond`` of ``tiles``), else None. ``measured``: the STD's coverage of the truth at 1 and 2 STD on simulated
    galaxies beyond the range, then within it (docs/inpainting.md, "Galaxies the model never saw")."""
    if not beyond:
        return None
    out1, out2, in1, in2 = (f"{100 * v:.0f}" for v in measured)
    return (f"the STD may be too small where the labels lie beyond the training range ({beyond} of {tiles} tiles): on "
            f"simulated galaxies beyond it the truth fell within 1 / 2 STD in {out1} / {out2} % of the pixels, against "
            f"{in1} / {in2} % within it (68 / 95 % if calibrated); treat the STD there as a lower bound")
