"""Filling the masked pixels of an image with a loaded model: the work of `galgen inpaint`.

`plan` checks the mask and works out the model-sized tiles (galgen.tiles), the network batches and,
for an image whose pixel scale is not the model's, the model-scale grid the fill runs on. `fill_cube`
then runs, draw by draw and wave by wave, the flux through `LoadedModel.to_model` into [-1, 1],
guided sampling (galgen.engine.inpaint), `LoadedModel.to_flux` back; the mean of the draws
(metrics.moments) is the fill and its error about the noise-free flux the STD (galgen.uncertainty).
A conditional model is told the galaxy's own labels (`conditioning.labels_of`), or nothing where they lie beyond its
training range (`conditioning.unconditional_beyond`). `fill_stamps` fills
many model-sized stamps in one batch. The facts of a fill are worded in galgen.flows.inpaint_notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from galgen import conditioning
from galgen.bands import Bands
from galgen.errors import InputError
from galgen.flows import inpaint_notes as words
from galgen.io.cube import Cube
from galgen.io.regrid import ScaleGrid
from galgen.tiles import Tile, plan_tiles, waves
from galgen.uncertainty import fill_error, noise_rms

if TYPE_CHECKING:
    from galgen.model import LoadedModel

CPU_WINDOWS = 32  # windows (tiles x draws) per network call on the CPU: batch 16-24 already gives its best rate
GPU_WINDOW_PIXELS = 2**20  # ... and on a GPU, in pixels: 256 windows at 64 px

DEFAULT_SAMPLER = "ddim"  # with eta = 1, DEFAULT_STEPS steps, pull DEFAULT_PULL, no resampling: docs/inpainting.md's
DEFAULT_STEPS = 15        # measured best at N = 200 (as accurate as 50 steps with pull 10, the same coverage, 3/10 of
DEFAULT_PULL = 5.0        # the network passes; 10 steps under-covers at 2 sigma: benchmarks/results/inpainting.md)
SCALE_TOLERANCE = 0.01  # relative pixel-scale difference above which the user is told
STD_BEYOND_RANGE = (0.426, 0.678, 0.624, 0.870)  # coverage at 1 / 2 STD of the 4-draw STD on population A (N = 200):
                                               # stamps whose labels lie beyond the model's range, then within it
                                               # (docs/inpainting.md, "Galaxies the model never saw")
PEAK_FRACTION = 0.15  # a window whose peak exceeds this fraction of the upper truncation is scaled down to it: about
                      # the 95th percentile of the bundled model's training galaxies (docs/inpainting.md)

@dataclass(frozen=True)
class InpaintConfig:
    """How the masked pixels are filled; every field ends up in the output's provenance."""

    sampler: str = DEFAULT_SAMPLER  # reverse-diffusion sampler (galgen.engine.samplers)
    steps: Optional[int] = None  # sampler steps; None = DEFAULT_STEPS for ddim, another sampler's own default
    eta: float = 1.0  # ddim only: 1 draws the DDPM posterior noise (unbiased fills), 0 is the ODE
    jump: int = 5  # RePaint jump length j (steps descended before going back up)
    resample: int = 1  # RePaint resampling count r (1 = none; the pull replaced it: docs/inpainting.md)
    pull: float = DEFAULT_PULL  # gradient guidance: denoised estimates pulled onto the known pixels (engine.inpaint; 0 = off)
    draws: int = 4  # independent fills; the output is their mean, STD its error (galgen.uncertainty; docs/inpainting.md: the mean of
                    # 4 has 0.75x biharmonic's error against noise-free truth, one draw 1.09x)
    seed: int = 0  # draw k uses noise seeded by (seed, k) only (its later tiles: (seed, k, tile))
    batch: int = 4  # draws run side by side on the device
    margin: Optional[int] = None  # context kept around each committed core; None = model size // 8
    mask_nans: bool = False  # also fill the image's own bad pixels (NaN/inf, BLANK, MASK extension, no coverage)
    guidance: float = 0.0  # conditional model: classifier-free guidance weight w on the labels measured around the mask
    native_scale: bool = False  # fill on the image's own pixels even where its pixel scale is not the model's

    def __post_init__(self):
        from galgen.engine.samplers import get_sampler

        for name in ("jump", "resample", "draws", "batch"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.steps is not None and self.steps < 1:
            raise InputError(f"steps must be >= 1, got {self.steps}")
        if self.margin is not None and self.margin < 0:
            raise InputError(f"margin must be >= 0, got {self.margin}")
        for name in ("guidance", "pull"):
            if not getattr(self, name) >= 0:  # NaN fails this too
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        get_sampler(self.sampler)  # an unknown name fails before anything is read

    def sampler_options(self) -> dict:
        """Keyword options the engine passes to the sampler (eta for ddim only)."""
        return {"eta": self.eta} if self.sampler == "ddim" else {}

    def resolved_steps(self) -> int:
        from galgen.engine.samplers import get_sampler

        if self.steps:
            return self.steps
        return DEFAULT_STEPS if self.sampler == DEFAULT_SAMPLER else get_sampler(self.sampler).default_steps

@dataclass
class Fill:
    """Filled flux of the whole image and what it took."""

    data: np.ndarray  # float32 (band, y, x): the input outside the mask, bit for bit; the mean fill inside
    std: np.ndarray  # float32 (band, y, x): the fill's error about the noise-free flux (`uncertainty.fill_error`)
                     # inside the mask, 0 outside
    mask: np.ndarray  # bool (band, y, x): the pixels filled
    tiles: int  # model-sized tiles run per draw
    nfe: int  # network evaluations per tile and draw
    notes: list[str] = field(default_factory=list)  # what the user should know (galgen.flows.inpaint_notes)
    waves: int = 1  # network batches of tiles run one after another (`tiles.waves`, split to CPU_WINDOWS)

@dataclass
class Plan:
    """What a fill will do, worked out once before it starts (the progress bar's total too)."""

    rows: list[int]  # image planes of the model's bands, in the model's order
    mask: np.ndarray  # bool (model band, y, x): the pixels to fill
    tiles: list[Tile]
    steps: int  # sampler steps of one tile's walk, RePaint's returns included
    nfe: int  # network evaluations per tile and draw
    waves: list[list[int]] = field(default_factory=list)  # indices of the tiles of each network batch, in turn
    grid: Optional[ScaleGrid] = None  # where the fill runs on a model-scale grid (`on_model_scale`), that grid ...
    coarse: Optional[Cube] = None  # ... the image's model bands on it ...
    coarse_mask: Optional[np.ndarray] = None  # ... and the pixels to fill there (model band, h, w)

    def total_steps(self, config: InpaintConfig) -> int:
        """Sampler steps the whole fill takes: waves x steps x draw batches."""
        return len(self.waves) * math.ceil(config.draws / config.batch) * self.steps

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
        names = str(Bands(image.bands[i] for i in others))
        raise InputError(f"masked pixels in band(s) {names!r}, which the model ({bands}) cannot fill")
    chosen = mask[rows]
    if not chosen.any():
        raise InputError("the mask selects no pixel: nothing to fill")
    if chosen.all():
        raise InputError("the mask covers every pixel: nothing is left to condition on")
    unusable = ~np.isfinite(image.data[rows]) & ~chosen
    if unusable.any():
        raise InputError(f"{int(unusable.sum())} NaN/inf image pixels lie outside the mask{where}; "
                         "add them to the mask", options="mask_nans")
    return chosen

def plan(image: Cube, mask: np.ndarray, *, model: LoadedModel, config: InpaintConfig) -> Plan:
    """Check ``mask`` (bool (band, y, x) over the image's bands) and work out the grid, tiles and steps."""
    chosen = check_mask(mask, image=image, bands=model.bands)
    rows = [image.bands.index(b) for b in model.bands]
    if not on_model_scale(image, model, config):
        return _plan_tiles(rows, chosen, model=model, config=config)
    grid = ScaleGrid.covering(image.wcs, image.shape[1:], image_scale=image.pixel_scale, pixel_scale=model.pixel_scale,
                              path=image.path, options="native_scale")
    flux, unknown = grid.onto(image.data[rows], chosen.any(axis=0))
    coarse = Cube(data=flux, bands=model.bands, wcs=grid.wcs, unit=image.unit)
    coarse_mask = check_mask(np.broadcast_to(unknown, flux.shape).copy(), image=coarse, bands=model.bands)
    inner = _plan_tiles(list(range(len(rows))), coarse_mask, model=model, config=config)
    return replace(inner, rows=rows, mask=chosen, grid=grid, coarse=coarse, coarse_mask=coarse_mask)


def _plan_tiles(rows: list[int], chosen: np.ndarray, *, model: LoadedModel, config: InpaintConfig) -> Plan:
    """The tiles, steps and network batches of a fill on the image's own pixels."""
    from galgen.engine.inpaint import repaint_nfe, repaint_steps

    steps = config.resolved_steps()
    margin = model.size // 8 if config.margin is None else config.margin
    tiles = plan_tiles(chosen.any(axis=0), size=model.size, margin=margin)
    return Plan(rows=rows, mask=chosen, tiles=tiles,
                steps=repaint_steps(steps, jump=config.jump, resample=config.resample),
                nfe=repaint_nfe(config.sampler, steps, jump=config.jump, resample=config.resample),
                waves=_network_batches(waves(tiles, size=model.size), model=model, draws=min(config.batch, config.draws)))

def on_model_scale(image: Cube, model: LoadedModel, config: InpaintConfig) -> bool:
    """Whether ``image`` is filled on a grid at the model's pixel scale: both scales known and more than
    SCALE_TOLERANCE apart, and the user did not ask for ``native_scale``."""
    if config.native_scale or image.wcs is None or not image.pixel_scale or not model.pixel_scale:
        return False
    return abs(image.pixel_scale / model.pixel_scale - 1) > SCALE_TOLERANCE

def _network_batches(groups: list[list[int]], *, model: LoadedModel, draws: int) -> list[list[int]]:
    """The waves of tiles split so that one network call holds at most CPU_WINDOWS windows (tiles x draws;
    on a GPU GPU_WINDOW_PIXELS worth): memory stays flat however many tiles a wave has (a mask over a
    whole survey image, say). The parts of a wave do not see each other either."""
    tiles = max(1, _windows_per_call(model) // draws)
    return [wave[i:i + tiles] for wave in groups for i in range(0, len(wave), tiles)]

def _windows_per_call(model: LoadedModel) -> int:
    """Model-sized windows one network call takes: CPU_WINDOWS on the CPU, GPU_WINDOW_PIXELS worth on a GPU."""
    return max(CPU_WINDOWS, GPU_WINDOW_PIXELS // model.size**2) if model.device.type == "cuda" else CPU_WINDOWS

def fill_cube(image: Cube, mask: np.ndarray, *, model: LoadedModel, config: InpaintConfig = InpaintConfig(),
              advance: Optional[Callable[[], None]] = None, planned: Plan | None = None) -> Fill:
    """Fill the masked pixels of ``image`` with ``model``, draw by draw.

    ``mask`` is boolean (band, y, x) over the image's bands (`io.mask.read_mask`, or the cube's own
    mask). Only the model's bands are filled (matched by name). Flux goes to model space with the
    model's calibration factors divided out and its normaliser applied (LoadedModel.to_model), and
    back. An image at another pixel scale is filled on the model-scale grid of the plan and brought
    back (`_back_from_grid`). ``advance()`` is called once per sampler step (`Plan.total_steps` in all).
    """
    planned = planned or plan(image, mask, model=model, config=config)
    if planned.grid is None:
        return _fill_pixels(image, planned, model=model, config=config, advance=advance)
    on_grid = replace(planned, grid=None, rows=list(range(len(planned.rows))), mask=planned.coarse_mask)
    inner = _fill_pixels(planned.coarse, on_grid, model=model, config=config, advance=advance)
    return _back_from_grid(image, planned, inner, model=model)


def _fill_pixels(image: Cube, planned: Plan, *, model: LoadedModel, config: InpaintConfig, advance) -> Fill:
    """`fill_cube` on the image's own pixels, tile by tile in the plan's waves."""
    import torch

    from galgen.metrics.moments import RunningMoments

    rows, chosen = planned.rows, planned.mask
    sigmas = model.sigmas(config.sampler, config.resolved_steps())
    ny, nx = image.shape[1:]
    height, width = max(ny, model.size), max(nx, model.size)
    # an image smaller than the model is padded with masked pixels, filled and cut off again
    pending = np.ones((len(rows), height, width), dtype=bool)
    pending[:, :ny, :nx] = chosen
    flux = np.zeros((len(rows), height, width), dtype=np.float32)
    flux[:, :ny, :nx] = np.where(chosen, 0.0, image.data[rows])
    pending_t = torch.from_numpy(pending).to(model.device)

    callback = (lambda *_: advance()) if advance is not None else None
    windows = [t.window(model.size) for t in planned.tiles]
    scales = [float(flux_scales(model, flux[None, :, ys, xs], pending[None, :, ys, xs])[0]) for ys, xs in windows]
    measured = [conditioning.labels_of(model, flux[None, :, ys, xs] / scale, unknown=pending[None, :, ys, xs],
                                       pixel_scale=image.pixel_scale) for (ys, xs), scale in zip(windows, scales)]
    labels = [conditioning.unconditional_beyond(model.conditions, row) for row in measured]
    moments = RunningMoments()
    for first in range(0, config.draws, config.batch):
        draws = list(range(first, min(first + config.batch, config.draws)))
        state = np.repeat(flux[None], len(draws), axis=0)
        todo = pending_t.clone()
        for wave in planned.waves:
            _fill_wave(state, todo, {t: planned.tiles[t] for t in wave}, draws, model=model, sigmas=sigmas,
                       config=config, callback=callback, labels=labels, scales=scales)
        moments.add(state[:, :, :ny, :nx])

    data = image.data.copy()
    data[rows] = np.where(chosen, moments.mean.astype(np.float32), image.data[rows])
    cap = np.ones((height, width))  # the flux scale each pixel was filled at
    for tile, scale in zip(planned.tiles, scales):
        cap[tile.core_y, tile.core_x] = scale
    std = np.zeros(image.shape, dtype=np.float32)
    if config.draws > 1:  # the fill's error about the noise-free flux; a draw's noise is the sky's times its scale
        noise = draw_noise(model, image.data[rows], chosen)[:, None, None] * cap[:ny, :nx]
        std[rows] = fill_error(moments.std**2, chosen, noise, draws=config.draws)
    filled = np.zeros(image.shape, dtype=bool)
    filled[rows] = chosen
    told = [row for row in measured if row is not None]
    notes = [words.scale_note(image.pixel_scale, model.pixel_scale, tolerance=SCALE_TOLERANCE),
             words.brightness_note(scales, peak_fraction=PEAK_FRACTION),
             words.clipping_note(clipping(image.data[rows], chosen, model=model, filled=data[rows],
                                          scales=cap[:ny, :nx])),
             conditioning.told_note(model.conditions, np.concatenate(told), where="around the mask",
                                    parts="tiles", unconditional_beyond=True) if told else None,
             words.std_note(sum(bool(conditioning.outside(model.conditions, row[np.isfinite(row).all(axis=1)]))
                                for row in told), len(told), measured=STD_BEYOND_RANGE)
             if told and config.draws > 1 else None]
    return Fill(data=data, std=std, mask=filled, tiles=len(planned.tiles), nfe=planned.nfe,
                notes=[n for n in notes if n], waves=len(planned.waves))


def _back_from_grid(image: Cube, planned: Plan, inner: Fill, *, model: LoadedModel) -> Fill:
    """A fill made on the model-scale grid of ``planned``, brought back to the image's pixels (the masked ones only).

    On its own pixels a finer image shows the model a galaxy larger and smoother per pixel than any it
    learnt (docs/inpainting.md: 29 % of a real core within 10 % at 0.1 arcsec, 61 % this way).
    """
    grid, rows, chosen = planned.grid, planned.rows, planned.mask
    data = image.data.copy()
    data[rows] = np.where(chosen, matched_at_edges(grid.back(inner.data), image.data[rows], chosen), image.data[rows])
    std = np.zeros(image.shape, dtype=np.float32)
    std[rows] = np.where(chosen, grid.back(inner.std, order="nearest-neighbor"), 0.0)
    filled = np.zeros(image.shape, dtype=bool)
    filled[rows] = chosen
    note = words.grid_note(grid.shape, image_scale=image.pixel_scale, model_scale=model.pixel_scale)
    return Fill(data=data, std=std, mask=filled, tiles=inner.tiles, nfe=inner.nfe, notes=[note] + inner.notes,
                waves=inner.waves)

def matched_at_edges(fill: np.ndarray, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``fill`` (C, H, W), interpolated from a coarser grid, made to meet the ``image``'s known pixels.

    The interpolated fill differs from the image's own pixels beside the mask (the grid averaged
    them, and a core's peak is finer than a grid pixel); that difference, known outside ``mask``
    (C, H, W), is carried into the mask by the thin-plate fill (`galgen.biharmonic`) and added, so the
    fill keeps its own structure inside and joins the observed pixels at the edges (a seamless
    clone). Pixels outside the mask are returned as ``image``'s.
    """
    from galgen.biharmonic import biharmonic_fill

    out = np.where(mask, fill, image).astype(np.float32)
    difference = np.where(mask, np.nan, image.astype(np.float64) - fill)
    for band_mask in {plane.tobytes(): plane for plane in mask if plane.any() and not plane.all()}.values():
        bands = [b for b, plane in enumerate(mask) if np.array_equal(plane, band_mask)]
        correction = biharmonic_fill(difference[bands], band_mask)
        out[bands] = np.where(band_mask, fill[bands] + correction, out[bands])
    return out

def fill_stamps(images: np.ndarray, masks: np.ndarray, *, model: LoadedModel, config: InpaintConfig = InpaintConfig(),
                labels: Optional[np.ndarray] = None, advance: Optional[Callable[[], None]] = None) -> np.ndarray:
    """Fill many model-sized stamps at once: (N, C, size, size) flux in the model's bands -> filled flux.

    One draw per stamp, the stamps side by side in network calls of at most CPU_WINDOWS (on a GPU
    GPU_WINDOW_PIXELS worth; the fast path for catalogues of cutouts and for benchmarks: memory stays
    flat however many stamps, since the pull keeps each call's activations for its backward pass);
    stamp n uses the noise of draw n of ``config.seed``, so stamp 0 matches `fill_cube` on that stamp
    alone and the result does not depend on the calls. ``advance()`` is called once per sampler step of each call. ``masks`` (N, C or 1, size, size) boolean, True = fill.
    Outside the masks the result equals ``images`` bit for bit. A conditional model is told
    ``labels`` (N, K) in the conditions' units when given (a catalogue's, or a benchmark's truth;
    NaN rows unconditional), else the labels measured around the masks (`conditioning.labels_of`), a stamp
    whose measured labels lie beyond the training range being filled unconditionally
    (`conditioning.unconditional_beyond`); a stamp filled at 1/S of its flux is told magnitudes 2.5 log10 S
    fainter either way.
    """
    import torch

    from galgen.engine.inpaint import inpaint
    from galgen.engine.runtime import ImageNoise

    images = np.asarray(images, dtype=np.float32)
    masks = np.broadcast_to(np.asarray(masks, dtype=bool), images.shape).copy()
    if images.shape[1:] != (len(model.bands), model.size, model.size):
        raise InputError(f"stamps must be (N, {len(model.bands)}, {model.size}, {model.size}), got {images.shape}")
    sigmas = model.sigmas(config.sampler, config.resolved_steps())
    scales = flux_scales(model, images, masks)[:, None, None, None]
    known = np.where(masks, 0.0, images) / scales
    told = (conditioning.unconditional_beyond(model.conditions, conditioning.labels_of(model, known, unknown=masks))
            if labels is None else conditioning.scaled(model, labels, scales[:, 0, 0, 0]))
    out = images.copy()
    batch = _windows_per_call(model)
    for start in range(0, len(images), batch):  # network calls of at most `batch` stamps: memory stays flat
        part = slice(start, start + batch)
        filled = inpaint(model.conditioned(None if told is None else told[part], guidance=config.guidance),
                         torch.from_numpy(model.to_model(known[part])).to(model.device),
                         torch.from_numpy(masks[part]).to(model.device), sigmas, sampler=config.sampler,
                         jump=config.jump, resample=config.resample, pull=config.pull,
                         noise=ImageNoise(config.seed, range(start, min(start + batch, len(images))), device=model.device),
                         callback=(lambda *_: advance()) if advance is not None else None, **config.sampler_options())
        out[part] = np.where(masks[part], model.to_flux(filled) * scales[part], images[part])
    return out

def draw_noise(model, flux: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(C,) RMS of the sky noise a draw of ``model`` carries in flux units, before any flux scaling: the
    training cutouts' (`LoadedModel.sky_rms`) where the model records it, else that of the image ``flux``
    (C, H, W) itself (`uncertainty.noise_rms` of its known border pixels; ``mask`` True = unknown)."""
    sky = model.sky_rms
    return sky if sky is not None else noise_rms(flux, mask)

def flux_scales(model, flux: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """The factor S >= 1 by which each model-sized stamp (N, C, size, size) is divided before filling (N,).

    A stamp whose known pixels exceed the normaliser's upper truncation (a real galaxy's core
    brighter than any the model learnt, a star) is filled at 1/S of its flux and scaled back, S
    bringing its peak down to PEAK_FRACTION of the truncation: told the true flux, the network saw
    the core clipped at the truncation, and the fill came out capped with a dark streak
    (docs/inpainting.md). The peak is that of the 3 x 3 means of known pixels, so a lone hot pixel
    does not set it; every other stamp gets S = 1 and is filled as before.
    """
    from scipy.ndimage import uniform_filter

    known = ~np.broadcast_to(masks, flux.shape)
    box = (1, 1, 3, 3)
    weight = uniform_filter(known.astype(np.float32), size=box, mode="constant")
    total = uniform_filter(np.where(known, flux, 0.0).astype(np.float32), size=box, mode="constant")
    local = np.where(weight > 0.5, total / np.maximum(weight, 1e-6), 0.0)
    upper = np.asarray(model.normalizer.upper) * model.factors
    peak = (local.max(axis=(2, 3)) / upper).max(axis=1)
    return np.maximum(1.0, peak / PEAK_FRACTION)

def clipping(flux: np.ndarray, mask: np.ndarray, *, model: LoadedModel, filled: np.ndarray | None = None,
             scales: np.ndarray | None = None, reach: int = 2) -> Optional[words.Clipping]:
    """Known pixels next to the mask above the cap of the fill beside them, and what that costs, else None.

    ``flux`` and ``mask`` (C, H, W) in the model's bands, ``filled`` the fill there, ``scales`` (H, W)
    the flux scale S each pixel was filled at (`flux_scales`; None: 1). The normaliser clips at its
    upper limit A (times the calibration factor), so a fill at scale S cannot exceed S x A, and fills
    beside brighter pixels come out too faint. Counts the filled pixels at the cap and the flux that
    loses at the least: their count times the mean excess over the cap of the bright known pixels
    beside the mask, per band.
    """
    from scipy.ndimage import binary_dilation, maximum_filter

    window = 2 * reach + 1
    ceiling = np.ones(mask.shape[1:]) if scales is None else maximum_filter(scales, size=window, mode="nearest")
    upper = np.asarray(model.normalizer.upper) * model.factors
    cap = upper[:, None, None] * ceiling
    ring = binary_dilation(mask, structure=np.ones((1, window, window), dtype=bool)) & ~mask
    bright = ring & (flux > cap)
    if not bright.any():
        return None
    facts = words.Clipping(bright=int(bright.sum()), bands=model.bands, upper=tuple(float(a) for a in upper),
                           scaled=bool((ceiling > 1).any()), unit=model.unit)
    if filled is None:
        return facts
    capped = mask & (filled >= cap * (1 - 1e-5))
    lost = tuple(capped[c].sum() * float(np.mean((flux - cap)[c][bright[c]])) if bright[c].any() else 0.0
                 for c in range(len(upper)))
    return replace(facts, capped=int(capped.sum()), lost=lost)

def _fill_wave(state: np.ndarray, todo, tiles: dict[int, Tile], draws: list[int], *, model: LoadedModel, sigmas,
               config: InpaintConfig, callback, labels: list, scales: list[float]) -> None:
    """Inpaint a wave of tiles (index -> tile) for a batch of draws in one network batch; commit their cores.

    ``state`` (draws, C, H, W), the flux so far, and ``todo`` (C, H, W), the pixels no core has filled yet,
    are updated in place. Tile t's window is filled at 1/scales[t] of its flux (`flux_scales`). Draw k of
    tile t takes the noise of (seed, k) for the first tile and (seed, k, t) for the others, so a
    model-sized image (one tile) is filled as `fill_stamps` fills it, and the result does not depend on the waves.
    """
    import torch

    from galgen.engine.inpaint import inpaint
    from galgen.engine.runtime import ImageNoise

    size, count = model.size, len(draws)
    windows = [tile.window(size) for tile in tiles.values()]
    told = None
    if labels[next(iter(tiles))] is not None:  # one window, every draw
        told = np.concatenate([np.repeat(labels[t], count, axis=0) for t in tiles])
    known = np.concatenate([state[:, :, ys, xs] / scales[t] for t, (ys, xs) in zip(tiles, windows)])
    filled = inpaint(model.conditioned(told, guidance=config.guidance), torch.from_numpy(model.to_model(known)).to(model.device),
                     torch.cat([todo[:, ys, xs].expand(count, -1, -1, -1) for ys, xs in windows]), sigmas,
                     sampler=config.sampler,
                     jump=config.jump, resample=config.resample, pull=config.pull, callback=callback,
                     noise=ImageNoise(config.seed, [k if t == 0 else (k, t) for t in tiles for k in draws],
                                      device=model.device), **config.sampler_options())
    filled = model.to_flux(filled)
    for n, (t, tile) in enumerate(tiles.items()):
        cy = slice(tile.core_y.start - tile.y0, tile.core_y.stop - tile.y0)
        cx = slice(tile.core_x.start - tile.x0, tile.core_x.stop - tile.x0)
        core = todo[:, tile.core_y, tile.core_x].cpu().numpy()
        state[:, :, tile.core_y, tile.core_x] = np.where(core, filled[n * count:(n + 1) * count, :, cy, cx] * scales[t],
                                                          state[:, :, tile.core_y, tile.core_x])
        todo[:, tile.core_y, tile.core_x] = False
