"""Broad-band filters by wavelength: the one place galgen orders bands from blue to red.

Previews send the reddest band to red and the bluest to blue; desify sends a picture's blue,
green and red channels to the bluest, middle and reddest band of the model.
"""

from __future__ import annotations

from galgen.errors import InputError

# Effective wavelengths (nm) of common broad bands: only their order matters.
BAND_WAVELENGTH_NM = {"u": 355, "g": 475, "r": 620, "i": 750, "z": 900, "y": 1000, "Y": 1020,
                      "J": 1250, "H": 1650, "K": 2200}


def band_order(bands: str, *, strict: bool = True) -> list[int]:
    """Plane indices of ``bands`` from the bluest to the reddest.

    An unknown band is an InputError, or with ``strict=False`` sorts before the known ones, in
    its own order (a preview of unnamed planes still renders).
    """
    unknown = [b for b in bands if b not in BAND_WAVELENGTH_NM]
    if unknown and strict:
        raise InputError(f"cannot order bands {bands!r} by wavelength (unknown: {''.join(unknown)})")
    return sorted(range(len(bands)), key=lambda i: BAND_WAVELENGTH_NM.get(bands[i], -1))
