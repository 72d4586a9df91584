"""`galgen sample`: noise -> mock galaxies as FITS cubes, a batch at a time, resumable and sharded.

The way of one image: index i of run seed s -> `draw` (noise of (s, i) alone, the sampler over
`LoadedModel.denoise`) -> `LoadedModel.to_flux` -> a `Cube` with a TAN WCS at the model's pixel
scale -> `output.write_output` (provenance, atomic) -> ``mock_NNNNNN.fits``.

A conditional model draws image i with the labels asked for it (`conditioning.ask`: one per
catalogue row, or one request for every image); each mock's header records them, and the run
ends by measuring the mocks with galgen's photometry: requested against measured, per label.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from galgen.conditioning import Requests, ask, check_requests
from galgen.errors import InputError
from galgen.model import LoadedModel, draw, exact_on, load_guide  # noqa: F401 - draw: flows.sample.draw, as before
from galgen.progress import Progress, stage

MOCK_PREFIX = "mock_"
PREVIEW_MOCKS = 64  # mocks in a preview montage at most
CPU_BATCH = 8  # images per batch on the CPU when none is asked for
GPU_BATCH_PIXELS = 2**20  # images x H x W per batch on a GPU when none is asked for: 256 at 64 px, 16 at 256 px
WRITERS_FROM = 100  # images from which a GPU run writes its files in helper processes (they take ~1 s to start)
# the most images one run (its every shard) makes: 7-digit file names; its per-image bookkeeping (the indices
# to make, a conditional run's labels and row ids, ~250 bytes an image) stays near 2.5 GB; 6 hours of an H200 at
# 470 images/s, 480 GB of 64 px grz files in one directory. More mocks: several runs (seeds, directories).
MAX_COUNT = 10_000_000
# what a file already in the output directory must share with this run to be skipped as done
_RUN_IDENTITY = ("model_sha256", "seed", "index", "sampler", "steps", "bf16", "conditions", "guidance", "autoguidance",
                 "guide_sha256")


@dataclass(frozen=True)
class SampleConfig:
    """What `sample` draws, where the mocks sit on the sky, and the processes that draw them."""

    count: int | None = None  # images in the whole run: indices 0 .. count-1 (over all shards); None: one per
                              # catalogue row
    seed: int = 0  # image i depends on (seed, i) alone
    batch: int | None = None  # images in flight at once (memory; GPU throughput); None: `default_batch`
    sampler: str | None = None  # a name in galgen.engine.samplers.SAMPLERS; None: the model's default
    steps: int | None = None  # sampler steps; None: the sampler's registry default
    shard: tuple[int, int] = (1, 1)  # (k, n), k 1-based: this run makes the indices i with i % n == k - 1
    ra: float = 180.0  # WCS tangent point (degrees) of every mock
    dec: float = 0.0
    exact: bool | None = None  # fixed network batches (bit-identical whatever the batch); None: on CPU only
    workers: int | None = None  # processes; None: one per GPU the model may use, or per CPU core for >= 8 images
    devices: tuple[str, ...] | None = None  # explicit device per worker process (overrides workers)
    # what a conditional model is asked (galgen.conditioning.ask): a catalogue, one request, or with neither the
    # labels of random training rows (unless unconditional)
    catalog: Path | None = None  # one mock per row of this FITS table or CSV, its columns named as the conditions
    condition: Mapping[str, float] | None = None  # one request for every mock, e.g. {"mag_r": 17.5}
    id_column: str | None = None  # the catalogue column naming each row in the headers (None: catalog.ID_COLUMNS)
    extrapolate: bool = False  # draw requests outside the training range too (each flagged in its header)
    unconditional: bool = False  # a conditional model without catalogue or request: its unconditional branch
    labels: tuple[tuple[float, ...], ...] | None = None  # requested values of image i, model's order (from the above,
                                                         # or given directly)
    ids: tuple[str, ...] | None = None  # the catalogue row id of image i (headers, summary)
    guidance: float = 0.0  # classifier-free guidance weight w (0: the conditional model alone)
    guide: Path | None = None  # a weaker model of the same images that autoguides this one (`model.load_guide`)
    autoguidance: float = 0.0  # autoguidance weight w: D + w (D - D_guide) (0: none; Karras et al.'s weight is 1 + w)
    compile: bool | None = None  # torch.compile the network; None: on a GPU for long runs (`runtime.compile_on`)
    writers: int | None = None  # helper processes writing the FITS files; None: `plan_writers`

    def __post_init__(self):
        from galgen.conditioning import check_choice
        from galgen.engine.samplers import get_sampler

        if self.labels is None:
            check_choice(catalog=self.catalog, request=self.condition, count=self.count,
                         unconditional=self.unconditional)
        elif self.count is None:
            object.__setattr__(self, "count", len(self.labels))
        if (self.count is not None and self.count < 1) or (self.batch is not None and self.batch < 1):
            raise InputError(f"count and batch must be >= 1, got {self.count} and {self.batch}")
        if self.count is not None and self.count > MAX_COUNT:
            raise InputError(f"{self.count} images is more than one run makes (at most {MAX_COUNT:,}); make more "
                             "as several runs, each with its own seed and directory", options=("count", "seed"))
        k, n = self.shard
        if not 1 <= k <= n:
            raise InputError(f"shard must be k/n with 1 <= k <= n, got {k}/{n}")
        if not -90.0 <= self.dec <= 90.0:  # NaN fails this too
            raise InputError(f"dec must be in [-90, 90] degrees, got {self.dec}")
        if not 0.0 <= self.ra <= 360.0:
            raise InputError(f"ra must be in [0, 360] degrees, got {self.ra}")
        if self.sampler is not None:
            spec = get_sampler(self.sampler)  # InputError naming the choices
            if self.steps is None:
                object.__setattr__(self, "steps", spec.default_steps)
        if self.steps is not None and self.steps < 1:
            raise InputError(f"steps must be >= 1, got {self.steps}")
        if self.workers is not None and self.workers < 1:
            raise InputError(f"workers must be >= 1, got {self.workers}")
        if self.labels is not None and len(self.labels) != self.count:
            raise InputError(f"{len(self.labels)} label requests for {self.count} images")
        if not self.guidance >= 0:
            raise InputError(f"guidance must be >= 0, got {self.guidance}", options="guidance")
        if not self.autoguidance >= 0:
            raise InputError(f"autoguidance must be >= 0, got {self.autoguidance}", options="autoguidance")
        if (self.guide is None) != (not self.autoguidance):
            raise InputError("autoguidance needs both a guide model and a weight w > 0",
                             options=("guide-model", "autoguidance"))
        if self.autoguidance and self.guidance:
            raise InputError("choose classifier-free guidance or autoguidance, not both",
                             options=("guidance", "autoguidance"))

    @property
    def evaluations(self) -> int:
        """Network evaluations per sampler evaluation: 2 under either guidance."""
        return 2 if self.guidance or self.autoguidance else 1

    def for_model(self, model: LoadedModel) -> SampleConfig:
        """This config with the model's default sampler filled in where none was chosen."""
        return self if self.sampler is not None else replace(self, sampler=model.default_sampler)

    def asked(self, model: LoadedModel) -> Requests | None:
        """The labels each mock is asked for (`conditioning.ask`), unless ``labels`` are given (then None)."""
        if self.labels is not None:
            return None
        from galgen.io.catalog import read_catalog

        return ask(model, catalog=None if self.catalog is None else read_catalog(self.catalog), request=self.condition,
                   count=self.count, seed=self.seed, id_column=self.id_column, extrapolate=self.extrapolate,
                   unconditional=self.unconditional)

    @property
    def indices(self) -> range:
        """The image indices this run (its shard) makes."""
        return shard_indices(self.count, self.shard)


@dataclass
class SampleResult:
    """What a `sample` run did."""

    out_dir: Path
    written: list[Path]
    skipped: list[Path]
    seconds: float
    sampler: str
    steps: int
    nfe: int
    model_sha256: str
    devices: list[str]
    exact: bool
    preview: Path | None = None
    check: list[dict] | None = None  # conditional: requested vs measured per label (`check_requests`)
    notes: list[str] | None = None  # conditional: what was assumed (a missing catalogue column...)
    precision: object = None  # the model's runtime.Precision: bf16 or float32, and why
    autoguidance: dict | None = None  # the weight and the guide's file and sha256 (`_guide_fields`), if autoguided

    def to_dict(self) -> dict:
        made = len(self.written)
        return {
            "out_dir": str(self.out_dir), "written": made, "skipped": len(self.skipped),
            "first": str(self.written[0]) if self.written else None,
            "last": str(self.written[-1]) if self.written else None,
            "seconds": round(self.seconds, 3), "images_per_second": made / self.seconds if self.seconds > 0 else None,
            "sampler": self.sampler, "steps": self.steps, "nfe": self.nfe, "model_sha256": self.model_sha256,
            "devices": self.devices, "exact": self.exact, "preview": None if self.preview is None else str(self.preview),
            "conditions": self.check, "notes": self.notes or [],
            "precision": None if self.precision is None else self.precision.to_dict(),
            "autoguidance": self.autoguidance,
        }


def parse_shard(text: str) -> tuple[int, int]:
    """'k/n' (k 1-based) -> (k, n); InputError for anything else."""
    try:
        k, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise InputError(f"a shard looks like k/n (for example 2/4), not {text!r}", options="shard") from None
    if not 1 <= k <= n:
        raise InputError(f"a shard k/n needs 1 <= k <= n, not {text!r}", options="shard")
    return k, n


def shard_indices(count: int, shard: tuple[int, int] = (1, 1)) -> range:
    """Image indices of shard (k, n) in a run of ``count``: i with i % n == k - 1."""
    k, n = shard
    return range(k - 1, count, n)


def split_for_devices(indices, devices: int) -> list[list[int]]:
    """Interleave indices over worker processes (one per GPU): worker w takes every devices-th from w."""
    indices = list(indices)
    return [indices[w::devices] for w in range(devices)]


def mock_name(index: int, count: int) -> str:
    """File name of image ``index``: mock_000042.fits, zero-padded to fit the run (at least 6 digits)."""
    return f"{MOCK_PREFIX}{index:0{max(6, len(str(count - 1)))}d}.fits"


def run(out_dir, *, model: LoadedModel, config: SampleConfig, preview=None, command: str = "galgen.flows.sample",
        on_progress: Progress | None = None) -> SampleResult:
    """Write mocks ``mock_NNNNNN.fits`` of shard ``config.shard`` into ``out_dir``, a batch at a time.

    Each mock is the model's image in flux units (normaliser inverse times the calibration
    factors), with a TAN WCS at the model's pixel scale centred on (ra, dec), BUNIT, BANDS and
    provenance. Files already present are complete (atomic writes): they are checked to be of this
    run and skipped, so an interrupted run resumes. Several devices or CPU workers (`plan_devices`)
    each take an interleaved share of the indices; the files do not change. ``preview``: a PNG
    montage of the first mocks. A conditional model is asked for labels as ``config`` says
    (`conditioning.ask`); requested labels (not those drawn from the training rows) are then
    measured on the mocks (`conditioning.check_requests`). Progress: stage "sample", in images.
    """
    from galgen.engine.samplers import nfe
    from galgen.flows.output import check_preview, output_directory

    start = time.perf_counter()
    config = config.for_model(model)
    requests = config.asked(model)
    if requests is not None:
        config = replace(config, **requests.config_fields())
    sigmas = model.sigmas(config.sampler, config.steps)  # checks the steps before anything is made
    if config.labels is not None and not model.conditions:
        raise InputError("the model is not conditional: it takes no labels", path=model.path)
    check_preview(preview)
    guide = None if config.guide is None else load_guide(config.guide, model)  # checked before anything is made
    out_dir = output_directory(out_dir)
    todo, skipped = [], []
    for index in config.indices:
        path = out_dir / mock_name(index, config.count)
        if path.exists():
            _check_done(path, model, config, index, guide)
            skipped.append(path)
        else:
            todo.append(index)
    advance = stage(on_progress, "sample", len(config.indices))
    advance(len(skipped))
    devices = plan_devices(model, config)
    if devices is None:
        writers = plan_writers(model, config, len(todo))
        written = draw_and_write(model, out_dir, todo, config=replace(config, writers=writers), command=command,
                                 advance=advance, guide=guide)
        devices = [str(model.device)]
    else:
        from galgen.processes import run_workers

        alone = replace(config, writers=0)  # a worker process writes its own files (it cannot start helpers)
        shares = [(str(model.path), model.sha256, model.precision, device, str(out_dir), share, alone, command,
                   _threads(devices)) for device, share in zip(devices, split_for_devices(todo, len(devices)))]
        written = [Path(p) for paths in run_workers(_worker, shares, labels=devices, advance=advance)
                   for p in paths]
    steps = len(sigmas) - 1
    made = sorted(written + skipped)
    if preview is not None:
        from galgen.preview import preview_files

        preview = preview_files(made[:PREVIEW_MOCKS], preview)
    checked = None
    if config.labels is not None and not (requests is not None and requests.drawn):
        checked = check_requests(model, [out_dir / mock_name(i, config.count) for i in config.indices],
                               [config.labels[i] for i in config.indices], on_progress=on_progress)
    return SampleResult(
        out_dir=out_dir, written=sorted(written), skipped=skipped, seconds=time.perf_counter() - start,
        sampler=config.sampler, steps=steps, nfe=nfe(config.sampler, steps) * config.evaluations,
        model_sha256=model.sha256, devices=devices, exact=exact_on(devices[0], config.exact),
        preview=preview, check=checked, notes=requests.notes if requests is not None else None,
        precision=model.precision, autoguidance=_guide_fields(config, guide) or None,
    )


def plan_devices(model: LoadedModel, config: SampleConfig) -> list[str] | None:
    """The devices of the sampling processes (None: this process alone).

    A model loaded with ``device="auto"`` on a machine with several GPUs uses them all, one process
    each. On the CPU a single process with several threads scales poorly on 64 px images, so runs
    of 8 or more images use one single-threaded process per core. ``config.workers`` overrides
    the count, ``config.devices`` the whole plan.
    """
    import os

    if config.devices:
        return list(config.devices) if len(config.devices) > 1 else None
    workers, count = config.workers, len(config.indices)
    if model.device.type == "cuda":
        every = model.requested_device == "auto"
        gpus = torch.cuda.device_count() if every else 1
        n = workers or gpus
        return [f"cuda:{i % gpus}" if every else str(model.device) for i in range(n)] if n > 1 else None
    n = workers or (os.cpu_count() or 1 if count >= 8 else 1)
    return ["cpu"] * n if n > 1 else None


def plan_writers(model: LoadedModel, config: SampleConfig, count: int) -> int:
    """Helper processes that write the FITS files of a single-process run (`galgen.io.writers`).

    On a GPU, for runs of at least WRITERS_FROM images, one per spare core (at most 8): the network
    outruns the header building there. On the CPU none: the cores already draw. ``config.writers`` wins.
    (Multi-process runs write in each worker: a worker process cannot start helpers of its own.)
    """
    from galgen.io.writers import spare_cores

    if config.writers is not None:
        return config.writers
    return spare_cores() if model.device.type == "cuda" and count >= WRITERS_FROM else 0


def draw_and_write(model: LoadedModel, out_dir: Path, indices, *, config: SampleConfig, command: str,
                   advance=None, guide: LoadedModel | None = None) -> list[Path]:
    """Draw and write ``indices`` batch by batch on the model's device; ``advance(images)`` per sampler step.
    ``guide``: ``config.guide`` already loaded (None: loaded here when the config names one)."""
    from galgen.io.cube import make_wcs
    from galgen.engine.samplers import get_sampler, nfe
    from galgen.flows.output import made_by, write_mock
    from galgen.io.writers import Writers

    from galgen.engine.runtime import compile_network, compile_on

    exact = model.exact(config.exact)
    sigmas = model.sigmas(config.sampler, config.steps)
    steps = len(sigmas) - 1
    size = config.batch or default_batch(model)
    if guide is None and config.guide is not None:
        guide = load_guide(config.guide, model)
    compiled = compile_on(model.device, config.compile, pixels=len(indices) * model.size**2)
    if compiled:
        compile_network(model.module.net)
    wcs = None  # as a header string: it travels to helper processes for nothing (an astropy WCS pickles slowly)
    if model.pixel_scale is not None:
        wcs = make_wcs((model.size, model.size), pixel_scale=model.pixel_scale, ra=config.ra,
                       dec=config.dec).to_header(relax=False).tostring()
    with Writers(config.writers or 0) as writers:
        for first in range(0, len(indices), size):
            batch = indices[first : first + size]
            step = None if advance is None else (lambda n=len(batch): advance(n / steps))
            labels = _batch_labels(model, config, batch)
            flux = model.to_flux(draw(model, batch, seed=config.seed, sigmas=sigmas, sampler=config.sampler,
                                      exact=exact, advance=step, labels=labels, guidance=config.guidance,
                                      guide=guide, autoguidance=config.autoguidance))
            for index, image in zip(batch, flux):
                history = [f"mock {index} of seed {config.seed}: {config.sampler} {steps} steps from model "
                           f"{model.path.name} (sha256 {model.sha256[:12]})"]
                if guide is not None:
                    history.append(f"autoguided with w = {config.autoguidance:g} by model {guide.path.name} "
                                   f"(sha256 {guide.sha256[:12]})")
                request = _request_fields(model, config, index)
                if request:
                    history.append("requested " + ", ".join(
                        f"{c.name} = {request['conditions'][c.name]:.6g}{' ' + c.unit if c.unit else ''}"
                        for c in model.conditions))
                writers.submit(
                    write_mock, out_dir / mock_name(index, config.count), image, bands=model.bands, unit=model.unit,
                    wcs=wcs, **made_by(model, command=command, history=history, seed=config.seed, index=index,
                              count=config.count, sampler=config.sampler, steps=steps,
                              nfe=nfe(config.sampler, steps) * config.evaluations,
                              spacing=get_sampler(config.sampler).spacing, exact=exact, compiled=compiled or None,
                              **_guide_fields(config, guide), **request),
                )
        return writers.results()


def default_batch(model: LoadedModel) -> int:
    """Images per batch when none is asked for: 8 on the CPU; on a GPU, GPU_BATCH_PIXELS worth (256 at 64 px).

    On an H200 the bundled model drew 34 images/s in calls of 8 and 470 in calls of 1024 (docs/sampling.md).
    """
    if model.device.type != "cuda":
        return CPU_BATCH
    return max(CPU_BATCH, GPU_BATCH_PIXELS // model.size**2)


def _batch_labels(model: LoadedModel, config: SampleConfig, batch) -> torch.Tensor | None:
    """The batch's requested labels, normalised for the network (None for an unconditional run)."""
    if config.labels is None:
        return None
    from galgen.conditioning import normalise

    return torch.from_numpy(normalise(model.conditions, np.array([config.labels[i] for i in batch])))


def _guide_fields(config: SampleConfig, guide: LoadedModel | None) -> dict:
    """Provenance of autoguidance: the weight and the guide's file and sha256 (nothing without it)."""
    if guide is None:
        return {}
    return {"autoguidance": float(config.autoguidance), "guide": guide.path.name, "guide_sha256": guide.sha256}


def _request_fields(model: LoadedModel, config: SampleConfig, index: int) -> dict:
    """Provenance of image ``index``'s request: the values asked for, the guidance, the catalogue row's id."""
    if config.labels is None:
        return {}
    values = config.labels[index]
    fields = {"conditions": {c.name: float(v) for c, v in zip(model.conditions, values)},
              "guidance": float(config.guidance)}
    beyond = [c.name for c, v in zip(model.conditions, values) if not c.min <= v <= c.max]
    if beyond:
        fields["outside"] = ",".join(beyond)
    if config.ids is not None:
        fields["catalog_id"] = str(config.ids[index])
    return fields


def _check_done(path: Path, model: LoadedModel, config: SampleConfig, index: int, guide: LoadedModel | None) -> None:
    """A file in the way must be this run's own mock (same model, seed, index, sampler, steps, bf16, guidance)."""
    from galgen.io.cube import read_provenance

    found = read_provenance(path)
    wanted = {"model_sha256": model.sha256, "seed": config.seed, "index": index, "sampler": config.sampler,
              "steps": config.steps, "bf16": model.bf16, "conditions": None, "guidance": None, "autoguidance": None,
              "guide_sha256": None}
    wanted.update(_request_fields(model, config, index))
    wanted.update(_guide_fields(config, guide))
    differ = [key for key in _RUN_IDENTITY if found.get(key) != wanted[key]]
    if differ:
        raise InputError(f"a mock of another run is in the way ({', '.join(differ)} differ); "
                         "choose another output directory or remove it", path=path)


def _threads(devices: list[str]) -> int:
    """Threads per CPU worker: this process's share of the cores."""
    cpu_workers = sum(torch.device(d).type == "cpu" for d in devices)
    return max(1, torch.get_num_threads() // max(1, cpu_workers))


def _worker(path, sha256, precision, device, out_dir, indices, config, command, threads, *, advance) -> list[str]:
    """Body of one sampling process: load the model on ``device`` and draw its share of the indices."""
    from galgen.model import load_model

    if torch.device(device).type == "cpu":
        torch.set_num_threads(threads)
    model = load_model(path, device=device, bf16=precision)  # the parent's choice, reason and all
    if model.sha256 != sha256:
        raise InputError("weights file changed while sampling", path=path)
    written = draw_and_write(model, Path(out_dir), indices, config=config, command=command, advance=advance)
    return [str(p) for p in written]
