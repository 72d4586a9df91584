"""FITS in: the only module that reads FITS files (galgen.io.write writes them), and the Cube they make.

A galaxy is a `Cube`: float32 flux shaped (band, y, x) in native byte order, the band
names, the celestial WCS of the x/y axes, a unit, and a mask of bad pixels. Files are
read with astropy (one code path for plain, gzip and tile-compressed files) and every
failure becomes an `InputError` naming the file. Writes are atomic and pass
``fitsverify`` with no warnings: CHECKSUM/DATASUM, a band axis 3 described in the WCS,
long strings through the CONTINUE convention.
"""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from astropy.wcs import WCS, FITSFixedWarning

from galgen.bands import Bands, split_band_text
from galgen.errors import InputError, NotAnImage
from galgen.io.provenance import provenance_from_header

DEFAULT_UNIT = "nanomaggy"
# Spellings of the Legacy Survey flux unit seen in the wild, all meaning 1e-9 maggy.
_NANOMAGGY_SPELLINGS = {"nanomaggy", "nanomaggies", "nmgy", "nanomaggys"}
# Extensions that carry a bad-pixel mask or flag map (non-zero = bad).
_MASK_EXTNAMES = ("MASK", "FLAGS", "BADPIX", "DQ", "BITMASK")
# Extensions that give each pixel's noise: inverse variance, a weight proportional to it (drizzle's WHT), sigma, or
# the variance (HSC and Rubin calexps).
NOISE_EXTNAMES = {"IVAR": "ivar", "INVVAR": "ivar", "WHT": "weight", "WEIGHT": "weight", "ERR": "sigma",
                  "ERROR": "sigma", "SIGMA": "sigma", "RMS": "sigma", "NOISE": "sigma", "VARIANCE": "variance",
                  "VAR": "variance"}
# Cards that describe the layout of the input (tile compression included) and must not be copied onto an output.
_STRUCTURAL = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|XTENSION|EXTNAME|EXTVER|CHECKSUM|DATASUM|DATE|LONGSTRN"
    r"|BSCALE|BZERO|BLANK|BUNIT|BANDS|BAND\d+|FILTER\d*|TFIELDS|TTYPE\d+|TFORM\d+|TUNIT\d+|TDIM\d+"
    r"|Z(IMAGE|BITPIX|NAXIS\d*|TILE\d+|CMPTYPE|NAME\d+|VAL\d+|QUANTIZ|DITHER0|SIMPLE|TENSION|EXTEND|BLOCKED"
    r"|PCOUNT|GCOUNT|HECKSUM|DATASUM|BLANK|SCALE|ZERO|MASKCMP))$"
)
# World-coordinate cards; the output's are written afresh from `Cube.wcs`.
_WCS_KEY = re.compile(
    r"^(WCSAXES|CTYPE\d|CRVAL\d|CRPIX\d|CDELT\d|CUNIT\d|CROTA\d|CD\d_\d|PC\d_\d|PV\d_\d+|PS\d_\d+"
    r"|CNAME\d|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|MJDREF\w*|DATEREF|(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+)"
    r"|IMAGEW|IMAGEH)$"
)


@dataclass
class Cube:
    """A multi-band image: float32 flux ``(band, y, x)`` with its bands, WCS and mask."""

    data: np.ndarray  # float32, native byte order, shape (band, y, x), flux in `unit`
    bands: Bands  # one name per plane: "grz", "F115W,F150W" or a sequence of names, made a galgen.bands.Bands
    wcs: WCS | None = None  # celestial 2-D WCS of axes x, y
    unit: str = DEFAULT_UNIT
    mask: np.ndarray | None = None  # bool (band, y, x), True = bad or missing pixel
    header: fits.Header = field(default_factory=fits.Header)  # the input's other cards, for reference
    path: str | None = None

    def __post_init__(self):
        data = np.asarray(self.data)
        if data.ndim == 2:
            data = data[np.newaxis]
        if data.ndim != 3:
            raise ValueError(f"cube data must be (band, y, x), got shape {data.shape}")
        self.data = data.astype(np.float32, copy=False)
        self.bands = Bands(self.bands)
        if len(self.bands) != self.data.shape[0]:
            raise ValueError(f"{self.data.shape[0]} planes but bands {self.bands!r}")
        if self.mask is not None:
            mask = np.asarray(self.mask, dtype=bool)
            self.mask = np.broadcast_to(mask, self.data.shape).copy() if mask.shape != self.data.shape else mask

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)

    @property
    def pixel_scale(self) -> float | None:
        """Pixel scale in arcsec/pixel (geometric mean of the two axes), or None without a WCS."""
        return wcs_pixel_scale(self.wcs)


def wcs_pixel_scale(wcs: WCS | None) -> float | None:
    """Pixel scale of a celestial WCS in arcsec/pixel (geometric mean of the two axes), or None."""
    if wcs is None:
        return None
    from astropy.wcs.utils import proj_plane_pixel_scales

    scales = proj_plane_pixel_scales(wcs)  # degrees per pixel along x and y
    return float(np.sqrt(scales[0] * scales[1]) * 3600.0)


# ----------------------------------------------------------------------------- reading


def read_cube(path, *, hdu: int | str | None = None, bands=None,
              zero_is_missing: bool | None = None, unit_default: str = DEFAULT_UNIT, name: str | None = None) -> Cube:
    """Read a ``(band, y, x)`` cube (or a 2-D one-band image) from a FITS file.

    ``hdu`` picks the HDU by index or EXTNAME; by default the first HDU holding an image
    (HDU 1 of a tile-compressed ``.fits.fz``). Band names come from the header (``BANDS``,
    then ``BAND0..``/``FILTER1..`` per plane, then ``FILTER``); ``bands`` either names the
    planes of a file that does not, or selects and orders planes of one that does.
    NaN/inf pixels, BLANK values of integer images and non-zero pixels of a MASK/FLAGS
    extension become ``Cube.mask``. ``zero_is_missing``: the Legacy Survey cutout service
    fills pixels without coverage with exactly 0.0; by default such pixels are masked in
    float images that galgen did not write (galgen writes its masks explicitly; 0 counts are data). ``unit_default``: the
    unit of a file without BUNIT (prep passes "" to tell such files apart, galgen.io.units). ``name``:
    the band of a one-plane file, whatever its header says (a per-band input's template names it).
    """
    path = Path(path)
    with _open_fits(path) as hdul:
        index = _pick_image_hdu(hdul, hdu, path)
        data, mask = _read_pixels(hdul, index, path, zero_is_missing=zero_is_missing)
        header = hdul[index].header
        file_bands = _header_bands(header, data.shape[0]) if name is None or data.shape[0] != 1 else Bands((name,))
        wcs = _celestial_wcs(header, path)
        unit = _unit(header, default=unit_default)
        kept = _reference_cards(header, keep_wcs=wcs is None)
    data, mask, names = _select_bands(data, mask, file_bands, bands, path)
    return Cube(data=data, bands=names, wcs=wcs, unit=unit, mask=mask if mask.any() else None,
                header=kept, path=str(path))


def read_provenance(path) -> dict:
    """The galgen provenance recorded in a FITS file's primary header (empty dict if none)."""
    path = Path(path)
    with _open_fits(path) as hdul:
        return provenance_from_header(hdul[0].header)


def make_wcs(shape_yx: tuple[int, int], *, pixel_scale: float, ra: float = 180.0, dec: float = 0.0) -> WCS:
    """A gnomonic (TAN) WCS centred on (ra, dec) degrees, north up, east left, ``pixel_scale`` arcsec/pixel."""
    ny, nx = shape_yx
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]  # FITS pixels are 1-based: the image centre
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.cdelt = [-pixel_scale / 3600.0, pixel_scale / 3600.0]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


MAX_BAD_FRACTION = 0.10  # a band with more NaN, masked or uncovered pixels than this is not a usable image


def coverage_problem(bad: np.ndarray, bands: str, *, what: str, limit: float = MAX_BAD_FRACTION) -> str | None:
    """Why a ``(band, y, x)`` image whose ``bad`` pixels are NaN, masked or uncovered is unusable, else None.

    An image is unusable when, in any band, the fraction of bad pixels exceeds ``limit``; ``what``
    names the image in the reason ("64 px crop").
    """
    fractions = np.asarray(bad, dtype=bool).reshape(len(bands), -1).mean(axis=1)
    worst = int(np.argmax(fractions))
    if fractions[worst] > limit:
        return (f"band {bands[worst]}: {fractions[worst]:.0%} of the {what} is NaN, masked or without coverage "
                f"(limit {limit:.0%})")
    return None


def is_galgen_file(path) -> bool:
    """Whether ``path`` is a FITS file that galgen wrote (its primary header has the GALGEN card)."""
    try:
        with _open_fits(Path(path)) as hdul:
            return "GALGEN" in hdul[0].header
    except InputError:
        return False


def describe(path) -> dict:
    """What a FITS file holds, for ``galgen info``: layout, bands, unit, grid, provenance.

    Images: shape, bands, unit, pixel scale (arcsec), sky position of the image centre
    (degrees), masked pixel count. Tables: row count and column units. Both: the HDU
    list, galgen provenance and HISTORY lines. A damaged file raises InputError.
    """
    path = Path(path)
    with _open_fits(path) as hdul:
        primary = hdul[0].header
        tail = {
            "hdus": [{"name": h.name, "type": type(h).__name__, "shape": list(getattr(h, "shape", ()) or ())}
                     for h in hdul],
            "provenance": provenance_from_header(primary),
            "history": [str(line) for line in primary.get("HISTORY", [])],
        }
        images = [i for i, h in enumerate(hdul) if _is_image(h) and h.header.get("NAXIS", 0) > 0]
        if images:
            return {"path": str(path), **_describe_image(hdul, images[0], path), **tail}
        tables = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
        if not tables:
            raise InputError("neither an image nor a binary table in the file", path=path)
        _check_complete(tables[0], path)
        columns = {c.name: c.unit or "" for c in tables[0].columns}
        return {"path": str(path), "kind": "table", "rows": int(tables[0].header["NAXIS2"]), "columns": columns,
                **tail}


def _describe_image(hdul: fits.HDUList, index: int, path: Path) -> dict:
    """The image's layout and its count of bad pixels, read a block of rows at a time (memory stays flat)."""
    image = hdul[index]
    shape = _cube_shape(image.header, path)
    wcs = _celestial_wcs(image.header, path)
    centre = None if wcs is None else dict(zip(("ra", "dec"), _centre(wcs, shape)))
    return {"kind": "image", "hdu": index, "shape": list(shape),
            "bands": str(_header_bands(image.header, shape[0]) or "?" * shape[0]), "unit": _unit(image.header),
            "pixel_scale": wcs_pixel_scale(wcs), "centre": centre,
            "masked_pixels": _count_bad_pixels(hdul, index, shape, path)}


def image_centre(path) -> tuple[float, float] | None:
    """(ra, dec) in degrees of the centre of a file's first image, from its header alone; None without a
    celestial WCS."""
    path = Path(path)
    with _open_fits(path) as hdul:
        header = hdul[_pick_image_hdu(hdul, None, path)].header
        wcs = _celestial_wcs(header, path)
        return None if wcs is None else _centre(wcs, _cube_shape(header, path))


def _centre(wcs: WCS, shape) -> tuple[float, float]:
    ny, nx = shape[1:]
    ra, dec = wcs.all_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
    return float(ra), float(dec)


_BLOCK_PIXELS = 1 << 22  # pixels read at a time when counting (16 MB as float32)


def _cube_shape(header, path: Path) -> tuple[int, int, int]:
    """(band, y, x) of an image HDU from its header, as `_as_float_cube` would shape its data."""
    axes = [int(header.get(f"NAXIS{i}", 0)) for i in range(int(header.get("NAXIS", 0)), 0, -1)]
    if len(axes) == 2:
        axes = [1, *axes]
    elif len(axes) > 3 and all(n == 1 for n in axes[:-3]):
        axes = axes[-3:]
    if len(axes) != 3 or min(axes) < 1:
        raise InputError(f"expected a 2-D image or a 3-D (band, y, x) cube, got shape {tuple(axes)}", path=path)
    return tuple(axes)


def _count_bad_pixels(hdul: fits.HDUList, index: int, shape, path: Path) -> int:
    """Bad pixels as `_read_pixels` defines them (non-finite, BLANK, mask extensions, no-coverage zeros), in blocks."""
    image = hdul[index]
    _check_complete(image, path)
    flags = [h for i, h in enumerate(hdul) if i != index and _is_image(h) and h.name.upper() in _MASK_EXTNAMES]
    for hdu in flags:
        _check_complete(hdu, path)
    zero_is_missing = "GALGEN" not in image.header and "GALGEN" not in hdul[0].header
    lead = (0,) * (int(image.header["NAXIS"]) - 3) if image.header["NAXIS"] > 3 else ()
    rows = max(1, _BLOCK_PIXELS // shape[2])
    count = 0
    for band in range(shape[0]):
        for y0 in range(0, shape[1], rows):
            where = (*lead, band, slice(y0, y0 + rows)) if image.header["NAXIS"] >= 3 else (slice(y0, y0 + rows),)
            raw = _read_section(image, where, path)
            data, bad = _as_float_cube(raw[np.newaxis], image.header, path)
            if zero_is_missing and raw.dtype.kind == "f":
                bad |= data == 0.0
            for hdu in flags:
                bad |= _flag_section(hdu, band, y0, rows, shape, path)
            count += int(bad.sum())
    return count


def _read_section(hdu, where, path: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyUserWarning)
        try:
            return np.asarray(hdu.section[where])
        except (AstropyUserWarning, OSError, ValueError, EOFError, TypeError, IndexError, KeyError) as exc:
            raise InputError(f"cannot read the image data ({_first_line(exc)})", path=path) from None


def _flag_section(hdu, band: int, y0: int, rows: int, shape, path: Path) -> np.ndarray:
    """Rows ``y0 .. y0 + rows`` of a mask extension for ``band`` (a 2-D mask serves every band)."""
    naxis = int(hdu.header.get("NAXIS", 0))
    fshape = _cube_shape(hdu.header, path) if naxis >= 2 else None
    if fshape is None or fshape[1:] != tuple(shape[1:]) or fshape[0] not in (1, shape[0]):
        raise InputError(f"{hdu.name} extension has shape {fshape}, the image {tuple(shape)}", path=path)
    where = (slice(y0, y0 + rows),) if naxis == 2 else (*(0,) * (naxis - 3), band if fshape[0] > 1 else 0,
                                                          slice(y0, y0 + rows))
    return _bad_flags(_read_section(hdu, where, path), hdu.header)


@contextmanager
def _open_fits(path: Path):
    """Open a FITS file, turning astropy's warnings about damaged files into InputError."""
    from galgen.io.inputs import refuse_special_file

    refuse_special_file(path)  # a FIFO or /dev/zero would block or never end
    if not path.exists():
        raise InputError("no such file", path=path)
    if path.is_dir():
        raise InputError("is a directory, not a FITS file", path=path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyUserWarning)  # "File may have been truncated" and kin
        try:
            hdul = fits.open(path, memmap=False, lazy_load_hdus=False)
        except AstropyUserWarning as exc:
            raise InputError(f"truncated or damaged FITS file ({_first_line(exc)})", path=path) from None
        except (OSError, ValueError, EOFError, TypeError, IndexError, KeyError) as exc:
            raise InputError(f"not a readable FITS file ({_first_line(exc)})", path=path) from None
    try:
        yield hdul
    finally:
        hdul.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _pick_image_hdu(hdul: fits.HDUList, hdu: int | str | None, path: Path) -> int:
    if hdu is not None:
        try:
            index = hdul.index_of(hdu) if isinstance(hdu, str) else int(hdu)
            chosen = hdul[index]
        except (KeyError, IndexError):
            raise InputError(f"no HDU {hdu!r} (the file has {len(hdul)})", path=path) from None
        if not _is_image(chosen):
            raise InputError(f"HDU {hdu!r} is a {type(chosen).__name__}, not an image", path=path)
        if not chosen.header.get("NAXIS", 0):
            raise InputError(f"HDU {hdu!r} holds no data", path=path)
        return index
    for index, candidate in enumerate(hdul):
        if _is_image(candidate) and candidate.header.get("NAXIS", 0) > 0:
            return index
    kinds = ", ".join(type(h).__name__ for h in hdul)
    raise NotAnImage(f"no image data in the file (HDUs: {kinds})", path=path)


def _is_image(hdu) -> bool:
    return isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU))


def _load_data(image, path: Path) -> np.ndarray:
    """Read the pixels now (not lazily) so that truncated files fail here, not later."""
    _check_complete(image, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AstropyUserWarning)
        try:
            data = image.data
        except AstropyUserWarning as exc:
            raise InputError(f"damaged FITS data ({_first_line(exc)})", path=path) from None
        except (OSError, ValueError, EOFError, TypeError, IndexError, KeyError, RuntimeError) as exc:
            raise InputError(f"cannot read the image data ({_first_line(exc)})", path=path) from None
    if data is None or data.size == 0:
        raise InputError("image HDU holds no data", path=path)
    return data


def _check_complete(image, path: Path) -> None:
    """Compare the data size the header promises with the bytes the file holds."""
    info = image.fileinfo()
    if isinstance(image, fits.CompImageHDU) or info is None or info["file"].compression:
        return  # compressed data is checked by the decompressor itself
    head = image.header
    npix = int(np.prod([head.get(f"NAXIS{i}", 0) for i in range(1, head.get("NAXIS", 0) + 1)]))
    nbytes = abs(head["BITPIX"]) // 8 * head.get("GCOUNT", 1) * (head.get("PCOUNT", 0) + npix)
    expected_end = info["datLoc"] + nbytes  # the 2880-byte padding after the data is not required here
    actual = path.stat().st_size
    if actual < expected_end:
        raise InputError(
            f"truncated FITS file: the header promises {expected_end} bytes, the file has {actual}", path=path
        )


def _read_pixels(hdul: fits.HDUList, index: int, path: Path, *, zero_is_missing: bool | None):
    """Native float32 ``(band, y, x)`` pixels of one HDU and their mask of bad pixels."""
    image = hdul[index]
    raw = _load_data(image, path)
    data, mask = _as_float_cube(raw, image.header, path)
    mask |= _mask_extension(hdul, index, data.shape, path)
    if zero_is_missing is None:
        zero_is_missing = "GALGEN" not in image.header and "GALGEN" not in hdul[0].header and raw.dtype.kind == "f"
    if zero_is_missing:
        mask |= data == 0.0
    return data, mask


def _as_float_cube(raw: np.ndarray, header, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Native float32 ``(band, y, x)`` and its mask of non-finite / BLANK pixels."""
    if raw.ndim == 2:
        raw = raw[np.newaxis]
    elif raw.ndim == 3:
        pass
    elif raw.ndim > 3 and all(n == 1 for n in raw.shape[:-3]):
        raw = raw.reshape(raw.shape[-3:])  # degenerate leading axes (e.g. radio-style STOKES=1)
    else:
        raise InputError(f"expected a 2-D image or a 3-D (band, y, x) cube, got shape {raw.shape}", path=path)
    blank = None
    if raw.dtype.kind in "iu" and "BLANK" in header:
        blank = raw == header["BLANK"]
    data = raw.astype(np.float32)  # native byte order, always a fresh array
    mask = ~np.isfinite(data)
    if blank is not None:
        mask |= blank
    return data, mask


def _mask_extension(hdul: fits.HDUList, index: int, shape, path: Path) -> np.ndarray:
    """Bad pixels from a MASK/FLAGS/DQ extension (non-zero = bad); all False without one."""
    mask = np.zeros(shape, dtype=bool)
    for i, hdu in enumerate(hdul):
        if i == index or not _is_image(hdu) or hdu.name.upper() not in _MASK_EXTNAMES:
            continue
        flags = _load_data(hdu, path)
        try:
            mask |= np.broadcast_to(_bad_flags(flags, hdu.header), shape)
        except ValueError:
            raise InputError(
                f"{hdu.name} extension has shape {flags.shape}, the image {tuple(shape)}", path=path
            ) from None
    return mask


# Mask planes (LSST / HSC pipelines name each bit in MP_<NAME> cards) that mark a pixel unusable; the others
# (DETECTED, INTRP, CLIPPED, ...) describe good pixels.
_BAD_MASK_PLANES = ("BAD", "SAT", "CR", "EDGE", "NO_DATA", "SUSPECT", "UNMASKEDNAN", "SENSOR_EDGE")


def _bad_flags(flags: np.ndarray, header) -> np.ndarray:
    """Bad pixels of a mask extension: non-zero, or, where MP_ cards name its bits, one of `_BAD_MASK_PLANES` set."""
    bits = [int(header[f"MP_{name}"]) for name in _BAD_MASK_PLANES if isinstance(header.get(f"MP_{name}"), int)]
    if not any(key.startswith("MP_") for key in header):
        return flags != 0
    return (flags.astype(np.int64) & sum(1 << b for b in bits)) != 0


def _header_bands(header, nplanes: int) -> Bands | None:
    """Band names the header gives, or None when it names none."""
    if header.get("BANDS"):
        return Bands(split_band_text(header["BANDS"]))  # 'grz', 'g,r,z' and 'g r z' alike; 'F115W,F150W'
    for base in (0, 1):  # DECaLS writes BAND0.., other archives FILTER1..
        for prefix in ("BAND", "FILTER"):
            keys = [f"{prefix}{base + i}" for i in range(nplanes)]
            if all(k in header for k in keys):
                names = [_band_letter(header[k]) for k in keys]
                if all(names):
                    return Bands(names)
    if nplanes == 1:
        for key in ("FILTER", "BAND"):
            letter = _band_letter(header.get(key))
            if letter:
                return Bands(letter)
    return None


def _band_letter(value) -> str | None:
    """'r', 'DECam r DECam SDSS c0002', 'r.0000', 'z_DECam' -> the one-letter band name."""
    if not isinstance(value, str):
        return None
    for token in re.split(r"[\s._\-/]+", value.strip()):
        if len(token) == 1 and token.isalpha():
            return token
    return None


def _select_bands(data, mask, file_bands: Bands | None, wanted, path: Path):
    wanted = None if wanted is None else Bands(wanted)
    if file_bands is not None and len(file_bands) != data.shape[0]:
        raise InputError(
            f"header names bands {file_bands!r} but the image has {data.shape[0]} planes", path=path
        )
    if wanted is None:
        if file_bands is None:
            raise InputError(
                f"the header does not name the {data.shape[0]} bands (no BANDS, BANDn or FILTERn); "
                "give them (e.g. bands='grz')",
                path=path,
            )
        return data, mask, file_bands
    if file_bands is None:
        if len(wanted) != data.shape[0]:
            raise InputError(f"bands {wanted!r} given for an image with {data.shape[0]} planes", path=path)
        return data, mask, wanted
    missing = [b for b in wanted if b not in file_bands]
    if missing:
        raise InputError(f"bands {wanted!r} asked for but the file holds {file_bands!r}", path=path)
    if wanted == file_bands:
        return data, mask, wanted
    order = [file_bands.index(b) for b in wanted]
    return data[order], mask[order], wanted


def _celestial_wcs(header, path: Path) -> WCS | None:
    if "CTYPE1" not in header and "CTYPE2" not in header:
        return None
    # Only the WCS cards are handed to wcslib: parsing the whole header doubles the cost.
    cards = fits.Header([c for c in header.cards if _WCS_KEY.match(c.keyword) or c.keyword.startswith("NAXIS")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(cards, naxis=2)
        except Exception as exc:  # astropy raises several unrelated types for bad WCS cards
            raise InputError(f"invalid WCS ({_first_line(exc)})", path=path) from None
    return wcs if wcs.has_celestial else None


def _unit(header, *, default: str = DEFAULT_UNIT) -> str:
    unit = str(header.get("BUNIT", "") or "").strip()
    if not unit:
        return default  # Legacy Survey cutouts carry no BUNIT; their unit is the nanomaggy
    return DEFAULT_UNIT if unit.lower() in _NANOMAGGY_SPELLINGS else unit


def read_noise_map(path) -> tuple[str, np.ndarray] | None:
    """The first extension of a file that gives each pixel's noise (`NOISE_EXTNAMES`): its kind ("ivar",
    "weight" or "sigma") and float32 ``(band, y, x)`` values; None when the file has none."""
    path = Path(path)
    with _open_fits(path) as hdul:
        for hdu in hdul[1:]:
            kind = NOISE_EXTNAMES.get(hdu.name.upper())
            if kind and _is_image(hdu) and hdu.header.get("NAXIS", 0):
                return kind, _as_float_cube(_load_data(hdu, path), hdu.header, path)[0]
    return None


def wcs_cards(header: fits.Header) -> fits.Header:
    """The WCS cards among ``header``'s (those `_reference_cards` keeps for a non-celestial WCS)."""
    return fits.Header([c for c in header.cards if _WCS_KEY.match(c.keyword)])


def _reference_cards(header, *, keep_wcs: bool = False) -> fits.Header:
    """The input's descriptive cards: everything but layout, galgen's own keywords and a celestial WCS.

    With ``keep_wcs`` (the WCS is not celestial, e.g. plain pixel or detector coordinates, so
    `Cube.wcs` cannot hold it) the WCS cards are kept here, and an output on the same pixel grid
    carries them on.
    """
    kept = fits.Header()
    for card in header.cards:
        key = card.keyword
        if _STRUCTURAL.match(key) or (_WCS_KEY.match(key) and not keep_wcs) or key.startswith("GG") or key == "GALGEN":
            continue
        if key in ("COMMENT", "") and "FITS (Flexible Image Transport System)" in str(card.value):
            continue
        if key == "COMMENT" and "2001A&A...376..359H" in str(card.value):
            continue
        kept.append(card, bottom=True)
    return kept


def same_grid(a: Cube, b: Cube) -> bool:
    """Are two cubes on the same pixel grid: same shape, and corner pixels on the same sky (1e-3 px)?

    Two cubes without a WCS are on the same grid when their shapes agree; one WCS alone is not.
    """
    if a.shape[1:] != b.shape[1:]:
        return False
    if a.wcs is None or b.wcs is None:
        return a.wcs is None and b.wcs is None
    ny, nx = a.shape[1:]
    corners = np.array([[0, 0], [nx - 1, 0], [0, ny - 1], [nx - 1, ny - 1]], dtype=float)
    tolerance = 1e-3 * (a.pixel_scale or 1.0) / 3600.0  # degrees
    return bool(np.allclose(a.wcs.all_pix2world(corners, 0), b.wcs.all_pix2world(corners, 0), rtol=0, atol=tolerance))


def read_table(path, *, units: dict | None = None) -> dict[str, np.ndarray]:
    """Columns of the first binary table in a FITS file, as native-endian numpy arrays (strings as str).

    ``units``: a dict that receives each column's TUNIT ("" when it has none).
    """
    path = Path(path)
    with _open_fits(path) as hdul:
        tables = [h for h in hdul if isinstance(h, fits.BinTableHDU)]
        if not tables:
            raise InputError("no binary table in the file", path=path)
        table = tables[0]
        _check_complete(table, path)
        try:
            records = table.data
        except (OSError, ValueError, TypeError, EOFError) as exc:
            raise InputError(f"cannot read the table ({_first_line(exc)})", path=path) from None
        out = {}
        for name in table.columns.names:
            values = np.asarray(records[name])
            if values.dtype.kind == "S":
                values = _table_text(values, name, path)
            elif values.dtype.byteorder not in ("=", "|"):
                values = values.astype(values.dtype.newbyteorder("="))
            out[name] = values
            if units is not None:
                units[name] = str(table.columns[name].unit or "")
    return out


def _table_text(values: np.ndarray, name: str, path: Path) -> np.ndarray:
    """A FITS table's character column as str: ASCII as the standard has it, UTF-8 as writers use it; InputError
    naming the column for any other bytes."""
    try:
        return np.char.decode(values, "utf-8").astype(str)
    except UnicodeDecodeError:
        row = next(i for i, v in enumerate(values.ravel()) if not _is_utf8(v))
        raise InputError(f"column {name!r} row {row} holds bytes that are neither ASCII nor UTF-8 text "
                         f"({bytes(values.ravel()[row])!r})", path=path) from None


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
