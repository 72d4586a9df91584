"""``galgen simulate``: GalSim galaxies (`galgen.galaxies`) written as FITS cubes beside a truth catalogue.

Galaxies are drawn in worker processes and written as they come; a run resumes where a killed one stopped
(the truth catalogue of the galaxies already written is kept), and shards by ``start``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from galgen.errors import InputError
from galgen.galaxies import BANDS, PIXEL_SCALE, PSF_BETA, TRUTH_UNITS, Population, draw_observation, require_galsim
from galgen.progress import stage

# What `simulate` accepts. Size: a 1024 px stamp takes GalSim and the truth measurement 2.3 GB of memory per worker
# process (2 s a galaxy; 2048 px: 8.5 GB, 11 s). Pixel scale: from 0.01 arcsec (a 64 px stamp is then 0.64 arcsec
# across, the smallest disk's half-light radius 0.3) to 2 arcsec, where the 1.15-1.32 arcsec seeing and the 0.3-3
# arcsec galaxies fall within a pixel or two (and GalSim's FFT grows with the stamp's extent in arcsec: 64 px at
# 10 arcsec took 3.7 s a galaxy, at 30 arcsec more than GalSim's 8192 px FFT limit). Count: the truth catalogue
# is held in memory (~600 bytes a galaxy) and the files sit in one directory. Seed and index: the truth
# catalogue's int64 columns and the FITS integer cards.
MAX_SIZE = 1024
PIXEL_SCALES = (0.01, 2.0)  # arcsec per pixel
MAX_COUNT = 10_000_000
MAX_INDEX = 2**63 - 1  # the largest seed, and the largest index start + n - 1


TRUTH_NAME = "truth.fits"
NOISE_FREE_HDU = "NOISEFREE"  # extension name of the noise-free image (simulate --noise-free)


def file_name(index: int) -> str:
    """The cube file of galaxy ``index``: ``sim_000042.fits``."""
    return f"sim_{index:06d}.fits"


@dataclass(frozen=True)
class _WriteGalaxy:
    """Draw one galaxy, write its cube, return its truth row (a picklable worker task)."""

    out_dir: str
    seed: int
    size: int
    pixel_scale: float
    command: str
    noise_free: bool = False  # also write the noise-free image as a NOISEFREE extension
    population: Population = Population()  # what the galaxies are drawn from

    def __call__(self, index: int, write: bool = True) -> dict:
        """Galaxy ``index``'s truth row, its cube written (``write``) or, for a cube kept from an interrupted run
        of the same command, drawn again for the truth alone (the draw depends on (seed, index) alone)."""
        from galgen.io.cube import Cube
        from galgen.io.cube import make_wcs
        from galgen.io.write import write_cube
        from galgen.io.provenance import make_provenance

        image, clean, truth = draw_observation(self.seed, index, size=self.size, pixel_scale=self.pixel_scale,
                                               population=self.population)
        if not write:
            return {"file": file_name(index), **truth}
        cube = Cube(data=image, bands=BANDS, wcs=make_wcs(image.shape[1:], pixel_scale=self.pixel_scale))
        provenance = make_provenance(
            command=self.command, seed=self.seed, index=index, simulator=f"galsim {require_galsim().__version__}",
            population=self.population.changed())
        history = [f"GalSim bulge + disk + knots, Moffat PSF, Gaussian sky; truth: truth.fits index {index}"]
        extras = []
        if self.noise_free:
            extras = [(NOISE_FREE_HDU, clean)]
            history.append(f"{NOISE_FREE_HDU} extension: the same galaxy before the sky noise (PSF-convolved)")
        write_cube(cube, Path(self.out_dir) / file_name(index), provenance=provenance, history=history,
                   extra_hdus=extras)
        return {"file": file_name(index), **truth}


@dataclass(frozen=True)
class _Step:
    """`_WriteGalaxy` over (index, write) pairs: the one-argument callable a pool maps."""

    task: _WriteGalaxy

    def __call__(self, item: tuple[int, bool]) -> dict:
        return self.task(*item)


def resolve_workers(workers) -> int:
    """``None``/``"auto"`` -> the cores this process may use; otherwise a positive integer."""
    if workers is None or str(workers).lower() == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        count = int(workers)
    except (TypeError, ValueError):
        raise InputError(f"workers must be 'auto' or a positive integer, got {workers!r}") from None
    if count < 1:
        raise InputError(f"workers must be 'auto' or a positive integer, got {workers!r}")
    return count


@dataclass
class SimulateResult:
    """What a `simulate` run wrote."""

    out_dir: Path
    count: int
    first: Path
    last: Path
    truth: Path
    seed: int
    start: int
    size: int
    pixel_scale: float
    workers: int
    seconds: float
    kept: int = 0  # cubes of an interrupted run of the same command found in place and kept

    @property
    def galaxies_per_s(self) -> float | None:
        return round(self.count / self.seconds, 2) if self.seconds > 0 else None

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "count": self.count, "first": str(self.first), "last": str(self.last),
                "truth": str(self.truth), "seed": self.seed, "start": self.start, "size": self.size,
                "pixel_scale": self.pixel_scale, "workers": self.workers, "seconds": round(self.seconds, 3),
                "galaxies_per_s": self.galaxies_per_s, "kept": self.kept}


def simulate(
    n: int,
    out_dir,
    *,
    seed: int = 0,
    start: int = 0,
    size: int = 64,
    pixel_scale: float = PIXEL_SCALE,
    workers=None,
    overwrite: bool = False,
    noise_free: bool = False,
    population: Population = Population(),
    command: str = "galgen.simulate.simulate",
    on_progress=None,
) -> SimulateResult:
    """Write galaxies ``start .. start + n - 1`` of run ``seed`` into ``out_dir``, plus ``truth.fits``.

    Each galaxy becomes ``sim_{index:06d}.fits`` (written atomically as soon as it is drawn,
    by a pool of ``workers`` processes; memory stays flat whatever ``n``); the truth
    catalogue, one row per galaxy in index order, is written last. Progress: stage "simulate",
    in galaxies (galgen.progress).

    With ``noise_free`` each cube also holds the galaxy before the sky noise, as its NOISEFREE
    extension (``read_cube(path, hdu="NOISEFREE")``), to score fills and denoisers against truth.
    ``population`` (`galaxies.Population`) changes what is drawn; its changed settings are recorded
    (GGPOP) and are part of the run (a resume must name the same).

    Galaxies the truth catalogue already holds are an InputError unless ``overwrite`` (and galgen
    made them). Cubes there without their truth rows are an interrupted run's: the same command
    resumes it, keeping each cube that is this run's (seed, index, size, pixel scale, GalSim,
    NOISEFREE; another run's is an InputError) and drawing it again for its truth row alone, so the
    run ends with every cube and the whole truth catalogue (``kept`` counts them). A ``truth.fits``
    of the same run (seed, size, pixel scale) is extended: its rows for other indices are kept, so
    ``--start`` grows a run in place; one of another run is refused. The limits on ``n``, ``seed``,
    ``start``, ``size`` and ``pixel_scale`` are `check_run`'s.

    Workers are started with ``spawn`` (safe beside threads), so a script calling this with
    ``workers > 1`` needs the usual ``if __name__ == "__main__":`` guard.
    """
    galsim = require_galsim()  # fail before creating anything when GalSim is missing
    check_run(n, seed=seed, start=start, size=size, pixel_scale=pixel_scale)
    out = Path(out_dir)
    indices = range(start, start + n)
    simulator = f"galsim {galsim.__version__}"
    changed = population.changed()
    earlier = _earlier_truth(out, indices, seed=seed, size=size, pixel_scale=pixel_scale, population=changed,
                             overwrite=overwrite)
    kept = _check_free(out, indices, overwrite=overwrite,
                       run=dict(seed=seed, size=size, pixel_scale=pixel_scale, simulator=simulator,
                                noise_free=bool(noise_free), population=changed))
    workers = min(resolve_workers(workers), n)

    task = _Step(_WriteGalaxy(str(out), int(seed), int(size), float(pixel_scale), command, bool(noise_free),
                              population))
    items = ((i, i not in kept) for i in indices)
    advance = stage(on_progress, "simulate", n)
    began = time.perf_counter()
    columns: dict[str, np.ndarray] = {}  # the catalogue as arrays: 8 bytes per value, flat per galaxy
    with _pool(workers) as pool:
        results = pool.imap(task, items, chunksize=max(1, min(16, n // (4 * workers)))) if pool else map(task, items)
        for row_number, row in enumerate(results):
            for name, value in row.items():
                if name not in columns:
                    dtype = np.asarray(value).dtype
                    columns[name] = np.empty(n, dtype="U64" if dtype.kind == "U" else dtype)
                columns[name][row_number] = value
            advance(1)
    seconds = time.perf_counter() - began

    if earlier is not None:
        columns = _merged(earlier, columns)
    truth_path = _write_truth(columns, out / TRUTH_NAME, seed=seed, start=int(columns["index"].min()), size=size,
                              pixel_scale=pixel_scale, command=command, simulator=simulator,
                              population=changed)  # fmt: skip
    return SimulateResult(out_dir=out, count=n, first=out / file_name(start), last=out / file_name(start + n - 1),
                          truth=Path(truth_path), seed=seed, start=start, size=size, pixel_scale=pixel_scale,
                          workers=workers, seconds=seconds, kept=len(kept))


def check_run(n: int, *, seed: int, start: int, size: int, pixel_scale: float) -> None:
    """InputError, naming the setting, for a run `simulate` cannot make: the limits MAX_COUNT, MAX_SIZE,
    PIXEL_SCALES and MAX_INDEX (why each: beside them)."""
    for name, value, low, high in (("count", n, 1, MAX_COUNT), ("seed", seed, 0, MAX_INDEX),
                                   ("start", start, 0, MAX_INDEX), ("size", size, 16, MAX_SIZE)):
        if int(value) != value or not low <= value <= high:
            raise InputError(f"{name} must be an integer from {low} to {high:,}, got {value}", options=name)
    if not PIXEL_SCALES[0] <= pixel_scale <= PIXEL_SCALES[1]:  # NaN fails this too
        raise InputError(f"pixel scale must lie in [{PIXEL_SCALES[0]:g}, {PIXEL_SCALES[1]:g}] arcsec, got "
                         f"{pixel_scale:g}", options="pixel_scale")
    if start + n - 1 > MAX_INDEX:
        raise InputError(f"the last index, start + count - 1 = {start + n - 1}, exceeds {MAX_INDEX} (the truth "
                         "catalogue's 64-bit index)", options=("start", "count"))


class _pool:
    """A spawn-context process pool for ``workers > 1``, or None to run in this process."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = None

    def __enter__(self):
        if self.workers > 1:
            from galgen.processes import die_with_parent, spawn_context

            # spawn: the parent may hold threads (a progress bar, torch) that fork would copy half-way
            self.pool = spawn_context().Pool(self.workers, initializer=die_with_parent, initargs=(os.getpid(),))
        return self.pool

    def __exit__(self, *exc_info):
        if self.pool is not None:
            self.pool.terminate() if exc_info[0] else self.pool.close()
            self.pool.join()


def _write_truth(columns: dict[str, np.ndarray], path: Path, *, command: str, **fields) -> Path:
    from galgen.io.write import write_table
    from galgen.io.provenance import make_provenance

    count = len(columns["index"])
    provenance = make_provenance(command=command, count=count, psf_beta=PSF_BETA, **fields)
    units = {name: unit for name, unit in TRUTH_UNITS.items() if name in columns}  # neighbour_* only with them
    return write_table(columns, path, units=units, provenance=provenance)


def _check_free(out: Path, indices: range, *, overwrite: bool, run: dict) -> set[int]:
    """Create ``out`` and check that the galaxies of ``indices`` may be written into it; the indices whose cubes
    are kept.

    Without ``overwrite``, a cube already there is an interrupted run's (`_check_kept`: of this ``run``, else an
    InputError) and is kept: the caller rebuilds its truth row. (A galaxy the truth catalogue already holds was
    refused before, by `_earlier_truth`.) With ``overwrite`` every cube there is replaced, if galgen made it.
    """
    from galgen.io.atomic import DIRECTORY_ROOM, as_galgen_error, check_path_length, probe_directory, sweep_stale
    from galgen.io.cube import is_galgen_file

    check_path_length(out, room=DIRECTORY_ROOM)
    if out.exists() and not out.is_dir():
        raise InputError("output exists and is not a directory", path=out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise as_galgen_error(exc, out) from None
    probe_directory(out)
    sweep_stale(out)  # temporaries of a killed earlier run
    taken = [i for i in indices if (out / file_name(i)).exists()]
    foreign = next((out / file_name(i) for i in taken if not is_galgen_file(out / file_name(i))), None)
    if foreign is not None:
        raise InputError("output exists and was not made by galgen; it is never replaced", path=foreign)
    if overwrite:
        return set()
    for index in taken:
        _check_kept(out / file_name(index), index=index, **run)
    return set(taken)


def _check_kept(path: Path, *, index: int, seed: int, size: int, pixel_scale: float, simulator: str,
                noise_free: bool, population: dict | None) -> None:
    """A cube in the way of a run without overwrite must be that run's own galaxy ``index`` (an interrupted run
    is resumed): same seed, index, stamp size, pixel scale, GalSim, NOISEFREE extension and population;
    InputError if not."""
    from galgen.io.cube import describe

    found = describe(path)
    provenance = found["provenance"]
    differ = [name for name, same in (
        ("seed", provenance.get("seed") == seed), ("index", provenance.get("index") == index),
        ("size", found.get("shape") == [len(BANDS), size, size]),
        ("pixel scale", found.get("pixel_scale") is not None and math.isclose(found["pixel_scale"], pixel_scale,
                                                                              rel_tol=1e-9)),
        ("simulator", provenance.get("simulator") == simulator),
        ("population", provenance.get("population") == population),
        ("noise-free extension", any(h["name"] == NOISE_FREE_HDU for h in found["hdus"]) == noise_free),
    ) if not same]
    if differ:
        raise InputError(f"output exists: a galaxy of another run ({', '.join(differ)} differ) is in the way",
                         path=path, options="overwrite")


def _earlier_truth(out: Path, indices: range, *, seed: int, size: int, pixel_scale: float, population: dict | None,
                   overwrite: bool) -> dict | None:
    """The columns of a truth.fits already in ``out`` (None if there is none), checked to be of this run."""
    from galgen.io.cube import read_provenance, read_table

    path = out / TRUTH_NAME
    if not path.exists():
        return None
    found = read_provenance(path)
    if not found.get("version"):
        raise InputError("output exists and was not made by galgen; it is never replaced", path=path)
    wanted = {"seed": seed, "size": size, "pixel_scale": pixel_scale, "population": population}
    differ = [k for k, v in wanted.items() if found.get(k) != v]
    if differ:
        raise InputError(f"a truth catalogue of another run is in the way ({', '.join(differ)} differ); "
                         "choose another output directory", path=path)
    columns = read_table(path)
    overlap = np.isin(columns["index"], np.asarray(indices))
    if overlap.any() and not overwrite:
        raise InputError(f"output already exists ({int(overlap.sum())} of the {len(indices)} galaxies are in "
                         "the truth catalogue)", path=path, options="overwrite")
    return {name: values[~overlap] for name, values in columns.items()}


def _merged(earlier: dict, new: dict) -> dict:
    """Rows of both catalogues in index order (the new rows replace none: overlaps were removed)."""
    if set(earlier) != set(new):
        raise InputError("the truth catalogue in the way has other columns (another galgen version); "
                         "choose another output directory")
    order = np.argsort(np.concatenate([earlier["index"], new["index"]]), kind="stable")
    return {name: np.concatenate([earlier[name], new[name]])[order] for name in new}
