"""Per-band flux multipliers that bring a model's mocks onto the real data's flux scale.

Smith et al. (2022, section 4) found the mocks systematically faint and fixed it per band: take
the median pixel of every mock and every real image, sort both lists, pair them by rank, and
fit ``real = m * mock + c``; the gradient ``m`` is the band's multiplier (paper: 1.18 g,
1.16 r, 1.23 z).

On sky-subtracted stamps most pixels are sky, so a plain median is mostly noise; by default
the median is taken over the galaxy's own pixels (more than ``threshold`` x the background RMS
above the background). ``paper=True`` keeps the plain median and the paper's line.

The paper's least-squares line is biased on independent populations: both sorted samples are
noisy estimates of the same quantiles, so the fit suffers regression dilution (its slope falls
below 1, and the free offset trades against it), ruled by the few brightest pairs. By default
the factor is instead the median over the rank pairs of ``log(real / mock)``: a flux multiplier
needs no offset, swapping the two sets gives exactly the reciprocal, and the median is immune
to the sparse bright tail (benchmarks/calibration_bias.py; docs/metrics.md). Its interval is a
bootstrap over the images of both sets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from galgen.errors import InputError, RuntimeFailure
from galgen.metrics import photometry as phot
from galgen.metrics.population import MIN_GALAXIES, json_safe


@dataclass(frozen=True)
class CalibrationConfig:
    """How the per-image medians are taken."""

    paper: bool = False  # True: plain medians and the least-squares line (the paper); False: see the module
    threshold: float = 2.0  # galaxy pixels lie more than threshold x background RMS above the background
    bootstrap: int = 400  # resamples of both sets for the factor's interval (0: none)
    confidence: float = 0.95  # of that interval
    seed: int = 0  # of the resampling

    @property
    def method(self) -> str:
        if self.paper:
            return "rank-paired per-image plain pixel medians, least-squares line (Smith et al. 2022)"
        return (
            f"rank-paired per-image medians of galaxy pixels (> {self.threshold:g} x border-sigma-clipped "
            "background RMS above the background), factor = median over pairs of real / mock (no offset), "
            f"{self.confidence:.0%} bootstrap interval"
        )


@dataclass
class BandFit:
    """The line ``real = factor * mock + offset`` fitted in one band."""

    band: str
    factor: float  # m, the flux multiplier for mocks
    offset: float  # c, in flux units (0 by construction in the default method)
    scatter: float  # RMS of the real medians about the line, flux units
    pairs: int  # rank pairs fitted
    interval: tuple[float, float] | None = None  # bootstrap interval of m (default method)


@dataclass
class Calibration:
    """Per-band multipliers and how they were measured."""

    fits: list[BandFit]
    method: str
    n_real: int
    n_mock: int
    notes: list[str] = field(default_factory=list)
    written_to: str | None = None  # the model file the factors were stored in, if any
    mock_factors: dict[str, float] | None = None  # calibration factors the mocks already carried (their GGCALIB)

    @property
    def factors(self) -> dict[str, float]:
        return {fit.band: fit.factor for fit in self.fits}

    def to_dict(self) -> dict:
        """JSON-safe summary (a failed fit's NaN becomes None)."""
        return json_safe({
            "factors": self.factors,
            "bands": {fit.band: asdict(fit) for fit in self.fits},
            "method": self.method,
            "n_real": self.n_real,
            "n_mock": self.n_mock,
            "notes": list(self.notes),
            "written_to": self.written_to,
            "mock_factors": self.mock_factors,
        })

    def metadata(self) -> dict:
        """What a model file stores: ``{"factors": {band: m}, "offsets", "scatter", "method", counts}``.

        Mocks made with calibration factors F already applied (``mock_factors``) measure m relative to them:
        the model's factor is then F m (and its interval F times m's), and F is recorded as ``mock_factors``.
        Raises RuntimeFailure when a band could not be fitted or its factor lies beyond
        `engine.weights.FACTOR_RANGE`: a model never gets a NaN (or absurd) factor.
        """
        from galgen.engine.weights import FACTOR_RANGE

        applied = {fit.band: float((self.mock_factors or {}).get(fit.band, 1.0)) for fit in self.fits}
        factors = {fit.band: fit.factor * applied[fit.band] for fit in self.fits}
        failed = [f"{band} {m:.4g}" for band, m in factors.items()
                  if not (np.isfinite(m) and FACTOR_RANGE[0] <= m <= FACTOR_RANGE[1])]
        if failed:
            raise RuntimeFailure(f"no usable calibration for band(s) {', '.join(failed)} (a factor must lie in "
                                 f"[{FACTOR_RANGE[0]:g}, {FACTOR_RANGE[1]:g}]): nothing written")
        stored = {
            "factors": factors,
            "offsets": {fit.band: fit.offset for fit in self.fits},
            "scatter": {fit.band: fit.scatter for fit in self.fits},
            "intervals": {fit.band: [v * applied[fit.band] for v in fit.interval] for fit in self.fits
                          if fit.interval is not None},
            "method": self.method,
            "n_real": self.n_real,
            "n_mock": self.n_mock,
        }
        if self.mock_factors:
            stored["mock_factors"] = applied
        return stored


def image_medians(flux, *, config: CalibrationConfig = CalibrationConfig(), advance=None) -> np.ndarray:
    """Median pixel value of every image in every band.

    Parameters
    ----------
    flux : array_like, shape (N, C, H, W)
        Images in flux units (may be a memory map; read in chunks). NaN pixels are ignored.
    config : CalibrationConfig
        ``paper=True``: median of all pixels. Otherwise the median over the pixels with
        ``f - b > threshold * sigma_b``, where ``b, sigma_b`` are the sigma-clipped level and RMS
        of the border frame (:func:`galgen.metrics.photometry.border_background`).
    advance : callable, optional
        Called with the number of images done, chunk by chunk (from worker threads).

    Returns
    -------
    ndarray, float64, shape (N, C)
        Medians in flux units; NaN for an image with no galaxy pixel in a band.
    """
    count, planes = flux.shape[:2]
    medians = np.empty((count, planes))

    def measure(rows):
        block = np.asarray(flux[rows])  # medians are order statistics: the input's precision is exact
        if not config.paper:
            level, rms = phot.border_background(block)
            galaxy = block - level[..., None, None] > config.threshold * rms[..., None, None]
            block = np.where(galaxy, block, np.nan)
        medians[rows] = phot.nanmedian_last(block.reshape(*block.shape[:2], -1))

    phot.for_each_chunk(count, measure, advance=advance)
    return medians


def pair_by_rank(real, mock) -> tuple[np.ndarray, np.ndarray]:
    """Sort both samples and pair them by rank.

    With unequal sizes the larger sample is read at the smaller one's quantiles: the ``k``-th of
    ``n`` sorted values of the smaller pairs with the larger sample's quantile ``k / (n - 1)``
    (linear interpolation), which is plain rank pairing when the sizes agree.
    Non-finite values are dropped first. Returns ``(real_paired, mock_paired)``.
    """
    real = np.sort(np.asarray(real, dtype=np.float64)[np.isfinite(real)])
    mock = np.sort(np.asarray(mock, dtype=np.float64)[np.isfinite(mock)])
    if real.size == mock.size:
        return real, mock
    small, large = (real, mock) if real.size < mock.size else (mock, real)
    positions = np.linspace(0.0, 1.0, small.size) if small.size > 1 else np.array([0.5])
    matched = np.quantile(large, positions)
    return (small, matched) if real.size < mock.size else (matched, small)


def ratio_factor(real_paired, mock_paired) -> float:
    """``exp(median(log(real_k / mock_k)))`` over the rank pairs with both medians positive (NaN if none).

    Unbiased for independent draws of one population scaled by m, whatever its shape: the
    median of the pairs' log-ratios is m's log up to sampling noise symmetric about it.
    """
    real, mock = np.asarray(real_paired, dtype=np.float64), np.asarray(mock_paired, dtype=np.float64)
    positive = (real > 0) & (mock > 0)
    if not positive.any():
        return float("nan")
    return float(np.exp(np.median(np.log(real[positive] / mock[positive]))))


def _bootstrap_interval(real, mock, *, config: CalibrationConfig, stream: int) -> tuple[float, float] | None:
    """Percentile interval of `ratio_factor` over resamples (with replacement) of both sets' medians."""
    real, mock = real[np.isfinite(real)], mock[np.isfinite(mock)]
    if not config.bootstrap or min(real.size, mock.size) < MIN_GALAXIES:
        return None
    rng = np.random.default_rng([config.seed, stream])
    draws = np.empty(config.bootstrap)
    for k in range(config.bootstrap):
        pr, pm = pair_by_rank(real[rng.integers(0, real.size, real.size)], mock[rng.integers(0, mock.size, mock.size)])
        draws[k] = ratio_factor(pr, pm)
    tail = 50 * (1 - config.confidence)
    low, high = np.nanpercentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def fit_line(mock, real) -> tuple[float, float, float]:
    """Least-squares line ``real = m * mock + c``: returns ``(m, c, rms residual)``."""
    mock, real = np.asarray(mock, dtype=np.float64), np.asarray(real, dtype=np.float64)
    x = mock - mock.mean()
    denominator = np.sum(x * x)
    if mock.size < 2 or denominator == 0:
        return float("nan"), float("nan"), float("nan")
    slope = float(np.sum(x * (real - real.mean())) / denominator)
    offset = float(real.mean() - slope * mock.mean())
    residual = real - (slope * mock + offset)
    return slope, offset, float(np.sqrt(np.mean(residual * residual)))


def calibrate(real_flux, mock_flux, *, bands: str, config: CalibrationConfig = CalibrationConfig(),
              advance=None, labels: tuple[str, str] = ("real", "mock")) -> Calibration:
    """Per-band flux multipliers for mocks (Smith et al. 2022, section 4).

    Parameters
    ----------
    real_flux, mock_flux : array_like, shape (N, C, H, W)
        Real and mock images in the same flux unit and band order.
    bands : sequence of str
        One letter per plane.
    config : CalibrationConfig
        Plain medians (``paper``) or galaxy-pixel medians (default).
    advance : callable, optional
        Called with the number of images done, chunk by chunk (real, then mock).
    labels : (str, str)
        Names of the two sets in errors (a band with fewer than MIN_GALAXIES usable medians).

    Returns
    -------
    Calibration
        Per band the factor ``m`` from rank-paired medians (:func:`pair_by_rank`): by default
        :func:`ratio_factor` (no offset) with a bootstrap interval; with ``config.paper`` the
        paper's least-squares ``median_real = m * median_mock + c``. The RMS scatter of the real
        medians about the line; multiplying mocks by ``m`` matches their flux scale to the real data.
    """
    real_medians = image_medians(real_flux, config=config, advance=advance)
    mock_medians = image_medians(mock_flux, config=config, advance=advance)
    fits, notes = [], []
    for i, band in enumerate(bands):
        unusable = int((~np.isfinite(real_medians[:, i])).sum()), int((~np.isfinite(mock_medians[:, i])).sum())
        if any(unusable):
            notes.append(f"{band}: {unusable[0]} real and {unusable[1]} mock images without galaxy pixels, left out")
        for label, medians, bad in zip(labels, (real_medians, mock_medians), unusable):
            if len(medians) - bad < MIN_GALAXIES:
                raise InputError(f"band {band}: only {len(medians) - bad} of {len(medians)} images have galaxy "
                                 f"pixels; a calibration needs at least {MIN_GALAXIES}", path=label)
        real_paired, mock_paired = pair_by_rank(real_medians[:, i], mock_medians[:, i])
        if config.paper:
            slope, offset, scatter = fit_line(mock_paired, real_paired)
            interval = None
        else:
            slope, offset = ratio_factor(real_paired, mock_paired), 0.0
            scatter = float(np.sqrt(np.mean((real_paired - slope * mock_paired) ** 2)))
            interval = _bootstrap_interval(real_medians[:, i], mock_medians[:, i], config=config, stream=i)
        fits.append(BandFit(band=band, factor=slope, offset=offset, scatter=scatter, pairs=int(real_paired.size),
                            interval=interval))
    return Calibration(fits=fits, method=config.method, n_real=len(real_medians), n_mock=len(mock_medians), notes=notes)


def run(real, mock, *, config: CalibrationConfig = CalibrationConfig(), write_to=None, model=None,
        any_model: bool = False, on_progress=None) -> Calibration:
    """`galgen calibrate`: measure the factors of ``mock`` (a model's mocks) against ``real``.

    Each population is FITS cubes, a directory, a glob, @list or a dataset. With ``write_to`` the
    factors are stored in that model file (a copy of ``model`` when given, else ``write_to``
    itself), atomically; the model and the mocks are checked before anything is measured:

    - the mocks' headers name the model that made them (GGMODEL, its sha256): it must be the model
      the factors go into, or one it was calibrated from (the metadata's ``calibrated_from`` lists
      them: a file's sha256 changes when factors are written into it), unless ``any_model``. Mocks
      that name no model (a dataset, files of another pipeline) are taken with a note.
    - mocks made with factors already applied (GGCALIB) measure m relative to them; the factors
      written are theirs times m (`Calibration.metadata`).
    - galgen's bundled model (galgen/models/) is never rewritten: write to a copy (``model``).
    - a ``write_to`` that is a symbolic link is written through: its target is replaced, atomically,
      and the link stays (`engine.weights.write_calibration`).

    Progress stages: "reading real", "reading mock", "medians".
    """
    from pathlib import Path

    from galgen.populations import load_pair
    from galgen.progress import stage

    write_to, model = (None if p is None else Path(p) for p in (write_to, model))
    if model is not None and write_to is None:
        raise InputError("a model to copy needs a file to write it to", options=("model", "write_to"))
    lineage, mock_factors, notes = [], None, []
    if write_to is not None:
        lineage = _check_model(model or write_to, write_to)
        mock_factors, notes = _check_mocks(mock, lineage, model or write_to, any_model=any_model)
    real_pop, mock_pop = load_pair(real, mock, on_progress=on_progress)
    result = calibrate(real_pop.flux, mock_pop.flux, bands=real_pop.bands, config=config, labels=(str(real), str(mock)),
                       advance=stage(on_progress, "medians", len(real_pop) + len(mock_pop)))
    result.notes[:0] = real_pop.notes + mock_pop.notes + notes
    result.mock_factors = mock_factors
    if write_to is not None:
        from galgen.engine.weights import write_calibration

        written = write_calibration(model or write_to, write_to, {**result.metadata(), "calibrated_from": lineage})
        result.written_to = str(write_to)
        through = f" (through the link, to {written})" if written != write_to else ""
        result.notes.append(f"factors written to {write_to}{through}")
    return result


def _check_model(source, write_to) -> list[str]:
    """Check the model to copy and the file to write, before anything is measured; returns the sha256 of every
    file of the model's lineage (those it was calibrated from, then ``source`` itself)."""
    import os
    from importlib.resources import files
    from pathlib import Path

    from galgen.engine.weights import MODEL_KIND, is_weights_file, read_metadata
    from galgen.io.atomic import check_output
    from galgen.io.provenance import file_sha256

    from galgen.io.inputs import refuse_special_file

    refuse_special_file(source)
    if not source.is_file():
        raise InputError("no such model file", path=source)
    meta = read_metadata(source)  # the model to copy must be one
    if meta["kind"] != MODEL_KIND:
        raise InputError("calibration factors belong in a model file, not a checkpoint", path=source)
    target = Path(os.path.realpath(write_to)) if write_to.is_symlink() else write_to
    if target.resolve().parent == Path(str(files("galgen.models"))).resolve():
        raise InputError("is the model bundled with galgen, which is never rewritten: write the factors into a copy",
                         path=write_to, options=("model", "write_to"))
    check_output(write_to, overwrite=True, suffixes=(".safetensors",), made_by_galgen=is_weights_file)
    if target != write_to:
        check_output(target, overwrite=True, made_by_galgen=is_weights_file)
    calibration = meta.get("calibration")
    earlier = calibration.get("calibrated_from") if isinstance(calibration, dict) else None
    earlier = [h for h in earlier if isinstance(h, str)] if isinstance(earlier, list) else []
    return list(dict.fromkeys([*earlier, file_sha256(source)]))


def _check_mocks(mock, lineage: list[str], source, *, any_model: bool) -> tuple[dict | None, list[str]]:
    """Which models made the mocks (their headers' GGMODEL), against ``lineage`` (`_check_model`): (the
    calibration factors the mocks carry, or None; notes). InputError naming a mock another model made, unless
    ``any_model``, and when the mocks carry different factors."""
    from pathlib import Path

    from galgen.engine.weights import FACTOR_RANGE
    from galgen.io.cube import read_provenance
    from galgen.populations import resolve_inputs

    paths = resolve_inputs(mock)
    if isinstance(paths, Path):
        return None, [f"{paths}: a prepared dataset names no model that made it: not checked against {source.name}"]
    carried, unnamed, strangers = {}, 0, {}
    for path in paths:
        provenance = read_provenance(path)
        sha = provenance.get("model_sha256")
        if not isinstance(sha, str) or not sha:
            unnamed += 1
            continue
        maker = f"the model {provenance.get('model', '(unnamed)')} (sha256 {sha[:12]})"
        if sha not in lineage:
            if not any_model:
                raise InputError(f"this mock was made by {maker}, not by {source.name} (sha256 {lineage[-1][:12]}) or "
                                 f"a model it was calibrated from: its factors would be wrong for {source.name}",
                                 path=path, options="any_model")
            strangers.setdefault(sha, maker)
        factors = provenance.get("calibration") if provenance.get("calibrated") else None
        if factors is not None and not (isinstance(factors, dict) and all(
                isinstance(v, (int, float)) and FACTOR_RANGE[0] <= v <= FACTOR_RANGE[1] for v in factors.values())):
            raise InputError(f"the calibration factors in its header (GGCALIB) are unreadable: {factors!r}", path=path)
        carried.setdefault(repr(sorted((factors or {}).items())), (path, factors))
    if len(carried) > 1:
        (first, one), (second, other) = list(carried.values())[:2]
        raise InputError(f"made with the calibration factors {other}, {first.name} with {one}: calibrate one kind of "
                         "mock at a time", path=second)
    notes = [f"mocks made by {maker}, not by {source.name}: taken as asked" for maker in strangers.values()]
    if unnamed:
        notes.append(f"{unnamed} of {len(paths)} mock files name no model that made them (no GGMODEL): "
                     f"not checked against {source.name}")
    factors = next(iter(carried.values()))[1] if carried else None
    if factors:
        notes.append("the mocks carry calibration factors (" + ", ".join(f"{b} x{f:.4g}" for b, f in factors.items())
                     + "): the factors written are those times m")
    return factors or None, notes
