"""How fast `galgen sample` writes its FITS files: inline and with helper processes (galgen.io.writers).

Run: python benchmarks/write_speed.py [--files 1000] [--helpers 0 1 2]

Each file is what `galgen sample` writes for the bundled model: a 3 x 64 x 64 float32 cube with its WCS,
the run's provenance (`flows.output.made_by`) and HISTORY, CHECKSUM/DATASUM, atomically. The network is
left out (random images): this is the part of `sample` that does not depend on the device. Prints
files/s and ms per file for each helper count (as `sample` writes: `flows.output.write_mock`), and the speed-up over writing inline.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from galgen.io.cube import make_wcs
from galgen.flows.output import made_by, write_mock
from galgen.flows.sample import mock_name
from galgen.model import load_model
from galgen.io.writers import Writers


def write_all(out: Path, model, count: int, helpers: int) -> float:
    wcs = make_wcs((model.size, model.size), pixel_scale=model.pixel_scale, ra=180.0, dec=0.0)
    wcs = wcs.to_header(relax=False).tostring()
    images = np.random.default_rng(0).normal(size=(16, len(model.bands), model.size, model.size)).astype(np.float32)
    start = time.perf_counter()
    with Writers(helpers) as writers:
        for i in range(count):
            writers.submit(write_mock, out / mock_name(i, count), images[i % 16], bands=model.bands,
                           unit=model.unit, wcs=wcs,
                           **made_by(model, command="galgen sample -n 1000 -o mocks/",
                                     history=[f"mock {i} of seed 0: dpmpp_2m 25 steps"], seed=0, index=i, count=count,
                                     sampler="dpmpp_2m", steps=25, nfe=25, spacing="logsnr", exact=False))
        writers.results()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--helpers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    model = load_model(None, device="cpu")
    print("| helpers | files/s | ms per file | speed-up |\n|---|---|---|---|")
    base = None
    for helpers in args.helpers:
        with tempfile.TemporaryDirectory() as tmp:
            seconds = write_all(Path(tmp), model, args.files, helpers)
        base = base or seconds
        print(f"| {helpers} | {args.files / seconds:.0f} | {1000 * seconds / args.files:.2f} | {base / seconds:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
