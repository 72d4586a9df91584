"""Colour previews: Lupton RGB composites of flux cubes, tiled into PNG montages.

A cube's reddest band drives red, the middle one green and the bluest blue (z r g -> R G B for
the Legacy Survey), each first multiplied by a relative band weight, then passed through the
asinh stretch of Lupton et al. 2004 (astropy.visualization.make_lupton_rgb): black at flux 0,
linear scale ``stretch`` and softening ``Q``. The defaults are fixed numbers, not per-image
autoscaling, so montages of two populations compare pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from galgen.bands import band_order

@dataclass(frozen=True)
class Stretch:
    """How flux becomes colour; stated on every montage's caption line (docs/sampling.md)."""

    stretch: float = 0.5  # flux (nanomaggy, after the band weight) spanning the linear part of the asinh
    q: float = 8.0  # asinh softening (Lupton et al. 2004's Q)
    # relative band weights, the Legacy Survey viewer's (g 6.0, r 3.4, z 2.2) scaled to r = 1
    weights: dict = field(default_factory=lambda: {"g": 1.76, "r": 1.0, "z": 0.65})

    def describe(self) -> str:
        weights = ", ".join(f"{b} x{w:g}" for b, w in self.weights.items()) or "equal"
        return f"Lupton asinh RGB, stretch {self.stretch:g}, Q {self.q:g}, minimum 0; weights {weights}"


def lupton_rgb(flux: np.ndarray, bands: str, *, stretch: Stretch = Stretch()) -> np.ndarray:
    """One flux cube (C, H, W) -> uint8 RGB image (H, W, 3).

    Bands are sorted by wavelength: reddest -> R, middle -> G, bluest -> B (z r g for grz).
    One band gives grey; two give R and B with their mean as G. NaN pixels are shown as 0.
    """
    from astropy.visualization import make_lupton_rgb

    flux = np.nan_to_num(np.asarray(flux, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if flux.ndim != 3 or flux.shape[0] != len(bands):
        raise ValueError(f"flux must be (band, y, x) with one plane per band of {bands!r}, got {flux.shape}")
    order = band_order(bands, strict=False)
    planes = [flux[i] * float(stretch.weights.get(bands[i], 1.0)) for i in order]
    if len(planes) == 1:
        red = green = blue = planes[0]
    elif len(planes) == 2:
        blue, red = planes
        green = 0.5 * (red + blue)
    else:
        blue, green, red = planes[0], planes[len(planes) // 2], planes[-1]
    with np.errstate(invalid="ignore", divide="ignore"):  # astropy divides 0 by 0 where all bands are 0
        return make_lupton_rgb(red, green, blue, stretch=stretch.stretch, Q=stretch.q)


def montage(tiles: Sequence[np.ndarray], *, columns: int | None = None, gap: int = 2, zoom: int = 1) -> np.ndarray:
    """Tile equal-sized RGB images (H, W, 3) row by row on a black canvas, ``gap`` px around each.

    The canvas is ``columns * (W * zoom + gap) + gap`` wide; ``columns`` defaults to the smallest
    count that keeps the montage about square. ``zoom`` repeats pixels (no smoothing).
    """
    if not tiles:
        raise ValueError("a montage needs at least one image")
    height, width = tiles[0].shape[:2]
    columns = columns or int(np.ceil(np.sqrt(len(tiles))))
    rows = int(np.ceil(len(tiles) / columns))
    h, w = height * zoom, width * zoom
    canvas = np.zeros((rows * (h + gap) + gap, columns * (w + gap) + gap, 3), dtype=np.uint8)
    for n, tile in enumerate(tiles):
        if tile.shape[:2] != (height, width):
            raise ValueError(f"montage tiles differ in size: {tile.shape[:2]} and {(height, width)}")
        top, left = gap + (n // columns) * (h + gap), gap + (n % columns) * (w + gap)
        canvas[top : top + h, left : left + w] = np.repeat(np.repeat(tile, zoom, axis=0), zoom, axis=1)
    return canvas


def figure_metadata(suffix: str) -> dict:
    """The metadata that marks a figure as galgen's (`is_galgen_figure`), for matplotlib's savefig."""
    from galgen import __version__

    key = {"png": "Software", "pdf": "Creator", "svg": "Creator", "ps": "Creator", "eps": "Creator"}.get(suffix)
    return {} if key is None else {key: f"galgen {__version__}"}


def is_galgen_figure(path) -> bool:
    """Whether a figure file carries galgen's mark (PNG Software, PDF/SVG/PS Creator) in its first or last 64 kB.

    Figures are replaced only when galgen made them; formats without such metadata (JPEG, TIFF,
    WebP) are never replaced.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
            handle.seek(max(0, Path(path).stat().st_size - (1 << 16)))
            tail = handle.read()
    except OSError:
        return False
    parts = (head.lower(), tail.lower())
    return any(b"galgen " in part and (b"software" in part or b"creator" in part) for part in parts)


def save_png(image: np.ndarray, path) -> Path:
    """Write an RGB uint8 array as PNG, atomically (temporary name, then rename), marked as galgen's."""
    from PIL import Image, PngImagePlugin

    from galgen.io.atomic import atomic_output

    path = Path(path)
    info = PngImagePlugin.PngInfo()
    for key, value in figure_metadata("png").items():
        info.add_text(key, value)
    with atomic_output(path) as tmp:
        Image.fromarray(image, mode="RGB").save(tmp, format="PNG", pnginfo=info)
    return path


def preview_files(paths: Sequence, out_png, *, columns: int | None = None, zoom: int = 2,
                  stretch: Stretch = Stretch()) -> Path:
    """Montage PNG of the cubes in ``paths`` (FITS files, read through galgen.io.cube)."""
    from galgen.io.cube import read_cube

    cubes = [read_cube(p) for p in paths]
    tiles = [lupton_rgb(cube.data, cube.bands, stretch=stretch) for cube in cubes]
    return save_png(montage(tiles, columns=columns, zoom=zoom), out_png)


def side_by_side(left: Sequence[np.ndarray], right: Sequence[np.ndarray], out_png, *, bands: str = "grz",
                 columns: int | None = None, zoom: int = 2, stretch: Stretch = Stretch(),
                 labels: tuple[str, str] = ("galgen sample", "galgen simulate")) -> Path:
    """Two montages with the same stretch next to each other (e.g. N mocks | N simulate draws).

    ``left`` and ``right`` are flux cubes (C, H, W) of the same bands; each panel gets its label
    and the stretch is written along the bottom, so the figure states how it was made.
    """
    from PIL import Image, ImageDraw

    panels = [montage([lupton_rgb(f, bands, stretch=stretch) for f in group], columns=columns, zoom=zoom)
              for group in (left, right)]
    height = max(p.shape[0] for p in panels)
    label_h, gap = 14, 8
    canvas = np.zeros((height + 2 * label_h, sum(p.shape[1] for p in panels) + gap, 3), dtype=np.uint8)
    left_edge = 0
    for panel in panels:
        canvas[label_h : label_h + panel.shape[0], left_edge : left_edge + panel.shape[1]] = panel
        left_edge += panel.shape[1] + gap
    image = Image.fromarray(canvas, mode="RGB")
    draw = ImageDraw.Draw(image)
    draw.text((2, 1), labels[0], fill=(255, 255, 255))
    draw.text((panels[0].shape[1] + gap + 2, 1), labels[1], fill=(255, 255, 255))
    draw.text((2, label_h + height + 1), stretch.describe(), fill=(200, 200, 200))
    return save_png(np.asarray(image), out_png)


def plot_histograms(result, path, *, labels=("real", "mock")) -> None:
    """The paper's figure 4 for a `metrics.population.SGDResult`: per property, histograms of both
    populations with W1 and Cohen's d.

    Written with matplotlib's Agg backend to ``path`` (format from the suffix), atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [p.name for p in result.properties]
    columns = 3
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.2 * rows), squeeze=False)
    for ax, row in zip(axes.ravel(), result.properties):
        real, mock = (np.asarray(v)[np.isfinite(v)] for v in (result.real_values[row.name], result.mock_values[row.name]))
        both = np.concatenate([real, mock])
        if both.size:
            low, high = np.percentile(both, [0.5, 99.5])
            bins = np.linspace(low, high if high > low else low + 1.0, 40)
            ax.hist(real, bins=bins, density=True, histtype="step", lw=1.5, label=labels[0])
            ax.hist(mock, bins=bins, density=True, histtype="step", lw=1.5, ls="--", label=labels[1])
        ax.set_xlabel(f"{row.name} [{row.unit}]")
        ax.set_title(f"W1 {row.w1:.3g}   d {row.cohens_d:.2f}", fontsize=10)
        ax.legend(fontsize=8)
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"SGD {result.sgd:.3g} ({result.mode} mode)")
    fig.tight_layout()
    from galgen.io.atomic import atomic_output

    suffix = Path(path).suffix.lstrip(".").lower() or "png"
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format=suffix, metadata=figure_metadata(suffix) or None)
    finally:
        plt.close(fig)
