"""galgen on one GPU: training and sampling speed with MFU, a torchrun DDP run, batch invariance.

    python benchmarks/gpu_check.py [--device cuda] [--quick]

Prints one table (and writes it to $OUT/gpu_check.md when OUT is set). Rows:
- the measured bf16 matmul peak (8192^3; 2048^3 with --quick) that MFU is taken against;
- training images/s of the tiny (64 px) and paper (256 px) presets, bf16 autocast, AdamW, the
  v-prediction loss of `galgen train`, FLOPs per image from torch.utils.flop_counter (forward +
  backward), MFU = images/s x FLOPs / peak;
- `torchrun --nproc-per-node 1 -m galgen train` on a synthetic 64 px dataset (DDP, NCCL): it runs,
  its images/s;
- sampling images/s (DPM-Solver++(2M), 25 NFE, bf16, whole batch per call) at 64 px (the bundled
  model; also in exact mode, and diffusers' UNet2DModel of the same widths with its DPM-Solver++
  beside it) and 256 px (the paper preset, initial weights: speed does not depend on weights), with
  MFU = images/s x NFE x forward FLOPs / peak, and `galgen sample -n 1000` wall time with its GPU
  defaults, FITS files included;
- `galgen inpaint`'s fill of a 4 px trail across a synthetic 424 px galaxy with the defaults (tiles in waves);
- whether image i is bit-identical across batch sizes on this device, batched and exact;
- if time is left (--budget), training and sampling under torch.compile, with their warm-up.
A failing row prints FAILED and the check goes on.
--quick shrinks every size so the script can be checked on a CPU in a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from galgen.engine.denoiser import Denoiser  # noqa: E402
from galgen.engine.runtime import compile_network  # noqa: E402
from galgen.engine.samplers import select_sigmas  # noqa: E402
from galgen.engine.unet import UNet, preset  # noqa: E402
from galgen.flows.sample import draw  # noqa: E402
from galgen.model import load_model  # noqa: E402
from limits import forward_flops  # noqa: E402  (sibling benchmark: FLOPs of one forward pass)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, n: int) -> float:
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    sync(device)
    return 10 * 2 * n**3 / (time.perf_counter() - start)


def train_rate(name: str, device: torch.device, *, batch: int, steps: int, size: int | None = None,
               compile: bool = False):
    """(images/s, FLOPs per image, warm-up seconds) of `galgen train`'s step (v loss, bf16 autocast, AdamW,
    clipping); with ``compile`` the network runs under torch.compile."""
    from torch.utils.flop_counter import FlopCounterMode

    config = preset(name, bands=3, size=size)
    denoiser = Denoiser(UNet(config), schedule="linear-fine", prediction="v").to(device)
    denoiser.net.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(denoiser.net.parameters(), lr=1e-4)
    x0 = torch.rand(batch, 3, config.size, config.size, device=device) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.randint(1000, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = denoiser.loss(x0, t=t, noise=noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(denoiser.net.parameters(), 1.0)
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = denoiser.loss(x0[:1], t=t[:1], noise=noise[:1])
        loss.backward()
    flops = counter.get_total_flops()
    optimizer.zero_grad(set_to_none=True)
    if compile:
        compile_network(denoiser.net)  # as `galgen train` does on a GPU
    start = time.perf_counter()
    for _ in range(2):
        step()
    sync(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * batch / (time.perf_counter() - start), flops, warm


def sample_rate(model, device: torch.device, *, images: int, nfe: int = 25, exact: bool = False,
                warm_images: int = 8) -> tuple[float, float]:
    """(images/s, seconds of the warm-up) of DPM-Solver++(2M): a 2-step warm-up on ``warm_images``, then
    ``images`` at ``nfe``. A compiled network warms up on the timed batch's own shape (``warm_images=images``)."""
    sigmas = select_sigmas(model.module.sigmas.cpu(), "dpmpp_2m", nfe)
    start = time.perf_counter()
    draw(model, range(warm_images), seed=0, sigmas=sigmas[-3:], sampler="dpmpp_2m", exact=exact)
    sync(device)
    warm = time.perf_counter() - start
    start = time.perf_counter()
    draw(model, range(images), seed=0, sigmas=sigmas, sampler="dpmpp_2m", exact=exact)
    sync(device)
    return images / (time.perf_counter() - start), warm


def paper_model_file(directory: Path, size: int) -> Path:
    """The paper preset at ``size`` px with its initial weights, as a weights file."""
    from galgen.engine import weights
    from galgen.engine.train import TrainConfig

    config = preset("paper", bands=3, size=size)
    meta = {"kind": weights.MODEL_KIND, "unet": config.to_dict(), "train": TrainConfig().to_dict(),
            "schedule": "linear-fine", "timesteps": 1000, "loss": "l2", "prediction": "v", "step": 0,
            "normalizer": {"bands": "grz", "lower": [-0.035, -0.065, -0.145], "upper": [1.0, 1.5, 2.5]},
            "bands": "grz", "pixel_scale": 0.262, "unit": "nanomaggy"}
    return weights.save_weights(directory / "paper.safetensors", UNet(config).state_dict(), meta)


def batch_invariance(model) -> dict[str, str]:
    """Max |difference| of images 0..7 drawn together, one by one and as batches of 3, batched and exact."""
    sigmas = select_sigmas(model.module.sigmas.cpu(), "dpmpp_2m", 10)
    out = {}
    for exact in (False, True):
        whole = draw(model, range(8), seed=1, sigmas=sigmas, sampler="dpmpp_2m", exact=exact)
        ones = torch.cat([draw(model, [i], seed=1, sigmas=sigmas, sampler="dpmpp_2m", exact=exact) for i in range(8)])
        threes = torch.cat([draw(model, range(i, min(i + 3, 8)), seed=1, sigmas=sigmas, sampler="dpmpp_2m",
                                 exact=exact) for i in range(0, 8, 3)])
        worst = max(float((whole - ones).abs().max()), float((whole - threes).abs().max()))
        out["exact" if exact else "batched"] = "identical" if worst == 0 else f"differs by up to {worst:.2g}"
    return out


def synthetic_dataset(directory: Path, *, count: int, size: int) -> Path:
    """A galgen dataset of smooth random blobs (no FITS, no GalSim): enough to time and test training."""
    from galgen.dataset import write_images, write_meta

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:size, :size] - size / 2

    def blocks():
        for start in range(0, count, 256):
            n = min(256, count - start)
            widths = rng.uniform(2, 8, (n, 1, 1, 1))
            block = np.exp(-(x**2 + y**2) / (2 * widths**2)) * rng.uniform(0.2, 1.8, (n, 3, 1, 1)) - 0.9
            yield (block + rng.normal(0, 0.02, (n, 3, size, size))).clip(-1, 1).astype(np.float32)

    directory.mkdir(parents=True, exist_ok=True)
    write_images(directory, (count, 3, size, size), blocks())
    write_meta(directory, {"bands": "grz", "size": size, "count": count, "unit": "nanomaggy", "pixel_scale": 0.262,
                           "normalizer": {"bands": "grz", "lower": [-0.035, -0.065, -0.145],
                                          "upper": [1.0, 1.5, 2.5]}})
    return directory


def torchrun_train(data: Path, out: Path, *, device: str, steps: int, batch: int) -> dict:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1", "-m", "galgen", "train",
               str(data), "-o", str(out), "--steps", str(steps), "--batch", str(batch), "--device", device,
               "--checkpoint-every", "0", "--json"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        return {"ok": False, "error": (done.stderr.strip().splitlines() or ["?"])[-1], "seconds": seconds}
    return {"ok": True, **json.loads(done.stdout.strip().splitlines()[-1]), "wall": seconds}


def galgen_sample_1000(out: Path, *, device: str, count: int) -> float:
    command = [sys.executable, "-m", "galgen", "sample", "-n", str(count), "-o", str(out), "--device", device,
               "--json"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return time.perf_counter() - start


def inpaint_trail(model, side: int) -> str:
    """Seconds, tiles and waves of `flows.fill.fill_cube` on a synthetic galaxy with a trail through it."""
    from galgen.io.cube import Cube
    from galgen.io.cube import make_wcs
    from galgen.flows.fill import fill_cube

    y, x = np.mgrid[:side, :side] - side / 2
    galaxy = np.exp(-np.hypot(x, 0.6 * y) / (side / 12)) * np.array([2.0, 4.0, 7.0])[:, None, None]
    image = (galaxy + np.random.default_rng(0).normal(0, 0.02, (3, side, side))).astype(np.float32)
    mask = np.broadcast_to(np.abs(x - y) < 2, image.shape)
    start = time.perf_counter()
    result = fill_cube(Cube(data=image, bands="grz", wcs=make_wcs((side, side), pixel_scale=0.262)), mask, model=model)
    return f"{time.perf_counter() - start:.1f} s, {result.tiles} tiles in {result.waves} waves"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a check of the script itself, on any device")
    parser.add_argument("--budget", type=float, default=420, help="seconds after which the optional rows are skipped")
    parser.add_argument("--only", nargs="*", default=None, metavar="TEXT",
                        help="run only the rows whose name contains one of these texts (the peak always runs)")
    args = parser.parse_args()
    device = torch.device(args.device)
    quick = args.quick
    began = time.perf_counter()
    rows = []

    def table() -> str:
        return "| check | result |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)

    def row(what: str, measure):
        """One row; a failure is a row too (the rest of the check still runs)."""
        if args.only is not None and not any(text in what for text in args.only):
            return
        try:
            value = measure()
        except Exception as error:  # noqa: BLE001 - the check reports, it does not stop
            value = f"FAILED: {type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
        rows.append((what, value))
        print(f"{what}: {value}  [{time.perf_counter() - began:.0f} s]", flush=True)
        if os.environ.get("OUT"):
            Path(os.environ["OUT"], "gpu_check.md").write_text(table())

    nfe = 25
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    row("device", lambda: f"{name}, torch {torch.__version__}")
    peak = matmul_peak(device, 1024 if quick else 8192)
    row("bf16 matmul peak (measured)", lambda: f"{peak / 1e12:.1f} TFLOP/s")
    for preset_name, batch, size in (("tiny", 8 if quick else 256, None), ("paper", 2 if quick else 32, 64 if quick else None)):
        def training(preset_name=preset_name, batch=batch, size=size, compile=False):
            rate, flops, warm = train_rate(preset_name, device, batch=batch, steps=2 if quick else 20, size=size,
                                           compile=compile)
            return (f"{rate:.1f} images/s, {flops / 1e9:.1f} GFLOP/image, MFU {100 * rate * flops / peak:.1f} %"
                    + (f", after {warm:.0f} s of warm-up" if compile else ""))
        row(f"train {preset_name} bf16, batch {batch}", training)
        if time.perf_counter() - began < args.budget:
            row(f"train {preset_name} bf16, batch {batch}, torch.compile", partial(training, compile=True))

    def sampling(model, images: int, *, exact: bool = False) -> str:
        flops = forward_flops(UNet(model.module.net.config), model.size)
        rate, _ = sample_rate(model, device, images=images, nfe=nfe, exact=exact)
        return f"{rate:.2f} images/s, {flops / 1e9:.2f} GFLOP/forward, MFU {100 * rate * nfe * flops / peak:.1f} %"

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = synthetic_dataset(tmp / "data", count=64 if quick else 4096, size=64)

        def ddp():
            done = torchrun_train(data, tmp / "ddp.safetensors", device=args.device, steps=3 if quick else 50,
                                  batch=8 if quick else 256)
            if not done["ok"]:
                raise RuntimeError(done["error"])
            return (f"ok, step {done['step']}, {done['images_per_second']:.1f} images/s"
                    f"{' (compiled, warm-up included)' if done.get('compiled') else ''}")
        row("torchrun --nproc-per-node 1 galgen train (DDP)", ddp)
        bundled = load_model(None, device=args.device, bf16=True)
        many = 8 if quick else 1024
        row(f"sample 64 px (bundled model), {nfe} NFE, batched bf16, {many} images", lambda: sampling(bundled, many))
        row(f"sample 64 px (bundled model), {nfe} NFE, exact bf16 (calls of 8), {many // 4} images",
            lambda: sampling(bundled, many // 4, exact=True))

        def peer():
            import sample_speed

            flops = forward_flops(sample_speed.diffusers_unet(64), 64, diffusers=True)
            rate = sample_speed.time_diffusers(sample_speed.diffusers_unet(64), "dpmpp_2m", images=many, nfe=nfe,
                                               bf16=True, device=args.device)
            return f"{rate:.2f} images/s, {flops / 1e9:.2f} GFLOP/forward, MFU {100 * rate * nfe * flops / peak:.1f} %"
        row(f"diffusers UNet2DModel 64 px (same widths), DPM-Solver++ {nfe} steps, bf16, {many} images", peer)
        paper = load_model(paper_model_file(tmp, 64 if quick else 256), device=args.device, bf16=True)
        row(f"sample {paper.size} px (paper preset), {nfe} NFE, batched bf16", lambda: sampling(paper, 2 if quick else 64))
        count = 16 if quick else 1000
        row(f"galgen sample -n {count} (GPU defaults, FITS written)",
            lambda: f"{galgen_sample_1000(tmp / 'mocks', device=args.device, count=count):.1f} s")
        side = 96 if quick else 424
        row(f"inpaint a 4 px diagonal trail across a {side} px image (defaults: 4 draws, ddim 15, pull 5, no resampling)",
            lambda: inpaint_trail(bundled, side))
        invariance = {}

        def invariant(mode: str) -> str:
            if not invariance:
                invariance.update(batch_invariance(bundled))
            return invariance[mode]
        for mode in ("batched", "exact"):
            row(f"image i across batch sizes 8 / 1 / 3 ({mode})", lambda mode=mode: invariant(mode))
        def compiled_sampling(path, images: int) -> str:
            model = load_model(path, device=args.device, bf16=True)
            compile_network(model.module.net)  # as `galgen sample --compile` does
            rate, warm = sample_rate(model, device, images=images, nfe=nfe, warm_images=images)
            return f"{rate:.2f} images/s after {warm:.0f} s of warm-up"

        for label, path, images in ((f"64 px (bundled model), torch.compile, batched bf16, {many} images", None, many),
                                    (f"{paper.size} px (paper preset), torch.compile, batched bf16",
                                     paper.path, 2 if quick else 64)):
            if time.perf_counter() - began < args.budget:
                row(f"sample {label}", partial(compiled_sampling, path, images))
    print(table())


if __name__ == "__main__":
    main()
