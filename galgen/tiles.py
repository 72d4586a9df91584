"""Model-sized tiles over a larger image, for inpainting it piece by piece.

An image larger than the model's size (a 424 px DECaLS cutout for the 64 px model) is cut into
*cores* that partition it; each core is filled by one model-sized tile centred on it, so a
filled pixel always has at least ``margin`` pixels of context on every side inside the image.
Only cores holding masked pixels are run, in raster order, and each commits only its core:
a later tile sees the earlier fills as known pixels. This sequential scheme was chosen over
blending overlapping tiles because every filled pixel is then one draw from the model
conditioned on everything already known, so its noise texture and the per-pixel spread of the
draws stay right; averaging two independent draws in an overlap would halve the variance
there and leave a visible smooth band. The masked pixels a tile sees in its margins are filled
too but thrown away (their own core's tile fills them with more context).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """A model-sized window (top-left y0, x0) and the core of it whose fills are kept."""

    y0: int
    x0: int
    core_y: slice  # image rows committed by this tile
    core_x: slice  # image columns committed by this tile


def axis_cores(length: int, *, size: int, margin: int) -> list[tuple[int, int, int]]:
    """Cores partitioning one axis of ``length`` pixels: (core start, core end, tile start).

    n = ceil((length - 2 margin) / (size - 2 margin)) cores of near-equal length, the two end ones
    stretched to the image edge; each tile (``size`` long, inside the image) is centred on its core
    and so keeps ``margin`` pixels of context beyond it wherever the image goes on. ``length`` >= size.
    """
    margin = min(margin, (size - 1) // 2)
    core = size - 2 * margin
    count = max(1, math.ceil((length - 2 * margin) / core))
    bounds = [0] + [margin + round(k * (length - 2 * margin) / count) for k in range(1, count)] + [length]
    cores = []
    for start, end in zip(bounds, bounds[1:]):
        tile = start - (size - (end - start)) // 2
        cores.append((start, end, min(max(tile, 0), length - size)))
    return cores


def plan_tiles(masked: np.ndarray, *, size: int, margin: int) -> list[Tile]:
    """The tiles, in raster order, whose cores hold masked pixels of a (y, x) boolean map.

    A map smaller than ``size`` is padded (the padding counts as masked: it is filled and cut off).
    """
    height, width = max(masked.shape[0], size), max(masked.shape[1], size)
    padded = np.zeros((height, width), dtype=bool)
    padded[: masked.shape[0], : masked.shape[1]] = masked
    tiles = []
    for ys, ye, ty in axis_cores(height, size=size, margin=margin):
        for xs, xe, tx in axis_cores(width, size=size, margin=margin):
            if padded[ys:ye, xs:xe].any():
                tiles.append(Tile(ty, tx, slice(ys, ye), slice(xs, xe)))
    return tiles
