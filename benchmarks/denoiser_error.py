"""How well a trained model denoises at each noise level: the RMS error of D(x0 + sigma n, sigma) against x0.

Run: python benchmarks/denoiser_error.py [--model PATH] [--n 64] [--sim-seed 1000] [--threads 2]

x0 are n fresh `galgen simulate` galaxies put into the model's [-1, 1] space; n is standard
normal noise (seed 0). For each sigma it prints the RMS error of the denoised estimate over all
pixels and over the stamp border (sky only), beside sigma itself (the error of returning x
unchanged) and the data's own RMS spread about its mean (the error of the best constant guess;
an ideal denoiser never does worse than either). An eps-predicting network turns its eps error
e into a D error sigma x e, so the large-sigma rows show whether a deterministic sampler can be
trusted with this model (docs/sampling.md, "Sky level, and why the parametrisation picks the sampler").
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from galgen.metrics.photometry import border_pixels
from galgen.model import load_model

SIGMAS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="weights file [default: the bundled model]")
    parser.add_argument("--n", type=int, default=64, help="simulated galaxies")
    parser.add_argument("--sim-seed", type=int, default=1000, help="seed of the simulate draw")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--no-bf16", action="store_true", help="run the network in float32")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from galgen.galaxies import draw_galaxy

    model = load_model(args.model, device="cpu", bf16=not args.no_bf16)
    flux = np.stack([draw_galaxy(args.sim_seed, i, size=model.size, pixel_scale=model.pixel_scale or 0.262)[0]
                     for i in range(args.n)])
    x0 = torch.from_numpy(model.to_model(flux)).float()
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    spread = (x0 - x0.mean(dim=0)).pow(2).mean().sqrt().item()
    print(f"model {model.path.name} ({model.sha256[:12]}), {args.n} simulate galaxies (seed {args.sim_seed}), "
          f"{'fp32' if args.no_bf16 else 'bf16'}; data RMS about its mean {spread:.4f}")
    print(f"{'sigma':>8s} {'RMS error':>10s} {'border':>8s} {'error / sigma':>14s}")
    for sigma in SIGMAS:
        denoised = model.denoise(x0 + sigma * noise, torch.full((args.n,), sigma))
        error = denoised - x0
        total = error.pow(2).mean().sqrt().item()
        sky = float(np.sqrt(np.mean(border_pixels(error.numpy()) ** 2)))  # the stamp's sky frame
        print(f"{sigma:8.3f} {total:10.4f} {sky:8.4f} {total / sigma:14.4f}")


if __name__ == "__main__":
    main()
