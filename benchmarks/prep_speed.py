"""How fast `galgen prep` turns 424 px grz cutouts into 64 px training stamps, and whether memory stays flat.

Writes DECaLS-like inputs (3 x 424 x 424 float32, big-endian, nanomaggies, noise + a galaxy)
into a temporary directory, runs prep in a fresh subprocess per configuration, and prints
cutouts per second and peak resident memory (the main process and, separately, the largest
reading worker).

    python benchmarks/prep_speed.py                 # 500 and 2000 inputs, 1 and 2 workers
    python benchmarks/prep_speed.py --counts 200 --workers 1
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

TEMPLATES = 16  # distinct cutouts; the rest are byte copies (every copy is still read from disk)

RUN_ONE = """
import json, resource, sys, time
from pathlib import Path
from galgen.prep import PrepConfig, prep_dataset
paths = sorted(Path(sys.argv[1]).iterdir())
start = time.perf_counter()
result = prep_dataset(paths, sys.argv[2], config=PrepConfig(size=64, workers=int(sys.argv[3])))
seconds = time.perf_counter() - start
print(json.dumps({
    "count": result.count, "seconds": seconds,
    "rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def make_inputs(folder: Path, count: int) -> None:
    """`count` FITS cutouts in `folder`: TEMPLATES written by galgen, the rest copied from them."""
    from galgen.io.cube import Cube
    from galgen.io.cube import make_wcs
    from galgen.io.write import write_cube

    rng = np.random.default_rng(0)
    side = 424
    y, x = np.mgrid[:side, :side] - (side - 1) / 2
    wcs = make_wcs((side, side), pixel_scale=0.262)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(min(count, TEMPLATES)):
        amplitude, radius = rng.lognormal(0, 1), rng.uniform(3, 15)
        galaxy = np.exp(-(x**2 + y**2) / (2 * radius**2))
        noise = (0.007, 0.013, 0.029)  # DR9-like sky RMS per pixel, g r z (nanomaggies)
        planes = [amplitude * c * galaxy + rng.normal(0, s, (side, side)) for c, s in zip((0.5, 1, 1.5), noise)]
        cube = Cube(data=np.stack(planes).astype(">f4"), bands="grz", wcs=wcs)
        write_cube(cube, folder / f"cut_{i:06d}.fits")
    for i in range(TEMPLATES, count):
        shutil.copyfile(folder / f"cut_{i % TEMPLATES:06d}.fits", folder / f"cut_{i:06d}.fits")


def run(folder: Path, output: Path, workers: int) -> dict:
    shutil.rmtree(output, ignore_errors=True)
    proc = subprocess.run(
        [sys.executable, "-c", RUN_ONE, str(folder), str(output), str(workers)], capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="galgen-prep-bench-") as tmp:
        tmp = Path(tmp)
        columns = ("inputs", 7), ("workers", 7), ("seconds", 8), ("cutouts/s", 10), ("peak RSS main", 14)
        print(" ".join(f"{name:>{width}}" for name, width in columns), f"{'peak RSS worker':>16}")
        for count in args.counts:
            folder = tmp / f"in_{count}"
            make_inputs(folder, count)
            for workers in args.workers:
                r = run(folder, tmp / "out", workers)
                assert r["count"] == count
                worker = f"{r['rss_worker_mb']:.0f} MB" if workers > 1 else "-"
                print(
                    f"{count:>7} {workers:>7} {r['seconds']:>8.2f} {count / r['seconds']:>10.1f}"
                    f" {r['rss_main_mb']:>11.0f} MB {worker:>16}",
                    flush=True,
                )
            shutil.rmtree(folder)


if __name__ == "__main__":
    main()
