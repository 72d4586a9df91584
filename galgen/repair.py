"""Image-level inpainting: masks, tiles, draws and provenance around galgen.engine.inpaint (SCIENCE.md 5).

The flow: FITS image + mask -> the model's bands, in the model's [-1, 1] space -> guided diffusion
with RePaint resampling, tile by tile -> flux -> the input with only the masked pixels replaced.

Tiling. An image larger than the model's size (a 424 px DECaLS cutout for the 64 px model) is cut
into *cores* that partition it; each core is filled by one model-sized tile centred on it, so a
filled pixel always has at least ``margin`` pixels of context on every side inside the image.
Only cores holding masked pixels are run, in raster order, and each commits only its core:
a later tile sees the earlier fills as known pixels. This sequential scheme was chosen over
blending overlapping tiles because every filled pixel is then one draw from the model
conditioned on everything already known, so its noise texture and the per-pixel spread of the
draws stay right; averaging two independent draws in an overlap would halve the variance
there and leave a visible smooth band. The masked pixels a tile sees in its margins are filled
too but thrown away (their own core's tile fills them with more context).

Several draws (``draws``) give the per-pixel mean (the output) and standard deviation (an
uncertainty map), accumulated in flux units batch by batch (memory of one image).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from galgen.cube import Cube, describe, read_cube, write_cube
from galgen.errors import InputError

DEFAULT_SAMPLER = "ddim"  # with eta = 1, 50 steps, jump 5, resample 3: docs/samplers.md's measured best
SCALE_TOLERANCE = 0.01  # relative pixel-scale difference above which the user is told


@dataclass(frozen=True)
class InpaintSettings:
    """How the masked pixels are filled; every field ends up in the output's provenance."""

    sampler: str = DEFAULT_SAMPLER  # reverse-diffusion sampler (galgen.engine.samplers)
    steps: Optional[int] = None  # sampler steps; None = the sampler's default (ddim: 50)
    eta: float = 1.0  # ddim only: 1 draws the DDPM posterior noise (unbiased fills), 0 is the ODE
    jump: int = 5  # RePaint jump length j (steps descended before going back up)
    resample: int = 3  # RePaint resampling count r (1 = plain replacement guidance)
    draws: int = 1  # independent fills; the output is their mean, STD their spread
    seed: int = 0  # draw k uses noise seeded by (seed, k) only
    batch: int = 4  # draws run side by side on the device
    margin: Optional[int] = None  # context kept around each committed core; None = model size // 8

    def __post_init__(self):
        for name in ("jump", "resample", "draws", "batch"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"steps must be >= 1, got {self.steps}")
        if self.margin is not None and self.margin < 0:
            raise InputError(f"margin must be >= 0, got {self.margin}")

    def sampler_options(self) -> dict:
        """Keyword options the engine passes to the sampler (eta for ddim only)."""
        return {"eta": self.eta} if self.sampler == "ddim" else {}

    def resolved_steps(self) -> int:
        from galgen.engine.samplers import get_sampler

        return self.steps or get_sampler(self.sampler).default_steps


# ----------------------------------------------------------------------------- masks


def read_mask(path, *, image: Cube) -> np.ndarray:
    """A mask file as a boolean (band, y, x) array over the image's bands: non-zero or NaN = bad.

    A 2-D mask (one plane) applies to every band; a 3-D mask needs one plane per band, matched
    by name when its header names them. Its shape, and its WCS when both files have one, must
    be the image's.
    """
    path = Path(path)
    info = describe(path)
    if info.get("kind") != "image":
        raise InputError("the mask file holds no image", path=path)
    planes, named = info["shape"][0], "?" not in info["bands"]
    if planes == 1:
        bands = None if named else "m"
    elif named:
        missing = [b for b in image.bands if b not in info["bands"]]
        if missing:
            raise InputError(f"mask names bands {info['bands']!r}, the image has {image.bands!r}", path=path)
        bands = image.bands
    elif planes == len(image.bands):
        bands = image.bands
    else:
        raise InputError(f"mask has {planes} planes, the image {len(image.bands)} bands ({image.bands})", path=path)
    cube = read_cube(path, bands=bands, zero_is_missing=False)
    if cube.shape[1:] != image.shape[1:]:
        raise InputError(f"mask is {cube.shape[1]} x {cube.shape[2]} pixels, the image "
                         f"{image.shape[1]} x {image.shape[2]}", path=path)
    if cube.wcs is not None and image.wcs is not None and not _same_sky(cube, image):
        raise InputError("mask and image have different WCS (not the same pixel grid)", path=path)
    bad = cube.data != 0
    if cube.mask is not None:
        bad |= cube.mask  # NaN in a mask file counts as bad
    return np.broadcast_to(bad, image.shape).copy()


def _same_sky(a: Cube, b: Cube) -> bool:
    """Do the corner pixels of two equally shaped images land on the same sky positions (1e-3 px)?"""
    ny, nx = a.shape[1:]
    corners = np.array([[0, 0], [nx - 1, 0], [0, ny - 1], [nx - 1, ny - 1]], dtype=float)
    tolerance = 1e-3 * (a.pixel_scale or 1.0) / 3600.0  # degrees
    return bool(np.allclose(a.wcs.all_pix2world(corners, 0), b.wcs.all_pix2world(corners, 0), rtol=0, atol=tolerance))


def check_mask(mask: np.ndarray, *, image: Cube, bands: str) -> np.ndarray:
    """Validate a (band, y, x) mask for filling ``bands``; returns it restricted to those bands.

    Empty, all-masked, or masked pixels in a band the model cannot fill are InputErrors; so are
    non-finite image pixels left outside the mask (the network cannot condition on them).
    """
    where = f" ({image.path})" if image.path else ""
    missing = [b for b in bands if b not in image.bands]
    if missing:
        raise InputError(f"the image{where} has bands {image.bands!r}; the model needs {bands!r}")
    rows = [image.bands.index(b) for b in bands]
    others = [i for i in range(len(image.bands)) if i not in rows]
    if others and mask[others].any():
        names = "".join(image.bands[i] for i in others)
        raise InputError(f"masked pixels in band(s) {names!r}, which the model ({bands}) cannot fill")
    chosen = mask[rows]
    if not chosen.any():
        raise InputError("the mask selects no pixel: nothing to fill")
    if chosen.all():
        raise InputError("the mask covers every pixel: nothing is left to condition on")
    unusable = ~np.isfinite(image.data[rows]) & ~chosen
    if unusable.any():
        raise InputError(f"{int(unusable.sum())} NaN/inf image pixels lie outside the mask{where}; "
                         "add them to the mask (--mask-nans)")
    return chosen


# ----------------------------------------------------------------------------- tiles


@dataclass(frozen=True)
class Tile:
    """A model-sized window (top-left y0, x0) and the core of it whose fills are kept."""

    y0: int
    x0: int
    core_y: slice  # image rows committed by this tile
    core_x: slice  # image columns committed by this tile


def axis_cores(length: int, *, size: int, margin: int) -> list[tuple[int, int, int]]:
    """Cores partitioning one axis of ``length`` pixels: (core start, core end, tile start).

    n = ceil((length - 2 margin) / (size - 2 margin)) cores of near-equal length, the two end ones
    stretched to the image edge; each tile (``size`` long, inside the image) is centred on its core
    and so keeps ``margin`` pixels of context beyond it wherever the image goes on. ``length`` >= size.
    """
    margin = min(margin, (size - 1) // 2)
    core = size - 2 * margin
    count = max(1, math.ceil((length - 2 * margin) / core))
    bounds = [0] + [margin + round(k * (length - 2 * margin) / count) for k in range(1, count)] + [length]
    cores = []
    for start, end in zip(bounds, bounds[1:]):
        tile = start - (size - (end - start)) // 2
        cores.append((start, end, min(max(tile, 0), length - size)))
    return cores


def plan_tiles(masked: np.ndarray, *, size: int, margin: int) -> list[Tile]:
    """The tiles, in raster order, whose cores hold masked pixels of a (y, x) boolean map (>= size)."""
    tiles = []
    for ys, ye, ty in axis_cores(masked.shape[0], size=size, margin=margin):
        for xs, xe, tx in axis_cores(masked.shape[1], size=size, margin=margin):
            if masked[ys:ye, xs:xe].any():
                tiles.append(Tile(ty, tx, slice(ys, ye), slice(xs, xe)))
    return tiles


# ----------------------------------------------------------------------------- filling


@dataclass
class InpaintResult:
    """Filled flux of the whole image and what it took."""

    data: np.ndarray  # float32 (band, y, x): the input outside the mask, bit for bit; the mean fill inside
    std: np.ndarray  # float32 (band, y, x): per-pixel std of the draws inside the mask, 0 outside
    mask: np.ndarray  # bool (band, y, x): the pixels filled
    tiles: int  # model-sized tiles run per draw
    nfe: int  # network evaluations per tile and draw
    notes: list[str] = field(default_factory=list)


def total_steps(tiles: int, settings: InpaintSettings) -> int:
    """Sampler steps a run takes (a progress bar's total): tiles x RePaint steps x draw batches."""
    from galgen.engine.inpaint import repaint_steps

    batches = math.ceil(settings.draws / settings.batch)
    return tiles * batches * repaint_steps(settings.resolved_steps(), jump=settings.jump, resample=settings.resample)


def scale_note(image: Cube, model) -> Optional[str]:
    """A sentence when the image's pixel scale differs from the model's training scale, else None."""
    if model.pixel_scale is None:
        return None
    if image.pixel_scale is None:
        return f"the image has no WCS; its pixels are taken to be the model's {model.pixel_scale:.3f} arcsec"
    ratio = image.pixel_scale / model.pixel_scale
    if abs(ratio - 1) <= SCALE_TOLERANCE:
        return None
    return (f"image pixel scale {image.pixel_scale:.3f} arcsec differs from the model's {model.pixel_scale:.3f} "
            f"(x{ratio:.2f}): the fill has the training data's structure per pixel, not per arcsec")


def clipping_note(flux: np.ndarray, mask: np.ndarray, *, model, reach: int = 2) -> Optional[str]:
    """A sentence when known pixels next to the mask exceed the model's upper truncation, else None.

    ``flux`` and ``mask`` (C, H, W) in the model's bands. The normaliser clips at its upper limit A
    (times the calibration factor), so fills beside such pixels (a trail across a bright galaxy
    core) are capped at A and come out too faint there.
    """
    from scipy.ndimage import binary_dilation

    upper = np.asarray(model.normalizer.upper) * model.factors
    ring = binary_dilation(mask, structure=np.ones((1, 2 * reach + 1, 2 * reach + 1), dtype=bool)) & ~mask
    bright = ring & (flux > upper[:, None, None])
    if not bright.any():
        return None
    limits = ", ".join(f"{b} {a:.3g}" for b, a in zip(model.bands, upper))
    return (f"{int(bright.sum())} known pixels beside the mask exceed the model's upper truncation ({limits}): "
            "fills there are capped at it and too faint")


def tiles_for(image: Cube, mask: np.ndarray, *, model, settings: InpaintSettings) -> list[Tile]:
    """The tiles `inpaint_cube` will run for this (model-band) mask."""
    size = model.size
    padded = np.zeros((max(image.shape[1], size), max(image.shape[2], size)), dtype=bool)
    padded[: image.shape[1], : image.shape[2]] = mask.any(axis=0)
    margin = size // 8 if settings.margin is None else settings.margin
    return plan_tiles(padded, size=size, margin=margin)


def inpaint_cube(image: Cube, mask: np.ndarray, *, model, settings: InpaintSettings = InpaintSettings(),
                 on_step: Optional[Callable[[], None]] = None) -> InpaintResult:
    """Fill the masked pixels of ``image`` with ``model`` (a pipeline.LoadedModel), draw by draw.

    ``mask`` is boolean (band, y, x) over the image's bands (`read_mask`, or the cube's own mask).
    Only the model's bands are filled (matched by name). Flux goes to model space with the model's
    calibration factors divided out and its normaliser applied (LoadedModel.to_model), and back.
    ``on_step()`` is called once per sampler step (see `total_steps`).
    """
    import torch

    from galgen.engine.inpaint import RunningMoments, repaint_nfe
    from galgen.engine.runtime import ImageNoise
    from galgen.engine.samplers import select_sigmas

    rows = [image.bands.index(b) for b in model.bands]
    chosen = check_mask(mask, image=image, bands=model.bands)
    steps = settings.resolved_steps()
    sigmas = select_sigmas(model.denoiser.sigmas.cpu(), settings.sampler, steps)
    nfe = repaint_nfe(settings.sampler, len(sigmas) - 1, jump=settings.jump, resample=settings.resample)
    tiles = tiles_for(image, chosen, model=model, settings=settings)

    ny, nx = image.shape[1:]
    height, width = max(ny, model.size), max(nx, model.size)
    # an image smaller than the model is padded with masked pixels, filled and cut off again
    pending = np.ones((len(rows), height, width), dtype=bool)
    pending[:, :ny, :nx] = chosen
    flux = np.zeros((len(rows), height, width), dtype=np.float32)
    flux[:, :ny, :nx] = np.where(chosen, 0.0, image.data[rows])
    known = torch.from_numpy(model.to_model(flux)).to(model.device)
    pending_t = torch.from_numpy(pending).to(model.device)

    step = _step_callback(on_step)
    moments = RunningMoments()
    for first in range(0, settings.draws, settings.batch):
        indices = list(range(first, min(first + settings.batch, settings.draws)))
        noise = ImageNoise(settings.seed, indices, device=model.device)
        state = known.unsqueeze(0).repeat(len(indices), 1, 1, 1)
        todo = pending_t.clone()
        for tile in tiles:
            state, todo = _fill_tile(state, todo, tile, model=model, sigmas=sigmas, settings=settings, noise=noise,
                                     callback=step)
        moments.update(torch.from_numpy(model.to_flux(state[:, :, :ny, :nx])))

    data = image.data.copy()
    data[rows] = np.where(chosen, moments.mean.numpy().astype(np.float32), image.data[rows])
    std = np.zeros(image.shape, dtype=np.float32)
    std[rows] = np.where(chosen, moments.std.numpy().astype(np.float32), 0.0)
    filled = np.zeros(image.shape, dtype=bool)
    filled[rows] = chosen
    notes = [scale_note(image, model), clipping_note(image.data[rows], chosen, model=model)]
    return InpaintResult(data=data, std=std, mask=filled, tiles=len(tiles), nfe=nfe, notes=[n for n in notes if n])


def inpaint_stamps(images: np.ndarray, masks: np.ndarray, *, model, settings: InpaintSettings = InpaintSettings(),
                   on_step: Optional[Callable[[], None]] = None) -> np.ndarray:
    """Fill many model-sized stamps at once: (N, C, size, size) flux in the model's bands -> filled flux.

    One draw per stamp, all stamps in one batch (the fast path for catalogues of cutouts and for
    benchmarks); stamp n uses the noise of draw n of ``settings.seed``, so stamp 0 matches
    `inpaint_cube` on that stamp alone. ``masks`` (N, C or 1, size, size) boolean, True = fill.
    Outside the masks the result equals ``images`` bit for bit.
    """
    import torch

    from galgen.engine.inpaint import inpaint
    from galgen.engine.runtime import ImageNoise
    from galgen.engine.samplers import select_sigmas

    images = np.asarray(images, dtype=np.float32)
    masks = np.broadcast_to(np.asarray(masks, dtype=bool), images.shape).copy()
    if images.shape[1:] != (len(model.bands), model.size, model.size):
        raise InputError(f"stamps must be (N, {len(model.bands)}, {model.size}, {model.size}), got {images.shape}")
    sigmas = select_sigmas(model.denoiser.sigmas.cpu(), settings.sampler, settings.resolved_steps())
    known = torch.from_numpy(model.to_model(np.where(masks, 0.0, images))).to(model.device)
    filled = inpaint(model.denoise, known, torch.from_numpy(masks).to(model.device), sigmas,
                     sampler=settings.sampler, jump=settings.jump, resample=settings.resample,
                     noise=ImageNoise(settings.seed, range(len(images)), device=model.device),
                     callback=_step_callback(on_step), **settings.sampler_options())
    return np.where(masks, model.to_flux(filled), images)


def _step_callback(on_step: Optional[Callable[[], None]]):
    """The engine's callback(i, x, sigma, denoised) reduced to ``on_step()`` (a progress bar's advance)."""

    def callback(*_):
        if on_step is not None:
            on_step()

    return callback


def _fill_tile(state, todo, tile: Tile, *, model, sigmas, settings: InpaintSettings, noise, callback):
    """Inpaint one tile of a batch of draws and commit its core; returns the new (state, todo)."""
    from galgen.engine.inpaint import inpaint

    size = model.size
    ys, xs = slice(tile.y0, tile.y0 + size), slice(tile.x0, tile.x0 + size)
    window = inpaint(model.denoise, state[:, :, ys, xs], todo[:, ys, xs], sigmas, sampler=settings.sampler,
                     jump=settings.jump, resample=settings.resample, noise=noise, callback=callback,
                     **settings.sampler_options())
    cy = slice(tile.core_y.start - tile.y0, tile.core_y.stop - tile.y0)
    cx = slice(tile.core_x.start - tile.x0, tile.core_x.stop - tile.x0)
    state[:, :, tile.core_y, tile.core_x] = window[:, :, cy, cx].to(state.dtype)
    todo[:, tile.core_y, tile.core_x] = False
    return state, todo


# ----------------------------------------------------------------------------- files


@dataclass
class InpaintJob:
    """Everything checked and loaded before the work starts (so a progress bar knows its total)."""

    image: Cube
    mask: np.ndarray  # bool (band, y, x) over the image's bands
    model: object  # pipeline.LoadedModel
    settings: InpaintSettings
    tiles: int
    inputs: list[Path]

    @property
    def total_steps(self) -> int:
        return total_steps(self.tiles, self.settings)


def prepare(image_path, *, mask_path=None, mask_nans: bool = False, model=None, device: str = "auto",
            settings: InpaintSettings = InpaintSettings()) -> InpaintJob:
    """Read and check the image and its mask, load the model: an InpaintJob ready to `run`.

    The mask is the union of ``mask_path`` (non-zero = bad) and, with ``mask_nans``, the image's
    own bad pixels (NaN/inf, BLANK, a MASK/FLAGS extension, survey no-coverage zeros).
    """
    from galgen.engine.samplers import get_sampler
    from galgen.pipeline import load_model

    if mask_path is None and not mask_nans:
        raise InputError("say which pixels to fill: --mask FILE and/or --mask-nans")
    get_sampler(settings.sampler)  # an unknown name fails before anything is read
    image = read_cube(image_path)
    mask = np.zeros(image.shape, dtype=bool)
    if mask_path is not None:
        mask |= read_mask(mask_path, image=image)
    if mask_nans and image.mask is not None:
        mask |= image.mask
    loaded = load_model(model, device=device)
    unit = loaded.meta.get("unit")
    if unit and unit != image.unit:
        raise InputError(f"image flux is in {image.unit!r} but the model was trained on {unit!r}", path=image_path)
    chosen = check_mask(mask, image=image, bands=loaded.bands)
    tiles = tiles_for(image, chosen, model=loaded, settings=settings)
    inputs = [Path(image_path)] + ([Path(mask_path)] if mask_path is not None else [])
    return InpaintJob(image=image, mask=mask, model=loaded, settings=settings, tiles=len(tiles), inputs=inputs)


def run(job: InpaintJob, output, *, command: str, on_step: Optional[Callable[[], None]] = None) -> dict:
    """Fill, then write the output FITS atomically (primary: filled image; MASK; STD with draws > 1).

    Returns a JSON-safe summary (output, filled pixels, tiles, NFE, seconds, notes).
    """
    from galgen.provenance import make_provenance

    start = time.perf_counter()
    result = inpaint_cube(job.image, job.mask, model=job.model, settings=job.settings, on_step=on_step)
    seconds = time.perf_counter() - start
    settings, model = job.settings, job.model
    provenance = make_provenance(
        command=command, inputs=job.inputs, **model.provenance(), seed=settings.seed, sampler=settings.sampler,
        steps=settings.resolved_steps(), nfe=result.nfe, eta=settings.sampler_options().get("eta"),
        resample=settings.resample, jump=settings.jump, draws=settings.draws, device=str(model.device),
        tiles=result.tiles, tile_size=model.size, filled=int(result.mask.sum()),
        normaliser=model.normalizer.to_dict(),
        calibration=dict(zip(model.bands, model.factors.tolist())) if model.calibrated else None,
    )
    history = describe_fill(result, settings=settings, bands=model.bands, size=model.size) + result.notes
    extras = [("MASK", result.mask)] + ([("STD", result.std)] if settings.draws > 1 else [])
    cube = Cube(data=result.data, bands=job.image.bands, wcs=job.image.wcs, unit=job.image.unit,
                header=job.image.header)
    write_cube(cube, output, provenance=provenance, history=history, extra_hdus=extras)
    return {"output": str(output), "filled_pixels": int(result.mask.sum()), "bands": model.bands,
            "tiles": result.tiles, "draws": settings.draws, "nfe_per_tile": result.nfe, "seed": settings.seed,
            "sampler": settings.sampler, "seconds": round(seconds, 3), "notes": result.notes}


def describe_fill(result: InpaintResult, *, settings: InpaintSettings, bands: str, size: int) -> list[str]:
    """HISTORY lines saying what was filled and how."""
    eta = f" eta={settings.eta:g}" if settings.sampler == "ddim" else ""
    lines = [
        f"inpaint: filled {int(result.mask.sum())} masked pixels of bands {bands} by guided diffusion with "
        f"RePaint resampling (Lugmayr et al. 2022): {settings.sampler}{eta}, {settings.resolved_steps()} steps, "
        f"jump {settings.jump}, resample {settings.resample}, {result.nfe} NFE per tile, "
        f"{result.tiles} tile(s) of {size} px filled in sequence",
        "inpaint: pixels outside the MASK extension are the input's, unchanged",
    ]
    if settings.draws > 1:
        lines.append(f"inpaint: primary image = mean of {settings.draws} draws; STD extension = their "
                     "per-pixel standard deviation (0 outside the mask)")
    return lines
