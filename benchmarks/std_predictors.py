"""What predicts where the inpainting STD under-covers: rules scored on draws kept by `inpaint_quality.py --save-draws`.

    python benchmarks/inpaint_quality.py -n 200 --decals '' POPULATION... --save-draws A.npz
    python benchmarks/std_predictors.py A.npz [B.npz ...]

For each file: the written STD's coverage (1 / 2 STD of the noise-free truth over the trail pixels above
3 sigma), the coverage with the best scale per stamp (the oracle: the scale that makes the stamp's own
(mean - truth)^2 / (s STD)^2 average 1), the coverage split by whether the labels measured around the mask
lie beyond the model's training range (what `galgen inpaint`'s note says), and the rules tried in
benchmarks/results/inpainting.md (2026-12-08): an extra a (mean - biharmonic)^2 pooled over 1.5 px, a
fractional floor (f x mean)^2, and the regression of log(oracle scale) on both predictors, fitted on the
first file (two-fold cross-validated there) and applied to the others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inpaint_quality import coverage, fill_biharmonic, scored_pixels  # noqa: E402

from galgen import conditioning  # noqa: E402
from galgen.flows.fill import flux_scales  # noqa: E402
from galgen.model import load_model  # noqa: E402
from galgen.uncertainty import POOL_WIDTH, fill_error  # noqa: E402


def load(path: Path, model) -> dict:
    """The draws' mean and written STD, the truth, the biharmonic fill, the measured labels' distance beyond the
    training range (in units of each condition's scale) and the oracle scale per stamp (NaN: fewer than 5 pixels)."""
    f = np.load(path)
    observed, clean, masks, rms, noise = (f[k] for k in ("observed", "clean", "masks", "rms", "noise"))
    draws = f["draws"]
    mean, variance = draws.mean(axis=0), draws.var(axis=0, ddof=1)
    std = fill_error(variance, masks[:, None], noise, draws=len(draws))
    unknown = np.broadcast_to(masks[:, None], observed.shape)
    scales = flux_scales(model, observed, unknown)[:, None, None, None]
    labels = conditioning.labels_of(model, np.where(unknown, 0.0, observed) / scales, unknown=unknown)
    low, high, unit = (np.array([getattr(c, k) for c in model.conditions]) for k in ("min", "max", "scale"))
    distance = np.nan_to_num(np.maximum(0, np.maximum((low - labels) / unit, (labels - high) / unit))).sum(axis=1)
    scored = scored_pixels(clean, masks, rms)
    oracle = np.array([np.sqrt(np.mean((mean[i] - clean[i])[scored[i]] ** 2 / std[i][scored[i]] ** 2))
                       if scored[i].sum() >= 5 else np.nan for i in range(len(observed))])
    biharmonic = np.stack([fill_biharmonic(observed[i], masks[i]) for i in range(len(observed))])
    signal = unknown & (mean > 3 * noise)
    disagreement = np.array([np.sqrt(np.mean(((mean[i] - biharmonic[i]) / np.maximum(std[i], 1e-30))[signal[i]] ** 2))
                             if signal[i].sum() > 5 else 1.0 for i in range(len(observed))])
    return {"name": path.stem, "mean": mean, "std": std, "clean": clean, "scored": scored, "unknown": unknown,
            "biharmonic": biharmonic, "distance": distance, "oracle": oracle, "disagreement": disagreement}


def covered(run: dict, std: np.ndarray, where: np.ndarray | None = None) -> str:
    c = coverage(run["mean"], std, run["clean"], run["scored"] if where is None else where)
    return f"{c['1 std']:.1%} / {c['2 std']:.1%} ({c['pixels']} px)" if c["pixels"] else "-"


def features(run: dict) -> np.ndarray:
    return np.stack([np.ones(len(run["distance"])), np.log(np.maximum(run["disagreement"], 1e-3)),
                     np.minimum(run["distance"], 3.0)], axis=1)


def per_stamp(values: np.ndarray) -> np.ndarray:
    return values[:, None, None, None]


def report(run: dict, fit: np.ndarray | None) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    print(f"\n{run['name']}: written STD {covered(run, run['std'])}")
    known = np.isfinite(run["oracle"])
    print(f"  best scale per stamp (oracle): {covered(run, run['std'] * per_stamp(np.nan_to_num(run['oracle'], nan=1.0)))}; "
          f"its 10/50/90th percentiles {np.round(np.percentile(run['oracle'][known], [10, 50, 90]), 2).tolist()}")
    beyond = run["distance"] > 0
    print(f"  labels beyond the range: {int(beyond.sum())} of {len(beyond)} stamps, "
          f"{covered(run, run['std'], run['scored'] & per_stamp(beyond))}; within: "
          f"{covered(run, run['std'], run['scored'] & per_stamp(~beyond))}")
    for name, x in (("distance beyond the range", run["distance"]), ("log thin-plate disagreement", np.log(run["disagreement"]))):
        print(f"  log-correlation of the oracle scale with the {name}: "
              f"{np.corrcoef(np.log(run['oracle'][known]), x[known])[0, 1]:.2f}")
    weight = run["unknown"].astype(np.float32)
    sigma = (0, 0, POOL_WIDTH, POOL_WIDTH)
    pooled = gaussian_filter((run["mean"] - run["biharmonic"]) ** 2 * weight, sigma) / np.maximum(
        gaussian_filter(weight, sigma), 1e-12)
    for a in (0.1, 0.25, 0.5):
        print(f"  + {a:g} (mean - biharmonic)^2: {covered(run, np.sqrt(run['std'] ** 2 + a * pooled))}")
    for f in (0.05, 0.1, 0.15):
        print(f"  + ({f:g} mean)^2: {covered(run, np.sqrt(run['std'] ** 2 + (f * np.maximum(run['mean'], 0)) ** 2))}")
    x = features(run)
    if fit is None:  # fit here, two-fold cross-validated
        fit = np.linalg.lstsq(x[known], np.log(run["oracle"][known]), rcond=None)[0]
        scale, rows = np.ones(len(known)), np.arange(len(known))
        for half in (0, 1):
            train = known & (rows % 2 == half)
            part = np.linalg.lstsq(x[train], np.log(run["oracle"][train]), rcond=None)[0]
            scale[rows % 2 != half] = np.exp(x[rows % 2 != half] @ part)
        print(f"  regression (fitted here, cross-validated): {covered(run, run['std'] * per_stamp(scale))}")
    else:
        print(f"  regression (fitted on the first file): {covered(run, run['std'] * per_stamp(np.exp(x @ fit)))}")
    return fit


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("draws", type=Path, nargs="+", help="files written by inpaint_quality.py --save-draws")
    parser.add_argument("--model", type=Path, default=None, help="the model that made the draws [default: bundled]")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    fit = None
    for path in args.draws:
        fit = report(load(path, model), fit)


if __name__ == "__main__":
    main()
