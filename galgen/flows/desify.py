"""`galgen desify`: make any picture or FITS cube look like a survey observation (SDEdit).

SDEdit (Meng et al. 2022; Smith et al. 2022 section 4.3): put the input on the model's grid and
into its [-1, 1] range, noise it forward to t = strength x T, run the reverse process back. Low
strength keeps the input's layout and borrows the survey's noise and PSF; strength 1 forgets
the input altogether.

The way of one input: PNG/JPEG or FITS -> `regrid.model_input` (bands, grid, range) -> the work
stack (every input read before any output) -> `engine.samplers.sdedit` with one generator per
(seed, index) -> `LoadedModel.to_flux` -> `output.write_output` -> ``<stem>_draw<k>.fits``; then,
when asked, the nearest dataset images of each output and a preview montage.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from galgen.conditioning import labels_of, told_note
from galgen.errors import InputError
from galgen.io.regrid import INPUT_SUFFIXES
from galgen.progress import Progress, stage

if TYPE_CHECKING:
    from galgen.model import LoadedModel

NEIGHBOUR_GROUP = 1024  # outputs searched per pass over the dataset (memory ~ group x image size)
MONTAGE_INPUTS = 32  # rows in a preview at most (one per input): a picture, not a catalogue


@dataclass(frozen=True)
class DesifyConfig:
    """Settings of one desify run."""

    strength: float = 0.6  # fraction of the T timesteps noised, in (0, 1]; the paper's t = 600 of 1000
    draws: int = 1  # outputs per input, each with its own noise
    sampler: str | None = None  # engine.samplers name ("ddpm", 1000 steps: the paper); None: the model's default
    steps: int | None = None  # sampler steps actually run; None = the sampler's default (capped by strength)
    seed: int = 0  # draw k of input i uses the generator of (seed, i x draws + k)
    batch: int = 16  # images in flight at once
    exact: bool | None = None  # fixed network batches (bit-identical whatever the batch); None: on CPU only
    neighbours: int = 0  # list each output's k nearest images of the dataset given to `run`

    def __post_init__(self):
        if not 0.0 < self.strength <= 1.0:  # NaN fails this too
            raise InputError(f"strength must lie in (0, 1], got {self.strength:g}")
        for name in ("draws", "batch"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.neighbours < 0:
            raise InputError(f"neighbours must be >= 0, got {self.neighbours}")
        from galgen.engine.samplers import get_sampler

        if self.sampler is not None:
            get_sampler(self.sampler)  # InputError naming the choices, before any model is loaded

    def for_model(self, model: LoadedModel) -> DesifyConfig:
        """This config with the model's default sampler where none was chosen."""
        return self if self.sampler is not None else replace(self, sampler=model.default_sampler)


@dataclass
class Output:
    """One written draw."""

    path: Path
    input: Path
    draw: int
    index: int  # the noise index: input position x draws + draw


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


@dataclass
class DesifyResult:
    outputs: list[Output]
    sampler: str
    steps: int
    nfe: int
    strength: float
    seed: int
    seconds: float
    out_dir: Path | None = None
    model: str | None = None  # the weights file
    model_sha256: str | None = None
    neighbours: list[Neighbour] = field(default_factory=list)
    preview: Path | None = None
    precision: object = None  # the model's runtime.Precision: bf16 or float32, and why

    def to_dict(self) -> dict:
        return {
            "outputs": [{"path": str(o.path), "input": str(o.input), "draw": o.draw, "index": o.index}
                        for o in self.outputs],
            "count": len(self.outputs), "sampler": self.sampler, "steps": self.steps, "nfe": self.nfe,
            "strength": self.strength, "seed": self.seed, "seconds": round(self.seconds, 3),
            "images_per_second": len(self.outputs) / max(self.seconds, 1e-9),
            "out_dir": None if self.out_dir is None else str(self.out_dir), "model": self.model,
            "model_sha256": self.model_sha256,
            "neighbours": [n.to_dict() for n in self.neighbours],
            "preview": None if self.preview is None else str(self.preview),
            "precision": None if self.precision is None else self.precision.to_dict(),
        }


@dataclass
class InputStack:
    """Every input of a run, read, checked and on the model's grid, before any sampling starts."""

    paths: list[Path]
    pixels: np.ndarray  # (N, C, size, size) float32 model space [-1, 1], memory-mapped from a work file
    wcs: list  # per input: the WCS of its model grid, or None
    notes: list[list[str]]  # per input: what was done to it (HISTORY)
    grid_cards: list  # per input: its non-celestial WCS cards, or None


# ----------------------------------------------------------------------------- planning


def input_stem(path: Path) -> str:
    """The file name without its image/FITS suffix ('m51.fits.gz' -> 'm51')."""
    name = path.name
    for suffix in sorted(INPUT_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def planned_outputs(inputs: Sequence, out_dir, *, draws: int, overwrite: bool) -> list[list[Path]]:
    """``<stem>_draw<k>.fits`` for every input and draw (k zero-padded to fit draws - 1), checked.

    Two inputs with the same stem, an output that is one of the inputs (the same file, by name, link or
    hard link: a run never replaces what it reads, overwrite or not), or existing files (unless
    ``overwrite`` and galgen made them), are InputErrors.
    """
    from galgen.io.atomic import DIRECTORY_ROOM, check_path_length
    from galgen.io.cube import is_galgen_file

    check_path_length(out_dir, room=DIRECTORY_ROOM)
    width = len(str(draws - 1))
    seen: dict[str, Path] = {}
    names = []
    for path in map(Path, inputs):
        stem = input_stem(path)
        if stem in seen:
            raise InputError(f"same output names as {seen[stem]} (rename one of them)", path=path)
        seen[stem] = path
        names.append([Path(out_dir) / f"{stem}_draw{k:0{width}d}.fits" for k in range(draws)])
        check_path_length(names[-1][-1])  # a long input name makes a longer output name
    existing = [p for row in names for p in row if p.exists()]
    read = {_identity(path): path for path in map(Path, inputs) if path.exists()}
    clash = next(((p, read[_identity(p)]) for p in existing if _identity(p) in read), None)
    if clash is not None:
        raise InputError(f"output is an input of this run ({clash[1]}); it is never replaced by the run that reads it",
                         path=clash[0])
    if existing and not overwrite:
        raise InputError(f"output exists ({len(existing)} in all)", path=existing[0], options="overwrite")
    foreign = next((p for p in existing if not is_galgen_file(p)), None)
    if foreign is not None:
        raise InputError("output exists and was not made by galgen; it is never replaced", path=foreign)
    return names


def _identity(path: Path) -> tuple[int, int]:
    """The file a path names (device, inode): the same for every name, link and hard link of it."""
    found = path.stat()
    return found.st_dev, found.st_ino


def check_dataset(dataset, *, k: int, bands: str | None = None, size: int | None = None) -> None:
    """InputError unless ``dataset`` holds at least k images (and, when given, ``size`` px ones in ``bands``)."""
    if (bands is not None and dataset.bands != bands) or (size is not None and dataset.size != size):
        raise InputError(f"dataset holds {dataset.bands} images of {dataset.size} px, the outputs are "
                         f"{bands} of {size} px", path=dataset.path)
    if not 1 <= k <= len(dataset):
        raise InputError(f"neighbours must lie in 1..{len(dataset)} (the dataset size), got {k}",
                         options="neighbours")


def plan_sigmas(model: LoadedModel, config: DesifyConfig):
    """(sigmas, steps run, NFE) of a run: the sampler's noise levels cut at the strength."""
    from galgen.engine import samplers

    config = config.for_model(model)
    sigmas = model.sigmas(config.sampler, config.steps, strength=config.strength)
    return sigmas, len(sigmas) - 1, samplers.nfe(config.sampler, len(sigmas) - 1)


# ----------------------------------------------------------------------------- the run


def read_inputs(paths: Sequence, work_dir, *, model: LoadedModel, advance=None) -> InputStack:
    """Read every input onto ``model``'s grid and range (`regrid.model_input`), into ``work_dir``/images.npy.

    All inputs are read before the first sampler step, so that a bad one stops the run with
    nothing written. The stack is written row by row and memory-mapped back (memory stays flat);
    ``advance(1)`` is called after each input.
    """
    from galgen.dataset import write_images
    from galgen.io.regrid import model_input

    paths = [Path(p) for p in paths]
    wcs, notes, cards = [], [], []

    def rows():
        for path in paths:
            item = model_input(path, model)
            wcs.append(item.wcs)
            notes.append(item.notes)
            cards.append(item.grid_cards)
            if advance is not None:
                advance(1)
            yield item.pixels[None]

    target = write_images(work_dir, (len(paths), len(model.bands), model.size, model.size), rows())
    return InputStack(paths=paths, pixels=np.load(target, mmap_mode="r"), wcs=wcs, notes=notes, grid_cards=cards)


def run(inputs, out_dir, *, model: LoadedModel, config: DesifyConfig | None = None, dataset=None, preview=None,
        overwrite: bool = False, command: str = "galgen.flows.desify",
        on_progress: Progress | None = None) -> DesifyResult:
    """SDEdit every input ``config.draws`` times with ``model`` (a galgen.model.LoadedModel); write FITS cubes.

    ``inputs``: picture or FITS paths. Output ``<stem>_draw<k>.fits`` in ``out_dir`` (created if
    needed): flux in the model's unit (normaliser inverse, then calibration factors), the model's
    bands, a WCS at the model's pixel scale, provenance (input + sha256, strength, sampler, steps,
    NFE, seed, index, model sha256) and HISTORY. Draw k of input i (its position in ``inputs``)
    uses the noise stream of (seed, i x draws + k) alone; with ``config.exact`` (the CPU default) it
    is byte-identical whatever the batch. With ``dataset`` (galgen.dataset.Dataset) and
    ``config.neighbours`` k, each output's k nearest dataset images are found; ``preview`` is a
    PNG montage (input, draws, neighbours per row). Progress stages: "reading", "desify",
    "neighbours". Existing outputs are an InputError unless ``overwrite``.
    """
    from galgen.io.atomic import scratch_directory
    from galgen.flows.output import check_preview, output_directory

    config = (config or DesifyConfig()).for_model(model)
    paths = [Path(p) for p in inputs]
    names = planned_outputs(paths, out_dir, draws=config.draws, overwrite=overwrite)  # fail before reading
    if bool(config.neighbours) != (dataset is not None):
        raise InputError("neighbours and dataset go together", options=("neighbours", "dataset"))
    if dataset is not None:
        check_dataset(dataset, k=config.neighbours, bands=model.bands, size=model.size)
    check_preview(preview)
    sigmas, steps, nfe = plan_sigmas(model, config)
    start = time.perf_counter()
    with scratch_directory(out_dir) as work:
        stack = read_inputs(paths, work, model=model, advance=stage(on_progress, "reading", len(paths)))
        out_dir = output_directory(out_dir)
        advance = stage(on_progress, "desify", len(paths) * config.draws * steps)
        outputs, shown = _transfer(stack, names, model=model, config=config, sigmas=sigmas, nfe=nfe,
                                   command=command, advance=advance)
    result = DesifyResult(outputs=outputs, sampler=config.sampler, steps=steps, nfe=nfe, strength=config.strength,
                          seed=config.seed, seconds=time.perf_counter() - start, out_dir=out_dir,
                          model=str(model.path), model_sha256=model.sha256, precision=model.precision)
    if dataset is not None:
        result.neighbours = output_neighbours([o.path for o in outputs], dataset, k=config.neighbours,
                                              on_progress=on_progress)
    if preview is not None:
        result.preview = desify_montage(shown, preview, model=model, neighbours=result.neighbours, dataset=dataset)
    return result


def _batches(count: int, draws: int, size: int) -> Iterator[list[tuple[int, int]]]:
    """(input, draw) pairs in order, ``size`` at a time."""
    jobs = [(i, k) for i in range(count) for k in range(draws)]
    for first in range(0, len(jobs), size):
        yield jobs[first:first + size]


def _transfer(stack: InputStack, names, *, model: LoadedModel, config: DesifyConfig, sigmas, nfe: int, command: str, advance):
    """SDEdit and write every (input, draw); returns the outputs and the montage's flux rows."""
    import torch

    from galgen.io.cube import Cube
    from galgen.io.cube import make_wcs
    from galgen.engine import samplers
    from galgen.engine.runtime import ImageNoise
    from galgen.flows.output import write_output

    steps = len(sigmas) - 1
    exact = model.exact(config.exact)
    default_grid = None
    if model.pixel_scale is not None:
        default_grid = make_wcs((model.size, model.size), pixel_scale=model.pixel_scale)
    outputs: list[Output] = []
    shown: dict[Path, tuple[list, list]] = {}  # montage rows: (the input on the grid and its draws in flux, paths)
    for batch in _batches(len(stack.paths), config.draws, config.batch):
        x = torch.from_numpy(np.stack([stack.pixels[i] for i, _ in batch])).to(model.device)
        indices = [i * config.draws + k for i, k in batch]
        with torch.no_grad():
            told = labels_of(model, model.to_flux(x)) if model.conditions else None
            result = samplers.sdedit(model.conditioned(told, exact=exact), x, sigmas,
                                     sampler=config.sampler,
                                     callback=lambda *_: advance(len(batch)),
                                     noise=ImageNoise(config.seed, indices, device=model.device))
        for row, ((i, k), index, image) in enumerate(zip(batch, indices, model.to_flux(result))):
            source, cards = stack.paths[i], stack.grid_cards[i]
            history = [f"desify: {source.name}, draw {k} of {config.draws}, strength {config.strength:g}, "
                       f"{config.sampler} {steps} steps ({nfe} NFE), seed {config.seed}, index {index}",
                       *(f"desify input: {note}" for note in stack.notes[i]),
                       *([] if told is None else [f"desify: {told_note(model.conditions, told[row], where='in the input')}"])]
            grid = stack.wcs[i] if stack.wcs[i] is not None or cards is not None else default_grid
            cube = Cube(data=image, bands=model.bands, wcs=grid, unit=model.unit,
                        **({} if cards is None else {"header": cards}))
            path = write_output(cube, names[i][k], model=model, command=command, inputs=[source], history=history,
                                seed=config.seed, index=index, draw=k, sampler=config.sampler, steps=steps, nfe=nfe,
                                strength=config.strength, exact=exact)
            outputs.append(Output(path=path, input=source, draw=k, index=index))
            if i < MONTAGE_INPUTS:
                images, paths = shown.setdefault(source, ([model.to_flux(np.asarray(stack.pixels[i])[None])[0]], []))
                images.append(image)
                paths.append(path)
    return outputs, shown


# ----------------------------------------------------------------------------- neighbours and montage


def output_neighbours(paths: Sequence, dataset, *, k: int, group: int = NEIGHBOUR_GROUP,
                      on_progress: Progress | None = None) -> list[Neighbour]:
    """The k dataset images nearest to each output FITS cube (`Dataset.nearest`), outputs read ``group`` at a time.

    One pass over the dataset per group; progress stage "neighbours", in dataset rows.
    """
    from galgen.io.cube import read_cube

    paths = [Path(p) for p in paths]
    check_dataset(dataset, k=k)
    advance = stage(on_progress, "neighbours", -(-len(paths) // group) * len(dataset))
    found: list[tuple[Path, np.ndarray, np.ndarray]] = []
    for lo in range(0, len(paths), group):
        chunk = paths[lo:lo + group]
        flux = np.stack([read_cube(p, bands=dataset.bands).data for p in chunk])
        indices, distances = dataset.nearest(flux, k=k, advance=advance)
        found.extend(zip(chunk, indices, distances))
    sources = dataset.source_paths(int(i) for _, row, _ in found for i in row)
    return [Neighbour(output=path, rank=r + 1, index=int(i), source=sources.get(int(i)), distance=float(d))
            for path, row, dist in found for r, (i, d) in enumerate(zip(row, dist))]


def desify_montage(rows: dict, path, *, model: LoadedModel, neighbours: Sequence[Neighbour] = (), dataset=None,
                   zoom: int = 2) -> Path:
    """Preview PNG of a run: per input (the first MONTAGE_INPUTS), the input on the model's grid, its
    draws, then the nearest dataset images of each draw, all in flux through galgen.preview's
    fixed Lupton stretch (the one sample's preview uses), so the columns compare directly.

    ``rows`` maps each shown input to ``(images, outputs)``: its flux images [input, draw 0, ...]
    and the paths the draws were written to.
    """
    from galgen.preview import lupton_rgb, montage, save_png

    by_output: dict[Path, list[Neighbour]] = {}
    for near in neighbours:
        by_output.setdefault(near.output, []).append(near)
    tiles, columns = [], 1
    for images, outputs in rows.values():
        row = list(images)
        for output in outputs:
            row += [dataset.normalizer.inverse(np.asarray(dataset.images[n.index])) for n in by_output.get(output, [])]
        tiles += [lupton_rgb(flux, model.bands) for flux in row]
        columns = len(row)
    return save_png(montage(tiles, columns=columns, zoom=zoom), path)
