"""Mask files: which pixels of an image `galgen inpaint` fills."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galgen.errors import InputError
from galgen.bands import Bands
from galgen.io.cube import Cube, describe, read_cube, same_grid


def read_mask(path, *, image: Cube) -> np.ndarray:
    """A mask file as a boolean (band, y, x) array over the image's bands: non-zero or NaN = bad.

    A 2-D mask (one plane) applies to every band; a 3-D mask needs one plane per band, matched
    by name when its header names them. Its shape, and its WCS when both files have one, must
    be the image's.
    """
    path = Path(path)
    info = describe(path)
    if info.get("kind") != "image":
        raise InputError("the mask file holds no image", path=path)
    planes, named = info["shape"][0], "?" not in info["bands"]
    if planes == 1:
        bands = None if named else "m"
    elif named:
        missing = [b for b in image.bands if b not in Bands(info["bands"])]
        if missing:
            raise InputError(f"mask names bands {info['bands']!r}, the image has {image.bands!r}", path=path)
        bands = image.bands
    elif planes == len(image.bands):
        bands = image.bands
    else:
        raise InputError(f"mask has {planes} planes, the image {len(image.bands)} bands ({image.bands})", path=path)
    cube = read_cube(path, bands=bands, zero_is_missing=False)
    if cube.shape[1:] != image.shape[1:]:
        raise InputError(f"mask is {cube.shape[1]} x {cube.shape[2]} pixels, the image "
                         f"{image.shape[1]} x {image.shape[2]}", path=path)
    if cube.wcs is not None and image.wcs is not None and not same_grid(cube, image):
        raise InputError("mask and image have different WCS (not the same pixel grid)", path=path)
    bad = cube.data != 0
    if cube.mask is not None:
        bad |= cube.mask  # NaN in a mask file counts as bad
    return np.broadcast_to(bad, image.shape).copy()
