"""How fast `galgen sample` writes its FITS files: astropy's writer and galgen's direct one, inline and with helpers.

Run: python benchmarks/write_speed.py [--files 1000] [--helpers 0 1 2] [--no-fitsio]

Each file is what `galgen sample` writes for the bundled model: a 3 x 64 x 64 float32 cube with its WCS,
the run's provenance (`flows.output.made_by`) and HISTORY, CHECKSUM/DATASUM, atomically, each file's pixels
its own. The network is left out (random images): this is the part of `sample` that does not depend on the
device. For each writer (`galgen.io.write.BACKENDS`: "astropy", "direct") and helper count it prints files/s
(wall clock), the CPU milliseconds per file (this process and its helpers together, their start included; then
this process's alone, what a GPU run's main process spends) and the speed-up in files/s over astropy inline.
For reference, the same cards also go through fitsio (cfitsio writes the records, the pixels and the
checksums): not galgen's path, measured to choose it.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from galgen.io.cube import make_wcs
from galgen.flows.output import made_by, write_mock
from galgen.flows.sample import mock_name
from galgen.io.writers import Writers
from galgen.engine.runtime import machine_line
from galgen.model import load_model

COMMAND = "galgen sample -n 1000 -o mocks/"


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process, and of it with its finished children (the helpers, once shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = own.ru_utime + own.ru_stime
    return mine, mine + children.ru_utime + children.ru_stime


def write_all(out: Path, model, count: int, helpers: int, backend: str, write=write_mock) -> tuple[float, float, float]:
    """Wall, this process's CPU and all CPU seconds to write ``count`` mocks into ``out`` as `sample` does."""
    wcs = make_wcs((model.size, model.size), pixel_scale=model.pixel_scale, ra=180.0, dec=0.0)
    wcs = wcs.to_header(relax=False).tostring()
    images = np.random.default_rng(0).normal(size=(16, len(model.bands), model.size, model.size)).astype(np.float32)
    start, cpu = time.perf_counter(), cpu_seconds()
    with Writers(helpers) as writers:
        for i in range(count):
            image = images[i % 16].copy()
            image[0, 0, 0] = i  # every file its own pixels (and DATASUM)
            writers.submit(write, out / mock_name(i, count), image, bands=model.bands, unit=model.unit, wcs=wcs,
                           backend=backend,
                           **made_by(model, command=COMMAND, history=[f"mock {i} of seed 0: dpmpp_2m 25 steps"],
                                     seed=0, index=i, count=count, sampler="dpmpp_2m", steps=25, nfe=25,
                                     spacing="logsnr", exact=False))
        writers.results()
    mine, every = cpu_seconds()
    return time.perf_counter() - start, mine - cpu[0], every - cpu[1]


def write_fitsio(path, data, *, bands, unit, wcs, provenance, history, backend=None) -> Path:
    """Reference only: galgen's cards for this mock written through fitsio (records, pixels, checksums in C).

    The structure cards are cfitsio's (its comments, and the CHECKSUM cards after HISTORY); galgen does not use this.
    """
    import fitsio

    from galgen.flows.output import _parsed_wcs
    from galgen.io.atomic import atomic_output
    from galgen.io.cube import Cube
    from galgen.io.write import _cube_cards, _declare_long_strings

    cards = _cube_cards(Cube(data=data, bands=bands, wcs=_parsed_wcs(wcs), unit=unit), provenance=provenance,
                        history=history)
    _declare_long_strings(cards, primary=True)
    with atomic_output(path) as tmp, fitsio.FITS(str(tmp), "rw", clobber=True) as out:
        out.create_image_hdu(dims=data.shape, dtype=np.float32)
        hdu = out[0]
        for image in cards.images():
            for start in range(0, len(image), 80):
                hdu._FITS.write_record(1, image[start : start + 80])
        hdu.write(data)
        hdu.write_checksum()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--helpers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-fitsio", action="store_true", help="leave out the fitsio reference row")
    args = parser.parse_args()
    model = load_model(None, device="cpu")
    print(f"{machine_line()}; {args.files} files each")
    print("| writer | helpers | files/s | CPU ms per file | of which this process | speed-up |")
    print("|---|---|---|---|---|---|")
    runs = [(backend, helpers, write_mock) for backend in ("astropy", "direct") for helpers in args.helpers]
    if not args.no_fitsio:
        runs.append(("fitsio (reference)", 0, write_fitsio))
    base = None
    for backend, helpers, write in runs:
        with tempfile.TemporaryDirectory() as tmp:
            wall, mine, cpu = write_all(Path(tmp), model, args.files, helpers, backend.split()[0], write)
        base = base or wall
        print(f"| {backend} | {helpers} | {args.files / wall:.0f} | {1000 * cpu / args.files:.2f} | "
              f"{1000 * mine / args.files:.2f} | {base / wall:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
