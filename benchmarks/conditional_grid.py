"""A montage of a conditional model's mocks on a grid of requested r magnitude and half-light radius.

    python benchmarks/conditional_grid.py MODEL WORK OUT.png [--steps 5] [--seed 0]

Columns run from bright to faint in mag_r, rows from small to large r_e, each at the 5th .. 95th
percentile of the model's training labels (its stored label table; the other conditions take their
training medians). One `galgen sample --catalog` run makes the STEPS x STEPS mocks (WORK/mocks,
the catalogue WORK/grid.csv), and the montage shares one Lupton stretch (galgen.preview), labelled
with the grid's values along the edges.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from galgen.io.cube import read_cube  # noqa: E402
from galgen.model import load_model  # noqa: E402
from galgen.preview import Stretch, lupton_rgb, montage, save_png  # noqa: E402


def grid_catalog(model, steps: int, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Write the grid's catalogue (CSV, row-major: r_e outer, mag_r inner); return its mag_r and r_e values."""
    names = [c.name for c in model.conditions]
    if "mag_r" not in names or "r_e" not in names:
        raise SystemExit(f"{model.path}: the model is not conditioned on mag_r and r_e ({', '.join(names)})")
    table = model.label_table()
    if table is None:
        raise SystemExit(f"{model.path}: the model keeps no training label table")
    percentiles = np.linspace(5, 95, steps)
    mags = np.percentile(table[:, names.index("mag_r")], percentiles)
    sizes = np.percentile(table[:, names.index("r_e")], percentiles)
    medians = np.median(table, axis=0)
    lines = [",".join(["id", *names])]
    for i, size in enumerate(sizes):
        for j, mag in enumerate(mags):
            row = dict(zip(names, medians), mag_r=mag, r_e=size)
            lines.append(",".join([f"grid_{i}_{j}", *(repr(float(row[n])) for n in names)]))
    out.write_text("\n".join(lines) + "\n")
    return mags, sizes


def labelled(image: np.ndarray, mags: np.ndarray, sizes: np.ndarray, tile: int, gap: int) -> np.ndarray:
    """The montage with mag_r along the top and r_e down the left edge."""
    from PIL import Image, ImageDraw

    top, left = 14, 70
    canvas = np.zeros((image.shape[0] + top, image.shape[1] + left, 3), dtype=np.uint8)
    canvas[top:, left:] = image
    picture = Image.fromarray(canvas, mode="RGB")
    draw = ImageDraw.Draw(picture)
    for j, mag in enumerate(mags):
        draw.text((left + gap + j * (tile + gap) + 2, 1), f"r={mag:.2f}", fill=(255, 255, 255))
    for i, size in enumerate(sizes):
        draw.text((2, top + gap + i * (tile + gap) + tile // 2 - 5), f"r_e={size:.2f}\"", fill=(255, 255, 255))
    return np.asarray(picture)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model, device="cpu")
    mags, sizes = grid_catalog(model, args.steps, args.work / "grid.csv")
    mocks = args.work / "mocks"
    done = subprocess.run(["galgen", "sample", "--catalog", str(args.work / "grid.csv"), "-o", str(mocks),
                           "--model", str(args.model), "--seed", str(args.seed), "--json"],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"galgen sample failed: {done.stderr.strip()}")
    paths = sorted(mocks.glob("mock_*.fits"))  # index order = catalogue row order
    zoom, gap = 2, 2
    tiles = [lupton_rgb(read_cube(p).data, model.bands, stretch=Stretch()) for p in paths]
    image = montage(tiles, columns=args.steps, zoom=zoom, gap=gap)
    save_png(labelled(image, mags, sizes, tile=model.size * zoom, gap=gap), args.out)
    print(f"{args.out}: {len(paths)} mocks, mag_r {mags[0]:.2f}..{mags[-1]:.2f}, r_e {sizes[0]:.2f}..{sizes[-1]:.2f}")


if __name__ == "__main__":
    main()
