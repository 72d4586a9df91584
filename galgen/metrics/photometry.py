"""Aperture photometry on whole stacks of galaxy stamps: background, exact apertures, magnitudes, sizes.

Every function takes images shaped ``(..., H, W)`` (typically ``(N, C, H, W)`` with N in the
tens of thousands) and works on all of them at once. Apertures are centred at the same pixel in
every stamp, so one weight matrix per aperture serves the whole stack and an aperture sum is a
matrix product. Stacks are processed in chunks of stamps so memory stays flat.

Pixel convention (as photutils and astropy): pixel ``(y, x)`` covers ``[x - 0.5, x + 0.5] x
[y - 0.5, y + 0.5]``; the default centre is pixel ``(W // 2, H // 2)``, where survey cutouts put
their target.

Never imports torch.
"""

from __future__ import annotations

import functools

import numpy as np

ZERO_POINT_NANOMAGGY = 22.5
"""AB zero point of the nanomaggy: ``m = 22.5 - 2.5 log10(f / nmgy)``."""

CHUNK_STAMPS = 512
"""Stamps processed together: 512 x 3 x 64 x 64 float64 is 50 MB."""


# ----------------------------------------------------------------------------- geometry


def default_center(shape_yx) -> tuple[float, float]:
    """The stamp's target pixel ``(x, y) = (W // 2, H // 2)``."""
    height, width = shape_yx[-2:]
    return float(width // 2), float(height // 2)


def largest_radius(shape_yx, *, center=None) -> float:
    """Radius in pixels of the largest circle about ``center`` that lies wholly inside the stamp."""
    height, width = shape_yx[-2:]
    xc, yc = default_center(shape_yx) if center is None else center
    return float(min(xc + 0.5, width - 0.5 - xc, yc + 0.5, height - 0.5 - yc))


def _below_left_area(y, x, r):
    """Area of ``{(u, v): u^2 + v^2 <= r^2, u <= x, v <= y}`` for ``x`` in ``[-r, r]``.

    It is ``int_{-r}^{x} clip(y, -s(u), s(u)) du + const`` with ``s(u) = sqrt(r^2 - u^2)``; the
    constant cancels in the four-corner difference of :func:`circle_pixel_overlap`. The
    integrand is ``y`` where ``|u| <= a = sqrt(r^2 - y^2)`` and ``sign(y) s(u)`` elsewhere, and
    ``S(t) = int_{-r}^{t} s(u) du = (t s(t) + r^2 asin(t / r)) / 2 + pi r^2 / 4``.
    """

    def arc_integral(t):
        return 0.5 * (t * np.sqrt(np.maximum(r * r - t * t, 0.0)) + r * r * np.arcsin(t / r)) + 0.25 * np.pi * r * r

    a = np.sqrt(np.maximum(r * r - y * y, 0.0))
    inner = np.clip(x, -a, a)
    return np.sign(y) * (arc_integral(x) - arc_integral(inner) + arc_integral(-a)) + y * (inner + a)


def circle_pixel_overlap(shape_yx, radius: float, *, center=None) -> np.ndarray:
    """Exact area of overlap between a circle and every pixel of a grid.

    Parameters
    ----------
    shape_yx : tuple of int
        ``(H, W)`` of the grid (extra leading entries are ignored).
    radius : float
        Circle radius in pixels, > 0.
    center : (float, float), optional
        Circle centre ``(x, y)`` in pixel coordinates; default ``(W // 2, H // 2)``.

    Returns
    -------
    ndarray, float64, shape (H, W)
        Overlap area in pixel units (0 to 1), the same as photutils' ``method="exact"``.

    Notes
    -----
    For the pixel ``[x0, x1] x [y0, y1]`` (relative to the centre, ``x`` clipped to ``[-r, r]``)
    the overlap is ``A(y1, x1) - A(y1, x0) - A(y0, x1) + A(y0, x0)`` with ``A`` the closed-form
    integral of :func:`_below_left_area`; one evaluation per pixel corner, no sub-sampling.
    The circle's total is ``pi r^2`` when it lies inside the grid.
    """
    height, width = shape_yx[-2:]
    xc, yc = default_center(shape_yx) if center is None else center
    r = float(radius)
    x_edges = np.clip(np.arange(width + 1, dtype=np.float64) - 0.5 - xc, -r, r)
    y_edges = np.arange(height + 1, dtype=np.float64) - 0.5 - yc
    corner = _below_left_area(y_edges[:, None], x_edges[None, :], r)
    area = corner[1:, 1:] - corner[1:, :-1] - corner[:-1, 1:] + corner[:-1, :-1]
    return np.clip(area, 0.0, 1.0)


def aperture_weights(shape_yx, radii, *, center=None) -> np.ndarray:
    """Exact-overlap weights of several concentric apertures as a read-only ``(H * W, R)`` float64 matrix."""
    radii = tuple(float(r) for r in np.atleast_1d(radii))
    center = None if center is None else (float(center[0]), float(center[1]))
    return _cached_weights(tuple(int(n) for n in shape_yx[-2:]), radii, center)


@functools.lru_cache(maxsize=8)
def _cached_weights(shape_yx, radii, center) -> np.ndarray:
    # a stack is measured chunk by chunk with the same apertures: build each matrix once
    weights = np.stack([circle_pixel_overlap(shape_yx, r, center=center).ravel() for r in radii], axis=1)
    weights.flags.writeable = False
    return weights


# ----------------------------------------------------------------------------- sums and background


def _chunks(count: int, size: int = CHUNK_STAMPS):
    for start in range(0, count, size):
        yield slice(start, min(start + size, count))


def for_each_chunk(count: int, work, *, workers: int | None = None, advance=None) -> None:
    """Call ``work(rows)`` for every chunk of ``CHUNK_STAMPS`` stamps, on a pool of threads.

    numpy's sorts, sums and matrix products release the GIL, so threads use every core;
    ``work`` writes its results into preallocated arrays by ``rows`` (a slice), so the order
    of completion does not matter. ``workers``: default the number of CPUs (at most 8).
    ``advance(n)``, if given, is called with the number of stamps of each finished chunk.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    def run(rows):
        work(rows)
        if advance is not None:
            advance(rows.stop - rows.start)

    chunks = list(_chunks(count))
    workers = min(workers or os.cpu_count() or 1, 8, len(chunks) or 1)
    if workers == 1:
        for rows in chunks:
            run(rows)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(run, rows) for rows in chunks]:
            future.result()  # re-raises a worker's exception here


def aperture_sums(images, radii, *, center=None) -> np.ndarray:
    """Flux inside exact circular apertures, for every image of a stack.

    Parameters
    ----------
    images : array_like, shape (..., H, W)
        Flux per pixel (e.g. nanomaggies). NaN pixels contribute nothing (fill them first,
        e.g. with the background, when that is not what you want).
    radii : float or sequence of float
        Aperture radii in pixels.
    center : (float, float), optional
        Aperture centre ``(x, y)``; default ``(W // 2, H // 2)``.

    Returns
    -------
    ndarray, float64, shape (..., R)
        ``sum_pixels w_r(pixel) * flux(pixel)`` with ``w_r`` the exact overlap fraction of
        :func:`circle_pixel_overlap`; same unit as the images.
    """
    images = np.asarray(images)
    lead, (height, width) = images.shape[:-2], images.shape[-2:]
    weights = aperture_weights((height, width), radii, center=center)
    flat = images.reshape(-1, height * width)
    out = np.empty((flat.shape[0], weights.shape[1]), dtype=np.float64)
    for rows in _chunks(flat.shape[0], CHUNK_STAMPS * 4):
        block = np.asarray(flat[rows], dtype=np.float64)
        finite = np.isfinite(block)
        if not finite.all():
            block = np.where(finite, block, 0.0)
        out[rows] = block @ weights
    return out.reshape(*lead, weights.shape[1])


def nanmedian_last(values: np.ndarray) -> np.ndarray:
    """Median along the last axis ignoring NaN (NaN where a row has no finite value), by one sort."""
    ordered = np.sort(values, axis=-1)  # NaN sorts last
    count = np.sum(np.isfinite(ordered), axis=-1)
    low = np.clip((count - 1) // 2, 0, None)
    high = np.clip(count // 2, 0, None)
    lo_val = np.take_along_axis(ordered, low[..., None], axis=-1)[..., 0]
    hi_val = np.take_along_axis(ordered, high[..., None], axis=-1)[..., 0]
    return np.where(count > 0, 0.5 * (lo_val.astype(np.float64) + hi_val), np.nan)


def corner_background(images, *, size: int = 20) -> np.ndarray:
    """Background as the median of the four ``size x size`` corner patches (the reference recipe).

    Parameters
    ----------
    images : array_like, shape (..., H, W)
        Flux per pixel; NaN pixels are ignored.
    size : int
        Side of each corner patch in pixels (reference: 20).

    Returns
    -------
    ndarray, float64, shape (...)
        Median of the ``4 size^2`` corner pixels of each image, in image units.
    """
    images = np.asarray(images)
    s = int(size)
    corners = [images[..., :s, :s], images[..., :s, -s:], images[..., -s:, :s], images[..., -s:, -s:]]
    lead = images.shape[:-2]
    return nanmedian_last(np.concatenate([c.reshape(*lead, -1) for c in corners], axis=-1))


def border_width(shape_yx) -> int:
    """Default width of the background frame: 1/16 of the stamp side, at least 4 pixels."""
    return max(4, min(shape_yx[-2:]) // 16)


def border_pixels(images, *, width: int | None = None) -> np.ndarray:
    """The pixels within ``width`` of the stamp edge, flattened: shape ``(..., P)``."""
    images = np.asarray(images)
    w = border_width(images.shape) if width is None else int(width)
    lead = images.shape[:-2]
    # four slabs (top, bottom, left, right) are much faster to gather than a boolean mask
    slabs = (images[..., :w, :], images[..., -w:, :], images[..., w:-w, :w], images[..., w:-w, -w:])
    return np.concatenate([slab.reshape(*lead, -1) for slab in slabs], axis=-1)


def border_background(images, *, width: int | None = None, sigma: float = 3.0, maxiters: int = 5):
    """Sigma-clipped background level and RMS from the stamp's border frame.

    Parameters
    ----------
    images : array_like, shape (..., H, W)
        Flux per pixel; NaN pixels are ignored.
    width : int, optional
        Width of the frame of edge pixels in pixels; default :func:`border_width`.
    sigma : float
        Clipping threshold: values with ``|x - median| > sigma * std`` are rejected, repeated
        up to ``maxiters`` times or until nothing changes (as astropy's ``sigma_clip``).
    maxiters : int
        Maximum number of clipping passes.

    Returns
    -------
    level, rms : ndarray, float64, shape (...)
        Median and standard deviation of the surviving frame pixels, in image units (NaN where
        a frame has no finite pixel).

    Notes
    -----
    The frame is sorted once; every clipping pass keeps a contiguous run of the sorted values,
    so each pass costs only a count, and means and variances come from cumulative sums.
    """
    values = np.sort(border_pixels(images, width=width), axis=-1)  # in the input's precision: float32 sorts fast
    finite = np.isfinite(values)
    lo = np.zeros(values.shape[:-1], dtype=np.int64)
    hi = finite.sum(axis=-1)
    filled = (values if hi.min() == values.shape[-1] else np.where(finite, values, 0.0)).astype(np.float64)
    csum = np.concatenate([np.zeros((*values.shape[:-1], 1)), np.cumsum(filled, axis=-1)], axis=-1)
    csq = np.concatenate([np.zeros((*values.shape[:-1], 1)), np.cumsum(filled * filled, axis=-1)], axis=-1)

    def run_stats(lo, hi):
        n = np.maximum(hi - lo, 1)
        mean = (np.take_along_axis(csum, hi[..., None], -1) - np.take_along_axis(csum, lo[..., None], -1))[..., 0] / n
        mean_sq = (np.take_along_axis(csq, hi[..., None], -1) - np.take_along_axis(csq, lo[..., None], -1))[..., 0] / n
        std = np.sqrt(np.maximum(mean_sq - mean * mean, 0.0))
        mid_lo = np.take_along_axis(values, np.clip(lo + (hi - lo - 1) // 2, 0, None)[..., None], -1)[..., 0]
        mid_hi = np.take_along_axis(values, np.clip(lo + (hi - lo) // 2, 0, values.shape[-1] - 1)[..., None], -1)[..., 0]
        return 0.5 * (mid_lo.astype(np.float64) + mid_hi), std

    for _ in range(maxiters):
        median, std = run_stats(lo, hi)
        # NaN compares False, so the counts are of finite values; clipped values stay clipped (astropy)
        new_lo = np.maximum(np.count_nonzero(values < (median - sigma * std)[..., None], axis=-1), lo)
        new_hi = np.minimum(np.count_nonzero(values <= (median + sigma * std)[..., None], axis=-1), hi)
        if np.array_equal(new_lo, lo) and np.array_equal(new_hi, hi):
            break
        lo, hi = new_lo, new_hi
    median, std = run_stats(lo, hi)
    empty = hi <= lo
    return np.where(empty, np.nan, median), np.where(empty, np.nan, std)


# ----------------------------------------------------------------------------- magnitudes and sizes


def magnitudes(flux, *, zero_point: float = ZERO_POINT_NANOMAGGY) -> np.ndarray:
    """AB magnitudes ``m = zero_point - 2.5 log10(flux)``.

    Parameters
    ----------
    flux : array_like
        Flux in the unit the zero point refers to (22.5 for nanomaggies).
    zero_point : float
        Magnitude of a source of flux 1.

    Returns
    -------
    ndarray, float64
        Magnitudes; NaN where the flux is non-positive or not finite.
    """
    flux = np.asarray(flux, dtype=np.float64)
    positive = np.isfinite(flux) & (flux > 0)
    return np.where(positive, zero_point - 2.5 * np.log10(np.where(positive, flux, 1.0)), np.nan)


def colours(mags: np.ndarray, bands: str) -> dict[str, np.ndarray]:
    """Colours of adjacent bands, ``{"g-r": m_g - m_r, "r-z": m_r - m_z}`` for ``mags[..., band]``."""
    return {f"{a}-{b}": mags[..., i] - mags[..., i + 1] for i, (a, b) in enumerate(zip(bands, bands[1:]))}


def curve_of_growth(images, radii, *, background=None, center=None) -> np.ndarray:
    """Background-subtracted flux inside growing exact circular apertures.

    Parameters
    ----------
    images : array_like, shape (..., H, W)
        Flux per pixel; NaN pixels contribute nothing.
    radii : sequence of float
        Increasing aperture radii in pixels.
    background : array_like, shape (...), optional
        Background level per pixel of each image; default 0.
    center : (float, float), optional
        Aperture centre ``(x, y)``; default ``(W // 2, H // 2)``.

    Returns
    -------
    ndarray, float64, shape (..., R)
        ``F(r) = sum w_r * flux - b * A(r)`` with ``A(r) = sum w_r`` the exact aperture area
        (``pi r^2`` inside the stamp).
    """
    images = np.asarray(images)
    sums = aperture_sums(images, radii, center=center)
    if background is None:
        return sums
    areas = aperture_weights(images.shape, radii, center=center).sum(axis=0)
    return sums - np.asarray(background, dtype=np.float64)[..., None] * areas


MAX_GROWTH_RADII = 128
"""Apertures on a default curve of growth: its weight matrix is (H * W) x 128 float64."""


def growth_radii(shape_yx, *, step: float | None = None, center=None) -> np.ndarray:
    """Radii ``step, 2 step, ...`` up to the largest circle that fits in the stamp.

    Default step: 0.25 px, coarser on large stamps so that at most ``MAX_GROWTH_RADII`` apertures
    are used (a 424 px stamp gets 1.66 px steps).
    """
    r_max = largest_radius(shape_yx, center=center)
    step = max(0.25, r_max / MAX_GROWTH_RADII) if step is None else step
    radii = np.arange(step, r_max + 1e-9, step)
    return radii if np.isclose(radii[-1], r_max) else np.append(radii, r_max)


def half_light_radius(cog, radii) -> np.ndarray:
    """Radius enclosing half the total flux, interpolated linearly on the curve of growth.

    Parameters
    ----------
    cog : array_like, shape (..., R)
        Background-subtracted curve of growth ``F(r)`` (see :func:`curve_of_growth`).
    radii : array_like, shape (R,)
        Increasing radii (pixels) of the curve's apertures.

    Returns
    -------
    ndarray, float64, shape (...)
        ``r_e`` in pixels such that ``F(r_e) = F_tot / 2``, where the total ``F_tot = F(r_max)``
        is the curve's value in the largest aperture (the plateau, once the background is
        subtracted). ``F(0) = 0`` is prepended; the first upward crossing is interpolated
        linearly. NaN where ``F_tot`` is not positive or not finite.
    """
    cog = np.asarray(cog, dtype=np.float64)
    radii = np.concatenate([[0.0], np.asarray(radii, dtype=np.float64)])
    cog = np.concatenate([np.zeros((*cog.shape[:-1], 1)), cog], axis=-1)
    half = 0.5 * cog[..., -1]
    above = cog >= half[..., None]
    above[..., 0] = False
    first = np.argmax(above, axis=-1)
    first = np.where(above.any(axis=-1), first, cog.shape[-1] - 1)
    f_hi = np.take_along_axis(cog, first[..., None], -1)[..., 0]
    f_lo = np.take_along_axis(cog, (first - 1)[..., None], -1)[..., 0]
    r_hi, r_lo = radii[first], radii[first - 1]
    frac = np.clip((half - f_lo) / np.where(f_hi > f_lo, f_hi - f_lo, 1.0), 0.0, 1.0)
    radius = r_lo + frac * (r_hi - r_lo)
    return np.where(np.isfinite(half) & (half > 0), radius, np.nan)


def axis_ratio(images, *, radius: float, background=None, center=None) -> np.ndarray:
    r"""Minor-to-major axis ratio q from the second moments of the positive flux within ``radius``.

    Parameters
    ----------
    images : array_like, shape (..., H, W)
        Flux per pixel; NaN pixels count as background.
    radius : float
        Pixels whose centre lies within ``radius`` of ``center`` are used (pixels).
    background : array_like, shape (...), optional
        Subtracted first (e.g. :func:`border_background`'s level).
    center : (x, y), optional
        Default: pixel ``(W // 2, H // 2)``.

    Returns
    -------
    ndarray, float64, shape (...)
        With weights :math:`w = \max(f - b, 0)` and the weighted centroid, the second moments
        :math:`M_{xx}, M_{yy}, M_{xy}` give eigenvalues :math:`\lambda_1 \ge \lambda_2` and
        :math:`q = \sqrt{\lambda_2 / \lambda_1}` in (0, 1]: 1 for a round galaxy, b/a for an
        elliptical Gaussian. Noise biases q low for faint galaxies, equally in two populations of
        the same depth. NaN where no positive flux is left.
    """
    images = np.asarray(images, dtype=np.float64)
    if background is not None:
        images = images - np.asarray(background, dtype=np.float64)[..., None, None]
    inside = pixel_disk(images.shape[-2:], radius, center=center)
    weights = np.where(inside & np.isfinite(images), np.maximum(np.nan_to_num(images), 0.0), 0.0)
    y, x = np.mgrid[: images.shape[-2], : images.shape[-1]].astype(np.float64)
    total = weights.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = (weights * x).sum(axis=(-2, -1)) / total
        yc = (weights * y).sum(axis=(-2, -1)) / total
        dx, dy = x - xc[..., None, None], y - yc[..., None, None]
        mxx = (weights * dx * dx).sum(axis=(-2, -1)) / total
        myy = (weights * dy * dy).sum(axis=(-2, -1)) / total
        mxy = (weights * dx * dy).sum(axis=(-2, -1)) / total
        half_trace, root = 0.5 * (mxx + myy), np.sqrt(0.25 * (mxx - myy) ** 2 + mxy**2)
        q = np.sqrt(np.maximum(half_trace - root, 0.0) / (half_trace + root))
    return np.where(total > 0, q, np.nan)


# ----------------------------------------------------------------------------- reference recipe


def pixel_disk(shape_yx, radius: float, *, center=None) -> np.ndarray:
    """Boolean mask of the pixels whose centre lies within ``radius`` of ``center`` (inclusive).

    With ``radius = 6`` about pixel ``(W // 2, H // 2)`` this is the reference's 113-pixel aperture.
    """
    height, width = shape_yx[-2:]
    xc, yc = default_center(shape_yx) if center is None else center
    y, x = np.mgrid[:height, :width]
    return (x - xc) ** 2 + (y - yc) ** 2 <= radius * radius


def reference_size_proxy(images, *, pixel_scale: float = 0.262) -> np.ndarray:
    """The companion code's size "R_e": where the median within growing disks halves.

    Parameters
    ----------
    images : array_like, shape (N, H, W)
        One band per galaxy (the reference uses g); NaN pixels are ignored.
    pixel_scale : float
        Arcsec per pixel (the reference hard-codes 0.262).

    Returns
    -------
    ndarray, float64, shape (N,)
        ``(r - 1) * pixel_scale`` in arcsec for the first ``r = 3, 4, ...`` at which the median of
        the min-max normalised pixels within distance ``r - 1`` of pixel ``(W // 2, H // 2)`` is
        ``<= 0.5 x`` the median within distance 2; NaN if that never happens before the disk
        reaches the stamp edge. This is a proxy, not a half-light radius.
    """
    images = np.asarray(images, dtype=np.float64)
    low = np.nanmin(images, axis=(-2, -1), keepdims=True)
    span = np.nanmax(images, axis=(-2, -1), keepdims=True) - low
    scaled = np.where(span > 0, (images - low) / np.where(span > 0, span, 1.0), np.nan)  # flat: 0 / 0
    flat = scaled.reshape(scaled.shape[0], -1)
    reference = nanmedian_last(flat[:, pixel_disk(images.shape, 2).ravel()])
    size = np.full(images.shape[0], np.nan)
    active = np.arange(images.shape[0])
    for r in range(3, min(images.shape[-2:]) // 2 + 2):
        if active.size == 0:
            break
        disk = pixel_disk(images.shape, r - 1).ravel()
        median = nanmedian_last(flat[np.ix_(active, np.flatnonzero(disk))])
        done = median <= 0.5 * reference[active]
        size[active[done]] = (r - 1) * pixel_scale
        active = active[~done]
    return size
