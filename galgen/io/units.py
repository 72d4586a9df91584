"""Flux units of survey images: how one band's pixel values become nanomaggies.

galgen trains, samples and measures in nanomaggies (an AB flux unit: ``m = 22.5 - 2.5 log10 f``,
1 nmgy = 3.631 uJy = 3631 nJy), so `galgen prep` converts every band of every input into them and
records what it converted from. A band's unit is read from its header, in this order:

1. ``BUNIT`` naming a flux (nanomaggy, maggy, Jy, mJy, uJy, nJy per pixel) or a surface brightness
   (MJy/sr, Jy/sr; the pixel's solid angle from ``PIXAR_SR``, else from the WCS pixel scale);
2. a calibration of count rates: ``PHOTFNU`` (Jy per unit, HST/JWST), ``PHOTFLAM`` with ``PHOTPLAM``
   (erg/s/cm^2/A per unit at the pivot wavelength in A, HST), ``PHOTMJSR`` (MJy/sr per unit, JWST);
3. an AB zero point, the magnitude of one unit: ``MAGZERO``, ``MAGZP``, ``ZEROPNT``, ``ZP``, ``ZPAB``,
   ``PHOTZP``, ``MAGZPT``, or ``FLUXMAG0`` (the flux of magnitude 0, HSC);
4. what the user states for files whose headers give none: a zero point per band, or one unit;
5. no ``BUNIT`` and nothing else, with one-letter band names: nanomaggies, as Legacy Survey cutouts
   (and every file galgen wrote before) have it.

Anything else is an InputError naming the file: galgen will not guess a flux scale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Mapping

import numpy as np

from galgen.errors import InputError
from galgen.io.cube import DEFAULT_UNIT, Cube

NANOMAGGY_JY = 3.631e-6  # 1 nanomaggy in Jy: 3631 Jy x 10^(-0.4 x 22.5)
NANOMAGGY_ZERO_POINT = 22.5  # AB magnitude of 1 nanomaggy
_SPEED_OF_LIGHT_A = 2.99792458e18  # Angstrom / s
_ARCSEC_SR = (math.pi / 648000.0) ** 2  # one square arcsecond in steradians

# Units of flux per pixel, in Jy, and of surface brightness, in Jy per sr, spaces removed. Case matters where
# it must (mJy is milli-, MJy mega-); maggies are looked up in lower case.
_MAGGY_JY = {"nanomaggy": NANOMAGGY_JY, "nanomaggies": NANOMAGGY_JY, "nmgy": NANOMAGGY_JY, "nanomaggys": NANOMAGGY_JY,
             "maggy": NANOMAGGY_JY * 1e9, "maggies": NANOMAGGY_JY * 1e9}
_FLUX_JY = {"Jy": 1.0, "JY": 1.0, "jy": 1.0, "mJy": 1e-3, "uJy": 1e-6, "UJY": 1e-6, "nJy": 1e-9, "NJY": 1e-9, "njy": 1e-9}
_SURFACE_JY_SR = {"MJy/sr": 1e6, "MJY/SR": 1e6, "MJy/Sr": 1e6, "MJysr-1": 1e6, "MJy.sr-1": 1e6,
                  "Jy/sr": 1.0, "JY/SR": 1.0, "Jysr-1": 1.0}
_ZERO_POINT_KEYS = ("MAGZERO", "MAGZP", "ZEROPNT", "ZP", "ZPAB", "PHOTZP", "MAGZPT")


@dataclass(frozen=True)
class BandUnit:
    """How one band's pixel values become nanomaggies: ``nanomaggy = value x factor``."""

    unit: str  # the input's unit as its header or the user names it, e.g. "MJy/sr", "DN/s"
    factor: float  # nanomaggies per input unit
    source: str  # what said so: "BUNIT", "PHOTFNU", "MAGZERO", "stated zero point", ...

    @property
    def identity(self) -> bool:
        """Whether the values already are nanomaggies."""
        return self.factor == 1.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StatedUnits:
    """What the user says of inputs whose headers give no unit: one unit for every band, or AB zero points."""

    unit: str | None = None  # e.g. "nJy", "MJy/sr"
    zero_points: Mapping[str, float] | None = None  # band -> AB magnitude of one unit

    def __post_init__(self):
        if self.unit is not None and flux_factor(self.unit, pixel_sr=1.0) is None:  # fails before any file is read
            raise InputError(f"unit {self.unit!r} is not one galgen converts: nanomaggy, maggy, Jy, mJy, uJy, nJy "
                             "(per pixel), MJy/sr, Jy/sr; or give AB zero points", options="unit")


def flux_factor(unit: str, *, pixel_sr: float | None) -> float | None:
    """Nanomaggies per ``unit`` (a flux per pixel or, given the pixel's solid angle ``pixel_sr``, a surface
    brightness); None when galgen does not know the unit; InputError for a surface brightness without a pixel size."""
    key = unit.replace(" ", "").replace("\u00b5", "u").replace("micro", "u").removesuffix("/pixel").removesuffix("/pix")
    if key.lower() in _MAGGY_JY:
        return _MAGGY_JY[key.lower()] / NANOMAGGY_JY
    if key in _FLUX_JY:
        return _FLUX_JY[key] / NANOMAGGY_JY
    if key in _SURFACE_JY_SR:
        if pixel_sr is None:
            raise InputError(f"unit {unit!r} is per steradian but the file gives no pixel size (PIXAR_SR or a WCS)")
        return _SURFACE_JY_SR[key] * pixel_sr / NANOMAGGY_JY
    return None


def zero_point_factor(zero_point: float) -> float:
    """Nanomaggies per unit of an image whose AB zero point (magnitude of one unit) is ``zero_point``."""
    return 10.0 ** (-0.4 * (float(zero_point) - NANOMAGGY_ZERO_POINT))


def band_unit(header: Mapping, bunit: str, *, band: str, pixel_scale: float | None,
              stated: StatedUnits = StatedUnits(), path=None) -> BandUnit:
    """The `BandUnit` of one band's pixels (module docstring: the order of the cards read).

    ``header``: the band's cards (a FITS header or a dict); ``bunit``: its BUNIT ("" when it has none);
    ``pixel_scale``: arcsec per pixel from its WCS (None without one). InputError naming ``path`` when the
    unit is unknown (``options`` the statements that would fix it).
    """
    pixel_sr = _pixel_sr(header, pixel_scale)
    if bunit:
        factor = flux_factor(bunit, pixel_sr=pixel_sr)
        if factor is not None:
            return BandUnit(bunit, factor, "BUNIT")
    found = _calibration(header, pixel_sr=pixel_sr)
    if found is not None:
        return BandUnit(bunit or "counts", found[1], found[0])
    zero_points = stated.zero_points or {}
    if band in zero_points:
        return BandUnit(bunit or "counts", zero_point_factor(zero_points[band]), "stated zero point")
    if stated.unit is not None:
        return BandUnit(stated.unit, flux_factor(stated.unit, pixel_sr=pixel_sr), "stated unit")
    if not bunit and len(band) == 1:
        return BandUnit("nanomaggy", 1.0, "no unit cards: nanomaggy, the Legacy Survey's unit")
    what = f"BUNIT {bunit!r} is not a flux unit galgen knows" if bunit else "no BUNIT"
    raise InputError(f"band {band}: {what} and no PHOTFNU, PHOTFLAM, PHOTMJSR or zero point (MAGZERO, ZP, ...); "
                     "state the unit or the band's AB zero point", path=path, options=("unit", "zero_point"))


def in_nanomaggies(cube: Cube, *, stated: StatedUnits = StatedUnits(), path=None) -> tuple[Cube, tuple[BandUnit, ...]]:
    """``cube`` (read with ``unit_default=""``) with its flux in nanomaggies, each band by its `band_unit`, and
    those units. InputError naming ``path`` when a band's unit is unknown."""
    try:
        scale = cube.pixel_scale
    except Exception:  # noqa: BLE001 - an odd WCS only loses the pixel size of a surface brightness
        scale = None
    units = tuple(band_unit(cube.header, cube.unit, band=band, pixel_scale=scale, stated=stated, path=path)
                  for band in cube.bands)
    factors = np.array([u.factor for u in units], dtype=np.float64)
    data = cube.data if (factors == 1.0).all() else (cube.data * factors[:, None, None]).astype(np.float32)
    return replace(cube, data=data, unit=DEFAULT_UNIT), units


def _pixel_sr(header: Mapping, pixel_scale: float | None) -> float | None:
    area = header.get("PIXAR_SR")
    if isinstance(area, (int, float)) and area > 0:
        return float(area)
    return None if pixel_scale is None else float(pixel_scale) ** 2 * _ARCSEC_SR


def _calibration(header: Mapping, *, pixel_sr: float | None) -> tuple[str, float] | None:
    """(card, nanomaggies per unit) from a count-rate calibration or a zero point, None without one."""
    def number(key):
        value = header.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None

    if number("PHOTFNU"):
        return "PHOTFNU", number("PHOTFNU") / NANOMAGGY_JY
    if number("PHOTFLAM") and number("PHOTPLAM"):
        jy = number("PHOTFLAM") * number("PHOTPLAM") ** 2 / _SPEED_OF_LIGHT_A * 1e23  # f_nu = f_lambda lambda^2 / c
        return "PHOTFLAM", jy / NANOMAGGY_JY
    if number("PHOTMJSR") and pixel_sr is not None:
        return "PHOTMJSR", number("PHOTMJSR") * 1e6 * pixel_sr / NANOMAGGY_JY
    for key in _ZERO_POINT_KEYS:
        value = header.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return key, zero_point_factor(value)
    if number("FLUXMAG0"):
        return "FLUXMAG0", zero_point_factor(2.5 * math.log10(number("FLUXMAG0")))
    return None


def parse_zero_points(text: str, *, bands) -> dict[str, float]:
    """``"28.9"`` -> that zero point for every band; ``"F115W=28.9,F150W=28.7"`` -> per band (a subset is fine)."""
    from galgen.bands import parse_bands

    bands = parse_bands(bands)
    try:
        if "=" not in text:
            return {band: float(text) for band in bands}
        pairs = dict(item.split("=", 1) for item in text.replace(" ", "").split(",") if item)
        values = {band: float(value) for band, value in pairs.items()}
    except ValueError:
        raise InputError(f"zero points {text!r}: expected a number or band=value pairs like F115W=28.9,F150W=28.7",
                         options="zero_point") from None
    unknown = [band for band in values if band not in bands]
    if unknown or not all(math.isfinite(v) for v in values.values()):
        raise InputError(f"zero points {text!r}: {unknown[0] if unknown else 'a value'} is not "
                         f"{'one of the bands ' + str(bands) if unknown else 'a finite number'}", options="zero_point")
    return values
