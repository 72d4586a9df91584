"""`galgen inpaint`: fill occluded pixels (satellite trails, bad columns) of a FITS image by guided diffusion.

The way of one image: FITS image + mask file (`io.mask.read_mask`) -> `fill.plan` (the model's
bands, the checked mask, the tiles, the noise levels) -> `fill.fill_cube` (draws, tiles, the mean
and its error) -> the input with only the masked pixels replaced -> `output.write_output`
(primary image, MASK, STD) with the HISTORY of galgen.flows.inpaint_notes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from galgen.errors import InputError
from galgen.flows import inpaint_notes as words
from galgen.flows.fill import Fill, InpaintConfig, fill_cube, plan
from galgen.io.cube import Cube
from galgen.progress import Progress, stage
from galgen.uncertainty import POOL_WIDTH

if TYPE_CHECKING:
    from galgen.model import LoadedModel

__all__ = ["InpaintConfig", "InpaintResult", "run", "history"]


@dataclass
class InpaintResult:
    """What an `inpaint` run wrote."""

    output: Path
    filled_pixels: int
    bands: str
    tiles: int
    draws: int
    nfe_per_tile: int
    waves: int
    seed: int
    sampler: str
    seconds: float
    notes: list[str]
    precision: object = None  # the model's runtime.Precision: bf16 or float32, and why

    def to_dict(self) -> dict:
        return {"output": str(self.output), "filled_pixels": self.filled_pixels, "bands": str(self.bands),
                "tiles": self.tiles, "waves": self.waves, "draws": self.draws, "nfe_per_tile": self.nfe_per_tile,
                "seed": self.seed,
                "sampler": self.sampler, "seconds": round(self.seconds, 3), "notes": self.notes,
                "precision": None if self.precision is None else self.precision.to_dict()}


def run(image, out, *, mask=None, model: LoadedModel, config: InpaintConfig = InpaintConfig(), overwrite: bool = False,
        command: str = "galgen.flows.inpaint", on_progress: Progress | None = None) -> InpaintResult:
    """Fill ``image`` (a FITS file) where ``mask`` (a FITS file) and/or ``config.mask_nans`` say; write ``out``.

    The mask is the union of the mask file (non-zero = bad) and, with ``mask_nans``, the image's
    own bad pixels (NaN/inf, BLANK, a MASK/FLAGS extension, survey no-coverage zeros). Everything
    is read and checked before the first step. The output FITS (atomic) holds the filled image
    (the mean of the draws), a MASK extension of the filled pixels and, with draws > 1, STD, the
    fill's error about the noise-free flux (galgen.uncertainty). An existing ``out`` is replaced only with ``overwrite`` and only if galgen
    made it. Progress: stage "inpaint", in sampler steps.
    """
    from galgen.flows.output import write_output
    from galgen.io.atomic import check_output
    from galgen.io.cube import is_galgen_file, read_cube
    from galgen.io.mask import read_mask
    from galgen.io.write import WRITE_SUFFIXES

    check_output(out, overwrite=overwrite, made_by_galgen=is_galgen_file, suffixes=WRITE_SUFFIXES)
    if mask is None and not config.mask_nans:
        raise InputError("say which pixels to fill: a mask file and/or the image's own bad pixels",
                         options=("mask", "mask_nans"))
    cube = read_cube(image)
    bad = np.zeros(cube.shape, dtype=bool)
    if mask is not None:
        bad |= read_mask(mask, image=cube)
    if config.mask_nans and cube.mask is not None:
        bad |= cube.mask
    if model.meta.get("unit") and model.unit != cube.unit:
        raise InputError(f"image flux is in {cube.unit!r} but the model was trained on {model.unit!r}", path=image)
    planned = plan(cube, bad, model=model, config=config)
    start = time.perf_counter()
    advance = stage(on_progress, "inpaint", planned.total_steps(config))
    result = fill_cube(cube, bad, model=model, config=config, advance=advance, planned=planned)
    seconds = time.perf_counter() - start
    extras = [("MASK", result.mask)] + ([("STD", result.std)] if config.draws > 1 else [])
    write_output(
        Cube(data=result.data, bands=cube.bands, wcs=cube.wcs, unit=cube.unit, header=cube.header), out,
        model=model, command=command, inputs=[Path(image)] + ([Path(mask)] if mask is not None else []),
        history=history(result, config=config, model=model) + result.notes,
        extra_hdus=extras, seed=config.seed, sampler=config.sampler, steps=config.resolved_steps(), nfe=result.nfe,
        eta=config.sampler_options().get("eta"), resample=config.resample, jump=config.jump, draws=config.draws,
        guidance=config.guidance or None, pull=config.pull or None,
        tiles=result.tiles, tile_size=model.size, filled=int(result.mask.sum()),
    )
    return InpaintResult(output=Path(out), filled_pixels=int(result.mask.sum()), bands=model.bands,
                         tiles=result.tiles, waves=result.waves, draws=config.draws, nfe_per_tile=result.nfe,
                         seed=config.seed,
                         sampler=config.sampler, seconds=seconds, notes=result.notes, precision=model.precision)


def history(result: Fill, *, config: InpaintConfig, model: LoadedModel) -> list[str]:
    """The HISTORY lines of a fill made with ``config`` (`inpaint_notes.history`)."""
    walk = words.Walk(sampler=config.sampler, eta=config.sampler_options().get("eta"), steps=config.resolved_steps(),
                      jump=config.jump, resample=config.resample, pull=config.pull, nfe=result.nfe,
                      tiles=result.tiles, waves=result.waves, size=model.size)
    return words.history(walk, filled=int(result.mask.sum()), bands=model.bands, draws=config.draws,
                         pool_width=POOL_WIDTH, sky_known=model.sky_rms is not None)
