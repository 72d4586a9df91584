"""How fast `galgen simulate` draws and writes galaxies: galaxies/s for 1 and 2 workers.

Run: python benchmarks/simulate_speed.py [--n 200] [--size 64]
Prints one row per worker count: wall time of a whole run (process start-up, GalSim's
Sersic tables, drawing, FITS writing, truth table), and the per-galaxy cost of drawing
alone and of drawing + writing in one process after warm-up.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from galgen import simulate as sim


def per_galaxy_seconds(n: int, size: int, out: Path) -> tuple[float, float]:
    """Seconds per galaxy in this process (tables warm): drawing only, and drawing + writing the cube."""
    for index in range(60):  # warm GalSim's Sersic tables (21 values of n) and the imports
        sim.draw_galaxy(99, index, size=size)
    began = time.perf_counter()
    for index in range(n):
        sim.draw_galaxy(1, index, size=size)
    draw = (time.perf_counter() - began) / n
    out.mkdir(parents=True, exist_ok=True)
    write = sim._WriteGalaxy(str(out), 1, size, sim.PIXEL_SCALE, "benchmark")
    began = time.perf_counter()
    for index in range(n):
        write(index)
    return draw, (time.perf_counter() - began) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="galaxies per run")
    parser.add_argument("--size", type=int, default=64, help="stamp side in pixels")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        draw, draw_write = per_galaxy_seconds(min(args.n, 100), args.size, Path(tmp) / "warm")
        print(f"one process, warm: draw {1e3 * draw:.1f} ms/galaxy, draw + write {1e3 * draw_write:.1f} ms/galaxy")
        print(f"{'workers':>7} {'galaxies':>8} {'wall s':>8} {'galaxies/s':>10}")
        for workers in (1, 2):
            out = Path(tmp) / f"run{workers}"
            began = time.perf_counter()
            sim.simulate(args.n, out, seed=0, size=args.size, workers=workers, command="benchmark")
            wall = time.perf_counter() - began
            print(f"{workers:>7} {args.n:>8} {wall:>8.2f} {args.n / wall:>10.1f}")


if __name__ == "__main__":
    main()
