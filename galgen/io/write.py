"""FITS out: the only module that writes FITS files (galgen.io.cube reads them).

Every write is atomic (a temporary name, then a rename) and passes ``fitsverify`` with no
warnings: CHECKSUM/DATASUM on every HDU, a band axis 3 described in the WCS, long strings
through the CONTINUE convention (announced by LONGSTRN).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from astropy.io import fits

from galgen import __version__
from galgen.errors import InputError
from galgen.io.atomic import atomic_output
from galgen.io.cube import DEFAULT_UNIT, Cube
from galgen.io.provenance import add_history, provenance_to_header

WRITE_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")  # what galgen writes (astropy, uncompressed or gzip)


def write_cube(cube: Cube, path, *, provenance: dict | None = None, history: Sequence[str] = (),
               extra_hdus: Sequence[tuple[str, np.ndarray]] = ()) -> Path:
    """Write ``cube`` as a FITS cube, atomically; returns the path.

    Primary HDU: float32 ``(band, y, x)``, the celestial WCS on axes 1-2 and a band axis 3,
    BUNIT, BANDS and BAND0.., the input's descriptive cards, galgen provenance keywords and
    HISTORY. Extra image HDUs follow (bool arrays as uint8); the cube's mask is written as a
    MASK extension when it flags any pixel and none is given. CHECKSUM/DATASUM on every HDU.
    """
    path = Path(path)
    header = _cube_header(cube, provenance=provenance, history=history)
    hdus = [fits.PrimaryHDU(data=np.ascontiguousarray(cube.data, dtype=np.float32), header=header)]
    hdus[0].header.set("EXTEND", True, "FITS dataset may contain extensions", after=f"NAXIS{cube.data.ndim}")
    names = {name.upper() for name, _ in extra_hdus}
    extras = list(extra_hdus)
    if cube.mask is not None and cube.mask.any() and "MASK" not in names:
        extras.append(("MASK", cube.mask))
    for name, array in extras:
        hdus.append(_extra_hdu(name, array, cube))
    return _write_hdus(fits.HDUList(hdus), path)


def write_table(columns: Mapping[str, np.ndarray], path, *, units: Mapping[str, str] | None = None,
                provenance: dict | None = None) -> Path:
    """Write columns as a FITS binary table (extension 'TABLE'), atomically; returns the path.

    Numbers, booleans and strings are supported; a 2-D column is stored as a vector per row.
    Provenance goes in the primary header.
    """
    path = Path(path)
    units = dict(units or {})
    unknown = set(units) - set(columns)
    if unknown:
        raise ValueError(f"units given for unknown columns: {sorted(unknown)}")
    lengths = {len(np.asarray(v)) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns have different lengths: {sorted(lengths)}")
    cols = [_fits_column(name, np.asarray(values), units.get(name)) for name, values in columns.items()]
    primary = fits.PrimaryHDU(header=_provenance_header(provenance, ()))
    table = fits.BinTableHDU.from_columns(cols, name="TABLE")
    return _write_hdus(fits.HDUList([primary, table]), path)


def _cube_header(cube: Cube, *, provenance: dict | None, history: Sequence[str]) -> fits.Header:
    header = fits.Header()
    header.extend(_cube_wcs_header(cube))
    header["BUNIT"] = (cube.unit, _unit_comment(cube.unit))
    header["BANDS"] = (cube.bands, "band of each plane along axis 3, in order")
    for i, band in enumerate(cube.bands):
        header[f"BAND{i}"] = (band, f"band of plane {i} (axis 3 pixel {i + 1})")
    for card in cube.header.cards:
        if card.keyword not in header or card.keyword in ("HISTORY", "COMMENT"):
            header.append(card, bottom=True)
    header.extend(_provenance_header(provenance, history), end=True)
    if "GALGEN" not in header:  # marks galgen's own files even without provenance (see read_cube)
        header.set("GALGEN", __version__, "galgen version that wrote this file", before="BUNIT")
    return header


def _cube_wcs_header(cube: Cube) -> fits.Header:
    """Celestial WCS on axes 1-2 plus a linear band axis 3 (pixel k+1 = plane k)."""
    header = fits.Header()
    if cube.wcs is None:
        return header
    celestial = cube.wcs.to_header(relax=False)
    header["WCSAXES"] = (3, "celestial axes 1-2, band axis 3")
    for card in celestial.cards:
        if card.keyword in ("WCSAXES", "DATE-OBS", "MJD-OBS") or (card.keyword == "MJDREF" and card.value == 0):
            continue  # time cards say nothing about a celestial grid
        header.append(card, bottom=True)
    header["CTYPE3"] = ("BAND", "axis 3 is the band (filter): see BANDS")
    header["CRPIX3"] = (1.0, "pixel 1 of axis 3 ...")
    header["CRVAL3"] = (0.0, "... is plane 0, i.e. the first letter of BANDS")
    header["CDELT3"] = (1.0, "one plane per band")
    header["CNAME3"] = ("band", "pixel k+1 holds band BANDS[k]")
    return header


def _unit_comment(unit: str) -> str:
    if unit == DEFAULT_UNIT:
        return "mag = 22.5 - 2.5 log10(flux)"
    return "flux unit"


def _provenance_header(provenance: dict | None, history: Sequence[str]) -> fits.Header:
    header = fits.Header()
    if provenance is not None:
        provenance_to_header(provenance, header)
    for line in history:
        add_history(header, line)
    return header


def _extra_hdu(name: str, array: np.ndarray, cube: Cube) -> fits.ImageHDU:
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu" and array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    hdu = fits.ImageHDU(data=np.ascontiguousarray(array), name=name.upper())
    if array.shape == cube.data.shape:
        hdu.header.extend(_cube_wcs_header(cube))
        hdu.header["BANDS"] = (cube.bands, "band of each plane along axis 3, in order")
    if name.upper() == "MASK":
        hdu.header["COMMENT"] = "non-zero = bad or missing pixel of the primary image"
    elif array.dtype.kind == "f":
        hdu.header["BUNIT"] = (cube.unit, "same unit as the primary image")
    return hdu


_FITS_FORMATS = {"b": "L", "u1": "B", "i1": "I", "i2": "I", "u2": "J", "i4": "J", "u4": "K", "i8": "K",
                 "f4": "E", "f8": "D"}


def _fits_column(name: str, values: np.ndarray, unit: str | None) -> fits.Column:
    if values.dtype.kind in "US":
        strings = values.astype(str)
        width = max(1, max((len(s) for s in strings.ravel()), default=1))
        encoded = np.char.encode(strings, "ascii") if strings.size else strings.astype("S1")
        return fits.Column(name=name, format=f"{width}A", array=encoded, unit=unit)
    code = "b" if values.dtype.kind == "b" else f"{values.dtype.kind}{values.dtype.itemsize}"
    if code not in _FITS_FORMATS:
        raise ValueError(f"column {name!r}: dtype {values.dtype} has no FITS table format")
    fmt = _FITS_FORMATS[code]
    if code in ("i1", "u2", "u4"):  # widen to the next signed type FITS stores natively
        values = values.astype({"i1": np.int16, "u2": np.int32, "u4": np.int64}[code])
    repeat = int(np.prod(values.shape[1:])) if values.ndim > 1 else 1
    dim = None
    if values.ndim > 2:
        dim = "(" + ",".join(str(n) for n in reversed(values.shape[1:])) + ")"
    return fits.Column(name=name, format=f"{repeat}{fmt}" if repeat != 1 else fmt, array=values,
                       unit=unit, dim=dim)


def _write_hdus(hdul: fits.HDUList, path: Path) -> Path:
    if not path.name.lower().endswith(WRITE_SUFFIXES):
        raise InputError("galgen writes .fits or .fits.gz files (tile compression: run fpack on them)", path=path)
    for hdu in hdul:
        _declare_long_strings(hdu.header)
    with atomic_output(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long strings -> CONTINUE
            hdul.writeto(tmp, checksum=True, output_verify="exception")
    return path


def _declare_long_strings(header: fits.Header) -> None:
    """Announce the CONTINUE convention (LONGSTRN) when a string value needs it, as fitsverify asks."""
    long_values = [c for c in header.cards if c.keyword not in ("HISTORY", "COMMENT", "")
                   and isinstance(c.value, str) and len(c.value) > 68]
    if long_values:
        header.set("LONGSTRN", "OGIP 1.0", "long strings continue on CONTINUE cards",
                   after="EXTEND" if "EXTEND" in header else None)
