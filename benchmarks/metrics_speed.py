"""Default-mode SGD on 10k 64 px 3-band stamps: galgen's vectorised photometry vs a per-galaxy loop.

The loop does the same work one stamp at a time with the usual tools: astropy
``sigma_clipped_stats`` on the border frame, photutils ``aperture_photometry`` (method "exact")
for the 12 px aperture and the curve of growth. It runs on a subset and is extrapolated; the
two must agree galaxy by galaxy.

    python benchmarks/metrics_speed.py [--count 10000] [--size 64] [--loop-count 200]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from galgen.metrics import photometry as phot
from galgen.metrics.population import SGDConfig, default_properties, synthetic_galaxy_distance

SKY_RMS = np.array([0.007, 0.013, 0.029], dtype=np.float32)  # nanomaggies, DR9-like g r z


def synthetic_population(count: int, size: int, *, seed: int, chunk: int = 1000) -> np.ndarray:
    """Exponential discs with random flux, size and colour on Gaussian sky, float32 (N, 3, size, size)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - size // 2
    radius = np.hypot(x, y).astype(np.float32)
    out = np.empty((count, 3, size, size), dtype=np.float32)
    for start in range(0, count, chunk):
        n = min(chunk, count - start)
        scale = rng.uniform(1.0, 5.0, n).astype(np.float32)[:, None, None]
        disc = np.exp(-radius[None] / scale)
        disc /= disc.sum(axis=(1, 2), keepdims=True)
        flux = 10 ** rng.uniform(0.0, 1.5, n)
        colour = np.stack([10 ** (-0.4 * rng.normal(0.7, 0.2, n)), np.ones(n), 10 ** (0.4 * rng.normal(0.4, 0.2, n))], 1)
        out[start : start + n] = (flux[:, None] * colour).astype(np.float32)[:, :, None, None] * disc[:, None]
        out[start : start + n] += rng.standard_normal((n, 3, size, size), dtype=np.float32) * SKY_RMS[None, :, None, None]
    return out


def loop_properties(stack: np.ndarray, *, pixel_scale: float) -> dict[str, np.ndarray]:
    """The same measurements as default mode, one galaxy at a time with photutils and astropy."""
    from astropy.stats import sigma_clipped_stats
    from photutils.aperture import CircularAperture, aperture_photometry

    count, planes, height, width = stack.shape
    center = (width // 2, height // 2)
    radii = phot.growth_radii((height, width))
    frame = np.zeros((height, width), dtype=bool)
    w = phot.border_width((height, width))
    frame[:w, :] = frame[-w:, :] = frame[:, :w] = frame[:, -w:] = True
    mags, sizes = np.empty((count, planes)), np.empty(count)
    for i in range(count):
        levels = []
        for c in range(planes):
            _, level, _ = sigma_clipped_stats(stack[i, c][frame], sigma=3.0, maxiters=5)
            levels.append(level)
            table = aperture_photometry(stack[i, c] - level, CircularAperture(center, 6.0), method="exact")
            flux = table["aperture_sum"][0]
            mags[i, c] = 22.5 - 2.5 * np.log10(flux) if flux > 0 else np.nan
        table = aperture_photometry(stack[i, 1] - levels[1], [CircularAperture(center, r) for r in radii], method="exact")
        cog = np.array([table[f"aperture_sum_{k}"][0] for k in range(len(radii))])
        sizes[i] = phot.half_light_radius(cog, radii) * pixel_scale
    return {"g": mags[:, 0], "r": mags[:, 1], "z": mags[:, 2], "R_e": sizes}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--loop-count", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args(argv)

    real = synthetic_population(args.count, args.size, seed=1)
    mock = synthetic_population(args.count, args.size, seed=2)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = synthetic_galaxy_distance(real, mock, bands="grz", pixel_scale=0.262, config=SGDConfig(bootstrap=args.bootstrap))
    sgd_seconds, sgd_cpu = time.perf_counter() - start, time.process_time() - cpu_start

    start = time.perf_counter()
    vectorised = default_properties(real, bands="grz", pixel_scale=0.262)
    measure_seconds = time.perf_counter() - start

    subset = real[: args.loop_count]
    start = time.perf_counter()
    looped = loop_properties(subset, pixel_scale=0.262)
    loop_seconds = time.perf_counter() - start
    per_stamp = loop_seconds / args.loop_count
    worst = max(float(np.nanmax(np.abs(looped[k] - vectorised[k][: args.loop_count]))) for k in looped)

    n = args.count
    print(f"{n} real + {n} mock stamps of 3 x {args.size} x {args.size} float32, {args.bootstrap} bootstrap draws")
    print(f"{'implementation':<46} {'stamps':>7} {'seconds':>9} {'ms/stamp':>9}")
    print(f"{'galgen SGD, default mode (both sets, bootstrap)':<46} {2 * n:>7} {sgd_seconds:>9.2f} {1e3 * sgd_seconds / (2 * n):>9.3f}")
    print(f"{'galgen measurement only (one set)':<46} {n:>7} {measure_seconds:>9.2f} {1e3 * measure_seconds / n:>9.3f}")
    print(f"{'per-galaxy loop: photutils + astropy':<46} {args.loop_count:>7} {loop_seconds:>9.2f} {1e3 * per_stamp:>9.3f}")
    print(f"{'  extrapolated to one set':<46} {n:>7} {per_stamp * n:>9.1f}")
    print(f"speed-up on measurement: {per_stamp * n / measure_seconds:.0f}x; "
          f"largest per-galaxy difference (mag or arcsec): {worst:.2e}")
    load = os.getloadavg()[0]
    print(f"SGD wall {sgd_seconds:.2f} s, CPU {sgd_cpu:.2f} s (all threads) on {os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"SGD {result.sgd:.4f} [{result.sgd_ci[0]:.4f}, {result.sgd_ci[1]:.4f}], real-vs-real baseline {result.baseline_sgd:.4f}")


if __name__ == "__main__":
    main()
