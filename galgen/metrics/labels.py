"""Per-galaxy labels measured with galgen's photometry: what `prep --labels measure` stores and what
`sample --catalog` checks its mocks against.

The labels are total magnitudes per band (``mag_<band>``), the half-light radius ``r_e``, the
axis ratio ``q`` and the colours of adjacent bands (``g_r`` = mag_g - mag_r). They use the same
functions as `galgen sgd` (galgen.metrics.photometry): border background, exact-aperture curve
of growth, second moments, so a label requested from a conditional model and the label measured
on its mock mean the same thing.
"""

from __future__ import annotations

import numpy as np

from galgen.bands import colour_name
from galgen.metrics import photometry as phot

SIZE_BAND = "r"  # band of r_e and q (the middle band when r is absent)
SHAPE_RADIUS = 16.0  # pixels: the disk of the axis ratio's moments (as galgen sgd)


def size_band(bands) -> str:
    """The band of r_e and q: SIZE_BAND, or the middle band when it is absent."""
    return SIZE_BAND if SIZE_BAND in bands else bands[len(bands) // 2]


def label_units(bands: str) -> dict[str, str]:
    """Name -> unit of every label measure_labels returns for these bands, in its order."""
    units = {f"mag_{b}": "mag" for b in bands}
    units.update(r_e="arcsec", q="")
    units.update({colour_name(a, b): "mag" for a, b in zip(bands, bands[1:])})
    return units


def measure_labels(flux, *, bands: str, pixel_scale, zero_point: float = phot.ZERO_POINT_NANOMAGGY,
                   advance=None) -> dict[str, np.ndarray]:
    r"""Total magnitudes, half-light radius, axis ratio and colours of each galaxy.

    Parameters
    ----------
    flux : array_like, shape (N, C, H, W)
        Images in flux units of the zero point (nanomaggies for 22.5), galaxy at pixel (W//2, H//2).
    bands : sequence of str
        One letter per plane.
    pixel_scale : float or array_like, shape (N,)
        Arcsec per pixel (one for all, or per image).
    zero_point : float
        Magnitude of flux 1.
    advance : callable, optional
        Called with the number of galaxies measured, chunk by chunk.

    Returns
    -------
    dict of ndarray, shape (N,), in the order of :func:`label_units`
        ``mag_<b> = zp - 2.5 log10 F_tot`` with :math:`F_{tot}` the background-subtracted flux in
        the largest circle that fits the stamp (:func:`photometry.curve_of_growth`, background
        from :func:`photometry.border_background`; NaN pixels take the background);
        ``r_e`` (arcsec): the radius enclosing half of :math:`F_{tot}` in the size band;
        ``q``: the second-moment axis ratio of the size band within 16 px; colours: differences
        of adjacent magnitudes. NaN where a flux is not positive.
    """
    count, _, height, width = flux.shape
    scale = np.broadcast_to(np.asarray(pixel_scale, dtype=np.float64), (count,))
    radii = phot.growth_radii((height, width))
    plane = list(bands).index(size_band(bands))
    mags, sizes, shapes = np.empty((count, len(bands))), np.empty(count), np.empty(count)

    def measure(rows):
        block = np.asarray(flux[rows], dtype=np.float64)
        level, _ = phot.border_background(block)
        if not np.isfinite(block).all():
            block = np.where(np.isfinite(block), block, level[..., None, None])
        cog = phot.curve_of_growth(block, radii, background=level)
        mags[rows] = phot.magnitudes(cog[..., -1], zero_point=zero_point)
        sizes[rows] = phot.half_light_radius(cog[:, plane], radii) * scale[rows]
        shapes[rows] = phot.axis_ratio(block[:, plane], radius=SHAPE_RADIUS, background=level[:, plane])

    phot.for_each_chunk(count, measure, advance=advance)
    table = {f"mag_{b}": mags[:, i] for i, b in enumerate(bands)}
    table.update(r_e=sizes, q=shapes)
    table.update({colour_name(a, b): mags[:, i] - mags[:, i + 1] for i, (a, b) in enumerate(zip(bands, bands[1:]))})
    return table
