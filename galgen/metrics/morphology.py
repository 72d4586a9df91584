"""Non-parametric galaxy morphology per image, and Wasserstein distances between populations.

statmorph (Rodriguez-Gomez et al. 2019) is the reference implementation and does the
measuring: this module prepares each stamp as statmorph expects (background subtracted,
a segmentation map with the central source, a weight map), runs it over a stack in parallel
processes, turns failures into NaN with a flag, and adds the azimuthally averaged power
spectrum (Holzschuh et al. 2022). Never imports torch.

Flags (column ``flag``): 0 good, 1 statmorph "suspect", 2 statmorph "bad" (values kept, treat
with care), 3 no source detected near the centre, 4 statmorph failed (values NaN).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import warnings
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
from scipy import ndimage, stats

from galgen.errors import InputError

# statmorph attribute behind each statistic we report
STATMORPH_NAMES = {
    "gini": "gini",
    "m20": "m20",
    "concentration": "concentration",
    "asymmetry": "asymmetry",
    "smoothness": "smoothness",
    "ellipticity": "ellipticity_asymmetry",
    "bulge": "gini_m20_bulge",  # F(G, M20) = -0.693 M20 + 4.95 G - 3.96
}
FLAG_GOOD, FLAG_SUSPECT, FLAG_BAD, FLAG_NO_SOURCE, FLAG_FAILED = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class MorphologyConfig:
    """How each stamp is prepared for statmorph."""

    band: str = "r"                     # the one band measured
    threshold: float = 1.5              # detection threshold on the smoothed image, x background RMS
    smoothing_fwhm: float = 3.0         # Gaussian smoothing before detection (pixels)
    npixels: int = 5                    # smallest connected source (pixels)
    border: int = 8                     # stamp border width used for background and RMS (pixels)
    power_wavelengths: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)   # power spectrum scales (pixels)

    def columns(self) -> list[str]:
        """Output column names, in order (``flag`` last)."""
        return [*STATMORPH_NAMES, *(power_column(w) for w in self.power_wavelengths), "flag"]


def power_column(wavelength: float) -> str:
    return f"log10_power_{wavelength:g}px"


def morphology_units(config: MorphologyConfig = MorphologyConfig(), *, flux_unit: str = "nanomaggy") -> dict[str, str]:
    """Unit of every statistic column (for tables and ``population.compare_properties``)."""
    units = {name: "" for name in STATMORPH_NAMES}
    units.update({power_column(w): f"log10({flux_unit}^2)" for w in config.power_wavelengths})
    return units


def border_background(image: np.ndarray, *, border: int) -> tuple[float, float]:
    """Sigma-clipped (3 sigma) median and standard deviation of the stamp's border pixels, flux units."""
    from astropy.stats import sigma_clipped_stats

    edge = np.ones(image.shape, dtype=bool)
    edge[border:-border, border:-border] = False
    values = image[edge & np.isfinite(image)]
    if values.size < 10:
        return 0.0, float("nan")
    _, median, std = sigma_clipped_stats(values, sigma=3.0, maxiters=5)
    return float(median), float(std)


def central_segmap(image: np.ndarray, rms: float, *, config: MorphologyConfig):
    """Segmentation of the smoothed stamp and the label of the source nearest the centre (0: none).

    Sources are connected groups of at least ``npixels`` pixels above ``threshold x rms`` in
    the image smoothed by a Gaussian of FWHM ``smoothing_fwhm`` (photutils ``detect_sources``).
    The central source is the one covering the centre pixel, else the one with the pixel
    nearest to it; the others stay in the map so statmorph masks them.
    """
    from photutils.segmentation import detect_sources

    sigma = config.smoothing_fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    smoothed = ndimage.gaussian_filter(image, sigma, mode="nearest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "no sources found" is an answer here, reported by the flag
        segmap = detect_sources(smoothed, config.threshold * rms, config.npixels)  # positional: renamed in photutils 3
    if segmap is None:
        return None, 0
    cy, cx = image.shape[0] // 2, image.shape[1] // 2
    label = int(segmap.data[cy, cx])
    if label == 0:
        ys, xs = np.nonzero(segmap.data)
        nearest = np.argmin((ys - cy) ** 2 + (xs - cx) ** 2)
        label = int(segmap.data[ys[nearest], xs[nearest]])
    return segmap, label


def power_spectrum(image: np.ndarray, *, wavelengths=(2.0, 4.0, 8.0, 16.0)) -> np.ndarray:
    r"""Azimuthally averaged power spectrum of one image at the given wavelengths.

    .. math::

        P(k) = \left\langle |\hat{I}(\mathbf{k})|^2 / (N_y N_x) \right\rangle_{\left||\mathbf{k}| - k\right| < \delta/2},
        \qquad k = 1/\lambda, \quad \delta = 1/\min(N_y, N_x)

    with :math:`\hat{I}` the discrete Fourier transform. White noise of standard deviation
    :math:`\sigma` has :math:`P(k) = \sigma^2` at every k.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Flux per pixel; NaN pixels are set to 0.
    wavelengths : sequence of float
        Scales in pixels (>= 2: the Nyquist limit).

    Returns
    -------
    ndarray, shape (len(wavelengths),)
        Power in flux^2 per mode; NaN where the annulus holds no mode.
    """
    image = np.nan_to_num(np.asarray(image, dtype=np.float64))
    ny, nx = image.shape
    power = np.abs(np.fft.fft2(image)) ** 2 / (ny * nx)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(ny), np.fft.fftfreq(nx), indexing="ij"))
    delta = 1.0 / min(ny, nx)
    out = np.full(len(wavelengths), np.nan)
    for i, wavelength in enumerate(wavelengths):
        ring = np.abs(k - 1.0 / wavelength) < delta / 2
        if ring.any():
            out[i] = power[ring].mean()
    return out


def measure_galaxy(image: np.ndarray, *, config: MorphologyConfig = MorphologyConfig()) -> dict[str, float]:
    """Morphology of the central galaxy of one stamp (H, W) in flux units; see :func:`measure_stack`.

    Never raises on a bad stamp: the statistics become NaN and ``flag`` says why.
    """
    import statmorph

    image = np.asarray(image, dtype=np.float64)
    background, rms = border_background(image, border=config.border)
    image = image - background
    mask = ~np.isfinite(image)
    image = np.where(mask, 0.0, image)
    result = {name: np.nan for name in STATMORPH_NAMES}
    with np.errstate(divide="ignore"):
        result.update(zip(map(power_column, config.power_wavelengths),
                          np.log10(power_spectrum(image, wavelengths=config.power_wavelengths))))
    if not (np.isfinite(rms) and rms > 0):
        return {**result, "flag": FLAG_NO_SOURCE}
    segmap, label = central_segmap(image, rms, config=config)
    if label == 0:
        return {**result, "flag": FLAG_NO_SOURCE}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statmorph warns per galaxy; the flag carries the verdict
            morph = statmorph.SourceMorphology(image, segmap, label, mask=mask if mask.any() else None,
                                               weightmap=np.full(image.shape, rms))
    except Exception:  # noqa: BLE001 - one pathological stamp must not stop a population
        return {**result, "flag": FLAG_FAILED}
    if morph.flag >= FLAG_FAILED:
        return {**result, "flag": FLAG_FAILED}
    for name, attribute in STATMORPH_NAMES.items():
        value = float(morph[attribute])
        result[name] = np.nan if value == -99.0 or not np.isfinite(value) else value
    return {**result, "flag": int(morph.flag)}


def _measure_chunk(stamps: np.ndarray, config: MorphologyConfig) -> list[dict[str, float]]:
    """Worker body: measure a few stamps (runs in a child process)."""
    return [measure_galaxy(stamp, config=config) for stamp in stamps]


def measure_stack(images, *, bands: str = "grz", config: MorphologyConfig = MorphologyConfig(),
                  workers: int = 1, chunk_size: int = 16,
                  advance: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
    r"""Morphology of every galaxy in a stack (N, C, H, W), one band, in parallel processes.

    Per galaxy (statmorph definitions; Lotz et al. 2004, Conselice 2003):

    - ``gini`` G in [0, 1]: inequality of the pixel fluxes (0 uniform, 1 all flux in one pixel);
    - ``m20``: log10 of the second moment of the brightest 20 % of the flux over the total;
    - ``concentration`` C = 5 log10(r80 / r20);
    - ``asymmetry`` A and ``smoothness`` S (clumpiness), background-corrected;
    - ``ellipticity`` 1 - b/a from the image moments about the asymmetry centre;
    - ``bulge`` F(G, M20) = -0.693 M20 + 4.95 G - 3.96 (Rodriguez-Gomez et al. 2019);
    - ``log10_power_<L>px``: log10 of :func:`power_spectrum` at wavelength L pixels (flux^2);
    - ``flag``: 0 good ... 4 failed (module docstring); NaN statistics for flags 3 and 4.

    Parameters
    ----------
    images : array_like, shape (N, C, H, W)
        Flux (e.g. nanomaggies), sky-subtracted or with a flat sky (the border median is
        removed); a memmap is read one chunk at a time.
    bands : sequence of str
        One letter per plane of axis 1; ``config.band`` picks the plane measured.
    config : MorphologyConfig
        Detection and power-spectrum settings.
    workers : int
        Processes (1 measures in this process).
    chunk_size : int
        Galaxies per task sent to a worker.
    advance : callable(n) or None
        Called with the number of galaxies finished.

    Returns
    -------
    dict of str -> ndarray, shape (N,)
        One float64 column per statistic (``config.columns()``), ``flag`` as int16.
    """
    images = np.asarray(images) if not isinstance(images, np.ndarray) else images
    if images.ndim != 4:
        raise InputError(f"morphology needs a stack (N, C, H, W), got shape {images.shape}")
    if config.band not in bands or len(bands) != images.shape[1]:
        raise InputError(f"band {config.band!r} not among the stack's bands {bands!r} ({images.shape[1]} planes)")
    plane = bands.index(config.band)
    n = images.shape[0]
    table = {name: np.full(n, np.nan) for name in config.columns()}
    table["flag"] = np.full(n, FLAG_FAILED, dtype=np.int16)

    def store(start, rows):
        for offset, row in enumerate(rows):
            for name, value in row.items():
                table[name][start + offset] = value
        if advance is not None:
            advance(len(rows))

    starts = range(0, n, chunk_size)

    def chunk(start):  # one band of a few galaxies, copied out of a memmap
        return np.array(images[start:start + chunk_size, plane], dtype=np.float32)

    if workers <= 1:
        for s in starts:
            store(s, _measure_chunk(chunk(s), config))
        return table
    # fork: workers start at once and never re-import the caller's script (spawn would need
    # every caller to guard with `if __name__ == "__main__"`); the parent holds no torch threads
    # (galgen.processes.process_pool: the workers die with this process, however it is stopped)
    from galgen.processes import process_pool

    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with process_pool(workers, context=context) as pool:
        pending = {}
        for s in starts:
            # keep at most 2 chunks per worker in flight, so memory stays flat for any N
            while len(pending) >= 2 * workers:
                done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    store(pending.pop(future), future.result())
            pending[pool.submit(_measure_chunk, chunk(s), config)] = s
        for future in cf.as_completed(pending):
            store(pending[future], future.result())
    return table


def usable_values(table: Mapping[str, np.ndarray], *, max_flag: int = FLAG_SUSPECT) -> dict[str, np.ndarray]:
    """The statistic columns of a :func:`measure_stack` table with galaxies flagged above ``max_flag`` set to NaN.

    The result has no ``flag`` column, so it can go straight into
    ``galgen.metrics.population.compare_properties`` (which drops NaN) for bootstrap
    intervals and real-vs-real baselines.
    """
    bad = np.asarray(table["flag"]) > max_flag
    return {name: np.where(bad, np.nan, np.asarray(values, np.float64))
            for name, values in table.items() if name != "flag"}


def compare_morphology(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], *,
                       max_flag: int = FLAG_SUSPECT) -> dict[str, dict]:
    r"""Wasserstein-1 distance per statistic between two populations measured by :func:`measure_stack`.

    :math:`W_1(u, v) = \int |F_u(x) - F_v(x)|\,dx` (``scipy.stats.wasserstein_distance``),
    in the statistic's own units, over galaxies with finite values and ``flag <= max_flag``.

    Returns
    -------
    dict of statistic -> {"wasserstein": float (NaN if a side is empty), "n_a": int, "n_b": int}
    """
    a, b = usable_values(a, max_flag=max_flag), usable_values(b, max_flag=max_flag)
    out = {}
    for name in (name for name in a if name in b):
        u, v = a[name][np.isfinite(a[name])], b[name][np.isfinite(b[name])]
        w = float(stats.wasserstein_distance(u, v)) if u.size and v.size else float("nan")
        out[name] = {"wasserstein": w, "n_a": int(u.size), "n_b": int(v.size)}
    return out
