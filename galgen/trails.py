"""Satellite trails drawn onto images, for tests and the inpainting benchmark.

A trail is a straight strip of constant surface brightness across the image: a direction, a
perpendicular offset from the image centre, a full width, a flux per pixel in each band, and
optionally a dash pattern (lit for ``duty`` of every ``period`` pixels along the strip), which is
how tumbling or flashing satellites look in survey exposures. The strip has hard edges, so the
mask of a trail is exactly the set of pixels it changed: nothing bright is left outside it.

Pure numpy; the randomness comes from ``numpy.random.default_rng(seed)`` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from galgen.normalize import robust_sigma


@dataclass(frozen=True)
class Trail:
    """One satellite trail; lengths in pixels, angles in degrees."""

    angle: float  # direction of the strip, counter-clockwise from the +x axis towards +y, in [0, 180)
    offset: float  # signed distance of the centre line from the image centre, along the strip's normal
    width: float  # full width of the strip (pixels whose centre lies within width/2 of the line)
    brightness: tuple[float, ...]  # flux per pixel added in each band, in the image's unit
    period: float | None = None  # length of one lit + dark cycle along the strip; None = continuous
    duty: float = 1.0  # lit fraction of each period, in (0, 1]
    phase: float = 0.0  # where along the strip (from the centre's foot point) the first dash starts

    def __post_init__(self):
        if not self.width > 0:
            raise ValueError(f"trail width must be > 0, got {self.width}")
        if not 0 < self.duty <= 1:
            raise ValueError(f"trail duty cycle must be in (0, 1], got {self.duty}")
        if self.period is not None and not self.period > 0:
            raise ValueError(f"trail period must be > 0, got {self.period}")


def strip_coordinates(shape_yx: tuple[int, int], *, angle: float, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel centre's coordinates in the trail's frame: (along, across), pixels.

    With the image centre c = ((W - 1)/2, (H - 1)/2), direction u = (cos a, sin a) and normal
    n = (-sin a, cos a): along = (p - c) . u and across = (p - c) . n - offset.
    """
    ny, nx = shape_yx
    y, x = np.mgrid[0:ny, 0:nx].astype(np.float64)
    dx, dy = x - (nx - 1) / 2.0, y - (ny - 1) / 2.0
    a = math.radians(angle)
    along = dx * math.cos(a) + dy * math.sin(a)
    across = -dx * math.sin(a) + dy * math.cos(a) - offset
    return along, across


def through(trail: Trail, shape_yx: tuple[int, int], point_xy: tuple[float, float]) -> Trail:
    """``trail`` moved across its normal so its centre line passes through ``point_xy`` (pixels, x first).

    A dashed trail gets the phase that centres a lit dash on the point (a trail across a nucleus).
    """
    ny, nx = shape_yx
    a = math.radians(trail.angle)
    dx, dy = point_xy[0] - (nx - 1) / 2.0, point_xy[1] - (ny - 1) / 2.0
    phase = trail.phase
    if trail.period is not None:
        phase = dx * math.cos(a) + dy * math.sin(a) - trail.duty * trail.period / 2.0
    return replace(trail, offset=-dx * math.sin(a) + dy * math.cos(a), phase=phase)


def trail_mask(shape_yx: tuple[int, int], trail: Trail) -> np.ndarray:
    """Boolean (H, W) map of the pixels the trail lights: inside the strip and in a lit dash."""
    along, across = strip_coordinates(shape_yx, angle=trail.angle, offset=trail.offset)
    lit = np.abs(across) < trail.width / 2.0
    if trail.period is not None and trail.duty < 1:
        lit &= np.mod(along - trail.phase, trail.period) < trail.duty * trail.period
    return lit


def deface(image: np.ndarray, trail: Trail) -> tuple[np.ndarray, np.ndarray]:
    """Add ``trail`` to a (band, y, x) image; returns (defaced float32 copy, (H, W) boolean mask).

    The mask is exactly the set of pixels whose value changed (for nonzero brightness).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or len(trail.brightness) != image.shape[0]:
        raise ValueError(f"need a (band, y, x) image with {len(trail.brightness)} bands, got shape {image.shape}")
    mask = trail_mask(image.shape[1:], trail)
    defaced = image.copy()
    for band, flux in enumerate(trail.brightness):
        defaced[band][mask] += np.float32(flux)
    return defaced, mask


def sky_rms(image: np.ndarray) -> np.ndarray:
    """Robust per-band noise of a (band, y, x) image: 1.4826 x the median absolute deviation, flux units.

    The galaxy covers a small part of a cutout, so the MAD over all pixels is the sky's; NaNs ignored.
    """
    return robust_sigma(np.asarray(image, dtype=np.float64).reshape(image.shape[0], -1), axis=1)


@dataclass(frozen=True)
class TrailRanges:
    """What `random_trail` draws from; brightness in units of each band's sky RMS."""

    width: tuple[float, float] = (1.5, 5.0)  # pixels, uniform
    brightness: tuple[float, float] = (10.0, 300.0)  # x sky RMS, log-uniform (faint to saturating)
    colour_spread: float = 0.5  # per-band brightness factor, log-uniform in [1/(1+s), 1+s]
    dashed_fraction: float = 0.5  # probability that the trail is dashed
    period: tuple[float, float] = (8.0, 40.0)  # pixels per dash cycle, uniform
    duty: tuple[float, float] = (0.3, 0.8)  # lit fraction of a dashed trail, uniform
    max_offset: float = 0.3  # |offset| <= this x the smaller image side: the strip crosses the image


def random_trail(shape_yx: tuple[int, int], *, seed: int, rms, ranges: TrailRanges = TrailRanges()) -> Trail:
    """A random trail across an image of ``shape_yx``, reproducible from ``seed``.

    ``rms`` is the per-band sky noise (flux units, e.g. `sky_rms(image)`); the brightness is a
    log-uniform multiple of it with a random colour. Direction uniform in [0, 180) degrees.
    """
    rng = np.random.default_rng(seed)
    rms = np.asarray(rms, dtype=np.float64)
    angle = float(rng.uniform(0.0, 180.0))
    offset = float(rng.uniform(-1.0, 1.0) * ranges.max_offset * min(shape_yx))
    width = float(rng.uniform(*ranges.width))
    level = math.exp(rng.uniform(math.log(ranges.brightness[0]), math.log(ranges.brightness[1])))
    spread = math.log1p(ranges.colour_spread)
    colour = np.exp(rng.uniform(-spread, spread, size=rms.shape))
    brightness = tuple(float(v) for v in level * colour * rms)
    period, duty, phase = None, 1.0, 0.0
    if rng.uniform() < ranges.dashed_fraction:
        period = float(rng.uniform(*ranges.period))
        duty = float(rng.uniform(*ranges.duty))
        phase = float(rng.uniform(0.0, period))
    return Trail(angle=angle, offset=offset, width=width, brightness=brightness, period=period, duty=duty, phase=phase)
