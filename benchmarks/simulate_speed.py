"""How fast `galgen simulate` draws and writes galaxies: galaxies/s for 1 and 2 workers.

Run: python benchmarks/simulate_speed.py [--n 200] [--size 64]
Prints the per-galaxy cost of drawing alone and of drawing + writing in one process after
warm-up, then one row per worker count: wall time of a whole run (worker start-up, GalSim's
Sersic tables, drawing, FITS writing, truth table), the time to the first finished galaxy
(start-up) and the steady rate over the second half of the run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from galgen import galaxies as gal, simulate as sim


def per_galaxy_seconds(n: int, size: int, out: Path) -> dict[str, float]:
    """Seconds per galaxy in this process (tables warm), wall and CPU: drawing alone, drawing + writing."""
    for index in range(60):  # warm GalSim's Sersic tables (21 values of n) and the imports
        gal.draw_galaxy(99, index, size=size)
    out.mkdir(parents=True, exist_ok=True)
    write = sim._WriteGalaxy(str(out), 1, size, gal.PIXEL_SCALE, "benchmark")
    timings = {}
    for name, step in (("draw", lambda i: gal.draw_galaxy(1, i, size=size)), ("draw + write", write)):
        wall, cpu = time.perf_counter(), time.process_time()
        for index in range(n):
            step(index)
        timings[name] = ((time.perf_counter() - wall) / n, (time.process_time() - cpu) / n)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="galaxies per run")
    parser.add_argument("--size", type=int, default=64, help="stamp side in pixels")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        for name, (wall, cpu) in per_galaxy_seconds(min(args.n, 100), args.size, Path(tmp) / "warm").items():
            print(f"one process, warm, {name}: {1e3 * wall:.1f} ms/galaxy wall, {1e3 * cpu:.1f} ms CPU")
        print(f"{'workers':>7} {'galaxies':>8} {'wall s':>8} {'galaxies/s':>10} {'first s':>8} {'steady/s':>9}")
        for workers in (1, 2):
            out = Path(tmp) / f"run{workers}"
            done = []  # time of each finished galaxy: start-up shows as the first, throughput as the slope
            began = time.perf_counter()
            sim.simulate(args.n, out, seed=0, size=args.size, workers=workers, command="benchmark",
                         on_progress=lambda stage, n, total: n and done.append(time.perf_counter() - began))  # fmt: skip
            wall = time.perf_counter() - began
            half = len(done) // 2
            steady = (len(done) - 1 - half) / (done[-1] - done[half])
            print(f"{workers:>7} {args.n:>8} {wall:>8.2f} {args.n / wall:>10.1f} {done[0]:>8.2f} {steady:>9.1f}")


if __name__ == "__main__":
    main()
