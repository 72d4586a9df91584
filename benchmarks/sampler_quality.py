"""Which sampler: population distance (SGD, default mode) of each sampler's mocks against fresh simulations.

Run: python benchmarks/sampler_quality.py [--model PATH] [--n 500] [--runs ddpm:1000,ddim:10,...]
     [--sim-seed 1000] [--threads 2] [--json out.json]

For each run NAME:STEPS it draws n mocks (seed 0, pipeline.draw, calibrated flux) and computes
the SGD (galgen.metrics.population, default mode: exact 12 px apertures, curve-of-growth R_e,
bootstrap intervals) against n galaxies of a fresh `galgen simulate` draw (seed --sim-seed, not the
training seed); the first row is the simulate-vs-simulate baseline (a second draw, seed
--sim-seed + 1), the noise floor every row is read against. Wall time per run is the sampling
time on this machine. The default model is the bundled one (trained on `simulate --seed 1`).
1000-step DDPM costs 40x the NFE of 25-step DPM-Solver++: on a 2-core CPU keep n small or
leave it out (--runs), and run the long version on a GPU.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from galgen.engine import samplers
from galgen.metrics.population import SGDConfig, synthetic_galaxy_distance
from galgen.flows.sample import draw
from galgen.model import load_model

DEFAULT_RUNS = "dpmpp_2m:10,dpmpp_2m:15,dpmpp_2m:25,dpmpp_2m_sde:25,dpmpp_2m_sde:50,ddim:50,ddpm:50,ddpm:1000"


def simulated(n: int, seed: int, size: int, pixel_scale: float) -> np.ndarray:
    """n galaxies of `galgen simulate --seed seed` (in memory), (n, 3, size, size) nanomaggies."""
    from galgen.galaxies import draw_galaxy

    return np.stack([draw_galaxy(seed, i, size=size, pixel_scale=pixel_scale)[0] for i in range(n)])


def mocks(model, n: int, *, sampler: str, steps: int, batch: int) -> tuple[np.ndarray, float, int]:
    """n mocks in flux (the model's calibration applied), sampling seconds, NFE."""
    sigmas = samplers.select_sigmas(model.module.sigmas, sampler, steps)
    start = time.perf_counter()
    images = [model.to_flux(draw(model, range(first, min(n, first + batch)), seed=0, sigmas=sigmas,
                                 sampler=sampler, exact=False))
              for first in range(0, n, batch)]
    return np.concatenate(images), time.perf_counter() - start, samplers.nfe(sampler, len(sigmas) - 1)


def row(name: str, nfe, seconds, result) -> dict:
    w1 = {p.name: p.w1 for p in result.properties}
    return {"run": name, "nfe": nfe, "seconds": seconds, "sgd": result.sgd, "sgd_ci": result.sgd_ci, "w1": w1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="weights file [default: the bundled model]")
    parser.add_argument("--n", type=int, default=500, help="galaxies per population")
    parser.add_argument("--runs", default=DEFAULT_RUNS, help="comma-separated sampler:steps")
    parser.add_argument("--sim-seed", type=int, default=1000, help="seed of the simulate draw compared against")
    parser.add_argument("--batch", type=int, default=16, help="images per network call")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap draws per distance")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model, device=args.device)
    scale = model.pixel_scale or 0.262
    config = SGDConfig(bootstrap=args.bootstrap)
    truth = simulated(args.n, args.sim_seed, model.size, scale)

    def sgd(other):
        return synthetic_galaxy_distance(truth, other, bands=model.bands, pixel_scale=scale, config=config)

    rows = [row("simulate vs simulate", None, None, sgd(simulated(args.n, args.sim_seed + 1, model.size, scale)))]
    names = list(rows[0]["w1"])
    print(f"n = {args.n} per population, model {model.path.name} ({model.sha256[:12]}), SGD default mode, "
          f"{model.device}, {args.threads} thread(s)")
    print(f"{'run':22s} {'NFE':>5s} {'seconds':>8s} {'SGD':>7s} {'95% CI':>17s} " + " ".join(f"{n:>7s}" for n in names))
    print_row(rows[0], names)
    for run in args.runs.split(","):  # each row as soon as it is measured: the long runs come last
        sampler, steps = run.split(":")
        images, seconds, nfe = mocks(model, args.n, sampler=sampler, steps=int(steps), batch=args.batch)
        rows.append(row(run, nfe, seconds, sgd(images)))
        print_row(rows[-1], names)
    if args.json:
        args.json.write_text(json.dumps(rows, default=float, indent=1))


def print_row(r: dict, names: list[str]) -> None:
    ci = "-" if r["sgd_ci"] is None else f"[{r['sgd_ci'][0]:.3f}, {r['sgd_ci'][1]:.3f}]"
    nfe = "-" if r["nfe"] is None else str(r["nfe"])
    seconds = "-" if r["seconds"] is None else f"{r['seconds']:.1f}"
    print(f"{r['run']:22s} {nfe:>5s} {seconds:>8s} {r['sgd']:7.4f} {ci:>17s} "
          + " ".join(f"{r['w1'][n]:7.4f}" for n in names), flush=True)


if __name__ == "__main__":
    main()
