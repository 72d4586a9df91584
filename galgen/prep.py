"""Real cutouts (FITS cubes) -> a normalised training set (Smith et al. 2022, section 3.1).

Two passes, memory flat in the number of inputs:

1. Each file is read once (in a process pool when ``workers > 1``), checked, centre-cropped
   and measured: per band its 99.9th-percentile flux inside the crop and the robust sky RMS
   of the cutout's border. Usable crops are appended, still in flux, to a raw scratch file
   in the temporary output directory.
2. The normaliser is fitted from those statistics alone (k-means boundary of the
   percentiles for the upper limit, ``-5 x`` the median sky RMS for the lower one) and the
   scratch crops are normalised chunk by chunk into ``images.npy``. Both passes use plain
   sequential file writes, so resident memory does not grow with the number of inputs.

Per-file statistics go to sources.jsonl as they come (row i describes image i) and only
compact arrays of them stay in memory for the fit, so 300k inputs need no more RAM than 300.
The scratch file costs temporary disk equal to the dataset, but no FITS file is opened,
decompressed and byte-swapped twice, which is the slow part for survey-sized inputs.
Everything is written to a temporary directory beside the output and renamed at the end.
"""

from __future__ import annotations

import json
import os
import time
from array import array
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np

from galgen.bands import Bands, parse_bands
from galgen.io.regrid import centre_crop
from galgen.io.bandfiles import BandSet
from galgen.io.cube import DEFAULT_UNIT, MAX_BAD_FRACTION
from galgen.io.units import StatedUnits
from galgen.dataset import SOURCES_NAME, dataset_directory, write_images, write_meta
from galgen.errors import InputError
from galgen.metrics.photometry import border_pixels
from galgen.normalize import STRETCHES, Normalizer, kmeans_boundary, robust_sigma
from galgen.processes import process_pool
from galgen.progress import Progress, stage

SCRATCH_NAME = "flux-scratch.f32"  # raw float32 crops of pass 1, removed after pass 2
CHUNK_ROWS = 128  # rows normalised at a time in pass 2: 128 x 3 x 64 x 64 float32 = 6 MB per temporary
# stamp sides every network preset can train: 2 ** its down-sampling levels (a test ties it to engine.unet's
# presets; kept here so that prep never imports torch)
SIZE_MULTIPLE = 8
BLOCK_PER_WORKER = 32  # files handed to the pool at a time per worker, so pending results stay bounded


@dataclass(frozen=True)
class PrepConfig:
    """How cutouts become a training set."""

    size: int = 64  # side of the centre crop, pixels (paper: 256; the bundled model: 64)
    bands: Bands = Bands("grz")  # planes kept, in this order (selected and reordered by name; galgen.bands)
    upper: tuple[float, ...] | None = None  # per-band upper truncation (flux); None: k-means of percentiles
    lower: tuple[float, ...] | None = None  # per-band lower truncation (flux); None: -sky_sigmas x sky RMS
    percentile: float = 99.9  # per-galaxy percentile fed to the k-means (paper: 99.9)
    sky_sigmas: float = 5.0  # default lower limit in units of the dataset's sky RMS
    stretch: str = "asinh"  # "asinh" (no flux lost; measured best) or "linear" (the paper's clip at the k-means A)
    softening: float = 3.0  # asinh only: the softening b in units of the dataset's sky RMS
    max_bad_fraction: float = MAX_BAD_FRACTION  # skip a file when more of a band's crop is NaN or masked
    workers: int = 1  # reading processes; 1 reads in this process
    labels: str | None = "measure"  # per-galaxy labels: "measure" (galgen's photometry), a catalogue's path or None
    match: str = "name"  # how catalogue rows find cutouts (galgen.io.catalog.MatchRule): name[:COL], id:COL, sky[:RA,DEC]
    match_radius: float = 1.0  # arcsec, for matching by sky position
    label_columns: tuple[str, ...] | None = None  # catalogue columns kept as labels; None: every numeric one
    units: StatedUnits = StatedUnits()  # the unit or zero points of inputs whose headers give none (galgen.io.units)

    def __post_init__(self):
        object.__setattr__(self, "bands", Bands(self.bands))

    @property
    def measures_labels(self) -> bool:
        return self.labels == "measure"

    def match_rule(self):
        from galgen.io.catalog import MatchRule

        return MatchRule.parse(self.match, radius=self.match_radius)


@dataclass
class FileReport:
    """What pass 1 learnt about one input file."""

    path: str
    reason: str | None = None  # why it is skipped; None when usable
    crop: np.ndarray | None = None  # (C, size, size) float32 flux, NaN at bad pixels
    peak: tuple[float, ...] = ()  # per band: the crop's `percentile`-th flux
    maximum: tuple[float, ...] = ()  # per band: the crop's brightest pixel
    sky_rms: tuple[float, ...] = ()  # per band: MAD sigma of the cutout's border
    bad_pixels: int = 0  # NaN or masked pixels in the crop (filled after normalisation)
    pixel_scale: float | None = None  # arcsec / pixel, from the WCS
    units: tuple = ()  # per band: the galgen.io.units.BandUnit its flux was converted to nanomaggies by
    fatal: tuple[str, tuple[str, ...]] | None = None  # (message, options) of a problem that stops prep (no unit)
    band_files: tuple[str, ...] = ()  # a per-band input's file of each band
    file_bytes: int = 0
    mtime: float = 0.0
    centre: tuple[float, float] | None = None  # (ra, dec) degrees of the centre pixel, with a celestial WCS
    header_id: str | None = None  # the id match's header keyword, when the header has it
    measured: tuple[float, ...] = ()  # labels measured on the crop (metrics.labels order), with labels="measure"


@dataclass
class PassOne:
    """Pass-1 statistics of the usable files, kept compact (8 bytes a value) for the fit."""

    bands: int
    peaks: array = field(default_factory=lambda: array("d"))  # row-major (N, bands)
    maxima: array = field(default_factory=lambda: array("d"))  # row-major (N, bands)
    sky_rms: array = field(default_factory=lambda: array("d"))  # row-major (N, bands)
    pixel_scales: array = field(default_factory=lambda: array("d"))  # files with a WCS only
    measured: array = field(default_factory=lambda: array("d"))  # row-major (N, labels), labels="measure"
    keys: list = field(default_factory=list)  # catalog.CutoutKey per usable file, with a catalogue of labels
    count: int = 0
    bad_pixels: int = 0
    units: list = field(default_factory=list)  # per band: {unit, source, factor_min, factor_max} of the usable files
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, report: FileReport) -> None:
        self.peaks.extend(report.peak)
        self.maxima.extend(report.maximum)
        self.sky_rms.extend(report.sky_rms)
        if report.pixel_scale is not None:
            self.pixel_scales.append(report.pixel_scale)
        self.measured.extend(report.measured)
        self.count += 1
        self.bad_pixels += report.bad_pixels
        for b, unit in enumerate(report.units):
            if b == len(self.units):
                self.units.append({"unit": unit.unit, "source": unit.source, "factor_min": unit.factor,
                                   "factor_max": unit.factor})
            seen = self.units[b]
            seen["factor_min"], seen["factor_max"] = min(seen["factor_min"], unit.factor), max(seen["factor_max"], unit.factor)

    def table(self, values: array) -> np.ndarray:
        return np.frombuffer(values, dtype=np.float64).reshape(self.count, self.bands)


@dataclass
class PrepResult:
    """The outcome of :func:`prep_dataset`, for the CLI summary and ``--json``."""

    output: Path
    count: int
    inputs: int
    normalizer: Normalizer
    choice: dict
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    pixel_scale: float | None = None
    bad_pixels_filled: int = 0
    seconds: float = 0.0
    labels: dict | None = None  # what dataset.json says of the labels (names, units, source, unmatched)

    def to_dict(self) -> dict:
        return {
            "output": str(self.output),
            "count": self.count,
            "inputs": self.inputs,
            "normalizer": self.normalizer.to_dict(),
            "choice": self.choice,
            "pixel_scale": self.pixel_scale,
            "bad_pixels_filled": self.bad_pixels_filled,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "warnings": self.warnings,
            "labels": self.labels,
            "seconds": round(self.seconds, 3),
        }


def prep_dataset(
    paths: Sequence[Path],
    output,
    *,
    config: PrepConfig = PrepConfig(),
    command: str = "",
    overwrite: bool = False,
    on_progress: Progress | None = None,
) -> PrepResult:
    """Turn FITS cutouts into a dataset directory (images.npy + dataset.json) at ``output``.

    Unusable inputs are skipped and listed; InputError when none is usable (nothing is written).
    """
    start = time.perf_counter()
    paths = [p if isinstance(p, BandSet) else Path(p) for p in paths]
    if not paths:
        raise InputError("no input files")
    if config.size < 1 or config.size % SIZE_MULTIPLE:
        raise InputError(f"size must be a positive multiple of {SIZE_MULTIPLE} (the network halves it "
                         f"{SIZE_MULTIPLE.bit_length() - 1} times), got {config.size}")
    parse_bands(config.bands)  # 1 to 10 distinct names that make distinct label names
    if config.stretch not in STRETCHES:
        raise InputError(f"unknown stretch {config.stretch!r}; choose from {', '.join(STRETCHES)}", options="stretch")
    catalog = _label_catalog(config)  # a bad catalogue fails before any file is read
    files = [f for p in paths for f in (p.files if isinstance(p, BandSet) else (p,)) if f is not None]
    protected = files + ([Path(config.labels)] if catalog is not None else [])
    with dataset_directory(output, overwrite=overwrite, inputs=protected) as work:
        scratch = work / SCRATCH_NAME
        stats = _read_pass(paths, work, config=config, on_progress=on_progress)
        if not stats.count:
            first_path, first_reason = stats.skipped[0]
            hint = ("; one file per band? give a template such as 'DIR/{band}/*.fits'"
                    if "given for an image with 1 planes" in first_reason and len(config.bands) > 1 else "")
            raise InputError(f"none of the {len(paths)} inputs is usable; first: {first_path}: {first_reason}{hint}")
        normalizer, choice = fit_normalizer(stats.table(stats.peaks), stats.table(stats.sky_rms), config=config,
                                            maxima=stats.table(stats.maxima))
        _normalise_pass(
            scratch, work, stats.count, size=config.size, normalizer=normalizer, on_progress=on_progress
        )
        scratch.unlink()
        scales = np.frombuffer(stats.pixel_scales, dtype=np.float64)
        result = PrepResult(
            output=Path(output),
            count=stats.count,
            inputs=len(paths),
            normalizer=normalizer,
            choice=choice,
            skipped=stats.skipped,
            warnings=_warnings(scales, stats.count),
            pixel_scale=float(np.median(scales)) if scales.size else None,
            bad_pixels_filled=stats.bad_pixels,
        )
        if config.labels is not None:
            result.labels = _write_labels(work, stats, catalog, config=config)
        write_meta(work, _meta(result, units=stats.units, config=config, command=command))
    result.seconds = time.perf_counter() - start
    return result


def _read_pass(paths, work: Path, *, config: PrepConfig, on_progress: Progress | None) -> PassOne:
    """Pass 1: measure every file; usable crops (flux) go to the scratch file, their records to sources.jsonl."""
    stats = PassOne(bands=len(config.bands))
    advance = stage(on_progress, "prep: reading", len(paths))
    with open(work / SCRATCH_NAME, "wb") as scratch, open(work / SOURCES_NAME, "w") as sources:
        for report in _measure_all(paths, config):
            if report.fatal:
                raise InputError(report.fatal[0], path=report.path, options=report.fatal[1])
            if report.reason:
                stats.skipped.append((report.path, report.reason))
            else:
                report.crop.astype(np.float32, copy=False).tofile(scratch)
                sources.write(json.dumps(_source_record(report)) + "\n")
                stats.add(report)
                if config.labels is not None and not config.measures_labels:
                    from galgen.io.catalog import CutoutKey

                    ra, dec = report.centre or (None, None)
                    stats.keys.append(CutoutKey(path=report.path, header_id=report.header_id, ra=ra, dec=dec))
            advance(1, skipped=len(stats.skipped))
    return stats


def _source_record(report: FileReport) -> dict:
    # Size and mtime identify a source cheaply: a sha256 of 300k cutouts would read every byte
    # a second time. The statistics let a later fit choose other limits without re-reading.
    return {
        "path": report.path,
        "bytes": report.file_bytes,
        "mtime": report.mtime,
        "pixel_scale": report.pixel_scale,
        "peak": list(report.peak),
        "maximum": list(report.maximum),
        "sky_rms": list(report.sky_rms),
        "bad_pixels": report.bad_pixels,
        "centre": None if report.centre is None else list(report.centre),
        **({"band_files": list(report.band_files)} if report.band_files else {}),
    }


def _normalise_pass(
    scratch: Path, work: Path, count: int, *, size: int, normalizer: Normalizer, on_progress: Progress | None
) -> None:
    """Pass 2: normalise the scratch crops chunk by chunk into images.npy."""
    bands = len(normalizer.bands)
    shape = (count, bands, size, size)
    # bad pixels take the value of zero flux (the sky), not 0 in [-1, 1], which is mid-range flux
    fill = normalizer.forward(np.zeros((bands, 1, 1), dtype=np.float32))

    def blocks(handle, advance):
        for start in range(0, count, CHUNK_ROWS):
            rows = min(CHUNK_ROWS, count - start)
            flux = np.fromfile(handle, dtype=np.float32, count=rows * bands * size * size)
            block = normalizer.forward(flux.reshape(rows, bands, size, size))
            yield np.where(np.isnan(block), fill, block)
            advance(rows)

    with open(scratch, "rb") as handle:
        write_images(work, shape, blocks(handle, stage(on_progress, "prep: normalising", count)))


def measure_file(path: Path | BandSet, *, config: PrepConfig) -> FileReport:
    """Pass 1 for one input (a file, or a galaxy's per-band files): read, check, centre-crop, measure.

    Never raises for a bad file: its report says why it is skipped, or (an unknown unit: the user must
    say it) what stops prep, in ``fatal``.
    """
    from galgen.io.cube import coverage_problem

    report = FileReport(path=str(path.path if isinstance(path, BandSet) else path))
    try:
        cube, sigma = _read_input(path, report, config=config)
    except InputError as exc:
        if "unit" in exc.options:
            report.path, report.fatal = exc.path or report.path, (exc.message, exc.options)
        report.reason = _without_path(str(exc), exc.path)
        return report
    except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped with its reason
        report.reason = f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        return report
    report.pixel_scale = _pixel_scale(cube)
    report.reason = _shape_problem(cube, config)
    if report.reason:
        return report
    data = cube.data.astype(np.float32, copy=True)
    if cube.mask is not None:
        data[cube.mask] = np.nan
    data[~np.isfinite(data)] = np.nan
    crop = np.ascontiguousarray(centre_crop(data, config.size))
    bad = np.isnan(crop)
    report.reason = coverage_problem(bad, config.bands, what=f"{config.size} px crop", limit=config.max_bad_fraction)
    if report.reason:
        return report
    side = min(data.shape[1:])
    width = min(int(np.clip(side // 32, 4, 16)), side // 2)  # 13 px of a 424 px cutout: ~21k sky pixels a band
    report.crop = crop
    report.bad_pixels = int(bad.sum())
    report.peak = tuple(float(np.nanpercentile(plane, config.percentile)) for plane in crop)
    report.maximum = tuple(float(np.nanmax(plane)) for plane in crop)
    report.sky_rms = _sky_rms(data, sigma, width=width)
    report.centre = _centre_on_sky(cube)
    if config.labels is not None and not config.measures_labels and config.match_rule().kind == "id":
        value = cube.header.get(config.match_rule().columns[0])
        report.header_id = None if value is None else str(value).strip()
    if config.measures_labels:
        from galgen.metrics.labels import measure_labels

        scale = np.nan if report.pixel_scale is None else report.pixel_scale
        measured = measure_labels(crop[None], bands=config.bands, pixel_scale=scale)
        report.measured = tuple(float(v[0]) for v in measured.values())
    return report


def _read_input(source, report: FileReport, *, config: PrepConfig):
    """The input as a cube in nanomaggies (bands selected by name) and its noise sigma (per-band files that give
    one, else None); the report gets the files' size, time and units."""
    from galgen.io.bandfiles import read_galaxy
    from galgen.io.cube import read_cube
    from galgen.io.units import in_nanomaggies

    files = [f for f in source.files if f is not None] if isinstance(source, BandSet) else [source]
    stats = [os.stat(f) for f in files]
    report.file_bytes, report.mtime = sum(s.st_size for s in stats), max(s.st_mtime for s in stats)
    if isinstance(source, BandSet):
        report.band_files = tuple(str(f) for f in files)
        cube, sigma, report.units = read_galaxy(source, bands=config.bands, stated=config.units)
        return cube, sigma
    cube = read_cube(source, bands=config.bands, unit_default="")  # selects and reorders the planes by name
    cube, report.units = in_nanomaggies(cube, stated=config.units, path=source)
    return cube, None


def _sky_rms(data: np.ndarray, sigma: np.ndarray | None, *, width: int) -> tuple[float, ...]:
    """Per band the sky RMS of the cutout's border: the median noise sigma there where the files give it
    (an IVAR or ERR extension), else the MAD sigma of the border pixels."""
    frames = border_pixels(data, width=width)
    noise = border_pixels(sigma, width=width) if sigma is not None else [np.empty(0)] * len(frames)
    return tuple(float(np.median(s[np.isfinite(s)])) if np.isfinite(s).any() else robust_sigma(frame)
                 for frame, s in zip(frames, noise))


def _centre_on_sky(cube) -> tuple[float, float] | None:
    """(ra, dec) in degrees of the cutout's centre pixel (W // 2, H // 2), None without a celestial WCS."""
    if cube.wcs is None:
        return None
    try:
        ra, dec = cube.wcs.wcs_pix2world([[cube.data.shape[2] // 2, cube.data.shape[1] // 2]], 0)[0]
    except Exception:  # noqa: BLE001 - a WCS that cannot place the centre only loses sky matching
        return None
    return (float(ra), float(dec)) if np.isfinite([ra, dec]).all() else None


def _label_catalog(config: PrepConfig):
    """The catalogue of labels (None when measured or none), read and checked against the match rule."""
    if config.labels is None or config.measures_labels:
        return None
    from galgen.io.catalog import read_catalog

    rule = config.match_rule()
    catalog = read_catalog(config.labels)
    for column in rule.columns + tuple(config.label_columns or ()):
        catalog.column(column)  # InputError naming the columns the catalogue has
    return catalog


def _write_labels(work: Path, stats: PassOne, catalog, *, config: PrepConfig) -> dict:
    """labels.npy (N, K) float64, NaN where unknown, in image order; returns dataset.json's "labels"."""
    from galgen.dataset import LABELS_NAME

    if catalog is None:
        from galgen.metrics.labels import label_units

        units = label_units(config.bands)
        values = np.frombuffer(stats.measured, dtype=np.float64).reshape(stats.count, len(units))
        info = {"names": list(units), "units": list(units.values()),
                "source": "measured with galgen's photometry (galgen.metrics.labels)", "unmatched": []}
    else:
        values, info = _catalogue_labels(catalog, stats.keys, config=config)
    np.save(work / LABELS_NAME, np.asarray(values, dtype=np.float64), allow_pickle=False)
    return info


def _catalogue_labels(catalog, keys, *, config: PrepConfig) -> tuple[np.ndarray, dict]:
    from galgen.io.catalog import match_rows

    rule = config.match_rule()
    found = match_rows(catalog, keys, rule)
    if not (found >= 0).any():
        raise InputError(f"no cutout matched a row of the catalogue by {rule.describe()}", path=catalog.path,
                         options="match")
    used = {catalog.find(c) for c in rule.columns}
    if config.label_columns:
        names = [catalog.find(c) for c in config.label_columns]
    else:
        names = [c for c in catalog.numeric() if c not in used]
    if not names:
        raise InputError("catalogue has no numeric column to use as a label", path=catalog.path)
    values = np.full((len(keys), len(names)), np.nan)
    for k, name in enumerate(names):
        column = catalog.columns[name]
        if column.dtype.kind not in "biuf" or column.ndim != 1:
            raise InputError(f"catalogue column {name!r} is not a number per galaxy", path=catalog.path)
        values[found >= 0, k] = column[found[found >= 0]]
    unmatched = [key.path for key, row in zip(keys, found) if row < 0]
    return values, {"names": names, "units": [catalog.units.get(n, "") for n in names],
                    "source": str(catalog.path), "match": rule.describe(), "unmatched": unmatched}


def fit_normalizer(peaks: np.ndarray, sky_rms: np.ndarray, *, config: PrepConfig,
                   maxima: np.ndarray | None = None) -> tuple[Normalizer, dict]:
    """Choose the per-band truncation limits from pass-1 statistics; also say how each was chosen.

    Parameters
    ----------
    peaks : ndarray, shape (N, C)
        Each galaxy's ``config.percentile``-th flux per band (flux units).
    sky_rms : ndarray, shape (N, C)
        Each cutout's border sky RMS per band (flux units, MAD x 1.4826).
    maxima : ndarray, shape (N, C), optional
        Each galaxy's brightest pixel per band: the asinh stretch's upper limit is their maximum.

    Returns
    -------
    Normalizer, dict
        Upper: the boundary of the exact two-cluster 1-D k-means over ``peaks`` (paper section
        3.1), unless ``config.upper``; with the asinh stretch, the brightest pixel of all
        (``maxima``), so nothing is clipped. Lower: ``-config.sky_sigmas`` times the median over
        files of ``sky_rms``, unless ``config.lower`` (``0`` reproduces the paper). The asinh
        softening is ``config.softening`` times that median sky RMS. The dict records the method
        and values of each, for dataset.json.
    """
    peaks = np.asarray(peaks, dtype=np.float64)
    sky = np.asarray(sky_rms, dtype=np.float64)
    sky_rms = [float(np.nanmedian(sky[:, b])) if np.isfinite(sky[:, b]).any() else 0.0 for b in range(sky.shape[1])]
    asinh = config.stretch == "asinh"
    if config.upper is not None:
        upper = tuple(config.upper)
        upper_how = "given"
    elif asinh:
        top = np.asarray(peaks if maxima is None else maxima, dtype=np.float64)
        upper = tuple(float(np.nanmax(top[:, b])) for b in range(top.shape[1]))
        upper_how = "the brightest pixel of the training set" if maxima is not None else "the largest percentile"
    else:
        upper = tuple(kmeans_boundary(peaks[:, b]) for b in range(peaks.shape[1]))
        upper_how = f"two-cluster 1-D k-means boundary of per-galaxy {config.percentile:g}th-percentile flux"
    if config.lower is not None:
        lower = tuple(config.lower)
        lower_how = "given"
    else:
        lower = tuple(-config.sky_sigmas * s for s in sky_rms)
        lower_how = f"-{config.sky_sigmas:g} x median over files of the border sky RMS (MAD x 1.4826)"
    for band, lo, hi in zip(config.bands, lower, upper):
        if not lo < hi:
            raise InputError(f"band {band}: lower truncation {lo:g} is not below upper truncation {hi:g}")
    softening = tuple(config.softening * s for s in sky_rms) if asinh else None
    choice = {
        "stretch": config.stretch,
        "upper": {"method": upper_how, "values": list(upper)},
        "lower": {"method": lower_how, "values": list(lower)},
        "sky_rms": sky_rms,
        "percentile_median": [float(np.median(peaks[:, b])) for b in range(peaks.shape[1])],
    }
    if asinh:
        choice["softening"] = {"method": f"{config.softening:g} x median border sky RMS", "values": list(softening)}
    return Normalizer(bands=config.bands, lower=lower, upper=upper, stretch=config.stretch, softening=softening), choice


def parse_band_values(text: str, *, bands, option: str) -> tuple[float, ...]:
    """``"5"`` -> the same value for every band; ``"g=5,r=5,z=6"`` -> one per band (all bands needed)."""
    bands = parse_bands(bands)
    try:
        if "=" not in text:
            return (float(text),) * len(bands)
        pairs = dict(item.split("=", 1) for item in text.replace(" ", "").split(",") if item)
        values = {band.strip(): float(value) for band, value in pairs.items()}
    except ValueError:
        raise InputError(f"{option} {text!r}: expected a number or band=value pairs like g=5,r=5,z=6") from None
    if set(values) != set(bands):
        raise InputError(f"{option} {text!r}: give exactly one value for each band of {bands!r}")
    return tuple(values[b] for b in bands)


def _measure_all(paths: list[Path], config: PrepConfig):
    """Pass-1 reports in input order; a process pool reads blocks of files when workers > 1."""
    measure = partial(measure_file, config=config)
    if config.workers <= 1 or len(paths) < 2:
        yield from map(measure, paths)
        return
    block = config.workers * BLOCK_PER_WORKER
    # spawn, not fork: forking would copy the progress bar's running thread and the locks it holds;
    # the workers' start-up (about a second, importing astropy) only matters for small runs
    with process_pool(config.workers) as pool:  # readers that die with this process, however it is stopped
        for start in range(0, len(paths), block):
            yield from pool.map(measure, paths[start : start + block], chunksize=4)


def _shape_problem(cube, config: PrepConfig) -> str | None:
    data = cube.data
    if data.ndim != 3 or cube.bands != config.bands:
        return f"expected a ({config.bands}, y, x) cube, got bands {cube.bands!r} in shape {data.shape}"
    if min(data.shape[1:]) < config.size:
        return f"{data.shape[2]}x{data.shape[1]} px is smaller than the crop size {config.size}"
    return None


def _pixel_scale(cube) -> float | None:
    try:
        scale = cube.pixel_scale
    except Exception:  # noqa: BLE001 - an odd WCS only loses the pixel scale, not the file
        return None
    # 12 significant digits: the WCS arithmetic leaves float noise (0.262 arcsec reads 0.2620000000000008)
    return None if scale is None else float(f"{float(scale):.12g}")


def _without_path(message: str, path) -> str:
    prefix = f"{path}: " if path else ""
    return message[len(prefix) :] if prefix and message.startswith(prefix) else message


def _warnings(scales: np.ndarray, count: int) -> list[str]:
    warnings = []
    if scales.size and (scales.max() - scales.min()) > 0.01 * scales.min():
        warnings.append(
            f"pixel scales differ between files ({scales.min():.4g} to {scales.max():.4g} arcsec/px); "
            "crops were not resampled"
        )
    if scales.size < count:
        warnings.append(f"{count - scales.size} file(s) have no celestial WCS, pixel scale unknown")
    return warnings


def _meta(result: PrepResult, *, units: list, config: PrepConfig, command: str) -> dict:
    from galgen.io.provenance import make_provenance

    provenance = make_provenance(command=command or "galgen prep")
    return {
        "galgen_version": provenance["version"],
        "command": provenance["command"],
        "bands": str(config.bands),
        "size": config.size,
        "count": result.count,
        "unit": DEFAULT_UNIT,
        # what each band was converted from, when any was not in nanomaggies already (galgen.io.units)
        **({"input_units": dict(zip(config.bands, units))} if any(u["factor_max"] != 1.0 or u["factor_min"] != 1.0
                                                                   for u in units) else {}),
        "pixel_scale": result.pixel_scale,
        "normalizer": result.normalizer.to_dict(),
        "normalizer_choice": result.choice,
        "bad_pixel_fill": "normalised value of zero flux (the sky level)",
        "bad_pixels_filled": result.bad_pixels_filled,
        "max_bad_fraction": config.max_bad_fraction,
        "warnings": result.warnings,
        "provenance": provenance,
        "sources": SOURCES_NAME,
        "skipped": [{"path": p, "reason": r} for p, r in result.skipped],
        **({"labels": result.labels} if result.labels is not None else {}),
    }
