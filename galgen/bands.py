"""Band names and broad-band filters by wavelength: the one place galgen parses, writes and orders bands.

A cube's bands are a `Bands`: a tuple of names, one per plane, as the survey writes them
(``("g", "r", "z")``, ``("F115W", "F150W", ...)``, ``("HSC-G", ...)``). Their text form, in FITS
``BANDS`` cards, dataset.json and weights metadata, is the letters run together when every name
is one letter (``grz``, as galgen always wrote it) and the names separated by commas otherwise
(``F115W,F150W``; a single long name ends in a comma, ``VIS,``, so that it does not read as letters).

Previews send the reddest band to red and the bluest to blue; desify sends a picture's blue,
green and red channels to the bluest, middle and reddest band of the model.
"""

from __future__ import annotations

import re

from galgen.errors import InputError

MAX_BANDS = 10  # JWST NIRCam's 7 wide filters, HSC's 5, Euclid's 4, Rubin's 6 all fit
# A band name: a letter or digit, then letters, digits, '-', '.' or '+' (HSC-G, F115W, VIS), at most 16 in all.
# Never '_' (the colour label a_b splits there), ',' or space (the separators of the text form).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,15}")
_SEPARATORS = re.compile(r"[\s,;/]+")

# Effective wavelengths (nm) of common broad bands: only their order matters. Looked up by the exact name,
# then in upper case (f115w finds F115W; the one-letter u g r i z y and Y J H K are case-sensitive).
BAND_WAVELENGTH_NM = {
    "u": 355, "g": 475, "r": 620, "i": 750, "z": 900, "y": 1000, "Y": 1020, "J": 1250, "H": 1650, "K": 2200,
    # JWST NIRCam wide and medium filters (pivot wavelengths)
    "F070W": 704, "F090W": 902, "F115W": 1154, "F150W": 1501, "F200W": 1989, "F277W": 2762, "F356W": 3568,
    "F410M": 4082, "F444W": 4408,
    # Subaru Hyper Suprime-Cam
    "HSC-G": 477, "HSC-R": 613, "HSC-R2": 620, "HSC-I": 768, "HSC-I2": 775, "HSC-Z": 890, "HSC-Y": 976,
    # Euclid: VIS, and NISP's Y, J, H under their mission names
    "VIS": 715, "NIR-Y": 1033, "NIR-J": 1259, "NIR-H": 1686,
}


class Bands(tuple):
    """Band names of a cube's planes, in order: a tuple of str, written and shown as its text form.

    ``Bands("grz") == ("g", "r", "z") == "grz"``; ``Bands("F115W,F150W")`` holds two names;
    ``str()`` gives the text form and so does ``repr()`` (quoted), so messages read as they always did;
    it hashes as its text form (equal to it). Building one checks nothing; `parse_bands` checks what a
    user typed.
    """

    def __new__(cls, value=()):
        if isinstance(value, Bands):
            return value
        names = split_band_text(value) if isinstance(value, str) else tuple(str(v) for v in value)
        return super().__new__(cls, names)

    def __str__(self) -> str:
        if all(len(name) == 1 for name in self):
            return "".join(self)
        return ",".join(self) + ("," if len(self) == 1 and self[0].isalpha() else "")

    def __repr__(self) -> str:
        return repr(str(self))

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            other = split_band_text(other)
        return tuple.__eq__(self, other) if isinstance(other, tuple) else NotImplemented

    def __ne__(self, other) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(str(self))

    def __add__(self, other) -> "Bands":
        return Bands(tuple(self) + tuple(Bands(other)))


def colour_name(a: str, b: str) -> str:
    """The label of the colour mag_a - mag_b: ``g_r``, ``F115W_F150W`` (band names never hold ``_``)."""
    return f"{a}_{b}"


def split_band_text(text: str) -> tuple[str, ...]:
    """``"grz"`` -> ("g", "r", "z"); ``"F115W,F150W"`` or ``"g r z"`` -> the names; ``"F115W"`` -> one name.

    Text without separators (comma, space, ';', '/') is one letter per band when it is all letters
    (the shorthand; '?', galgen's mark of a plane without a name, counts as a letter), else one name.
    """
    text = str(text).strip()
    if _SEPARATORS.search(text):
        return tuple(name for name in _SEPARATORS.split(text) if name)
    if text.isascii() and all(c.isalpha() or c == "?" for c in text):
        return tuple(text)
    return (text,) if text else ()


def parse_bands(text) -> Bands:
    """What a user typed (``"grz"``, ``"F115W,F150W,..."``, a list) -> `Bands`, checked.

    InputError (one line) unless there are 1 to `MAX_BANDS` distinct names, each a letter or digit followed
    by letters, digits, '-', '.' or '+' (at most 16 characters), whose label names (mag_<band>, the colours
    <a>_<b> of adjacent bands) do not collide with each other or with r_e and q, ignoring case.
    """
    bands = Bands(text)
    shown = text if isinstance(text, str) else str(bands)
    if not 1 <= len(bands) <= MAX_BANDS:
        raise InputError(f"bands {shown!r}: give 1 to {MAX_BANDS} band names (e.g. grz or F115W,F150W), "
                         f"not {len(bands)}")
    bad = [name for name in bands if not _NAME.fullmatch(name)]
    if bad:
        raise InputError(f"bands {shown!r}: {bad[0]!r} is not a band name (a letter or digit, then letters, digits, "
                         "'-', '.' or '+'; at most 16 characters)")
    if len({name.lower() for name in bands}) != len(bands):
        raise InputError(f"bands {shown!r}: a band is named twice (names ignore case, as label names do)")
    labels = [f"mag_{b}".lower() for b in bands] + ["r_e", "q"]
    labels += [colour_name(a, b).lower() for a, b in zip(bands, bands[1:])]
    if len(set(labels)) != len(labels):
        clash = next(name for name in labels if labels.count(name) > 1)
        raise InputError(f"bands {shown!r}: the label name {clash!r} would mean two things (mag_<band>, colours "
                         "<a>_<b>, r_e, q)")
    return bands


def wavelength(band: str) -> float | None:
    """The band's effective wavelength in nm from `BAND_WAVELENGTH_NM`, None when galgen does not know it."""
    found = BAND_WAVELENGTH_NM.get(band)
    if found is None and len(band) > 1:
        found = BAND_WAVELENGTH_NM.get(band.upper())
    return found


def band_order(bands, *, strict: bool = True) -> list[int]:
    """Plane indices of ``bands`` from the bluest to the reddest.

    An unknown band is an InputError, or with ``strict=False`` sorts before the known ones, in
    the order given (a preview of bands galgen has no wavelength for keeps their order: the first
    given is the bluest).
    """
    bands = Bands(bands)
    unknown = [b for b in bands if wavelength(b) is None]
    if unknown and strict:
        raise InputError(f"cannot order bands {bands!r} by wavelength (unknown: {Bands(unknown)})")
    return sorted(range(len(bands)), key=lambda i: wavelength(bands[i]) or -1)
