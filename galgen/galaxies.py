"""GalSim ground truth: the DESI-like g, r, z galaxy population, its images and its truth rows.

A galaxy is a Sersic bulge plus an exponential disk with star-forming knots
(``galsim.RandomKnots`` tracing the disk), seen through a Moffat PSF on 0.262 arcsec
pixels with Gaussian sky noise at DR9-like depths. Galaxy ``i`` of seed ``s`` depends on
``(s, i)`` alone, so runs are reproducible, shardable and independent of the worker count.

Three steps, each testable alone: ``draw_params`` (the population), ``render`` (the images) and
``truth_row`` (the catalogue). GalSim is an optional dependency (``pip install 'galgen[sim]'``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from galgen.errors import InputError

BANDS = "grz"
PIXEL_SCALE = 0.262  # arcsec / pixel, DECam as resampled by the Legacy Surveys
SKY_SIGMA = (0.007, 0.013, 0.029)  # nanomaggies / pixel, g r z (5-sigma depths 24.0 / 23.4 / 22.5)
PSF_BETA = 3.0  # Moffat index: DECam PSFs have wings between beta 2.5 and 3.5
ZERO_POINT = 22.5  # mag = 22.5 - 2.5 log10(flux / nanomaggy)

# Population (r-band unless stated). Numbers chosen to resemble DESI Bright Galaxy Survey
# galaxies at z ~ 0.05-0.2; every one of them is recorded per galaxy in the truth table.
MAG_RANGE = (15.0, 19.5)  # r-band total magnitude
MAG_COUNT_SLOPE = 0.4  # dN/dm ~ 10**(0.4 m): faint galaxies outnumber bright ones
SIZE_AT_17_5 = 1.6  # arcsec, median disk half-light radius at r = 17.5
SIZE_MAG_SLOPE = 0.12  # log10(size) falls by this per magnitude (brighter -> bigger)
SIZE_SCATTER_DEX = 0.2  # lognormal scatter of the size at fixed magnitude
MIN_DISK_HLR = 0.3  # arcsec: smaller than this is a point source at DESI seeing
DISK_THICKNESS = 0.2  # intrinsic axis ratio of an edge-on disk
SERSIC_N_STEP = 0.1  # GalSim caches 100 Sersic tables; a 0.1 grid over [2, 4] keeps drawing fast
PSF_FWHM_R = (1.15, 1.32)  # arcsec, r-band seeing
PSF_BAND_FACTOR = (1.06, 1.0, 0.95)  # FWHM ~ lambda**-0.2 (Kolmogorov), g r z relative to r
EARLY_FRACTION = 0.35  # bulge-dominated galaxies (bulge / total 0.6-0.95)
NEIGHBOUR_RADII = (0.25, 0.42)  # a neighbour's centre lies this far from the stamp's, in stamp sides


@dataclass(frozen=True)
class Population:
    """What `galgen simulate` draws from; the defaults are the DESI-like population above (the bundled
    model's training set). Every other setting is recorded in the cubes and the truth catalogue (GGPOP)."""

    mag_range: tuple[float, float] = MAG_RANGE  # r-band total magnitudes, dN/dm ~ 10**(0.4 m) between them
    size_scale: float = 1.0  # multiplies the median disk half-light radius at every magnitude
    early_fraction: float = EARLY_FRACTION  # share of bulge-dominated galaxies
    colour_shift: tuple[float, float] = (0.0, 0.0)  # added to every component's g-r and r-z, mag
    seeing: tuple[float, float] = PSF_FWHM_R  # r-band Moffat FWHM, uniform between these, arcsec
    neighbours: float = 0.0  # fraction of stamps with a second galaxy off centre

    def __post_init__(self):
        lo, hi = self.mag_range
        checks = (
            ("mag_range", 10.0 <= lo < hi <= 26.0, "two r magnitudes, 10 <= bright < faint <= 26"),
            ("size_scale", 0.2 <= self.size_scale <= 5.0, "a factor from 0.2 to 5"),
            ("early_fraction", 0.0 <= self.early_fraction <= 1.0, "a fraction from 0 to 1"),
            ("colour_shift", all(abs(c) <= 1.0 for c in self.colour_shift) and len(self.colour_shift) == 2,
             "two colours (g-r, r-z) within 1 mag"),
            ("seeing", 0.1 <= self.seeing[0] <= self.seeing[1] <= 3.0, "two FWHM, 0.1 <= low <= high <= 3 arcsec"),
            ("neighbours", 0.0 <= self.neighbours <= 1.0, "a fraction from 0 to 1"),
        )
        for name, ok, wanted in checks:  # NaN fails every comparison
            if not ok:
                raise InputError(f"population {name} {getattr(self, name)!r}: give {wanted}", options=name)

    def changed(self) -> dict | None:
        """The settings that differ from the default population (None for the default: nothing to record)."""
        default = Population()
        found = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in found.items()} or None

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def parse_population(*, mag_range: str, seeing: str, colour_shift: str, **numbers) -> Population:
    """A `Population` from the command line's text: pairs as ``"16,20"``, the other settings as numbers."""
    pairs = {}
    for name, text in (("mag_range", mag_range), ("seeing", seeing), ("colour_shift", colour_shift)):
        try:
            pairs[name] = tuple(float(v) for v in text.split(","))
        except ValueError:
            pairs[name] = ()
        if len(pairs[name]) != 2:
            raise InputError(f"population {name} {text!r}: give two numbers separated by a comma", options=name)
    return Population(**pairs, **numbers)


@dataclass(frozen=True)
class GalaxyParams:
    """Everything that defines one simulated galaxy; lengths in arcsec, angles in degrees."""

    seed: int  # run seed
    index: int  # galaxy index within the run
    mag_r: float  # total r-band magnitude (AB, nanomaggy zero point 22.5)
    bulge_fraction: float  # bulge / total flux in r
    bulge_n: float  # Sersic index of the bulge
    bulge_hlr: float  # bulge half-light radius, sqrt(a b) of the half-light ellipse
    bulge_q: float  # bulge axis ratio b/a
    disk_hlr: float  # exponential disk half-light radius, sqrt(a b)
    disk_q: float  # disk axis ratio b/a (inclination of a disk of thickness 0.2)
    theta: float  # major-axis angle, counter-clockwise from the +x pixel axis
    knot_count: int  # star-forming knots in the disk (0: none)
    knot_fraction: float  # knots / total flux in r
    knot_seed: int  # seeds GalSim's knot positions
    colours: tuple  # (g-r, r-z) of bulge, disk, knots: 6 floats, mag
    dx: float  # sub-pixel centre offset, pixels
    dy: float
    psf_fwhm: tuple  # Moffat FWHM per band g r z
    neighbour: "GalaxyParams | None" = None  # a second galaxy in the stamp (its dx, dy from the stamp centre)

    def fluxes(self) -> np.ndarray:
        """Flux of (bulge, disk, knots) per band, nanomaggies, shape (3 components, 3 bands)."""
        total_r = 10 ** ((ZERO_POINT - self.mag_r) / 2.5)
        flux_r = total_r * np.array(
            [self.bulge_fraction, 1 - self.bulge_fraction - self.knot_fraction, self.knot_fraction]
        )
        gr = np.array(self.colours[0::2])
        rz = np.array(self.colours[1::2])
        # g - r = -2.5 log10(f_g / f_r) and r - z = -2.5 log10(f_r / f_z)
        return np.stack([flux_r * 10 ** (-0.4 * gr), flux_r, flux_r * 10 ** (0.4 * rz)], axis=1)


def require_galsim():
    from galgen.errors import require

    return require("galsim", extra="sim", purpose="galgen simulate")


def draw_params(seed: int, index: int, *, size: int = 64, pixel_scale: float = PIXEL_SCALE,
                population: Population = Population()) -> GalaxyParams:
    """Draw galaxy ``index`` of run ``seed`` from the DESI-like population (or another ``population``).

    Parameters
    ----------
    seed, index : int
        Non-negative integers; the draw depends on ``(seed, index)`` only, through
        ``numpy.random.SeedSequence([seed, index])``.
    size : int
        Stamp side in pixels; the largest disks are limited to a half-light radius of
        ``size * pixel_scale / 6`` so that they fit in the stamp.
    pixel_scale : float
        arcsec / pixel.

    Returns
    -------
    GalaxyParams
        r magnitude from ``dN/dm ~ 10**(0.4 m)`` on [15, 19.5]; disk half-light radius
        lognormal about ``1.6 * 10**(-0.12 (m - 17.5))`` arcsec with 0.2 dex scatter (truncated
        to the stamp); bulge radius 0.35-0.7 of the disk's; disk inclination isotropic
        (``cos i`` uniform) with ``q**2 = 0.2**2 + (1 - 0.2**2) cos**2 i``; colours redder in
        the bulge than in the disk and bluest in the knots, all redder for fainter (more
        distant) galaxies. ``population`` changes the magnitude range, the sizes, the share of
        bulge-dominated galaxies, the colours and the seeing, and adds neighbours: a second galaxy
        of the same population in a fraction of the stamps, centred 0.25-0.42 stamp sides away at a
        random angle, seen through the same PSF (its own stream, the third child of ``(seed, index)``,
        so the central galaxy and the noise are those of the same population without neighbours).
    """
    streams = _seed_sequence(seed, index).spawn(3)
    params = _draw(np.random.default_rng(streams[0]), seed, index, size=size, pixel_scale=pixel_scale,
                   population=population)
    if population.neighbours > 0:
        rng = np.random.default_rng(streams[2])
        if rng.uniform() < population.neighbours:
            other = _draw(rng, seed, index, size=size, pixel_scale=pixel_scale, population=population)
            radius, angle = rng.uniform(*NEIGHBOUR_RADII) * size, rng.uniform(0.0, 2 * math.pi)
            other = replace(other, dx=float(radius * math.cos(angle)), dy=float(radius * math.sin(angle)),
                            psf_fwhm=params.psf_fwhm)
            params = replace(params, neighbour=other)
    return params


def _draw(rng, seed: int, index: int, *, size: int, pixel_scale: float, population: Population) -> GalaxyParams:
    """One galaxy of ``population`` from the random stream ``rng`` (`draw_params` says how)."""
    uniform = rng.uniform

    lo, hi = (10 ** (MAG_COUNT_SLOPE * m) for m in population.mag_range)
    mag_r = math.log10(lo + uniform() * (hi - lo)) / MAG_COUNT_SLOPE

    early_type = uniform() < population.early_fraction
    bulge_fraction = uniform(0.6, 0.95) if early_type else rng.beta(1.2, 4.0)
    bulge_n = round(uniform(2.0, 4.0) / SERSIC_N_STEP) * SERSIC_N_STEP

    median = SIZE_AT_17_5 * population.size_scale * 10 ** (-SIZE_MAG_SLOPE * (mag_r - 17.5))
    largest = size * pixel_scale / 6
    disk_hlr = _truncated_lognormal(rng, median, SIZE_SCATTER_DEX, MIN_DISK_HLR, largest)
    bulge_hlr = disk_hlr * uniform(0.35, 0.7)

    cos_i = uniform()
    disk_q = math.sqrt(DISK_THICKNESS**2 + (1 - DISK_THICKNESS**2) * cos_i**2)
    bulge_q = uniform(0.6, 1.0)
    theta = uniform(0.0, 180.0)

    has_knots = uniform() > bulge_fraction
    knot_count = int(rng.integers(5, 41)) if has_knots else 0
    knot_fraction = (1 - bulge_fraction) * uniform(0.05, 0.25) if has_knots else 0.0
    knot_seed = int(rng.integers(1, 2**31 - 1))

    redder = 0.04 * (mag_r - 17.0)  # fainter galaxies lie further away: k-correction reddens them
    gr, rz = population.colour_shift
    colours = (
        rng.normal(0.78, 0.05) + redder + gr,  # bulge g-r: red sequence
        rng.normal(0.55, 0.05) + redder + rz,  # bulge r-z
        rng.normal(0.50, 0.08) + 0.15 * bulge_fraction + redder + gr,  # disk g-r: bluer, redder if early
        rng.normal(0.38, 0.06) + 0.10 * bulge_fraction + redder + rz,  # disk r-z
        rng.normal(0.25, 0.06) + redder + gr,  # knots: young stars
        rng.normal(0.15, 0.06) + redder + rz,
    )

    dx, dy = uniform(-0.5, 0.5, size=2)
    fwhm_r = uniform(*population.seeing)
    return GalaxyParams(
        seed=int(seed), index=int(index), mag_r=float(mag_r),
        bulge_fraction=float(bulge_fraction), bulge_n=float(round(bulge_n, 2)),
        bulge_hlr=float(bulge_hlr), bulge_q=float(bulge_q),
        disk_hlr=float(disk_hlr), disk_q=float(disk_q), theta=float(theta),
        knot_count=knot_count, knot_fraction=float(knot_fraction), knot_seed=knot_seed,
        colours=tuple(float(c) for c in colours), dx=float(dx), dy=float(dy),
        psf_fwhm=tuple(float(fwhm_r * f) for f in PSF_BAND_FACTOR),
    )  # fmt: skip


def _seed_sequence(seed: int, index: int) -> np.random.SeedSequence:
    if seed < 0 or index < 0:
        raise InputError(f"seed and index must be non-negative integers, got seed={seed}, index={index}")
    return np.random.SeedSequence([int(seed), int(index)])


def _truncated_lognormal(rng, median: float, dex: float, low: float, high: float) -> float:
    """A lognormal draw restricted to [low, high] by inverting the truncated CDF."""
    from scipy.special import ndtr, ndtri  # the normal CDF and its inverse (scipy.stats imports slowly)

    z_lo, z_hi = (math.log10(v / median) / dex for v in (low, max(high, low)))
    p = rng.uniform(ndtr(z_lo), ndtr(z_hi))
    return float(median * 10 ** (dex * ndtri(p)))


def _components(params: GalaxyParams):
    """Unit-flux GalSim profiles (bulge, smooth disk, knots or None) and knot offsets in arcsec."""
    galsim = require_galsim()
    beta = params.theta * galsim.degrees
    bulge = galsim.Sersic(n=params.bulge_n, half_light_radius=params.bulge_hlr)
    bulge = bulge.shear(q=params.bulge_q, beta=beta)
    disk_shear = galsim.Shear(q=params.disk_q, beta=beta)
    disk_round = galsim.Exponential(half_light_radius=params.disk_hlr)
    if params.knot_count == 0:
        return bulge, disk_round.shear(disk_shear), None, np.zeros((0, 2))
    knots = galsim.RandomKnots(params.knot_count, profile=disk_round, rng=galsim.BaseDeviate(params.knot_seed))
    offsets = knots.points @ disk_shear.getMatrix().T  # the same shear as the disk they sit in
    return bulge, disk_round.shear(disk_shear), knots.shear(disk_shear).withFlux(1.0), offsets


def centre(params: GalaxyParams, size: int) -> tuple[float, float]:
    """Galaxy centre (x, y) in 0-based pixel coordinates (pixel centres on integers)."""
    return size // 2 + params.dx, size // 2 + params.dy


def render(
    params: GalaxyParams,
    *,
    size: int = 64,
    pixel_scale: float = PIXEL_SCALE,
    psf: bool = True,
) -> np.ndarray:
    """Draw the noise-free galaxy in g, r, z: float32 ``(3, size, size)``, nanomaggies per pixel.

    Each band is ``(bulge + disk + knots) * Moffat(FWHM_band, beta=3)`` integrated over
    square pixels (GalSim's FFT drawing), centred at ``(size // 2 + dx, size // 2 + dy)``.
    With ``psf=False`` the smooth parts are drawn without PSF and each knot (a point source)
    puts its flux into the pixel it falls in.
    """
    galsim = require_galsim()
    bulge, disk, knots, offsets = _components(params)
    fluxes = params.fluxes()
    x0, y0 = centre(params, size)
    image = np.empty((len(BANDS), size, size), np.float32)
    for b in range(len(BANDS)):
        parts = [bulge * fluxes[0, b], disk * fluxes[1, b]]
        if knots is not None and psf:
            parts.append(knots * fluxes[2, b])
        profile = galsim.Add(parts)
        if psf:
            profile = galsim.Convolve(profile, galsim.Moffat(beta=PSF_BETA, fwhm=params.psf_fwhm[b]))
        drawn = profile.drawImage(
            nx=size, ny=size, scale=pixel_scale, use_true_center=False, offset=(params.dx, params.dy)
        )
        image[b] = drawn.array
        if knots is not None and not psf:
            _deposit_points(image[b], offsets / pixel_scale + (x0, y0), fluxes[2, b] / len(offsets))
    if params.neighbour is not None:
        image += render(params.neighbour, size=size, pixel_scale=pixel_scale, psf=psf)
    return image


def add_sky_noise(image: np.ndarray, params: GalaxyParams, *, sky_sigma=SKY_SIGMA) -> np.ndarray:
    """``image`` plus independent Gaussian sky noise of ``sky_sigma`` (nanomaggies) per pixel and band.

    The noise comes from the galaxy's own ``(seed, index)`` stream (a child independent of
    the one that drew the parameters), so it too is reproducible.
    """
    rng = np.random.default_rng(_seed_sequence(params.seed, params.index).spawn(2)[1])
    noise = rng.standard_normal(image.shape) * np.asarray(sky_sigma, float)[:, None, None]
    return (image + noise).astype(np.float32)


def _deposit_points(plane: np.ndarray, xy: np.ndarray, flux: float) -> None:
    """Add point sources of equal flux at pixel positions ``xy`` (x, y); those off the stamp are lost."""
    col, row = np.rint(xy).astype(int).T
    inside = (col >= 0) & (col < plane.shape[1]) & (row >= 0) & (row < plane.shape[0])
    np.add.at(plane, (row[inside], col[inside]), flux)


def sersic_enclosed_fraction(radius, *, n: float, hlr: float, q: float = 1.0, nodes: int = 128) -> np.ndarray:
    """Fraction of a sheared Sersic profile's light inside a circle of ``radius`` about its centre.

    Parameters
    ----------
    radius : float or array
        Circular aperture radius (same unit as ``hlr``).
    n, hlr : float
        Sersic index and half-light radius ``sqrt(a b)`` (GalSim's area-preserving shear).
    q : float
        Axis ratio b/a.
    nodes : int
        Quadrature nodes over half a turn (error < 1e-9 for q >= 0.2 with 128).

    Notes
    -----
    A round Sersic profile holds ``L(R) = P(2n, b_n (R / hlr)**(1/n))`` of its light within
    ``R`` (P the regularised lower incomplete gamma function, ``P(2n, b_n) = 1/2``). Shearing
    maps the point at polar ``(rho, phi)`` (phi from the major axis) to the round profile at
    radius ``rho s(phi)`` with ``s**2 = q cos**2 phi + sin**2 phi / q``, so the circular
    aperture holds ``(1 / 2 pi) * integral_0^2pi L(R s(phi)) / s(phi)**2 dphi``. The
    integrand has period pi; the trapezoid rule over one period is spectrally accurate.
    """
    from scipy.special import gammainc, gammaincinv

    phi = np.linspace(0.0, np.pi, nodes, endpoint=False)
    s2 = q * np.cos(phi) ** 2 + np.sin(phi) ** 2 / q
    b_n = gammaincinv(2 * n, 0.5)
    r = np.asarray(radius, float)[..., None] * np.sqrt(s2) / hlr
    return np.mean(gammainc(2 * n, b_n * r ** (1 / n)) / s2, axis=-1)


def half_light_radii(params: GalaxyParams) -> np.ndarray:
    """Circular half-light radius (arcsec) of the galaxy before PSF, per band g, r, z.

    Solves ``E(R) = F / 2`` for the light ``E`` inside a circle about the galaxy's centre:
    ``E`` is the bulge's and the disk's exact enclosed flux (``sersic_enclosed_fraction``)
    plus the flux of the knots whose positions fall inside ``R``. This is what a curve of
    growth measures on a noise-free, PSF-free, finely sampled image. A tabulated ``E``
    brackets the root, which ``brentq`` then refines to 1e-6 arcsec.
    """
    from scipy.optimize import brentq

    _, _, _, offsets = _components(params)
    fluxes = params.fluxes()  # (component, band)
    knot_radii = np.sort(np.hypot(*offsets.T))

    def enclosed(radius):  # (..., component): fraction of each component's light inside radius
        knots = np.searchsorted(knot_radii, radius, side="right") / max(len(knot_radii), 1)
        bulge = sersic_enclosed_fraction(radius, n=params.bulge_n, hlr=params.bulge_hlr, q=params.bulge_q)
        disk = sersic_enclosed_fraction(radius, n=1.0, hlr=params.disk_hlr, q=params.disk_q)
        return np.stack([bulge, disk, knots], axis=-1)

    longest = max(params.bulge_hlr / math.sqrt(params.bulge_q), params.disk_hlr / math.sqrt(params.disk_q))
    grid = np.concatenate([[0.0], np.geomspace(1e-2 * longest, 10 * longest, 48)])
    grid[-1] = max(grid[-1], 1.01 * knot_radii.max(initial=0.0))
    table = enclosed(grid) @ fluxes  # (radius, band)
    radii = np.empty(len(BANDS))
    for b in range(len(BANDS)):
        half = 0.5 * fluxes[:, b].sum()
        i = int(np.searchsorted(table[:, b], half))
        radii[b] = brentq(lambda r: enclosed(r) @ fluxes[:, b] - half, grid[i - 1], grid[i], xtol=1e-6)
    return radii


def truth_row(params: GalaxyParams, noise_free: np.ndarray, *, size: int, sky_sigma=SKY_SIGMA,
              pixel_scale: float = PIXEL_SCALE, neighbours: bool = False) -> dict:
    """One row of the truth catalogue (column meanings and units: ``TRUTH_UNITS``): the central galaxy's,
    except ``flux_stamp``, ``r_e`` and ``q``, measured on the stamp as drawn (with its neighbour, as `prep`
    would measure them). ``neighbours``: the run has them, so the row says where this stamp's is (NaN: none)."""
    fluxes = params.fluxes().sum(axis=0)
    x0, y0 = centre(params, size)
    r50 = half_light_radii(params)
    per_band = {
        "flux": fluxes,
        "mag": ZERO_POINT - 2.5 * np.log10(fluxes),
        "flux_stamp": noise_free.sum(axis=(1, 2), dtype=np.float64),
        "r50": r50,
        "psf_fwhm": params.psf_fwhm,
        "sky_sigma": sky_sigma,
    }
    row = {"index": params.index, "seed": params.seed}
    row.update({f"{name}_{band}": float(values[b]) for name, values in per_band.items() for b, band in enumerate(BANDS)})
    row.update(
        bulge_fraction=params.bulge_fraction, bulge_n=params.bulge_n, bulge_hlr=params.bulge_hlr,
        bulge_q=params.bulge_q, disk_hlr=params.disk_hlr, disk_q=params.disk_q,
        ellipticity=1 - params.disk_q, theta=params.theta, pa=(params.theta + 90.0) % 180.0,
        knot_count=params.knot_count, knot_fraction=params.knot_fraction,
        x_center=x0, y_center=y0,
    )  # fmt: skip
    row.update(observed_shape(noise_free, pixel_scale=pixel_scale))
    if neighbours:
        other = params.neighbour
        x, y = (np.nan, np.nan) if other is None else centre(other, size)
        row.update(neighbour_mag_r=np.nan if other is None else other.mag_r, neighbour_x=x, neighbour_y=y)
    return row


def observed_shape(noise_free: np.ndarray, *, pixel_scale: float) -> dict:
    """``r_e`` (arcsec) and ``q`` of the noise-free galaxy as galgen's photometry measures them (after the PSF).

    The truth a conditional model's ``r_e`` and ``q`` are checked against: the same functions
    (galgen.metrics.labels) on the image before the sky noise.
    """
    from galgen.metrics.labels import measure_labels

    measured = measure_labels(noise_free[None], bands=BANDS, pixel_scale=pixel_scale)
    return {"r_e": float(measured["r_e"][0]), "q": float(measured["q"][0])}


TRUTH_UNITS = {
    **{f"flux_{b}": "nanomaggy" for b in BANDS},  # total flux of the model galaxy
    **{f"mag_{b}": "mag" for b in BANDS},  # 22.5 - 2.5 log10(flux)
    **{f"flux_stamp_{b}": "nanomaggy" for b in BANDS},  # noise-free flux inside the stamp, after PSF
    **{f"r50_{b}": "arcsec" for b in BANDS},  # circular half-light radius before PSF
    **{f"psf_fwhm_{b}": "arcsec" for b in BANDS},
    **{f"sky_sigma_{b}": "nanomaggy" for b in BANDS},  # per pixel
    "bulge_hlr": "arcsec",
    "disk_hlr": "arcsec",
    "theta": "deg",  # major axis, counter-clockwise from +x
    "pa": "deg",  # east of north for a north-up, east-left WCS
    "r_e": "arcsec",  # half-light radius of the noise-free image in r, after the PSF (galgen.metrics.labels)
    "x_center": "pixel",  # 0-based
    "y_center": "pixel",
    "neighbour_mag_r": "mag",  # with neighbours: the neighbour's r magnitude, NaN where the stamp has none
    "neighbour_x": "pixel",
    "neighbour_y": "pixel",
}


def draw_galaxy(
    seed: int, index: int, *, size: int = 64, pixel_scale: float = PIXEL_SCALE, psf: bool = True, noise: bool = True,
    population: Population = Population(),
) -> tuple[np.ndarray, dict]:
    """Galaxy ``index`` of run ``seed``: (image float32 (3, size, size) in nanomaggies, truth dict)."""
    observed, clean, truth = draw_observation(seed, index, size=size, pixel_scale=pixel_scale, psf=psf,
                                              population=population)
    return (observed if noise else clean), truth


def draw_observation(
    seed: int, index: int, *, size: int = 64, pixel_scale: float = PIXEL_SCALE, psf: bool = True,
    population: Population = Population(),
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Galaxy ``index`` of run ``seed`` observed and noise-free: (with sky noise, without, truth dict).

    Both images are float32 (3, size, size) in nanomaggies; the noise-free one is the PSF-convolved
    galaxy before the sky noise is added, the truth a fill or a denoiser can be scored against.
    """
    params = draw_params(seed, index, size=size, pixel_scale=pixel_scale, population=population)
    clean = render(params, size=size, pixel_scale=pixel_scale, psf=psf)
    truth = truth_row(params, clean, size=size, pixel_scale=pixel_scale, neighbours=population.neighbours > 0)
    return add_sky_noise(clean, params), clean, truth
