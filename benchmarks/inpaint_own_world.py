"""Is an inpainting miss the guidance's or the model's? The model fills its own draws.

The stamps of benchmarks/inpaint_quality.py (same seed: the same GalSim galaxies and trails) whose
trail covers pixels above ``--level`` sigma are filled three ways, with each ``--guidance`` setting:

- GalSim, told the labels measured around the mask (what ``galgen inpaint`` does),
- GalSim, told the simulation's truth labels,
- **the model's own world**: for each stamp, a draw of the model itself (its default sampler),
  conditioned on that galaxy's truth labels, crossed by the same trail and filled told those labels.

In its own world the model's prior is exact by construction (the draws are what the model believes
galaxies look like), so what is left there is the error of the guidance (RePaint's approximation to
the posterior); on GalSim the mismatch between the model's prior and GalSim's adds to it. A model
draw has no noise-free version, so every row is scored against the observed image (GalSim: before
the trail) over the trail pixels whose 3 x 3 mean there exceeds ``--level`` x the sky RMS: the ratio
of the summed fill to the summed observation minus 1 (a bias), the median signed fractional error and
the fraction within 10 %; the GalSim rows also against the noise-free image, as inpaint_quality.py does.

    python benchmarks/inpaint_own_world.py -n 200 --draws 2 --guidance ddim:50:5:3 ddim:50:5:6
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.ndimage import uniform_filter

from inpaint_quality import WITHIN, add_run_arguments, simulated_cases
from galgen.conditioning import derive, normalise
from galgen.flows.fill import fill_stamps
from galgen.flows.sample import SampleConfig, draw
from galgen.metrics.labels import label_units
from galgen.model import load_model
from galgen.galaxies import draw_observation


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(parser, draws=2)
    parser.add_argument("--level", type=float, default=20.0, help="scored pixels: above this many sky RMS")
    return parser.parse_args(argv)


def truth_labels(model, seed: int, indices) -> np.ndarray | None:
    """The simulation's labels of galaxies ``indices`` in the model's conditions (N, K); None if unconditional."""
    if not model.conditions:
        return None
    rows = [draw_observation(seed, int(i), size=model.size)[2] for i in indices]
    columns = {key: np.array([row[key] for row in rows]) for key in rows[0] if key.startswith("mag_") or key in ("r_e", "q")}
    units = label_units(model.bands)
    return np.stack([derive(columns, units, c.name, where="the truth")[0] for c in model.conditions], axis=1)


def own_draws(model, labels, count: int, *, seed: int) -> np.ndarray:
    """``count`` draws of the model with its default sampler, told ``labels``, in flux (N, C, H, W)."""
    config = SampleConfig(count=count, seed=seed).for_model(model)
    told = None if labels is None else torch.from_numpy(normalise(model.conditions, labels))
    images = draw(model, range(count), seed=seed, sigmas=model.sigmas(config.sampler, config.steps),
                  sampler=config.sampler, labels=told)
    return model.to_flux(images)


def score(fill: np.ndarray, reference: np.ndarray, where: np.ndarray) -> dict:
    signed = (fill[where] - reference[where]) / reference[where]
    return {"pixels": int(where.sum()), "sum_ratio": float(fill[where].sum() / reference[where].sum() - 1),
            "bias": float(np.median(signed)), "within": float(np.mean(np.abs(signed) <= WITHIN))}


def bright(observed: np.ndarray, masks: np.ndarray, rms: np.ndarray, level: float) -> np.ndarray:
    """Trail pixels whose 3 x 3 mean in ``observed`` exceeds ``level`` x the band's sky RMS (N, C, H, W)."""
    smooth = uniform_filter(observed, size=(1, 1, 3, 3), mode="nearest")
    return masks[:, None] & (smooth > level * rms[:, None, None])


def main(argv=None) -> None:
    args = parse_args(argv)
    model = load_model(args.model, device=args.device)
    observed, clean, masks, _, rms = simulated_cases(args.count, seed=args.seed, size=model.size)
    chosen = np.flatnonzero((masks[:, None] & (clean >= args.level * rms[:, None, None])).any(axis=(1, 2, 3)))
    observed, clean, masks = observed[chosen], clean[chosen], masks[chosen]
    labels = truth_labels(model, args.seed, chosen)
    mocks = own_draws(model, labels, len(chosen), seed=args.seed + 1000)
    print(f"{len(chosen)} of {args.count} stamps have trail pixels above {args.level:g} sigma; model "
          f"{model.path.name} (sha256 {model.sha256[:12]}, step {model.meta.get('step')}); mean of {args.draws} draws; "
          f"sum ratio - 1 / median signed / within {WITHIN:.0%}, against the observed image (and the noise-free one)")
    worlds = {"GalSim, measured labels": (observed, None), "GalSim, truth labels": (observed, labels),
              "the model's own draws, their labels": (mocks, labels)}
    report = {"model": str(model.path), "sha256": model.sha256, "seed": args.seed, "stamps": chosen.tolist(), "rows": {}}
    for guidance in args.guidance:
        for world, (images, told) in worlds.items():
            start = time.perf_counter()
            fills = np.mean([fill_stamps(images, masks[:, None], model=model, config=guidance.config(args.seed + k),
                                         labels=told) for k in range(args.draws)], axis=0)
            row = {"observed": score(fills, images, bright(images, masks, rms, args.level))}
            if images is observed:
                row["noise-free"] = score(fills, clean, masks[:, None] & (clean >= args.level * rms[:, None, None]))
            row["seconds"] = time.perf_counter() - start
            report["rows"][f"{guidance.name} | {world}"] = row
            cells = "  ".join(f"{key}: {s['sum_ratio']:+.3f} / {s['bias']:+.3f} / {s['within']:.1%} ({s['pixels']} px)"
                              for key, s in row.items() if key != "seconds")
            print(f"{guidance.name:<34} | {world:<36} | {cells} | {row['seconds']:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
