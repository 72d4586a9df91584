"""How fast are galgen's morphology and nearest-neighbour searches?

1. Morphology, galaxies per second on DESI-like 64 px stamps from galgen.galaxies: a plain loop calling
   statmorph.source_morphology directly, against galgen.metrics.morphology.measure_stack
   with 1 and 2 worker processes (values checked identical).
2. Nearest neighbours: exact top-k of M queries against a 100k x 3 x 64 x 64 float32 memmap
   (4.9 GB, written to a temporary file and deleted afterwards).

Usage: python benchmarks/morphology_speed.py [--galaxies 48] [--reference 100000] [--queries 100]
(``--galaxies 0`` or ``--reference 0`` skips that part.)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings

import numpy as np


def simulated_stack(n: int, seed: int = 0) -> np.ndarray:
    """n DESI-like grz galaxies from `galgen simulate`'s generator (bulge + disk + knots, sky noise)."""
    from galgen.galaxies import draw_galaxy

    return np.stack([draw_galaxy(seed, i)[0] for i in range(n)])


def plain_statmorph_loop(stack: np.ndarray) -> float:
    """What a user would write by hand: segment, then statmorph.source_morphology, one by one."""
    import statmorph
    from galgen.metrics.morphology import MorphologyConfig, border_background, central_segmap

    config = MorphologyConfig()
    start = time.perf_counter()
    for image in stack[:, 1].astype(np.float64):
        background, rms = border_background(image, border=config.border)
        image = image - background
        segmap, label = central_segmap(image, rms, config=config)
        if label:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                statmorph.source_morphology(image, segmap, weightmap=np.full(image.shape, rms))
    return time.perf_counter() - start


def morphology_table(n: int) -> None:
    from galgen.metrics.morphology import measure_stack

    stack = simulated_stack(n)
    rows = [("plain statmorph loop", plain_statmorph_loop(stack))]
    results = {}
    for workers in (1, 2):
        start = time.perf_counter()
        results[workers] = measure_stack(stack, workers=workers, chunk_size=4)
        rows.append((f"measure_stack workers={workers}", time.perf_counter() - start))
    same = all(np.array_equal(results[1][k], results[2][k], equal_nan=True) for k in results[1])
    print(f"\nMorphology, {n} simulated grz stamps 64x64 (r band), {os.cpu_count()} CPUs"
          f" (load average {os.getloadavg()[0]:.1f}); workers agree: {same}")
    print(f"{'method':<28}{'seconds':>10}{'galaxies/s':>12}")
    for name, seconds in rows:
        print(f"{name:<28}{seconds:>10.2f}{n / seconds:>12.2f}")


def neighbours_table(n_ref: int, n_queries: int, k: int = 5) -> None:
    from galgen.metrics.neighbours import nearest_neighbours

    shape = (n_ref, 3, 64, 64)
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        path = os.path.join(tmp, "reference.npy")
        start = time.perf_counter()
        ref = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
        rng = np.random.default_rng(1)
        block = rng.random((5000, *shape[1:]), dtype=np.float32) * 1.8 - 0.9
        for i, lo in enumerate(range(0, n_ref, 5000)):
            # one random block, offset by 0.01 per slice: every row distinct, RAM flat, fast to write
            ref[lo:lo + 5000] = block[:min(5000, n_ref - lo)] + np.float32(0.01 * i)
        ref.flush()
        del ref
        written = time.perf_counter() - start
        ref = np.load(path, mmap_mode="r")
        queries = np.array(ref[rng.choice(n_ref, n_queries, replace=False)])
        queries[:, 0, 0, 0] += 0.01  # near-copies: the nearest must be the source row, at 0.01
        start, cpu = time.perf_counter(), time.process_time()
        idx, dist = nearest_neighbours(queries, ref, k=k)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        gb = ref.nbytes / 1e9
        print(f"\nNearest neighbours, {n_queries} queries x {n_ref} references of 3x64x64 ({gb:.1f} GB memmap,"
              f" written in {written:.0f} s), k={k}")
        print(f"search: {seconds:.1f} s wall, {cpu:.1f} s CPU (load average {os.getloadavg()[0]:.1f})"
              f"  ({gb / seconds:.2f} GB/s of reference,"
              f" {n_queries * n_ref / seconds / 1e6:.1f} M pairs/s); nearest distance 0.01 found for"
              f" {np.mean(np.abs(dist[:, 0] - 0.01) < 1e-6) * 100:.0f}% of queries")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=48)
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args(argv)
    if args.galaxies:  # 0 skips a part
        morphology_table(args.galaxies)
    if args.reference:
        neighbours_table(args.reference, args.queries)


if __name__ == "__main__":
    main()
