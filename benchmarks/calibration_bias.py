"""Is `galgen calibrate` unbiased? Factors between independent draws of one population, per estimator.

    python benchmarks/calibration_bias.py sims_a/ sims_b/ [--scale 1.18,1.16,1.23] [--sizes 1000,400]

Two `galgen simulate` runs with different seeds are independent draws of one population, so an
unbiased calibration finds factors of 1 between them; dividing the second by known factors must
give those factors back. Rows: each estimator on the galaxy-pixel medians (the default) at the
full size and on disjoint subsets of smaller sizes (mean and spread over the subsets), and the
bootstrap interval of the default estimator with whether it covers the truth.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from galgen.calibrate import CalibrationConfig, calibrate, fit_line, image_medians, pair_by_rank  # noqa: E402
from galgen.populations import load_population  # noqa: E402


def estimators(real_q: np.ndarray, mock_q: np.ndarray) -> dict[str, float]:
    """Candidate factors from rank-paired medians (real_q, mock_q sorted alike)."""
    n = len(real_q)
    k = int(round(0.1 * n))
    positive = (real_q > 0) & (mock_q > 0)
    log_ratio = np.log(real_q[positive] / mock_q[positive])
    return {
        "least squares, free offset (before)": fit_line(mock_q, real_q)[0],
        "least squares through 0": float(np.sum(real_q * mock_q) / np.sum(mock_q * mock_q)),
        "ratio of means": float(real_q.sum() / mock_q.sum()),
        "ratio of central 80 % means": float(real_q[k : n - k].sum() / mock_q[k : n - k].sum()),
        "median log-ratio of pairs": float(np.exp(np.median(log_ratio))),
        "ratio of medians": float(np.median(real_q) / np.median(mock_q)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("real")
    parser.add_argument("mock")
    parser.add_argument("--scale", default="1.18,1.16,1.23", help="known factors the mocks are divided by")
    parser.add_argument("--sizes", default="1000,400", help="population sizes to test (disjoint subsets)")
    args = parser.parse_args()
    real = load_population([args.real]).flux
    mock = load_population([args.mock]).flux
    scale = np.array([float(s) for s in args.scale.split(",")])
    bands = "grz"
    real_m = image_medians(real)
    cases = {"same population": (mock, np.ones(3)), f"mocks / ({args.scale})": (mock / scale[None, :, None, None],
                                                                                  scale)}
    for label, (stack, truth) in cases.items():
        mock_m = image_medians(stack)
        print(f"\n## {label}: true factors {', '.join(f'{t:g}' for t in truth)}  (relative error of m, g / r / z)")
        for size in (int(s) for s in args.sizes.split(",")):
            groups = min(len(real_m), len(mock_m)) // size
            rows: dict[str, list] = {}
            for g in range(groups):
                part = slice(g * size, (g + 1) * size)
                for b in range(3):
                    pr, pm = pair_by_rank(real_m[part, b], mock_m[part, b])
                    for name, value in estimators(pr, pm).items():
                        rows.setdefault(name, [[] for _ in range(3)])[b].append(value / truth[b] - 1)
            print(f"\nN = {size} per population, {groups} disjoint subset(s)")
            print("| estimator | g | r | z |\n|---|---|---|---|")
            for name, per_band in rows.items():
                cells = [f"{100 * np.mean(v):+.1f} %" + (f" (sd {100 * np.std(v, ddof=1):.1f})" if len(v) > 1 else "")
                         for v in per_band]
                print(f"| {name} | " + " | ".join(cells) + " |")
        result = calibrate(real, stack, bands=bands, config=CalibrationConfig())
        print("\ngalgen calibrate (default):", ", ".join(
            f"{f.band} {f.factor:.4f} [{f.interval[0]:.4f}, {f.interval[1]:.4f}] covers {f.interval[0] <= t <= f.interval[1]}"
            for f, t in zip(result.fits, truth)))


if __name__ == "__main__":
    main()
