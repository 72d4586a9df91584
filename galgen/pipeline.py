"""Plain functions joining FITS cubes and the normaliser to the engine.

The flow is one call per arrow: flux cube -> ``LoadedModel.to_model`` -> tensor in [-1, 1] ->
sampler over ``LoadedModel.denoise`` -> ``LoadedModel.to_flux`` -> flux cube + provenance.
This module loads a model once and carries everything a weights file says about it (bands,
size, pixel scale, normaliser, calibration, sha256); `sample`, `inpaint` and `desify` build on it.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from galgen.atomic import probe_directory, sweep_stale
from galgen.engine import runtime, weights
from galgen.errors import InputError
from galgen.normalize import Normalizer

BUNDLED_MODEL = "default.safetensors"


def bundled_model_path() -> Path:
    """Where the default model ships inside the package (galgen/models/)."""
    return Path(str(files("galgen.models") / BUNDLED_MODEL))


@dataclass
class LoadedModel:
    """A denoiser ready to run, with the facts of its weights file."""

    denoiser: torch.nn.Module
    meta: dict
    path: Path
    sha256: str
    device: torch.device
    bf16: bool
    normalizer: Normalizer
    factors: np.ndarray = field(repr=False)  # (C,) calibration multipliers, ones when uncalibrated

    @property
    def bands(self) -> str:
        return self.normalizer.bands

    @property
    def size(self) -> int:
        return int(self.meta["unet"]["size"])

    @property
    def pixel_scale(self) -> float | None:
        scale = self.meta.get("pixel_scale")
        return None if scale is None else float(scale)

    @property
    def calibrated(self) -> bool:
        return "calibration" in self.meta

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """D(x, sigma) for the samplers: the network under bf16 autocast, the result in float32."""
        with torch.no_grad(), runtime.autocast(self.device, enabled=self.bf16):
            return self.denoiser(x, sigma).float()

    def denoise_fn(self, *, exact: bool):
        """D(x, sigma) for the samplers; with ``exact`` the network sees one image per call (see `uses_exact`)."""
        if not exact:
            return self.denoise
        return lambda x, sigma: torch.cat([self.denoise(x[b : b + 1], sigma[b : b + 1]) for b in range(x.shape[0])])

    def to_flux(self, x) -> np.ndarray:
        """Model space [-1, 1] (N, C, H, W) -> calibrated flux in the model's unit (float32)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().float().cpu().numpy()
        if not np.isfinite(x).all():
            from galgen.errors import RuntimeFailure

            raise RuntimeFailure(f"the model {self.path.name} produced NaN or infinite pixels; nothing of them "
                                 "is written")
        flux = self.normalizer.inverse(np.clip(x, -1.0, 1.0))
        return (flux * self.factors[:, None, None]).astype(np.float32)

    def to_model(self, flux: np.ndarray) -> np.ndarray:
        """Flux (..., C, H, W) -> model space [-1, 1]: calibration divided out, then normalised."""
        return self.normalizer.forward(np.asarray(flux, dtype=np.float32) / self.factors[:, None, None])

    def provenance(self) -> dict:
        """The provenance fields every output made with this model carries."""
        return {"model_sha256": self.sha256, "model": self.path.name, "schedule": self.meta.get("schedule")}


def load_model(model: str | Path | None = None, *, device: str = "auto", bf16: bool = True) -> LoadedModel:
    """Load a weights file (default: the bundled model) onto a device, validated.

    Raises InputError naming the file when it is missing, corrupt or lacks a normaliser.
    """
    path = bundled_model_path() if model is None else Path(model)
    if not path.is_file():
        hint = " (the bundled model is missing from this install; pass --model)" if model is None else ""
        raise InputError(f"no such weights file{hint}", path=path)
    try:
        where = runtime.pick_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    denoiser, meta = weights.load_model(path, device=where)
    # oneDNN's convolutions (and cuDNN's in bf16) run fastest on NHWC; the input follows the weights
    denoiser.net.to(memory_format=torch.channels_last)
    if "normalizer" not in meta:
        raise InputError("weights file has no normaliser (was it written by 'galgen train'?)", path=path)
    normalizer = Normalizer.from_dict(meta["normalizer"])
    factors = np.ones(len(normalizer.bands), dtype=np.float32)
    for i, band in enumerate(normalizer.bands):
        factors[i] = float(meta.get("calibration", {}).get("factors", {}).get(band, 1.0))
    return LoadedModel(denoiser=denoiser, meta=meta, path=path, sha256=weights.file_sha256(path),
                       device=where, bf16=bf16, normalizer=normalizer, factors=factors)


# ----------------------------------------------------------------------------- sample (issue 4)

# The sampler used when none is named, per network output (docs/sampling.md, "Choosing the sampler").
# A v network is accurate at every noise level, and the deterministic solver then gives the mocks
# closest to the data per step; an eps network's error grows with sigma, and only a stochastic
# solver forgets it.
DEFAULT_SAMPLERS = {"v": "dpmpp_2m", "eps": "dpmpp_2m_sde"}
MOCK_PREFIX = "mock_"
# what a file already in the output directory must share with this run to be skipped as done
_RUN_IDENTITY = ("model_sha256", "seed", "index", "sampler", "steps", "bf16")


@dataclass(frozen=True)
class SampleConfig:
    """What `sample` draws and where the mocks sit on the sky; recorded in every mock's header."""

    count: int  # images in the whole run: indices 0 .. count-1 (over all shards)
    seed: int = 0  # image i depends on (seed, i) alone
    batch: int = 8  # images in flight at once (memory; GPU throughput)
    sampler: str | None = None  # a name in galgen.engine.samplers.SAMPLERS; None: default_sampler(model)
    steps: int | None = None  # sampler steps; None: the sampler's registry default
    shard: tuple[int, int] = (1, 1)  # (k, n), k 1-based: this run makes the indices i with i % n == k - 1
    ra: float = 180.0  # WCS tangent point (degrees) of every mock
    dec: float = 0.0
    exact: bool | None = None  # one image per network call (bit-identical whatever the batch); None: on CPU only

    def __post_init__(self):
        from galgen.engine.samplers import get_sampler

        if self.count < 1 or self.batch < 1:
            raise InputError(f"count and batch must be >= 1, got {self.count} and {self.batch}")
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

    def for_model(self, model: LoadedModel) -> SampleConfig:
        """This config with the model's default sampler filled in where none was chosen."""
        return self if self.sampler is not None else dataclasses.replace(self, sampler=default_sampler(model))


def default_sampler(model: LoadedModel) -> str:
    """The sampler `sample` and `desify` use when none is named: by what the network predicts."""
    return DEFAULT_SAMPLERS[model.denoiser.prediction]


@dataclass
class SampleResult:
    """What a `sample` run did (the CLI's summary)."""

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

    def to_dict(self) -> dict:
        made = len(self.written)
        return {
            "out_dir": str(self.out_dir), "written": made, "skipped": len(self.skipped),
            "first": str(self.written[0]) if self.written else None,
            "last": str(self.written[-1]) if self.written else None,
            "seconds": round(self.seconds, 3), "images_per_second": made / self.seconds if self.seconds > 0 else None,
            "sampler": self.sampler, "steps": self.steps, "nfe": self.nfe, "model_sha256": self.model_sha256,
            "devices": self.devices, "exact": self.exact,
        }


def parse_shard(text: str) -> tuple[int, int]:
    """'k/n' (k 1-based) -> (k, n); InputError for anything else."""
    parts = str(text).split("/")
    try:
        k, n = (int(p) for p in parts)
    except ValueError:
        raise InputError(f"--shard must look like k/n (for example 2/4), got {text!r}") from None
    if not 1 <= k <= n:
        raise InputError(f"--shard k/n needs 1 <= k <= n, got {text!r}")
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


def uses_exact(requested: bool | None, device: torch.device) -> bool:
    """Whether the network sees one image per call: asked for, or by default on the CPU.

    oneDNN's batched convolutions and matrix products are not batch-invariant bit for bit (the
    time-embedding Linear and some conv shapes differ by ~1e-7 between batch 1 and 7), so exact
    reproducibility needs a fixed network batch. On a CPU one image per call costs 0-30 %
    (docs/sampling.md); on a GPU it would waste the device, so there it is opt-in.
    """
    return device.type == "cpu" if requested is None else bool(requested)


def draw(
    model: LoadedModel,
    indices,
    *,
    seed: int,
    sigmas: torch.Tensor,
    sampler: str,
    exact: bool = True,
    on_step: Callable[[], None] | None = None,
) -> torch.Tensor:
    """Images ``indices`` of run ``seed`` in model space (B, C, H, W), float32 on the model's device.

    Noise comes from one generator per image seeded by (seed, index) (runtime.ImageNoise), so
    with ``exact`` an image is bit-identical whatever batch it is drawn in.
    """
    from galgen.engine import samplers

    indices = list(indices)
    noise = runtime.ImageNoise(seed, indices, device=model.device)
    shape = (len(indices), len(model.bands), model.size, model.size)
    x = float(sigmas[0]) * noise(torch.empty(shape, device=model.device))

    callback = None if on_step is None else (lambda *_: on_step())
    with torch.no_grad():
        return samplers.run_sampler(sampler, model.denoise_fn(exact=exact), x, sigmas, noise=noise, callback=callback)


def sample(
    model: LoadedModel,
    out_dir,
    *,
    config: SampleConfig,
    command: str = "galgen.pipeline.sample",
    devices: Sequence[str] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> SampleResult:
    """Write mocks ``mock_NNNNNN.fits`` of shard ``config.shard`` into ``out_dir``, a batch at a time.

    Each mock is the model's image in flux units (normaliser inverse times the calibration
    factors), with a TAN WCS at the model's pixel scale centred on (ra, dec), BUNIT, BANDS and
    provenance. Files already present are complete (atomic writes): they are checked to be of this
    run and skipped, so an interrupted run resumes. With several ``devices`` (e.g. all GPUs), one
    worker process per device takes an interleaved share of the indices. ``on_progress(images)``
    is called with fractions of images as sampler steps finish.
    """
    from galgen.engine import samplers

    start = time.perf_counter()
    config = config.for_model(model)
    sigmas = samplers.select_sigmas(model.denoiser.sigmas, config.sampler, config.steps)  # checks steps first
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output directory ({exc.strerror or exc})", path=out_dir) from None
    probe_directory(out_dir)
    sweep_stale(out_dir)  # temporaries of a killed earlier run
    todo, skipped = [], []
    for index in shard_indices(config.count, config.shard):
        path = out_dir / mock_name(index, config.count)
        if path.exists():
            _check_done(path, model, config, index)
            skipped.append(path)
        else:
            todo.append(index)
    if on_progress is not None and skipped:
        on_progress(len(skipped))
    devices = [str(model.device)] if not devices else [str(d) for d in devices]
    if len(devices) == 1:
        written = _sample_indices(model, out_dir, todo, sigmas=sigmas, config=config, command=command,
                                  on_progress=on_progress)
    else:
        written = _sample_on_workers(model, out_dir, todo, devices=devices, config=config, command=command,
                                     on_progress=on_progress)
    return SampleResult(
        out_dir=out_dir, written=sorted(written), skipped=skipped, seconds=time.perf_counter() - start,
        sampler=config.sampler, steps=len(sigmas) - 1, nfe=samplers.nfe(config.sampler, len(sigmas) - 1),
        model_sha256=model.sha256, devices=devices, exact=uses_exact(config.exact, torch.device(devices[0])),
    )


def plan_devices(device: torch.device, *, requested: str = "auto", workers: int | None = None,
                 count: int = 0) -> list[str] | None:
    """The devices of the sampling processes (None: this process alone).

    ``requested="auto"`` on a machine with several GPUs uses them all, one process each. On the
    CPU a single process with several threads scales poorly on 64 px images, so runs of 8 or more
    images use one single-threaded process per core. ``workers`` overrides the count.
    """
    import os

    if device.type == "cuda":
        gpus = torch.cuda.device_count() if requested == "auto" else 1
        n = workers or gpus
        return [f"cuda:{i % gpus}" if requested == "auto" else str(device) for i in range(n)] if n > 1 else None
    n = workers or (os.cpu_count() or 1 if count >= 8 else 1)
    return ["cpu"] * n if n > 1 else None


def _check_done(path: Path, model: LoadedModel, config: SampleConfig, index: int) -> None:
    """A file in the way must be this run's own mock (same model, seed, index, sampler, steps, bf16)."""
    from galgen.cube import read_provenance

    found = read_provenance(path)
    wanted = {"model_sha256": model.sha256, "seed": config.seed, "index": index, "sampler": config.sampler,
              "steps": config.steps, "bf16": model.bf16}
    differ = [key for key in _RUN_IDENTITY if found.get(key) != wanted[key]]
    if differ:
        raise InputError(f"a mock of another run is in the way ({', '.join(differ)} differ); "
                         "choose another output directory or remove it", path=path)


def _sample_indices(model, out_dir: Path, indices, *, sigmas, config: SampleConfig, command: str,
                    on_progress=None) -> list[Path]:
    """Draw and write ``indices`` batch by batch on one device."""
    from galgen.cube import Cube, make_wcs, write_cube

    exact = uses_exact(config.exact, model.device)
    wcs = None
    if model.pixel_scale is not None:
        wcs = make_wcs((model.size, model.size), pixel_scale=model.pixel_scale, ra=config.ra, dec=config.dec)
    steps = len(sigmas) - 1
    written = []
    for first in range(0, len(indices), config.batch):
        batch = indices[first : first + config.batch]
        step = None if on_progress is None else (lambda n=len(batch): on_progress(n / steps))
        flux = model.to_flux(draw(model, batch, seed=config.seed, sigmas=sigmas, sampler=config.sampler,
                                  exact=exact, on_step=step))
        for index, image in zip(batch, flux):
            cube = Cube(data=image, bands=model.bands, wcs=wcs, unit=model.meta.get("unit") or "nanomaggy")
            path = out_dir / mock_name(index, config.count)
            write_cube(cube, path, provenance=_mock_provenance(model, config, index, steps, exact, command),
                       history=[_mock_history(model, config, index, steps)])
            written.append(path)
    return written


def _mock_provenance(model: LoadedModel, config: SampleConfig, index: int, steps: int, exact: bool,
                     command: str) -> dict:
    from galgen.engine.samplers import get_sampler, nfe
    from galgen.provenance import make_provenance

    calibration = model.meta.get("calibration", {}).get("factors") if model.calibrated else None
    return make_provenance(
        command=command, **model.provenance(), seed=config.seed, index=index, count=config.count,
        sampler=config.sampler, steps=steps, nfe=nfe(config.sampler, steps),
        spacing=get_sampler(config.sampler).spacing, bf16=model.bf16, exact=exact, device=str(model.device),
        normaliser=model.normalizer.to_dict(), calibrated=model.calibrated, calibration=calibration,
    )


def _mock_history(model: LoadedModel, config: SampleConfig, index: int, steps: int) -> str:
    if model.calibrated:
        factors = ", ".join(f"{b} x{f:.4g}" for b, f in zip(model.bands, model.factors))
        flux = f"flux = normaliser inverse times calibration factors ({factors})"
    else:
        flux = "flux = normaliser inverse (model not calibrated)"
    return (f"mock {index} of seed {config.seed}: {config.sampler} {steps} steps from model "
            f"{model.path.name} (sha256 {model.sha256[:12]}); {flux}")


def _sample_on_workers(model, out_dir: Path, indices, *, devices, config: SampleConfig, command: str,
                       on_progress=None) -> list[Path]:
    """One spawned process per device over interleaved indices; progress and errors come back on a queue.

    Each worker loads the same weights file on its own device (checked by sha256). Because image
    i depends on (seed, i) alone, the split changes nothing in the files.
    """
    import os

    from galgen.processes import spawn_context

    context = spawn_context()  # CUDA cannot be used in forked children
    queue = context.Queue()
    shares = split_for_devices(indices, len(devices))
    cpu_workers = sum(torch.device(d).type == "cpu" for d in devices)
    threads = max(1, torch.get_num_threads() // max(1, cpu_workers))
    jobs = [
        context.Process(target=_worker, daemon=True,
                        args=(os.getpid(), rank, device, str(model.path), model.sha256, model.bf16, str(out_dir),
                              share, config, command, threads, queue))
        for rank, (device, share) in enumerate(zip(devices, shares))
    ]
    for job in jobs:
        job.start()
    written, running, failure, finished = [], len(jobs), None, False
    try:
        while running:
            kind, payload = _next_message(queue, jobs)
            if kind == "progress" and on_progress is not None:
                on_progress(payload)
            elif kind == "done":
                written.extend(Path(p) for p in payload)
                running -= 1
            elif kind == "error":
                failure, running = payload, 0
        finished = failure is None
    finally:
        for job in jobs:  # on an error or an interrupt the others stop too (their files are whole or absent)
            if not finished and job.is_alive():
                job.terminate()
            job.join()
    if failure is not None:
        from galgen.errors import RuntimeFailure

        raise RuntimeFailure(f"a sampling worker failed: {failure}")
    return written


def _next_message(queue, jobs):
    """The next worker message; an error message if a worker died without saying why."""
    import queue as queues

    while True:
        try:
            return queue.get(timeout=1.0)
        except queues.Empty:
            dead = [job for job in jobs if job.exitcode not in (None, 0)]
            if dead:
                return "error", f"worker process exited with code {dead[0].exitcode}"


def _worker(parent, rank, device, path, sha256, bf16, out_dir, indices, config, command, threads, queue) -> None:
    """Body of one sampling process: load the model on ``device`` and draw its share of the indices."""
    from galgen.processes import die_with_parent

    die_with_parent(parent)
    try:
        if torch.device(device).type == "cpu":
            torch.set_num_threads(threads)
        model = load_model(path, device=device, bf16=bf16)
        if model.sha256 != sha256:
            raise InputError("weights file changed while sampling", path=path)
        from galgen.engine.samplers import select_sigmas

        sigmas = select_sigmas(model.denoiser.sigmas, config.sampler, config.steps)
        written = _sample_indices(model, Path(out_dir), indices, sigmas=sigmas, config=config, command=command,
                                  on_progress=lambda n: queue.put(("progress", n)))
        queue.put(("done", [str(p) for p in written]))
    except SystemExit:  # SIGTERM (the parent died or stopped us): nobody is left to tell
        queue.cancel_join_thread()
        raise
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        queue.put(("error", f"worker {rank} on {device}: {type(exc).__name__}: {exc}"))
