"""How fast galgen samples: images/s of its sampling loop beside a diffusers pipeline of the same size.

Run: python benchmarks/sample_speed.py [--model PATH] [--images 8] [--nfe 25] [--threads 1]

Rows, all on the same inputs and the same number of network evaluations (NFE):
- galgen: pipeline.draw (the model's default sampler, DPM-Solver++(2M) for the bundled v-prediction
  model, or --sampler; logSNR spacing) in exact mode (network calls of exactly 8 images, padded:
  bit-identical whatever the batch; the CPU default) and with the whole batch per call,
  fp32 and bf16 autocast;
- diffusers: UNet2DModel with DPMSolverMultistepScheduler (dpmsolver++ or sde-dpmsolver++, order 2: the same
  solver as galgen's row) and with
  DDPMScheduler, at the same widths (32/64/128, two residual blocks per level, 32-channel
  attention heads at 16 px and in the middle block; diffusers' last level does not downsample,
  so its middle block runs at 16 px where galgen's runs at 8), its own loop (scheduler.step),
  fp32 and bf16 autocast;
then the wall time `galgen sample -n 1000` would take with the defaults (measured on a few
images through pipeline.sample, FITS writing included, and scaled).
The default model is the bundled model's network (galgen's "tiny" preset at 64 px with the bundled
model's activation) with initial weights: the speed of a network does not depend on its weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from galgen.engine import samplers, weights
from galgen.engine.runtime import machine_line
from galgen.engine.train import TrainConfig
from galgen.engine.unet import UNet, UNetConfig, preset
from galgen.flows.sample import SampleConfig, draw, run as sample
from galgen.model import bundled_model_path, load_model

# galgen's sampler -> diffusers' DPMSolverMultistepScheduler algorithm (both order 2)
DIFFUSERS_ALGORITHM = {"dpmpp_2m": "dpmsolver++", "dpmpp_2m_sde": "sde-dpmsolver++"}


def bundled_architecture() -> UNetConfig:
    """The bundled model's network (the tiny preset at 64 px grz, with its activation), unconditional."""
    stored = UNetConfig.from_dict(weights.read_metadata(bundled_model_path())["unet"])
    return dataclasses.replace(preset("tiny", bands=3, size=64), activation=stored.activation)


def tiny_model_file(directory: Path) -> Path:
    """The bundled model's architecture (`bundled_architecture`) with initial weights, as a weights file."""
    config = bundled_architecture()
    normalizer = {"bands": "grz", "lower": [-0.035, -0.065, -0.145], "upper": [1.0, 1.5, 2.5]}
    meta = {"kind": weights.MODEL_KIND, "unet": config.to_dict(), "train": TrainConfig().to_dict(),
            "schedule": "linear-fine", "timesteps": 1000, "loss": "l2", "prediction": "v", "normalizer": normalizer,
            "bands": "grz", "pixel_scale": 0.262, "unit": "nanomaggy", "step": 0}
    return weights.save_weights(directory / "tiny.safetensors", UNet(config).state_dict(), meta)


def time_galgen(model_path: Path, sampler: str, *, images: int, nfe: int, bf16: bool, exact: bool) -> float:
    model = load_model(model_path, device="cpu", bf16=bf16)
    sigmas = samplers.select_sigmas(model.module.sigmas, sampler, nfe)
    draw(model, [0], seed=0, sigmas=sigmas[-3:], sampler=sampler, exact=exact)  # warm-up
    start = time.perf_counter()
    draw(model, range(images), seed=0, sigmas=sigmas, sampler=sampler, exact=exact)
    return images / (time.perf_counter() - start)


def diffusers_unet(size: int):
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=size, in_channels=3, out_channels=3, layers_per_block=2, block_out_channels=(32, 64, 128),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"), norm_num_groups=8, attention_head_dim=32,
    ).eval()


def time_diffusers(unet, scheduler_name: str, *, images: int, nfe: int, bf16: bool, device: str = "cpu") -> float:
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler

    if scheduler_name in DIFFUSERS_ALGORITHM:
        scheduler = DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="linear",
                                                algorithm_type=DIFFUSERS_ALGORITHM[scheduler_name], solver_order=2)
    else:
        scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear")

    def run(count: int, steps: int):
        scheduler.set_timesteps(steps)
        x = torch.randn(count, 3, unet.config.sample_size, unet.config.sample_size,
                        generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad(), torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
            for t in scheduler.timesteps:
                out = unet(x, t).sample.float()
                x = scheduler.step(out, t, x).prev_sample
        return x.cpu()  # waits for the device

    unet.to(device)
    run(1 if torch.device(device).type == "cpu" else images, 2)  # warm-up (a GPU picks kernels per batch shape)
    start = time.perf_counter()
    run(images, nfe)
    return images / (time.perf_counter() - start)


def sample_1000_estimate(model_path: Path, *, images: int, sampler: str) -> tuple[float, int]:
    """Seconds per image of `galgen sample` with its defaults (FITS files included), and the NFE."""
    model = load_model(model_path, device="cpu")
    config = SampleConfig(count=images, sampler=sampler)
    with tempfile.TemporaryDirectory() as out:
        sample(Path(out) / "warm", model=model, config=SampleConfig(count=1, steps=2))
        result = sample(Path(out) / "mocks", model=model, config=config)
    return result.seconds / images, result.nfe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="weights file [default: tiny preset, initial weights]")
    parser.add_argument("--images", type=int, default=8, help="images per timed run (one batch)")
    parser.add_argument("--nfe", type=int, default=25, help="network evaluations per image")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--sampler", choices=sorted(DIFFUSERS_ALGORITHM),
                        help="galgen's sampler [default: the model's own, LoadedModel.default_sampler]")
    parser.add_argument("--skip-diffusers", action="store_true", help="only galgen's rows")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model or tiny_model_file(Path(tmp))
        loaded = load_model(model_path, device="cpu")
        galgen_params = sum(p.numel() for p in loaded.module.net.parameters())
        sampler = args.sampler or loaded.default_sampler
        print(machine_line())
        print(f"{args.images} images of 64 px per run, {args.nfe} NFE, {args.threads} thread(s), CPU")
        print(f"{'loop':52s} {'dtype':5s} {'images/s':>9s} {'s/image':>8s}")
        for bf16 in (False, True):
            for exact in (True, False):
                rate = time_galgen(model_path, sampler, images=args.images, nfe=args.nfe, bf16=bf16, exact=exact)
                name = f"galgen {sampler}, {'exact (calls of 8)' if exact else 'whole batch per call'} ({galgen_params / 1e6:.2f}M)"
                print(f"{name:52s} {'bf16' if bf16 else 'fp32':5s} {rate:9.3f} {1 / rate:8.2f}")
        if not args.skip_diffusers:
            unet = diffusers_unet(64)
            params = sum(p.numel() for p in unet.parameters())
            for bf16 in (False, True):
                for scheduler in (sampler, "ddpm"):
                    rate = time_diffusers(unet, scheduler, images=args.images, nfe=args.nfe, bf16=bf16)
                    name = f"diffusers UNet2DModel + {scheduler} scheduler ({params / 1e6:.2f}M)"
                    print(f"{name:52s} {'bf16' if bf16 else 'fp32':5s} {rate:9.3f} {1 / rate:8.2f}")
        per_image, nfe = sample_1000_estimate(model_path, images=args.images, sampler=sampler)
        print(f"galgen sample defaults ({sampler}, {nfe} NFE, bf16, exact, FITS writing): {per_image:.2f} s/image "
              f"-> galgen sample -n 1000 ~ {1000 * per_image / 60:.0f} min on {args.threads} thread(s)")


if __name__ == "__main__":
    main()
