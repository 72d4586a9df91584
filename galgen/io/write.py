"""FITS out: the only module that writes FITS files (galgen.io.cube reads them).

Every write is atomic (a temporary name, then a rename) and passes ``fitsverify`` with no
warnings: CHECKSUM/DATASUM on every HDU, a band axis 3 described in the WCS, long strings
through the CONTINUE convention (announced by LONGSTRN).

Each image HDU's header is built once, as `galgen.io.cards.Cards`, and handed to one of two
writers that put the same cards in the same order: the direct one (`write_images_direct`:
the card images, cached across a run's files, and the big-endian pixels written as they are,
CHECKSUM/DATASUM summed with numpy), used wherever it applies, and astropy's, for gzip output,
tables and pixel types FITS stores with an offset (BZERO).
"""

from __future__ import annotations

import warnings
from datetime import datetime
from pathlib import Path
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from galgen import __version__
from galgen.errors import InputError
from galgen.io.atomic import atomic_output
from galgen.io.cards import COMMENTARY, Cards, card_image, copied
from galgen.io.cube import DEFAULT_UNIT, Cube
from galgen.io.provenance import add_history, provenance_to_header

WRITE_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz")  # what galgen writes (uncompressed or gzip)
BACKENDS = ("auto", "direct", "astropy")  # auto: direct wherever it applies, else astropy
BLOCK = 2880  # FITS blocks: headers padded with spaces, data with zeros
_BITPIX = {"f4": -32, "f8": -64, "u1": 8, "i2": 16, "i4": 32, "i8": 64}  # stored as they are (no BZERO)
_EXTEND = ("EXTEND", True, "FITS dataset may contain extensions")
_LONGSTRN = ("LONGSTRN", "OGIP 1.0", "long strings continue on CONTINUE cards")


class Image(NamedTuple):
    """One image HDU to write: its pixels and its cards (structure cards aside: each writer adds its own)."""

    data: np.ndarray
    cards: Cards


def write_cube(cube: Cube, path, *, provenance: dict | None = None, history: Sequence[str] = (),
               extra_hdus: Sequence[tuple[str, np.ndarray]] = (), backend: str = "auto") -> Path:
    """Write ``cube`` as a FITS cube, atomically; returns the path.

    Primary HDU: float32 ``(band, y, x)``, the celestial WCS on axes 1-2 and a band axis 3,
    BUNIT, BANDS and BAND0.., the input's descriptive cards, galgen provenance keywords and
    HISTORY. Extra image HDUs follow (bool arrays as uint8); the cube's mask is written as a
    MASK extension when it flags any pixel and none is given. CHECKSUM/DATASUM on every HDU.
    ``backend``: one of BACKENDS; both write the same cards (see the module's notes).
    """
    path = Path(path)
    images = [Image(np.ascontiguousarray(cube.data, dtype=np.float32),
                    _cube_cards(cube, provenance=provenance, history=history))]
    names = {name.upper() for name, _ in extra_hdus}
    extras = list(extra_hdus)
    if cube.mask is not None and cube.mask.any() and "MASK" not in names:
        extras.append(("MASK", cube.mask))
    for name, array in extras:
        images.append(_extra_image(name, array, cube))
    return write_images(images, path, backend=backend)


def write_images(images: Sequence[Image], path, *, backend: str = "auto") -> Path:
    """Write image HDUs (the first is the primary) atomically with CHECKSUM/DATASUM; returns the path.

    LONGSTRN is added to the cards of an HDU that holds a long string. ``backend`` "auto" writes
    directly (`write_images_direct`) where `direct_applies`, else through astropy.
    """
    path = _output_name(path)
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    for i, image in enumerate(images):
        _declare_long_strings(image.cards, primary=i == 0)
    direct = direct_applies(images, path)
    if backend == "direct" and not direct:
        raise ValueError(f"{path.name}: the direct writer cannot write these HDUs (gzip, or a pixel type it "
                         "does not store); use the astropy backend")
    with atomic_output(path) as tmp:
        if direct and backend != "astropy":
            write_images_direct(images, tmp)
        else:
            _write_astropy(_astropy_hdus(images), tmp)
    return path


def write_table(columns: Mapping[str, np.ndarray], path, *, units: Mapping[str, str] | None = None,
                provenance: dict | None = None) -> Path:
    """Write columns as a FITS binary table (extension 'TABLE'), atomically; returns the path.

    Numbers, booleans and strings are supported; a 2-D column is stored as a vector per row.
    Provenance goes in the primary header. Written through astropy.
    """
    units = dict(units or {})
    unknown = set(units) - set(columns)
    if unknown:
        raise ValueError(f"units given for unknown columns: {sorted(unknown)}")
    lengths = {len(np.asarray(v)) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"columns have different lengths: {sorted(lengths)}")
    cols = [_fits_column(name, np.asarray(values), units.get(name)) for name, values in columns.items()]
    cards = _provenance_cards(provenance, ())
    _declare_long_strings(cards, primary=True)
    table = fits.BinTableHDU.from_columns(cols, name="TABLE")
    if _long_strings((card.keyword, card.value) for card in table.header.cards):
        table.header.set(*_LONGSTRN)
    path = _output_name(path)
    with atomic_output(path) as tmp:
        _write_astropy(fits.HDUList([fits.PrimaryHDU(header=cards.to_header()), table]), tmp)
    return path


def _output_name(path) -> Path:
    path = Path(path)
    if not path.name.lower().endswith(WRITE_SUFFIXES):
        raise InputError("galgen writes .fits or .fits.gz files (tile compression: run fpack on them)", path=path)
    return path


# ----------------------------------------------------------------------------- the cards


def _cube_cards(cube: Cube, *, provenance: dict | None, history: Sequence[str]) -> Cards:
    cards = Cards(_wcs_cards(cube.wcs))
    cards.set("BUNIT", cube.unit, _unit_comment(cube.unit))
    cards.set("BANDS", str(cube.bands), "band of each plane along axis 3, in order")
    for i, band in enumerate(cube.bands):
        cards.set(f"BAND{i}", band, f"band of plane {i} (axis 3 pixel {i + 1})")
    for card in cube.header.cards:
        if card.keyword not in cards or card.keyword in ("HISTORY", "COMMENT"):
            cards.append(*copied(card), bottom=True)
    cards.extend(_provenance_cards(provenance, history))
    if "GALGEN" not in cards:  # marks galgen's own files even without provenance (see read_cube)
        cards.set("GALGEN", __version__, "galgen version that wrote this file", before="BUNIT")
    return cards


_wcs_cache: dict[str, tuple] = {}  # wcslib's header text -> the cards `_wcs_cards` made of it


def _wcs_cards(wcs: WCS | None) -> tuple:
    """Celestial WCS on axes 1-2 plus a linear band axis 3 (pixel k+1 = plane k).

    Made once per WCS: the cards depend only on wcslib's header text (without SIP), which
    costs 10 us where astropy's to_header costs 60 and reading its cards more.
    """
    if wcs is None:
        return ()
    from astropy.wcs import WCSHDO_P14, WCSHDO_safe

    key = wcs.wcs.to_header(WCSHDO_P14 | WCSHDO_safe) if wcs.sip is None else None  # what to_header reads
    cards = _wcs_cache.get(key) if key is not None else None
    if cards is None:
        cards = _celestial_cards(wcs)
        if key is not None:
            if len(_wcs_cache) >= 64:
                _wcs_cache.clear()
            _wcs_cache[key] = cards
    return cards


def _celestial_cards(wcs: WCS) -> tuple:
    cards = [("WCSAXES", 3, "celestial axes 1-2, band axis 3")]
    for card in wcs.to_header(relax=False).cards:
        if card.keyword in ("WCSAXES", "DATE-OBS", "MJD-OBS") or (card.keyword == "MJDREF" and card.value == 0):
            continue  # time cards say nothing about a celestial grid
        cards.append(copied(card))
    cards += [("CTYPE3", "BAND", "axis 3 is the band (filter): see BANDS"),
              ("CRPIX3", 1.0, "pixel 1 of axis 3 ..."),
              ("CRVAL3", 0.0, "... is plane 0, i.e. the first letter of BANDS"),
              ("CDELT3", 1.0, "one plane per band"),
              ("CNAME3", "band", "pixel k+1 holds band BANDS[k]")]
    return tuple(cards)


def _unit_comment(unit: str) -> str:
    if unit == DEFAULT_UNIT:
        return "mag = 22.5 - 2.5 log10(flux)"
    return "flux unit"


def _provenance_cards(provenance: dict | None, history: Sequence[str]) -> Cards:
    cards = Cards()
    if provenance is not None:
        provenance_to_header(provenance, cards)
    for line in history:
        add_history(cards, line)
    return cards


def _extra_image(name: str, array: np.ndarray, cube: Cube) -> Image:
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype.kind in "iu" and array.dtype.byteorder not in ("=", "|"):
        array = array.astype(array.dtype.newbyteorder("="))
    cards = Cards([("EXTNAME", name.upper(), "extension name")])
    if array.shape == cube.data.shape:
        cards.extend(_wcs_cards(cube.wcs))
        cards.set("BANDS", str(cube.bands), "band of each plane along axis 3, in order")
    if name.upper() == "MASK":
        cards.add_comment("non-zero = bad or missing pixel of the primary image")
    elif array.dtype.kind == "f":
        cards.set("BUNIT", cube.unit, "same unit as the primary image")
    return Image(np.ascontiguousarray(array), cards)


def _long_strings(cards: Iterable[tuple]) -> bool:
    return any(keyword not in COMMENTARY and isinstance(value, str) and len(value) > 68
               for keyword, value, *_ in cards)


def _declare_long_strings(cards: Cards, *, primary: bool) -> None:
    """Announce the CONTINUE convention (LONGSTRN) when a string value needs it, as fitsverify asks.

    In a primary HDU it follows EXTEND (the first card after the structure), elsewhere the last keyword.
    """
    if "LONGSTRN" in cards or not _long_strings(cards):
        return
    if primary:
        cards.insert(0, *_LONGSTRN)
    else:
        cards.set(*_LONGSTRN)


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


# ----------------------------------------------------------------------------- astropy's writer


def _astropy_hdus(images: Sequence[Image]) -> fits.HDUList:
    hdus = []
    for i, image in enumerate(images):
        header = image.cards.to_header()
        if i == 0:
            hdu = fits.PrimaryHDU(data=image.data, header=header)
            hdu.header.set(*_EXTEND, after=f"NAXIS{image.data.ndim}")
        else:
            hdu = fits.ImageHDU(data=image.data, header=header)
        hdus.append(hdu)
    return fits.HDUList(hdus)


def _write_astropy(hdul: fits.HDUList, tmp: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long strings -> CONTINUE
        hdul.writeto(tmp, checksum=True, output_verify="exception")


# ----------------------------------------------------------------------------- the direct writer


def direct_applies(images: Sequence[Image], path) -> bool:
    """Whether `write_images_direct` can write ``images`` to ``path``: uncompressed, pixels FITS
    stores as they are (float32/64, uint8, int16/32/64), none empty, no CHECKSUM/DATASUM card given."""
    if Path(path).name.lower().endswith(".gz"):
        return False
    return all(_bitpix(image.data) is not None and image.data.ndim > 0 and image.data.size > 0
               and "CHECKSUM" not in image.cards and "DATASUM" not in image.cards for image in images)


def write_images_direct(images: Sequence[Image], path) -> None:
    """Write image HDUs to ``path`` (not atomically: `write_images` does that) without astropy's writer.

    Each header is the structure cards astropy writes, then ``cards`` in their order, with
    CHECKSUM and DATASUM where astropy adds them (after the last keyword card), their comments
    stamped with the local time as astropy's are. The same cards as astropy's writer, byte for byte.
    """
    when = datetime.now().isoformat()[:19]
    with open(path, "wb") as out:
        for i, image in enumerate(images):
            header, data = _hdu_bytes(image, primary=i == 0, when=when)
            out.write(header)
            out.write(data)


def _bitpix(data: np.ndarray) -> int | None:
    return _BITPIX.get(f"{data.dtype.kind}{data.dtype.itemsize}")


def _structure_cards(data: np.ndarray, *, primary: bool) -> list[tuple]:
    """SIMPLE or XTENSION, BITPIX, NAXISn, then EXTEND or PCOUNT/GCOUNT, with astropy's comments."""
    cards = [("SIMPLE", True, "conforms to FITS standard") if primary else ("XTENSION", "IMAGE", "Image extension"),
             ("BITPIX", _bitpix(data), "array data type"),
             ("NAXIS", data.ndim, "number of array dimensions")]
    cards += [(f"NAXIS{i + 1}", n, "") for i, n in enumerate(reversed(data.shape))]
    cards += [_EXTEND] if primary else [("PCOUNT", 0, "number of parameters"), ("GCOUNT", 1, "number of groups")]
    return cards


def _hdu_bytes(image: Image, *, primary: bool, when: str) -> tuple[bytes, bytearray]:
    """One HDU's header and data blocks; CHECKSUM summed with its value all zeros, then filled in."""
    data = _data_block(image.data)
    datasum = _ones_sum(data)
    structure = [card_image(*card) for card in _structure_cards(image.data, primary=primary)]
    lines = structure + image.cards.images()
    at = len(structure) + image.cards.keyword_end()
    lines[at:at] = [card_image("CHECKSUM", "0" * 16, f"HDU checksum updated {when}"),
                    card_image("DATASUM", str(datasum), f"data unit checksum updated {when}")]
    text = "".join(lines) + "END".ljust(80)
    header = bytearray((text + " " * (-len(text) % BLOCK)).encode("ascii"))
    checksum = _encode_checksum(~_ones_add(_ones_sum(header), datasum) & 0xFFFFFFFF)
    start = sum(len(line) for line in lines[:at]) + len("CHECKSUM= '")
    header[start : start + 16] = checksum.encode("ascii")
    return bytes(header), data


def _data_block(data: np.ndarray) -> bytearray:
    """The pixels big-endian, padded with zeros to whole FITS blocks."""
    block = bytearray(data.nbytes + (-data.nbytes % BLOCK))
    np.frombuffer(block, dtype=data.dtype.newbyteorder(">"), count=data.size).reshape(data.shape)[...] = data
    return block


def _ones_sum(buffer) -> int:
    """32-bit ones' complement sum of a buffer of big-endian words (a multiple of 4 bytes), as FITS sums."""
    words = np.frombuffer(buffer, dtype=">u4")
    total = 0
    for start in range(0, len(words), 1 << 30):  # a uint64 sum of 2**30 words cannot overflow
        total = _ones_add(total, int(words[start : start + (1 << 30)].sum(dtype=np.uint64)))
    return total


def _ones_add(a: int, b: int) -> int:
    total = a + b
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


_EXCLUDED = frozenset(b":;<=>?@[\\]^_`")  # punctuation the ASCII encoding of a checksum avoids


def _encode_checksum(value: int) -> str:
    """The 16-character ASCII encoding of a 32-bit checksum (FITS standard, appendix J), as astropy's."""
    encoded = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        quotient, remainder = byte // 4 + ord("0"), byte % 4
        chars = [quotient + remainder, quotient, quotient, quotient]
        for j in (0, 2):  # move each pair off the punctuation, keeping its sum
            while chars[j] in _EXCLUDED or chars[j + 1] in _EXCLUDED:
                chars[j] += 1
                chars[j + 1] -= 1
        for j in range(4):
            encoded[4 * j + i] = chars[j]
    return bytes(encoded[15:] + encoded[:15]).decode("ascii")
