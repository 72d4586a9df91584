"""The montage of docs/images/mocks_vs_simulations.jpg: N mocks beside N fresh `galgen simulate` draws.

    python benchmarks/mocks_vs_simulations.py mocks/ out.png [--n 64] [--sim-seed 1000]

Both panels use galgen.preview's fixed Lupton stretch, so they compare pixel for pixel. The
simulations take the mocks' size and pixel scale (0.262 arcsec without a WCS); they need GalSim.
Does the model's population look like its training distribution? Look, and say what you see.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from galgen.io.cube import read_cube  # noqa: E402
from galgen.io.inputs import expand_inputs  # noqa: E402
from galgen.preview import side_by_side  # noqa: E402
from galgen.galaxies import BANDS, PIXEL_SCALE, draw_galaxy  # noqa: E402


def mocks_beside_simulations(mock_paths, out_png, *, sim_seed: int = 1000, columns: int | None = None,
                             zoom: int = 2) -> Path:
    """N mocks (FITS files) beside N `galgen simulate` galaxies of seed ``sim_seed``, same stretch."""
    cubes = [read_cube(p, bands=BANDS) for p in mock_paths]
    size = cubes[0].shape[-1]
    scale = cubes[0].pixel_scale or PIXEL_SCALE
    sims = [draw_galaxy(sim_seed, i, size=size, pixel_scale=scale)[0] for i in range(len(cubes))]
    return side_by_side([c.data for c in cubes], sims, out_png, bands=BANDS, columns=columns, zoom=zoom)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mocks", help="directory (or glob, @list) of mock FITS cubes")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--n", type=int, default=64, help="mocks shown (the first N by name)")
    parser.add_argument("--sim-seed", type=int, default=1000)
    args = parser.parse_args()
    paths = sorted(expand_inputs([args.mocks]))[: args.n]
    print(mocks_beside_simulations(paths, args.out, sim_seed=args.sim_seed))


if __name__ == "__main__":
    main()
