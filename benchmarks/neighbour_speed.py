"""How fast does `galgen desify --neighbours` find each output's nearest images in a large dataset?

A synthetic galgen dataset of N x 3 x 64 x 64 float32 images (100k: a 4.9 GB images.npy, written
block by block to a temporary directory and deleted afterwards) is searched for M planted near-copies
(one pixel moved by 0.01, so the right answer is known: that row, at distance 0.01):

- `nearest_neighbours`: galgen.metrics.neighbours on the memmap (exact, chunked float32 screening);
- `output_neighbours`: what desify runs, from M output FITS cubes in flux (read, normalised with the
  dataset's normaliser, searched, sources looked up);
- `scipy cdist`: the plain exact peer, scipy.spatial.distance.cdist over the same chunks with a
  running top-k (float64), for the smaller M only (it does not use BLAS).

Usage: python benchmarks/neighbour_speed.py [--count 100000] [--queries 1 16 256] [--k 5] [--cdist-max 16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

BLOCK = 4096  # rows written per block (about 200 MB)
NORMALIZER = {"bands": "grz", "lower": [-0.035, -0.065, -0.145], "upper": [1.0, 1.5, 2.5]}


def write_dataset(directory: Path, count: int, *, size: int = 64, seed: int = 1):
    """A galgen dataset of ``count`` random images in [-0.9, 0.9], every row distinct; RAM stays flat."""
    from galgen.dataset import SOURCES_NAME, open_dataset, write_images, write_meta

    rng = np.random.default_rng(seed)
    block = rng.random((BLOCK, 3, size, size), dtype=np.float32) * 1.8 - 0.9

    def blocks():
        for i, lo in enumerate(range(0, count, BLOCK)):
            # one random block shifted by a different small offset per block: distinct rows, fast to make
            yield block[: min(BLOCK, count - lo)] + np.float32(1e-3 * (i % 50))

    directory.mkdir()
    write_images(directory, (count, 3, size, size), blocks())
    write_meta(directory, {"bands": "grz", "size": size, "pixel_scale": 0.262, "unit": "nanomaggy",
                           "normalizer": NORMALIZER, "count": count})
    with open(directory / SOURCES_NAME, "w") as handle:
        for i in range(count):
            handle.write(json.dumps({"path": f"cutout_{i:06d}.fits"}) + "\n")
    return open_dataset(directory)


def planted_queries(images: np.ndarray, m: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """M rows of the dataset, one pixel each moved by 0.01: their rows are the known nearest."""
    rows = np.sort(np.random.default_rng(seed).choice(len(images), m, replace=False))
    queries = np.array(images[rows])
    queries[:, 0, 0, 0] += np.where(queries[:, 0, 0, 0] > 0, -0.01, 0.01).astype(np.float32)
    return queries, rows


def cdist_topk(queries: np.ndarray, reference: np.ndarray, *, k: int, chunk: int = 2048):
    """Exact k nearest by scipy's cdist (float64), chunk by chunk with a running top-k."""
    from scipy.spatial.distance import cdist

    q = queries.reshape(len(queries), -1).astype(np.float64)
    best_d = np.full((len(q), 0), np.inf)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for lo in range(0, len(reference), chunk):
        rows = np.asarray(reference[lo:lo + chunk], dtype=np.float64).reshape(-1, q.shape[1])
        d = cdist(q, rows)
        best_d = np.concatenate([best_d, d], axis=1)
        best_i = np.concatenate([best_i, np.broadcast_to(np.arange(lo, lo + len(rows)), d.shape)], axis=1)
        keep = np.argsort(best_d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(best_d, keep, 1), np.take_along_axis(best_i, keep, 1)
    return best_i, best_d


def as_output_files(queries: np.ndarray, directory: Path) -> list[Path]:
    """The queries as desify would write them: FITS cubes in flux (the dataset normaliser's inverse)."""
    from galgen.io.cube import Cube
    from galgen.io.cube import make_wcs
    from galgen.io.write import write_cube
    from galgen.normalize import Normalizer

    flux = Normalizer.from_dict(NORMALIZER).inverse(queries)
    wcs = make_wcs(queries.shape[-2:], pixel_scale=0.262)
    return [write_cube(Cube(data=f, bands="grz", wcs=wcs), directory / f"out_{i:05d}.fits") for i, f in enumerate(flux)]


def timed(run):
    start, cpu = time.perf_counter(), time.process_time()
    value = run()
    return value, time.perf_counter() - start, time.process_time() - cpu


def main(argv=None) -> None:
    from galgen.metrics.neighbours import nearest_neighbours
    from galgen.flows.desify import output_neighbours

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="dataset images")
    parser.add_argument("--queries", type=int, nargs="+", default=[1, 16, 256], help="query counts M")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--cdist-max", type=int, default=16, help="largest M also run through scipy cdist")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="galgen-neighbours-") as tmp:
        tmp = Path(tmp)
        dataset, seconds, _ = timed(lambda: write_dataset(tmp / "dataset", args.count))
        gb = dataset.images.nbytes / 1e9
        print(f"dataset: {args.count} x 3 x 64 x 64 float32 ({gb:.2f} GB) written in {seconds:.0f} s; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; k = {args.k}")
        print(f"{'method':<20}{'M':>6}{'wall s':>9}{'CPU s':>9}{'GB/s':>8}{'M pairs/s':>11}{'right':>7}")
        for m in args.queries:
            queries, rows = planted_queries(dataset.images, m)
            methods = [("nearest_neighbours", lambda: nearest_neighbours(queries, dataset.images, k=args.k))]
            outputs = tmp / f"outputs_{m}"
            outputs.mkdir()
            files = as_output_files(queries, outputs)

            def desify_search():
                found = output_neighbours(files, dataset, k=args.k)
                first = [n for n in found if n.rank == 1]
                return np.array([[n.index] for n in first]), np.array([[n.distance] for n in first])

            methods.append(("output_neighbours", desify_search))
            if m <= args.cdist_max:
                methods.append(("scipy cdist", lambda: cdist_topk(queries, dataset.images, k=args.k)))
            for name, run in methods:
                (index, distance), wall, cpu = timed(run)
                right = np.mean((index[:, 0] == rows) & (np.abs(distance[:, 0] - 0.01) < 1e-4)) * 100
                print(f"{name:<20}{m:>6}{wall:>9.1f}{cpu:>9.1f}{gb / wall:>8.2f}"
                      f"{m * args.count / wall / 1e6:>11.2f}{right:>6.0f}%")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MB (write blocks of {BLOCK} images and mapped pages)")


if __name__ == "__main__":
    main()
