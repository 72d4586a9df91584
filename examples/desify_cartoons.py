"""Draw three cartoon galaxies with PIL and desify each at strengths 0.3, 0.6 and 0.9.

    python examples/desify_cartoons.py OUT_DIR [--model WEIGHTS] [--seed 1]

Writes OUT_DIR/{spiral,ellipse,ring}.png (the cartoons), the desified FITS cubes under
OUT_DIR/strength_<s>/ and OUT_DIR/cartoons_desified.png: one row per cartoon, the input (as the
model sees it) then the three strengths, all with the same fixed Lupton stretch as `--preview`.
At low strength the cartoon survives with survey noise on top; at 0.9 little of it is left
and the output should look like a `galgen simulate` galaxy.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from galgen.io.cube import read_cube
from galgen.model import load_model
from galgen.preview import lupton_rgb, montage, save_png
from galgen.flows.desify import DesifyConfig, run as desify
from galgen.io.regrid import prepare_input

STRENGTHS = (0.3, 0.6, 0.9)
SIZE = 256  # cartoon canvas in pixels; desify resizes it to the model's grid


def spiral(path: Path) -> Path:
    """Two logarithmic arms in blue around a yellow bulge."""
    image = Image.new("RGB", (SIZE, SIZE))
    pen = ImageDraw.Draw(image)
    for arm in (0.0, math.pi):
        radii = [(t, 6 * math.exp(0.28 * t)) for t in np.linspace(0, 3.2 * math.pi, 200)]
        pen.line([(128 + r * math.cos(t + arm), 128 + r * math.sin(t + arm)) for t, r in radii if r < 110],
                 fill=(120, 170, 255), width=14)
    pen.ellipse((108, 108, 148, 148), fill=(255, 220, 140))
    image.filter(ImageFilter.GaussianBlur(3)).save(path)
    return path


def ellipse(path: Path) -> Path:
    """A red elliptical with a brighter core, tilted by 30 degrees."""
    image = Image.new("RGB", (SIZE, SIZE))
    pen = ImageDraw.Draw(image)
    for scale, colour in ((1.0, (140, 60, 20)), (0.7, (200, 110, 50)), (0.4, (255, 170, 90)), (0.15, (255, 230, 180))):
        pen.ellipse((128 - 90 * scale, 128 - 50 * scale, 128 + 90 * scale, 128 + 50 * scale), fill=colour)
    image.rotate(30).filter(ImageFilter.GaussianBlur(4)).save(path)
    return path


def ring(path: Path) -> Path:
    """A blue ring around a small yellow nucleus."""
    image = Image.new("RGB", (SIZE, SIZE))
    pen = ImageDraw.Draw(image)
    pen.ellipse((38, 38, 218, 218), outline=(90, 140, 255), width=18)
    pen.ellipse((113, 113, 143, 143), fill=(255, 200, 120))
    image.filter(ImageFilter.GaussianBlur(3)).save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", type=Path, help="weights file [default: the bundled model]")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    model = load_model(args.model)
    cartoons = [draw(args.out / f"{draw.__name__}.png") for draw in (spiral, ellipse, ring)]
    rows = []
    for cartoon in cartoons:
        seen = prepare_input(cartoon, bands=model.bands, size=model.size, pixel_scale=None)
        rows.append([model.to_flux(seen.pixels[None])[0]])  # the input as the model sees it, in flux
    for strength in STRENGTHS:
        result = desify(cartoons, args.out / f"strength_{strength}", model=model,
                        config=DesifyConfig(strength=strength, seed=args.seed), overwrite=True)
        for row, output in zip(rows, result.outputs):
            row.append(read_cube(output.path).data)
        print(f"strength {strength}: {result.sampler} {result.steps} steps ({result.nfe} NFE), "
              f"{result.seconds:.1f} s for {len(cartoons)} images")
    tiles = [lupton_rgb(flux, model.bands) for row in rows for flux in row]
    print(save_png(montage(tiles, columns=1 + len(STRENGTHS), zoom=2), args.out / "cartoons_desified.png"))


if __name__ == "__main__":
    main()
