"""Model-sized tiles over a larger image, for inpainting it piece by piece.

An image larger than the model's size (a 424 px DECaLS cutout for the 64 px model) is filled by
model-sized tiles, each of which commits only its *core*: the square of ``size - 2 margin`` pixels
in its middle (stretched to the image's edge where the tile touches it), so a filled pixel always
has at least ``margin`` pixels of context on every side inside the image. The cores follow the mask: the next core is, of the squares that hold the first
masked pixel no core holds yet (in order along the mask's long axis) and its neighbours, the one
holding the most such pixels. A trail across the image then takes about one core per core-length of
trail whatever its angle (9 cores for a diagonal across 424 px, where a fixed grid of cores needs
17). Tiles run in an order that lets many run at once (every other tile along a trail first, then
the ones between), and each tile sees the earlier tiles' fills as known pixels.

This sequential scheme was chosen over blending overlapping tiles because every filled pixel is
then one draw from the model conditioned on everything already known, so its noise texture and
the per-pixel spread of the draws stay right; averaging two independent draws in an overlap would
halve the variance there and leave a visible smooth band. The masked pixels a tile sees outside
its core are filled too but thrown away (a later tile fills them with more context).

Tiles whose windows do not reach an earlier tile's core do not depend on it: `waves` groups them
so that one network batch runs a whole wave, with exactly the result of running them one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """A model-sized window (top-left y0, x0) and the core of it whose fills are kept."""

    y0: int
    x0: int
    core_y: slice  # image rows committed by this tile
    core_x: slice  # image columns committed by this tile

    def window(self, size: int) -> tuple[slice, slice]:
        return slice(self.y0, self.y0 + size), slice(self.x0, self.x0 + size)


def plan_tiles(masked: np.ndarray, *, size: int, margin: int) -> list[Tile]:
    """The tiles, in the order they run, whose cores hold every masked pixel of a (y, x) boolean map.

    A map smaller than ``size`` is padded (the padding counts as masked: it is filled and cut off).
    Each core holds masked pixels that no earlier core holds; cores may overlap earlier ones (what an
    earlier tile filled is known to the later one, so it is kept as it was).
    """
    height, width = max(masked.shape[0], size), max(masked.shape[1], size)
    left = np.ones((height, width), dtype=bool)
    left[: masked.shape[0], : masked.shape[1]] = masked
    margin = min(margin, (size - 1) // 2)
    core = size - 2 * margin
    order = _along_the_mask(left)
    tiles = []
    for y, x in order:
        if not left[y, x]:
            continue  # held by a core already
        cy, cx = _fullest_core(left, y, x, core, near=min(margin, (core - 1) // 2))
        ty, tx = _window_start(cy, margin, height, size), _window_start(cx, margin, width, size)
        tile = Tile(ty, tx, _core(ty, margin, size, height), _core(tx, margin, size, width))
        tiles.append(tile)
        left[tile.core_y, tile.core_x] = False
    return _in_colour_order(tiles, size)


def _in_colour_order(tiles: list[Tile], size: int) -> list[Tile]:
    """The tiles reordered so that few waves run them: greedy colouring of "one sees the other's core".

    Along a trail that gives every other tile first (none of them sees another), then the ones between,
    each seeing the fills on both its sides: two waves where the planning order needs one per tile.
    """
    colours: list[int] = []
    for j, tile in enumerate(tiles):
        taken = {colours[i] for i, other in enumerate(tiles[:j]) if _sees(tile, other, size) or _sees(other, tile, size)}
        colours.append(next(c for c in range(len(tiles)) if c not in taken))
    return [tiles[j] for j in sorted(range(len(tiles)), key=lambda j: (colours[j], j))]


def _sees(tile: Tile, other: Tile, size: int) -> bool:
    """Whether ``tile``'s window reaches ``other``'s core."""
    ys, xs = tile.window(size)
    return _overlap(ys, other.core_y) and _overlap(xs, other.core_x)


def _along_the_mask(masked: np.ndarray) -> np.ndarray:
    """The masked pixels (y, x) in order along the mask's long axis (its first principal component).

    Each core starts at the first pixel of this order that no core holds yet, so the cores walk along a
    trail from one end to the other, at any angle (in raster order a nearly horizontal trail was cut
    into pieces from its middle: 14 tiles where 9 do).
    """
    points = np.argwhere(masked)
    centred = points - points.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T @ centred)
    along = centred @ vectors[:, -1]
    return points[np.lexsort((points[:, 1], points[:, 0], along))]  # ties in raster order


def _fullest_core(left: np.ndarray, y: int, x: int, core: int, near: int) -> tuple[int, int]:
    """Top-left of the core square holding the most pixels of ``left`` among those that hold every pixel of
    ``left`` within ``near`` of (y, x).

    Holding the whole neighbourhood keeps a thick trail from leaving slivers where two cores meet
    (a 4 px diagonal needed 14 cores across 424 px without it, 9 with it).
    """
    height, width = left.shape
    y0, x0 = max(0, y - near), max(0, x - near)
    rows, cols = np.nonzero(left[y0:y + near + 1, x0:x + near + 1])
    top, bottom, first, last = y0 + int(rows.min()), y0 + int(rows.max()), x0 + int(cols.min()), x0 + int(cols.max())
    total = np.zeros((height + 1, width + 1), dtype=np.int64)
    total[1:, 1:] = left.cumsum(axis=0).cumsum(axis=1)  # summed-area table
    ys = np.arange(max(0, bottom - core + 1), max(0, min(top, height - core)) + 1)[:, None]
    xs = np.arange(max(0, last - core + 1), max(0, min(first, width - core)) + 1)[None, :]
    held = total[ys + core, xs + core] - total[ys, xs + core] - total[ys + core, xs] + total[ys, xs]
    best = np.unravel_index(int(np.argmax(held)), held.shape)
    return int(ys[best[0], 0]), int(xs[0, best[1]])


def _core(window: int, margin: int, size: int, length: int) -> slice:
    """What a window commits along one axis: all but ``margin`` at each end, but to the image's edge where it
    touches it (no context lies beyond). It holds the core square the window was placed around."""
    return slice(window + (margin if window > 0 else 0), window + size - (margin if window + size < length else 0))


def _window_start(core_start: int, margin: int, length: int, size: int) -> int:
    """The window around a core: ``margin`` before it, moved inside the image at the edges."""
    return min(max(core_start - margin, 0), length - size)


def waves(tiles: list[Tile], *, size: int) -> list[list[int]]:
    """The tiles (indices, in order) grouped into waves that can run together.

    Tile j must run after tile i < j when j's window reaches i's core (it sees i's fill); a tile goes
    in the first wave after every tile it must follow. Within a wave no tile sees another's core, so
    running a wave at once gives what running its tiles in order gives.
    """
    level: list[int] = []
    for j, tile in enumerate(tiles):
        after = [level[i] for i, earlier in enumerate(tiles[:j]) if _sees(tile, earlier, size)]
        level.append(1 + max(after, default=-1))
    return [[j for j, w in enumerate(level) if w == wave] for wave in range(max(level, default=-1) + 1)]


def _overlap(a: slice, b: slice) -> bool:
    return a.start < b.stop and b.start < a.stop
