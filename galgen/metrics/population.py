"""Distances between galaxy populations: Wasserstein-1, Cohen's d, bootstrap, and the SGD.

The Synthetic Galaxy Distance (Smith et al. 2022, eq. 15) sums the Wasserstein-1 distances of
per-galaxy properties (aperture magnitudes, colours, a size) between a real and a mock
population. Two recipes measure those properties:

* ``reference`` reproduces the published companion code, so numbers compare with the paper;
* ``default`` measures them properly (exact apertures, clipped background, true half-light
  radius), uses every galaxy, and puts a bootstrap interval and a real-vs-real baseline beside
  every distance.

Never imports torch.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import numpy as np

from galgen.errors import InputError
from galgen.metrics import photometry as phot

MODES = ("default", "reference")
SMALL_EFFECT = 0.2
"""Cohen (1988): an effect size ``d <= 0.2`` is small."""


@dataclass(frozen=True)
class SGDConfig:
    """How an SGD is measured."""

    mode: str = "default"  # "default" (galgen's recipe) or "reference" (the companion code's)
    bootstrap: int = 1000  # bootstrap draws per distance (default mode); 0 turns intervals off
    seed: int = 0  # seeds the bootstrap, the split-half baseline and the reference shuffle
    confidence: float = 0.95  # central bootstrap interval
    zero_point: float = phot.ZERO_POINT_NANOMAGGY  # magnitude of flux 1 (22.5 for nanomaggies)
    aperture_diameter: float = 12.0  # pixels, exact circular aperture (default mode; paper: 12)
    size_band: str = "r"  # band of the half-light radius (default mode; the reference uses g)
    reference_pixel_scale: float = 0.262  # arcsec/pixel the reference hard-codes for its size proxy
    shape_radius: float = 16.0  # pixels: the disk within which the axis ratio's moments are taken


# ----------------------------------------------------------------------------- distances


def _quantile_grid(n_u: int, n_v: int):
    """Where the two empirical quantile functions step: indices into each sorted sample and weights.

    Breakpoints ``k / n_u`` and ``l / n_v`` are merged in exact integer arithmetic (units of
    ``1 / (n_u n_v)``); on each interval both quantile functions are constant.
    """
    points = np.union1d(np.arange(n_u + 1, dtype=np.int64) * n_v, np.arange(n_v + 1, dtype=np.int64) * n_u)
    left = points[:-1]
    return left // n_v, left // n_u, np.diff(points) / float(n_u * n_v)


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def wasserstein1(u, v) -> float:
    """Wasserstein-1 (earth mover's) distance between two samples.

    Parameters
    ----------
    u, v : array_like
        Samples of one property (any unit); non-finite values are dropped.

    Returns
    -------
    float
        ``W1 = int |U(x) - V(x)| dx = int_0^1 |U^-1(p) - V^-1(p)| dp`` with ``U, V`` the
        empirical distribution functions, in the unit of the samples; equal to
        ``scipy.stats.wasserstein_distance(u, v)``. NaN when either sample is empty.
    """
    u, v = np.sort(_finite(u)), np.sort(_finite(v))
    if u.size == 0 or v.size == 0:
        return float("nan")
    iu, iv, dp = _quantile_grid(u.size, v.size)
    return float(np.sum(np.abs(u[iu] - v[iv]) * dp))


def cohens_d(u, v) -> float:
    """Cohen's d effect size as Smith et al. (2022, eq. 16) define it.

    Parameters
    ----------
    u, v : array_like
        Samples of one property; non-finite values are dropped.

    Returns
    -------
    float
        ``d = |mu_u - mu_v| sqrt(2 / (s_u^2 + s_v^2))`` with ``mu, s`` the mean and standard
        deviation of the normal distribution fitted to each sample (maximum likelihood, i.e.
        ``ddof = 0``). ``d <= 0.2`` is a small effect. NaN when a sample is empty or both are
        constant.
    """
    u, v = _finite(u), _finite(v)
    if u.size == 0 or v.size == 0:
        return float("nan")
    spread = u.var() + v.var()
    if spread == 0:
        return 0.0 if u.mean() == v.mean() else float("inf")
    return float(abs(u.mean() - v.mean()) * np.sqrt(2.0 / spread))


def _sorted_resample_index(n: int, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``draws`` bootstrap resamples of a sorted sample of size ``n``, each row sorted.

    A resample of a sorted sample is sorted when its indices are; small integers sort by radix,
    and gathering indices before values moves half the bytes.
    """
    dtype = np.uint16 if n <= np.iinfo(np.uint16).max else np.int64
    index = rng.integers(0, n, size=(draws, n), dtype=dtype)
    index.sort(axis=1, kind="stable")
    return index


def bootstrap_wasserstein1(u, v, *, draws: int = 1000, seed: int | np.random.Generator = 0, batch: int = 100) -> np.ndarray:
    """Wasserstein-1 distances between bootstrap resamples of ``u`` and of ``v``.

    Parameters
    ----------
    u, v : array_like
        Samples of one property; non-finite values are dropped.
    draws : int
        Number of bootstrap draws; each resamples both samples with replacement at their sizes.
    seed : int or numpy.random.Generator
        Makes the draws reproducible.
    batch : int
        Draws computed together (memory ``~ batch * (n_u + n_v)`` values).

    Returns
    -------
    ndarray, float64, shape (draws,)
        ``W1(u*, v*)`` per draw; empty when either sample is empty.
    """
    rng = np.random.default_rng(seed)
    u, v = np.sort(_finite(u)), np.sort(_finite(v))
    if u.size == 0 or v.size == 0 or draws <= 0:
        return np.empty(0)
    iu, iv, dp = _quantile_grid(u.size, v.size)
    same_size = u.size == v.size  # then the grid is every rank once, weight 1 / n
    out = np.empty(draws)
    for start in range(0, draws, batch):
        count = min(batch, draws - start)
        u_index, v_index = _sorted_resample_index(u.size, count, rng), _sorted_resample_index(v.size, count, rng)
        if same_size:
            out[start : start + count] = np.abs(u[u_index] - v[v_index]).mean(axis=1)
        else:
            out[start : start + count] = np.abs(u[u_index[:, iu]] - v[v_index[:, iv]]) @ dp
    return out


def split_half_wasserstein1(u, *, seed: int | np.random.Generator = 0, compared_with: int | None = None) -> float:
    """Noise floor of W1: the distance between two random halves of one sample.

    Parameters
    ----------
    u : array_like
        The real sample of one property; non-finite values are dropped.
    seed : int or numpy.random.Generator
        Seeds the split.
    compared_with : int, optional
        Size ``m`` of the sample ``u`` will be compared with. Between two samples drawn from one
        distribution, W1 shrinks like ``sqrt(1/n_1 + 1/n_2)``; two halves of ``n`` values sit at
        ``sqrt(4/n)``, so the split-half value is rescaled by ``sqrt((1/n + 1/m) / (4/n))`` to be
        the floor of the real (``n``) vs mock (``m``) comparison. Default: no rescaling.

    Returns
    -------
    float
        W1 between the halves (rescaled when asked), in the unit of ``u``; NaN below 2 values.
    """
    u = _finite(u)
    if u.size < 2:
        return float("nan")
    shuffled = np.random.default_rng(seed).permutation(u)
    half = u.size // 2
    distance = wasserstein1(shuffled[:half], shuffled[half : 2 * half])
    if compared_with:
        distance *= np.sqrt((1.0 / u.size + 1.0 / compared_with) / (2.0 / half))
    return float(distance)


def bootstrap_interval(draws, estimate: float, *, confidence: float = 0.95) -> tuple[float, float] | None:
    """Bias-corrected percentile interval of a distance from its bootstrap draws.

    W1 between resamples is biased upwards (resampling adds noise, and noise only adds
    distance), so plain percentiles can miss the estimate altogether when two populations
    nearly agree. The interval is the central ``confidence`` percentile range of the draws
    shifted down by the bootstrap bias ``mean(draws) - estimate``, floored at 0. None without draws.
    """
    draws = np.asarray(draws, dtype=np.float64)
    if draws.size == 0 or not np.all(np.isfinite(draws)) or not np.isfinite(estimate):
        return None
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(draws, [tail, 100.0 - tail]) - (draws.mean() - estimate)
    return float(max(low, 0.0)), float(max(high, 0.0))


# ----------------------------------------------------------------------------- property recipes


def property_names(bands: str) -> list[str]:
    """The SGD's properties: a magnitude per band, ``R_e``, and adjacent colours (paper: g r z R_e g-r r-z)."""
    return [*bands, "R_e", *(f"{a}-{b}" for a, b in zip(bands, bands[1:]))]


def property_units(bands: str) -> dict[str, str]:
    return {name: ("arcsec" if name == "R_e" else "mag") for name in property_names(bands)}


def _band_index(bands: str, band: str) -> int:
    return bands.index(band) if band in bands else len(bands) // 2


def _with_colours(mags: np.ndarray, sizes: np.ndarray, bands: str) -> dict[str, np.ndarray]:
    table = {band: mags[:, i] for i, band in enumerate(bands)}
    table["R_e"] = sizes
    table.update(phot.colours(mags, bands))
    return table


def reference_properties(flux, *, bands: str, config: SGDConfig = SGDConfig(), advance=None) -> dict[str, np.ndarray]:
    """Per-galaxy properties as the companion code measures them.

    Parameters
    ----------
    flux : array_like, shape (N, C, H, W)
        Images in nanomaggies (may be a memory map; read in chunks).
    bands : sequence of str
        One letter per plane, e.g. ``"grz"``.
    config : SGDConfig
        Zero point and the hard-coded pixel scale.
    advance : callable, optional
        Called with the number of galaxies measured, chunk by chunk (from worker threads).

    Returns
    -------
    dict of ndarray, shape (N,)
        Per band: ``m = zp - 2.5 log10(S - 113 b)`` where ``S`` sums the 113 pixels with centre
        within 6 px of pixel ``(W // 2, H // 2)`` and ``b`` is the median of the four 20 x 20
        corner patches (NaN when the flux is not positive, or a pixel in the aperture is NaN);
        ``R_e`` is :func:`photometry.reference_size_proxy` on the g band (arcsec); colours
        are magnitude differences.
    """
    count = flux.shape[0]
    disk = phot.pixel_disk(flux.shape, 6.0)
    mags, sizes = np.empty((count, len(bands))), np.empty(count)
    g = _band_index(bands, "g")

    def measure(rows):
        block = np.asarray(flux[rows], dtype=np.float64)
        background = phot.corner_background(block)
        mags[rows] = phot.magnitudes(block[..., disk].sum(axis=-1) - background * disk.sum(), zero_point=config.zero_point)
        sizes[rows] = phot.reference_size_proxy(block[:, g], pixel_scale=config.reference_pixel_scale)

    phot.for_each_chunk(count, measure, advance=advance)
    return _with_colours(mags, sizes, bands)


def default_properties(flux, *, bands: str, pixel_scale, config: SGDConfig = SGDConfig(), advance=None) -> dict[str, np.ndarray]:
    """Per-galaxy properties measured galgen's way.

    Parameters
    ----------
    flux : array_like, shape (N, C, H, W)
        Images in flux units of the zero point (nanomaggies for 22.5); may be a memory map.
    bands : sequence of str
        One letter per plane.
    pixel_scale : float or array_like, shape (N,)
        Arcsec per pixel, for the half-light radius: one for all, or one per image.
    config : SGDConfig
        Aperture diameter, size band, zero point.
    advance : callable, optional
        Called with the number of galaxies measured, chunk by chunk (from worker threads).

    Returns
    -------
    dict of ndarray, shape (N,)
        Per band: ``m = zp - 2.5 log10(F)`` with ``F = sum w * f - b * pi r^2`` over an exact
        circular aperture of diameter ``config.aperture_diameter`` about pixel ``(W // 2, H // 2)``
        and ``b`` the sigma-clipped median of the border frame
        (:func:`photometry.border_background`); NaN pixels are replaced by ``b`` first.
        ``R_e``: half-light radius in arcsec from the curve of growth of the size band
        (:func:`photometry.half_light_radius`, total flux = the curve in the largest aperture that
        fits). Colours are magnitude differences.
    """
    count, _, height, width = flux.shape
    scale = np.broadcast_to(np.asarray(pixel_scale, dtype=np.float64), (count,))
    radius = 0.5 * config.aperture_diameter
    area = phot.circle_pixel_overlap((height, width), radius).sum()
    radii = phot.growth_radii((height, width))
    size_plane = _band_index(bands, config.size_band)
    mags, sizes = np.empty((count, len(bands))), np.empty(count)

    def measure(rows):
        block = np.asarray(flux[rows])
        level, _ = phot.border_background(block)
        if not np.isfinite(block).all():
            block = np.where(np.isfinite(block), block, level[..., None, None])
        fluxes = phot.aperture_sums(block, [radius])[..., 0] - level * area
        mags[rows] = phot.magnitudes(fluxes, zero_point=config.zero_point)
        cog = phot.curve_of_growth(block[:, size_plane], radii, background=level[:, size_plane])
        sizes[rows] = phot.half_light_radius(cog, radii) * scale[rows]

    phot.for_each_chunk(count, measure, advance=advance)
    return _with_colours(mags, sizes, bands)


def image_diagnostics(flux, *, bands: str, config: SGDConfig = SGDConfig(),
                      advance=None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """What the eye sees beyond the SGD's photometry: each stamp's sky level and the galaxy's shape.

    Parameters
    ----------
    flux : array_like, shape (N, C, H, W)
        Images in flux units; may be a memory map.
    bands : sequence of str
        One letter per plane.
    config : SGDConfig
        ``size_band`` (the band of the shape) and ``shape_radius``.
    advance : callable, optional
        Called with the number of galaxies measured, chunk by chunk.

    Returns
    -------
    table : dict of ndarray, shape (N,)
        ``sky_<band>``: the sigma-clipped median of the border frame (:func:`photometry.border_background`),
        flux units; a sky-subtracted survey stamp has 0. ``q``: the axis ratio of the size band's
        positive flux within ``shape_radius`` after that level is subtracted (:func:`photometry.axis_ratio`).
    rms : ndarray, shape (N, C)
        The border frame's clipped RMS: the per-pixel sky noise of each stamp.
    """
    count = flux.shape[0]
    levels, rms, shapes = np.empty((count, len(bands))), np.empty((count, len(bands))), np.empty(count)
    plane = _band_index(bands, config.size_band)

    def measure(rows):
        block = np.asarray(flux[rows])
        levels[rows], rms[rows] = phot.border_background(block)
        shapes[rows] = phot.axis_ratio(block[:, plane], radius=config.shape_radius, background=levels[rows, plane])

    phot.for_each_chunk(count, measure, advance=advance)
    table = {f"sky_{band}": levels[:, i] for i, band in enumerate(bands)}
    table["q"] = shapes
    return table, rms


def sky_offsets(levels: dict[str, np.ndarray], noise: np.ndarray) -> dict[str, float]:
    """Per band, the fraction of stamps whose sky level is more than ``noise`` (per band, flux) from 0."""
    return {name[len("sky_"):]: float(np.mean(np.abs(values[np.isfinite(values)]) > limit))
            for (name, values), limit in zip(((k, v) for k, v in levels.items() if k.startswith("sky_")), noise)}


# ----------------------------------------------------------------------------- the SGD


@dataclass
class PropertyDistance:
    """One row of an SGD: how far apart the two populations are in one property."""

    name: str
    unit: str
    w1: float  # Wasserstein-1 distance, in `unit`
    ci: tuple[float, float] | None  # bootstrap interval of w1 (default mode)
    baseline: float | None  # real-vs-real split-half W1, the noise floor (default mode)
    cohens_d: float
    n_real: int  # galaxies with a finite value
    n_mock: int
    sd_real: float = float("nan")  # the property's spread (standard deviation, ddof 0) in each set
    sd_mock: float = float("nan")

    @property
    def spread_ratio(self) -> float:
        """sd_mock / sd_real: 1 when the mocks vary as much as the data (collapse shows as < 1)."""
        return self.sd_mock / self.sd_real if self.sd_real > 0 else float("nan")

    @property
    def small(self) -> bool:
        return bool(np.isfinite(self.cohens_d) and self.cohens_d <= SMALL_EFFECT)


@dataclass
class SGDResult:
    """An SGD and every number behind it; ``mode`` says which recipe produced them."""

    mode: str
    properties: list[PropertyDistance]
    sgd: float
    sgd_ci: tuple[float, float] | None
    baseline_sgd: float | None
    n_real: int
    n_mock: int
    confidence: float
    notes: list[str] = field(default_factory=list)
    real_values: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    mock_values: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    TABLE_HEADER = ("property", "W1", "CI", "baseline W1", "Cohen's d", "small?", "sd real / mock")

    def table_rows(self, *, total: bool = True) -> list[tuple[str, ...]]:
        """Rows of text under :attr:`TABLE_HEADER`, one per property and (``total``) a last one for the SGD."""

        def interval(ci):
            return "-" if ci is None else f"[{ci[0]:.4f}, {ci[1]:.4f}]"

        def number(value, digits=4):
            return "-" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"

        rows = [
            (f"{p.name} [{p.unit}]" if p.unit else p.name, number(p.w1), interval(p.ci), number(p.baseline),
             number(p.cohens_d, 3), "yes" if p.small else "no", f"{number(p.sd_real)} / {number(p.sd_mock)}")
            for p in self.properties
        ]
        if total:
            rows.append(("SGD", number(self.sgd), interval(self.sgd_ci), number(self.baseline_sgd), "", "", ""))
        return rows

    def to_dict(self) -> dict:
        """JSON-safe summary (NaN and infinity become None); the per-galaxy values are left out."""
        rows = {}
        for p in self.properties:
            row = asdict(p)
            row.pop("name")
            row["small"] = p.small
            row["spread_ratio"] = p.spread_ratio
            rows[p.name] = row
        summary = {
            "mode": self.mode,
            "sgd": self.sgd,
            "sgd_ci": self.sgd_ci,
            "baseline_sgd": self.baseline_sgd,
            "confidence": self.confidence,
            "n_real": self.n_real,
            "n_mock": self.n_mock,
            "properties": rows,
            "notes": list(self.notes),
        }
        return json_safe(summary)


def json_safe(value):
    """``value`` with NaN and infinities as None and numpy scalars as Python ones (for strict JSON)."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


MIN_GALAXIES = 2  # a distance, a spread and a bootstrap need two measured galaxies per set at the least


def _check_counts(real: dict, mock: dict, *, labels: tuple[str, str]) -> None:
    """InputError naming the set when fewer than MIN_GALAXIES of its galaxies have a measured value."""
    for label, table in zip(labels, (real, mock)):
        for name, values in table.items():
            count = int(np.isfinite(values).sum())
            if count < MIN_GALAXIES:
                raise InputError(f"only {count} of {len(values)} galaxies have a measurable {name}; "
                                 f"statistics need at least {MIN_GALAXIES}", path=label)


def _shuffle_truncate(table: dict[str, np.ndarray], size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    order = rng.permutation(len(next(iter(table.values()))))[:size]
    return {name: values[order] for name, values in table.items()}


def _compare_one(name, real, mock, *, unit, draws, mode, confidence, rng) -> tuple[PropertyDistance, np.ndarray]:
    """One property's row, and its bootstrap draws (empty in reference mode)."""
    n_real, n_mock = int(np.isfinite(real).sum()), int(np.isfinite(mock).sum())
    w1 = wasserstein1(real, mock)
    baseline = split_half_wasserstein1(real, seed=rng, compared_with=n_mock) if mode == "default" else None
    samples = bootstrap_wasserstein1(real, mock, draws=draws, seed=rng) if draws else np.empty(0)
    row = PropertyDistance(
        name=name, unit=unit, w1=w1, ci=bootstrap_interval(samples, w1, confidence=confidence) if draws else None,
        baseline=baseline, cohens_d=cohens_d(real, mock), n_real=n_real, n_mock=n_mock,
        sd_real=float(np.std(_finite(real))) if n_real else float("nan"),
        sd_mock=float(np.std(_finite(mock))) if n_mock else float("nan"),
    )
    return row, samples


def compare_properties(real: dict[str, np.ndarray], mock: dict[str, np.ndarray], *, units: dict[str, str],
                       config: SGDConfig = SGDConfig(), labels: tuple[str, str] = ("real", "mock")) -> SGDResult:
    """The SGD between two tables of per-galaxy properties.

    Parameters
    ----------
    real, mock : dict of ndarray
        Same property names, one value per galaxy (NaN = not measured: dropped per property).
    units : dict of str
        Unit of each property.
    config : SGDConfig
        ``mode``, ``bootstrap``, ``seed``, ``confidence``.
    labels : (str, str)
        Names of the two sets in errors (the CLI passes what the user typed).

    Returns
    -------
    SGDResult
        ``SGD = sum_i W1(real_i, mock_i)`` over the properties (paper eq. 15). Reference mode
        first shuffles both sets and truncates them to the smaller size (seeded) and gives no
        interval or baseline. Default mode keeps every galaxy; each W1 gets a bias-corrected
        bootstrap interval (:func:`bootstrap_interval`; both sets resampled, ``config.bootstrap``
        draws) and a noise floor, the W1 between two random halves of the real set rescaled to
        the comparison's sample sizes (:func:`split_half_wasserstein1`); the SGD's interval sums
        the per-property draws (properties resampled independently) and its floor the floors.
    """
    _check_counts(real, mock, labels=labels)
    rng = np.random.default_rng(config.seed)
    n_real, n_mock = len(next(iter(real.values()))), len(next(iter(mock.values())))
    notes = []
    if config.mode == "reference":
        size = min(n_real, n_mock)
        real, mock = _shuffle_truncate(real, size, rng), _shuffle_truncate(mock, size, rng)
        notes.append(f"reference mode: both sets shuffled and truncated to {size} galaxies (seed {config.seed})")
    draws = config.bootstrap if config.mode == "default" else 0
    names = list(real)
    # one generator per property: the same numbers whatever the thread scheduling
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(len(names))]

    def one(k):
        return _compare_one(names[k], real[names[k]], mock[names[k]], unit=units.get(names[k], ""), draws=draws,
                            mode=config.mode, confidence=config.confidence, rng=streams[k])

    with ThreadPoolExecutor(max_workers=min(len(names), os.cpu_count() or 1, 8)) as pool:
        compared = list(pool.map(one, range(len(names))))
    rows, draws_total = [], np.zeros(draws)
    for (row, row_draws), name in zip(compared, names):
        rows.append(row)
        draws_total += row_draws if row_draws.size == draws else np.nan
        dropped = (len(real[name]) - row.n_real, len(mock[name]) - row.n_mock)
        if any(dropped):
            notes.append(f"{name}: {dropped[0]} real and {dropped[1]} mock galaxies not measurable, left out")
    total = float(sum(r.w1 for r in rows))
    sgd_ci = bootstrap_interval(draws_total, total, confidence=config.confidence)
    baseline_sgd = float(sum(r.baseline for r in rows)) if config.mode == "default" else None
    return SGDResult(
        mode=config.mode,
        properties=rows,
        sgd=total,
        sgd_ci=sgd_ci,
        baseline_sgd=baseline_sgd,
        n_real=n_real,
        n_mock=n_mock,
        confidence=config.confidence,
        notes=notes,
        real_values=real,
        mock_values=mock,
    )


def synthetic_galaxy_distance(real_flux, mock_flux, *, bands: str, pixel_scale=None, mock_pixel_scale=None,
                              config: SGDConfig = SGDConfig(), advance=None,
                              labels: tuple[str, str] = ("real", "mock")) -> SGDResult:
    """Synthetic Galaxy Distance between two stacks of images (Smith et al. 2022, section 4.1).

    Parameters
    ----------
    real_flux, mock_flux : array_like, shape (N, C, H, W)
        Images in nanomaggies (or the unit of ``config.zero_point``); may be memory maps.
    bands : sequence of str
        One letter per plane, shared by both stacks.
    pixel_scale, mock_pixel_scale : float, array_like (N,) or None
        Arcsec per pixel of the real (and mock) images, one for all or one per image, for the
        default mode's ``R_e``; ``mock_pixel_scale`` defaults to ``pixel_scale``. Unknown values
        (None, NaN) are taken as the DESI Legacy Surveys' 0.262, with a note.
    config : SGDConfig
        Mode and options.
    advance : callable, optional
        Called with the number of galaxies measured so far, chunk by chunk (real, then mock).
    labels : (str, str)
        Names of the two sets in errors (fewer than MIN_GALAXIES measurable galaxies).

    Returns
    -------
    SGDResult
        See :func:`compare_properties`; ``result.mode`` names the recipe.
    """
    if config.mode not in MODES:
        raise ValueError(f"unknown SGD mode {config.mode!r}; choose one of {', '.join(MODES)}")
    notes = []
    if config.mode == "reference":
        real = reference_properties(real_flux, bands=bands, config=config, advance=advance)
        mock = reference_properties(mock_flux, bands=bands, config=config, advance=advance)
        if "g" not in bands:
            notes.append(f"no g band: the size proxy used band {bands[_band_index(bands, 'g')]}")
    else:
        fallback = config.reference_pixel_scale
        scales = [_known_scales(s, len(f), fallback) for s, f in ((pixel_scale, real_flux),
                  (pixel_scale if mock_pixel_scale is None else mock_pixel_scale, mock_flux))]
        unknown = sum(count for _, count in scales)
        if unknown:
            notes.append(f"{unknown} images without a pixel scale: assumed {fallback} arcsec/pixel")
        real = default_properties(real_flux, bands=bands, pixel_scale=scales[0][0], config=config, advance=advance)
        mock = default_properties(mock_flux, bands=bands, pixel_scale=scales[1][0], config=config, advance=advance)
        size_band = bands[_band_index(bands, config.size_band)]
        notes.append(f"R_e: half-light radius from the {size_band}-band curve of growth")
    result = compare_properties(real, mock, units=property_units(bands), config=config, labels=labels)
    result.notes[:0] = notes
    return result


def _known_scales(scale, count: int, fallback: float) -> tuple[np.ndarray, int]:
    """Per-image pixel scales with unknown ones (None, NaN) replaced by ``fallback``, and how many were."""
    values = np.broadcast_to(np.asarray(np.nan if scale is None else scale, dtype=np.float64), (count,))
    unknown = ~np.isfinite(values)
    return np.where(unknown, fallback, values), int(unknown.sum())


# what matplotlib's Agg backend writes, by suffix (checked before any galaxy is measured)
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".svgz", ".eps", ".ps", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".pgf")
