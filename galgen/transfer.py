"""Domain transfer ("desify"): make any picture or FITS cube look like a survey observation.

SDEdit (Meng et al. 2022; Smith et al. 2022 section 4.3): put the input on the model's grid and
into its [-1, 1] range, noise it forward to t = strength x T, run the reverse process back. Low
strength keeps the input's layout and borrows the survey's noise and PSF; strength 1 forgets
the input altogether. The flow, one call per arrow:

    PNG/JPEG or FITS -> `prepare_input` (bands, grid, range) -> `desify` (samplers.sdedit,
    one generator per (seed, index)) -> FITS cubes in flux -> `output_neighbours` (optional).

Pictures carry no physical scale: their 8-bit values 0..255 map linearly onto [-1, 1] (black is
the normaliser's lower truncation, white its upper one) and the picture is resized to the
model's size. FITS cubes are flux: they go through the model's normaliser, and when both the
cube and the model know their pixel scale the cube is resampled onto the model's pixel grid
(reproject, flux-conserving) about its centre.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from galgen.atomic import scratch_directory
from galgen.errors import InputError
from galgen.inputs import FITS_SUFFIXES, is_fits_name

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg")
INPUT_SUFFIXES = FITS_SUFFIXES + PICTURE_SUFFIXES
# Effective wavelengths (nm) of common broad bands: only their order matters here, to send a
# picture's blue, green and red channels to the bluest, middle and reddest band of the model.
BAND_WAVELENGTH_NM = {"u": 355, "g": 475, "r": 620, "i": 750, "z": 900, "y": 1000, "Y": 1020,
                      "J": 1250, "H": 1650, "K": 2200}
NEIGHBOUR_GROUP = 1024  # outputs searched per pass over the dataset (memory ~ group x image size)


@dataclass(frozen=True)
class DesifyConfig:
    """Settings of one desify run (the CLI's options)."""

    strength: float = 0.6  # fraction of the T timesteps noised, in (0, 1]; the paper's t = 600 of 1000
    draws: int = 1  # outputs per input, each with its own noise
    sampler: str | None = None  # engine.samplers name ("ddpm", 1000 steps: the paper); None: the model's default
    steps: int | None = None  # sampler steps actually run; None = the sampler's default (capped by strength)
    seed: int = 0  # draw k of input i uses the generator of (seed, i x draws + k)
    batch: int = 16  # images in flight at once
    exact: bool | None = None  # one image per network call (bit-identical whatever the batch); None: on CPU only

    def __post_init__(self):
        if not 0.0 < self.strength <= 1.0:  # NaN fails this too
            raise InputError(f"strength must lie in (0, 1], got {self.strength:g}")
        if self.draws < 1:
            raise InputError(f"draws must be >= 1, got {self.draws}")
        if self.batch < 1:
            raise InputError(f"batch must be >= 1, got {self.batch}")
        from galgen.engine.samplers import get_sampler

        if self.sampler is not None:
            get_sampler(self.sampler)  # InputError naming the choices, before any model is loaded

    def for_model(self, model) -> "DesifyConfig":
        """This config with the model's default sampler (pipeline.default_sampler) where none was chosen."""
        from galgen.pipeline import default_sampler

        return self if self.sampler is not None else dataclasses.replace(self, sampler=default_sampler(model))


@dataclass
class Prepared:
    """One input on the model's grid, before noising."""

    pixels: np.ndarray  # float32 (C, size, size): model space [-1, 1] for pictures, flux for FITS
    space: str  # "model" (a picture, already in [-1, 1]) or "flux" (a FITS cube, model's unit)
    wcs: object | None  # astropy WCS of the model grid, None where the input gives no sky position
    notes: list[str] = field(default_factory=list)  # what was done to it, for the output's HISTORY
    grid_cards: object | None = None  # a non-celestial WCS (FITS cards) still true of the output grid


@dataclass
class Output:
    """One written draw."""

    path: Path
    input: Path
    draw: int
    index: int  # the noise index: input position x draws + draw


@dataclass
class DesifyResult:
    outputs: list[Output]
    sampler: str
    steps: int
    nfe: int
    strength: float
    seed: int
    seconds: float

    def to_dict(self) -> dict:
        return {
            "outputs": [{"path": str(o.path), "input": str(o.input), "draw": o.draw, "index": o.index}
                        for o in self.outputs],
            "count": len(self.outputs), "sampler": self.sampler, "steps": self.steps, "nfe": self.nfe,
            "strength": self.strength, "seed": self.seed, "seconds": round(self.seconds, 3),
            "images_per_second": len(self.outputs) / max(self.seconds, 1e-9),
        }


# ----------------------------------------------------------------------------- inputs


def input_stem(path: Path) -> str:
    """The file name without its image/FITS suffix ('m51.fits.gz' -> 'm51')."""
    name = path.name
    for suffix in sorted(INPUT_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def output_paths(inputs: Sequence[Path], out_dir: Path, *, draws: int) -> list[list[Path]]:
    """``<stem>_draw<k>.fits`` for every input and draw (k zero-padded to fit draws - 1).

    Two inputs with the same stem would overwrite each other: InputError.
    """
    width = len(str(draws - 1))
    seen: dict[str, Path] = {}
    names = []
    for path in inputs:
        stem = input_stem(path)
        if stem in seen:
            raise InputError(f"same output names as {seen[stem]} (rename one of them)", path=path)
        seen[stem] = path
        names.append([out_dir / f"{stem}_draw{k:0{width}d}.fits" for k in range(draws)])
    return names


def band_order(bands: str) -> list[int]:
    """Plane indices of ``bands`` from the bluest to the reddest (InputError for an unknown band)."""
    unknown = [b for b in bands if b not in BAND_WAVELENGTH_NM]
    if unknown:
        raise InputError(f"cannot order bands {bands!r} by wavelength (unknown: {''.join(unknown)})")
    return sorted(range(len(bands)), key=lambda i: BAND_WAVELENGTH_NM[bands[i]])


def picture_planes(pixels: np.ndarray, *, bands: str) -> np.ndarray:
    """A picture's channels as the model's band planes (C, H, W).

    ``pixels`` is (H, W) greyscale or (H, W, 3) RGB. Greyscale goes to every band. RGB needs a
    three-band model: blue -> bluest band, green -> middle, red -> reddest (grz: B->g, G->r, R->z).
    A one-band model takes the picture's luminance (ITU-R 601: 0.299 R + 0.587 G + 0.114 B).
    """
    if pixels.ndim == 2:
        return np.repeat(pixels[None], len(bands), axis=0)
    if len(bands) == 1:
        return (pixels @ np.array([0.299, 0.587, 0.114], dtype=pixels.dtype))[None]
    if len(bands) != 3:
        raise InputError(f"an RGB picture maps onto 1 or 3 bands, the model has {len(bands)} ({bands})")
    planes = np.empty((3, *pixels.shape[:2]), dtype=pixels.dtype)
    for channel, plane in zip((2, 1, 0), band_order(bands)):  # B, G, R -> bluest .. reddest
        planes[plane] = pixels[..., channel]
    return planes


def read_picture(path: Path) -> np.ndarray:
    """A PNG/JPEG as float32 (H, W) greyscale or (H, W, 3) RGB in [-1, 1]: v / 127.5 - 1 for 8 bits.

    Alpha is dropped; palette images become RGB; 16-bit greyscale maps 0..65535 onto [-1, 1].
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                pixels, full = np.asarray(image, dtype=np.float32), 65535.0
            else:
                grey = mode in ("1", "L", "LA")
                pixels, full = np.asarray(image.convert("L" if grey else "RGB"), dtype=np.float32), 255.0
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"not a readable image ({reason})", path=path) from None
    return pixels * (2.0 / full) - 1.0


def centre_square(planes: np.ndarray) -> np.ndarray:
    """The largest centred square of (C, H, W) planes."""
    h, w = planes.shape[-2:]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    return planes[..., y0:y0 + side, x0:x0 + side]


def resize_planes(planes: np.ndarray, size: int, *, conserve_sum: bool) -> np.ndarray:
    """Square (C, n, n) planes resized to (C, size, size) with Pillow.

    Shrinking uses the box filter: each output pixel is the area-weighted mean of the input
    pixels it covers. Enlarging uses bicubic interpolation. ``conserve_sum`` (flux per pixel)
    multiplies by the pixel-area ratio (n / size)^2 so that the total flux is kept.
    """
    from PIL import Image

    n = planes.shape[-1]
    if n == size:
        return np.array(planes, dtype=np.float32)
    method = Image.Resampling.BOX if size < n else Image.Resampling.BICUBIC
    out = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p, dtype=np.float32), mode="F")
                               .resize((size, size), method)) for p in planes])
    if conserve_sum:
        out *= (n / size) ** 2
    return out.astype(np.float32)


def cube_on_grid(cube, *, size: int, pixel_scale: float | None):
    """A FITS cube's flux on the model's grid: (flux (C, size, size), WCS or None, notes).

    - Cube and model both know their pixel scale and they agree (to 1e-6): the centred
      size x size pixels are cut out (padded where the cube is smaller), WCS shifted with them.
    - They differ: reproject_exact onto a north-up TAN grid of ``size`` pixels at the model's
      scale centred on the cube's centre. Each output pixel gets the overlap-weighted mean flux
      density, times the pixel-area ratio (model / input scale)^2, so flux is conserved.
    - No WCS or no model scale: centred square, resized by area (`resize_planes`, sum kept).
    Pixels that are masked or outside the cube are NaN here (the caller fills them).
    """
    data = np.where(cube.mask, np.nan, cube.data) if cube.mask is not None else cube.data
    scale = cube.pixel_scale
    if scale is None or pixel_scale is None:
        note = [] if data.shape[-2:] == (size, size) else [f"resized {data.shape[2]}x{data.shape[1]} -> {size}x{size} px"]
        return resize_planes(centre_square(data), size, conserve_sum=True), None, note
    ny, nx = data.shape[1:]
    if math.isclose(scale, pixel_scale, rel_tol=1e-6):
        y0, x0 = (ny - size) // 2, (nx - size) // 2
        out = np.full((data.shape[0], size, size), np.nan, dtype=np.float32)
        ys, xs = slice(max(y0, 0), min(y0 + size, ny)), slice(max(x0, 0), min(x0 + size, nx))
        out[:, ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0] = data[:, ys, xs]
        wcs = cube.wcs.deepcopy()
        wcs.wcs.crpix = wcs.wcs.crpix - np.array([x0, y0])
        wcs.wcs.set()
        note = [] if (ny, nx) == (size, size) else [f"centre {size}x{size} px of {nx}x{ny} cut out"]
        return out, wcs, note
    from reproject import reproject_exact

    from galgen.cube import make_wcs

    ra, dec = cube.wcs.all_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
    target = make_wcs((size, size), pixel_scale=pixel_scale, ra=float(ra), dec=float(dec))
    density, footprint = reproject_exact((data, cube.wcs), target, shape_out=(size, size))
    out = np.where(footprint > 0, density * (pixel_scale / scale) ** 2, np.nan).astype(np.float32)
    return out, target, [f"resampled {scale:.4g} -> {pixel_scale:.4g} arcsec/px (reproject_exact, flux kept)"]


def prepare_input(path, *, bands: str, size: int, pixel_scale: float | None, unit: str | None = None) -> Prepared:
    """Read one input and put it on the model's grid (see the module docstring).

    Pictures: channels mapped by `picture_planes`, centred square resized to ``size`` (values stay
    in [-1, 1]). FITS: bands matched by name (galgen.cube.read_cube), grid by `cube_on_grid`,
    flux unit checked against ``unit``; masked or uncovered pixels are set to 0 flux (the sky
    level of a sky-subtracted cutout) and counted in the notes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file" if not path.exists() else "not a file", path=path)
    if not is_fits_name(path):
        planes = picture_planes(read_picture(path), bands=bands)
        square = centre_square(planes)
        notes = [] if square.shape[-1] == size and planes.shape == square.shape else [
            f"picture {planes.shape[2]}x{planes.shape[1]} px: centre square resized to {size}x{size}"]
        pixels = np.clip(resize_planes(square, size, conserve_sum=False), -1.0, 1.0)
        return Prepared(pixels=pixels, space="model", wcs=None, notes=notes)
    from galgen.cube import coverage_problem, read_cube, wcs_cards

    cube = read_cube(path, bands=bands)
    if unit is not None and cube.unit != unit:
        raise InputError(f"flux unit {cube.unit!r}, the model works in {unit!r}", path=path)
    flux, wcs, notes = cube_on_grid(cube, size=size, pixel_scale=pixel_scale)
    missing = ~np.isfinite(flux)
    problem = coverage_problem(missing, bands, what=f"{size} px model grid")
    if problem:
        raise InputError(f"not enough valid pixels to desify: {problem}", path=path)
    if missing.any():
        notes.append(f"{int(missing.sum())} masked or uncovered pixel values set to 0")
        flux = np.where(missing, np.float32(0), flux)
    cards = wcs_cards(cube.header) if cube.wcs is None else None  # a non-celestial WCS sits in the header
    if cards is not None and len(cards) and cube.data.shape[-2:] != (size, size):
        notes.append("the input's non-celestial WCS was dropped: the grid was resized")
        cards = None
    return Prepared(pixels=flux, space="flux", wcs=wcs, notes=notes, grid_cards=cards or None)


# ----------------------------------------------------------------------------- the run


@dataclass
class InputStack:
    """Every input of a run, read, checked and on the model's grid, before any sampling starts."""

    paths: list[Path]
    pixels: np.ndarray  # (N, C, size, size) float32 model space [-1, 1], memory-mapped from a work file
    wcs: list  # per input: the WCS of its model grid, or None
    notes: list[list[str]]  # per input: what was done to it (HISTORY)
    grid_cards: list = field(default_factory=list)  # per input: its non-celestial WCS cards, or None


def read_inputs(paths: Sequence, work_dir, *, model, on_input: Callable[[int], None] | None = None) -> InputStack:
    """Read every input onto ``model``'s grid and range (`prepare_input`), into ``work_dir``/images.npy.

    All inputs are read before the first sampler step, so that a bad one stops the run with
    nothing written. The stack is written row by row and memory-mapped back (memory stays flat);
    ``on_input(1)`` is called after each input.
    """
    from galgen.dataset import write_images

    paths = [Path(p) for p in paths]
    wcs: list = []
    notes: list[list[str]] = []
    cards: list = []

    def rows():
        for path in paths:
            item = _prepare(path, model)
            wcs.append(item.wcs)
            notes.append(item.notes)
            cards.append(item.grid_cards)
            if on_input is not None:
                on_input(1)
            yield _model_space(item, model)[None]

    target = write_images(work_dir, (len(paths), len(model.bands), model.size, model.size), rows())
    return InputStack(paths=paths, pixels=np.load(target, mmap_mode="r"), wcs=wcs, notes=notes, grid_cards=cards)


def planned_outputs(inputs: Sequence, out_dir, *, draws: int, overwrite: bool) -> list[list[Path]]:
    """`output_paths`, checked: existing files are an InputError unless ``overwrite`` and galgen made them."""
    from galgen.cube import is_galgen_file

    names = output_paths([Path(p) for p in inputs], Path(out_dir), draws=draws)
    existing = [p for row in names for p in row if p.exists()]
    if existing and not overwrite:
        raise InputError(f"output exists ({len(existing)} in all; pass --overwrite to replace)", path=existing[0])
    foreign = next((p for p in existing if not is_galgen_file(p)), None)
    if foreign is not None:
        raise InputError("output exists and was not made by galgen; it is never replaced", path=foreign)
    return names


def _batches(count: int, draws: int, size: int) -> Iterator[list[tuple[int, int]]]:
    """(input, draw) pairs in order, ``size`` at a time."""
    jobs = [(i, k) for i in range(count) for k in range(draws)]
    for first in range(0, len(jobs), size):
        yield jobs[first:first + size]


def plan_sigmas(model, config: DesifyConfig):
    """(sigmas, steps run, NFE) of a run: samplers.select_sigmas with the strength."""
    from galgen.engine import samplers

    config = config.for_model(model)
    spec = samplers.get_sampler(config.sampler)
    steps = spec.default_steps if config.steps is None else config.steps
    sigmas = samplers.select_sigmas(model.denoiser.sigmas.cpu(), config.sampler, steps, strength=config.strength)
    run = len(sigmas) - 1
    return sigmas, run, samplers.nfe(config.sampler, run)


def desify(
    inputs,
    out_dir,
    *,
    model,
    config: DesifyConfig | None = None,
    command: str = "galgen desify",
    overwrite: bool = False,
    on_step: Callable[[int], None] | None = None,
) -> DesifyResult:
    """SDEdit every input ``config.draws`` times with ``model`` (a pipeline.LoadedModel); write FITS cubes.

    ``inputs``: an `InputStack` from `read_inputs`, or paths (read into a temporary directory
    first). Output ``<stem>_draw<k>.fits`` in ``out_dir`` (created if needed): flux in the model's
    unit (normaliser inverse, then calibration factors), the model's bands, a WCS at the model's
    pixel scale, provenance (input + sha256, strength, sampler, steps, NFE, seed, index, model
    sha256) and HISTORY. Draw k of input i (its position in ``inputs``) uses the noise stream of
    (seed, i x draws + k) alone; with ``config.exact`` (the CPU default) it is byte-identical
    whatever the batch. ``on_step(n)`` is called after every sampler step with the number of
    images advanced. Existing outputs are an InputError unless ``overwrite``.
    """
    config = (config or DesifyConfig()).for_model(model)
    if not isinstance(inputs, InputStack):
        planned_outputs(inputs, out_dir, draws=config.draws, overwrite=overwrite)  # fail before reading
        with scratch_directory(out_dir) as work:
            stack = read_inputs(inputs, work, model=model)
            return desify(stack, out_dir, model=model, config=config, command=command, overwrite=overwrite,
                          on_step=on_step)
    import torch

    from galgen.cube import Cube, make_wcs, write_cube
    from galgen.engine import samplers
    from galgen.engine.runtime import ImageNoise

    stack, out_dir = inputs, Path(out_dir)
    names = planned_outputs(stack.paths, out_dir, draws=config.draws, overwrite=overwrite)
    sigmas, steps, nfe = plan_sigmas(model, config)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output directory ({exc.strerror or exc})", path=out_dir) from None
    start = time.perf_counter()
    unit = model.meta.get("unit") or "nanomaggy"
    from galgen.pipeline import uses_exact

    exact = uses_exact(config.exact, model.device)
    denoise = model.denoise_fn(exact=exact)
    default_grid = None
    if model.pixel_scale is not None:
        default_grid = make_wcs((model.size, model.size), pixel_scale=model.pixel_scale)
    outputs: list[Output] = []
    for batch in _batches(len(stack.paths), config.draws, config.batch):
        x = torch.from_numpy(np.stack([stack.pixels[i] for i, _ in batch])).to(model.device)
        indices = [i * config.draws + k for i, k in batch]
        callback = None if on_step is None else (lambda *_: on_step(len(batch)))
        with torch.no_grad():
            result = samplers.sdedit(denoise, x, sigmas, sampler=config.sampler, callback=callback,
                                     noise=ImageNoise(config.seed, indices, device=model.device))
        for (i, k), index, image in zip(batch, indices, model.to_flux(result)):
            source = stack.paths[i]
            provenance = _provenance(model, config, command=command, source=source, index=index, draw=k,
                                     steps=steps, nfe=nfe, exact=exact)
            history = [f"desify: {source.name}, draw {k} of {config.draws}, strength {config.strength:g}, "
                       f"{config.sampler} {steps} steps ({nfe} NFE), seed {config.seed}, index {index}",
                       *(f"desify input: {note}" for note in stack.notes[i])]
            cards = stack.grid_cards[i] if i < len(stack.grid_cards) else None
            grid = stack.wcs[i] if stack.wcs[i] is not None or cards is not None else default_grid
            cube = Cube(data=image, bands=model.bands, wcs=grid, unit=unit, **({} if cards is None else {"header": cards}))
            path = write_cube(cube, names[i][k], provenance=provenance, history=history)
            outputs.append(Output(path=path, input=source, draw=k, index=index))
    return DesifyResult(outputs=outputs, sampler=config.sampler, steps=steps, nfe=nfe, strength=config.strength,
                        seed=config.seed, seconds=time.perf_counter() - start)


def _prepare(path: Path, model) -> Prepared:
    return prepare_input(path, bands=model.bands, size=model.size, pixel_scale=model.pixel_scale,
                         unit=model.meta.get("unit"))


def _model_space(item: Prepared, model) -> np.ndarray:
    return item.pixels if item.space == "model" else model.to_model(item.pixels)


def _provenance(model, config: DesifyConfig, *, command: str, source: Path, index: int, draw: int,
                steps: int, nfe: int, exact: bool) -> dict:
    from galgen.provenance import make_provenance

    calibration = model.meta.get("calibration", {}).get("factors") if model.calibrated else None
    return make_provenance(
        command=command, inputs=[source], **model.provenance(), seed=config.seed, index=index, draw=draw,
        sampler=config.sampler, steps=steps, nfe=nfe, strength=config.strength, bf16=model.bf16, exact=exact,
        device=str(model.device), normaliser=model.normalizer.to_dict(), calibrated=model.calibrated,
        calibration=calibration,
    )


# ----------------------------------------------------------------------------- neighbours


@dataclass
class Neighbour:
    """One of an output's nearest dataset images."""

    output: Path
    rank: int  # 1 = nearest
    index: int  # row in the dataset's images.npy
    source: str | None  # the dataset's source file for that row, when it records one
    distance: float  # Euclidean distance in the dataset's normalised pixel space

    def to_dict(self) -> dict:
        return {"output": str(self.output), "rank": self.rank, "index": self.index, "source": self.source,
                "distance": self.distance}


def check_dataset(dataset, *, k: int, bands: str | None = None, size: int | None = None) -> None:
    """InputError unless ``dataset`` holds at least k images (and, when given, ``size`` px ones in ``bands``)."""
    if (bands is not None and dataset.bands != bands) or (size is not None and dataset.size != size):
        raise InputError(f"dataset holds {dataset.bands} images of {dataset.size} px, the outputs are "
                         f"{bands} of {size} px", path=dataset.path)
    if not 1 <= k <= len(dataset):
        raise InputError(f"--neighbours must lie in 1..{len(dataset)} (the dataset size), got {k}")


def output_neighbours(paths: Sequence, dataset, *, k: int, group: int = NEIGHBOUR_GROUP,
                      progress: Callable[[int], None] | None = None) -> list[Neighbour]:
    r"""The k dataset images nearest to each output FITS cube, in the dataset's normalised pixel space.

    Each output's flux is normalised with the dataset's own normaliser (``x = 2 (clip(f) - lo) /
    (A - lo) - 1``, so both sides are in the same [-1, 1] units) and compared with every image
    of the memory-mapped dataset by galgen.metrics.neighbours.nearest_neighbours (exact,
    chunked; :math:`d = \sqrt{\sum (q - r)^2}` over all C x H x W values). Outputs are read
    ``group`` at a time, one pass over the dataset per group. ``progress(n)`` counts dataset rows.
    """
    from galgen.cube import read_cube
    from galgen.metrics.neighbours import nearest_neighbours

    paths = [Path(p) for p in paths]
    check_dataset(dataset, k=k)
    found: list[tuple[Path, np.ndarray, np.ndarray]] = []
    for lo in range(0, len(paths), group):
        chunk = paths[lo:lo + group]
        flux = np.stack([read_cube(p, bands=dataset.bands).data for p in chunk])
        if flux.shape[1:] != dataset.images.shape[1:]:
            raise InputError(f"outputs are {flux.shape[1:]}, the dataset's images {dataset.images.shape[1:]}")
        indices, distances = nearest_neighbours(dataset.normalizer.forward(flux), dataset.images, k=k,
                                                progress=progress)
        found.extend(zip(chunk, indices, distances))
    sources = dataset_sources(dataset, {int(i) for _, row, _ in found for i in row})
    return [Neighbour(output=path, rank=r + 1, index=int(i), source=sources.get(int(i)), distance=float(d))
            for path, row, dist in found for r, (i, d) in enumerate(zip(row, dist))]


def dataset_sources(dataset, indices: set[int]) -> dict[int, str]:
    """Source file of each wanted dataset row, read from sources.jsonl in one streaming pass."""
    from galgen.dataset import SOURCES_NAME

    if not indices or dataset.path is None or not (Path(dataset.path) / SOURCES_NAME).is_file():
        return {}
    out: dict[int, str] = {}
    last = max(indices)
    for row, record in enumerate(dataset.sources()):
        if row in indices and record.get("path"):
            out[row] = str(record["path"])
        if row >= last:
            break
    return out


# ----------------------------------------------------------------------------- preview

MONTAGE_INPUTS = 32  # rows in a preview at most (one per input): a picture, not a catalogue


def desify_montage(result: DesifyResult, path, *, model, neighbours: Sequence[Neighbour] = (),
                   dataset=None, zoom: int = 2) -> Path:
    """Preview PNG of a run: per input (the first MONTAGE_INPUTS), the input on the model's grid, its
    draws, then the nearest dataset images of each draw, all in flux through galgen.preview's
    fixed Lupton stretch (the one `galgen sample --preview` uses), so the columns compare directly.
    """
    from galgen.cube import read_cube
    from galgen.preview import lupton_rgb, montage, save_png

    by_output: dict[Path, list[Neighbour]] = {}
    for row in neighbours:
        by_output.setdefault(row.output, []).append(row)
    by_input: dict[Path, list[Output]] = {}
    for output in result.outputs:
        by_input.setdefault(output.input, []).append(output)
    tiles, columns = [], 1
    for source, draws in list(by_input.items())[:MONTAGE_INPUTS]:
        row = [model.to_flux(_model_space(_prepare(source, model), model)[None])[0]]
        row += [read_cube(o.path, bands=model.bands).data for o in draws]
        for o in draws:
            row += [dataset.normalizer.inverse(np.asarray(dataset.images[n.index])) for n in by_output.get(o.path, [])]
        tiles += [lupton_rgb(flux, model.bands) for flux in row]
        columns = len(row)
    return save_png(montage(tiles, columns=columns, zoom=zoom), path)
