"""Training speed of galgen's `tiny` U-Net against a diffusers UNet2DModel of about the same size.

Both networks take the same batch in the same process, one after the other, in float32 and in
bf16 autocast; a step is forward + backward + AdamW, as in `galgen train`. FLOPs per image come
from torch.utils.flop_counter (forward + backward); the machine's peak is measured here with a
large matmul of the same dtype, so "% peak" says how much of the hardware each network uses.

Usage: python benchmarks/train_speed.py [--batch 16] [--steps 4] [--threads 1] [--size 64]
Needs diffusers (pip install diffusers; the `bench` extra).
"""

from __future__ import annotations

import argparse
import time

import torch

from galgen.engine.train import new_network
from galgen.engine.unet import count_parameters, preset


def diffusers_unet(size: int) -> torch.nn.Module:
    """UNet2DModel at 64/32/16/8 px like galgen tiny, attention at 16 and 8 px, Mish, GroupNorm(8)."""
    from diffusers import UNet2DModel

    model = UNet2DModel(
        sample_size=size, in_channels=3, out_channels=3, block_out_channels=(32, 64, 80, 80), layers_per_block=2,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=8, act_fn="mish", attention_head_dim=None,
    )
    return _Plain(model)


class _Plain(torch.nn.Module):
    """diffusers returns an output object; the loop wants the tensor."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, t):
        return self.model(x, t).sample


def train_step(net, optimizer, x, t, noise, *, bf16: bool) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        predicted = net(x, t)
    loss = (predicted.float() - noise).square().mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def images_per_second(net, batch, *, bf16: bool, steps: int) -> float:
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-4)
    x, t, noise = batch
    train_step(net, optimizer, x, t, noise, bf16=bf16)  # warm-up: oneDNN picks its kernels
    start = time.perf_counter()
    for _ in range(steps):
        train_step(net, optimizer, x, t, noise, bf16=bf16)
    return steps * len(x) / (time.perf_counter() - start)


def flops_per_image(net, batch) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    x, t, noise = batch
    with FlopCounterMode(display=False) as counter:
        (net(x, t).float() - noise).square().mean().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def matmul_peak(dtype: torch.dtype, *, n: int = 2048, repeats: int = 5) -> float:
    """Measured FLOP/s of an n x n matmul in this dtype (best of a few)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batch = (torch.rand(args.batch, 3, args.size, args.size) * 2 - 1,
             torch.randint(0, 1000, (args.batch,)).float(),
             torch.randn(args.batch, 3, args.size, args.size))
    models = {"galgen tiny": new_network(preset("tiny", size=args.size)), "diffusers UNet2DModel": diffusers_unet(args.size)}
    peaks = {False: matmul_peak(torch.float32), True: matmul_peak(torch.bfloat16)}
    print(f"batch {args.batch}, {args.size} px, {args.threads} thread(s), {args.steps} timed steps; "
          f"matmul peak fp32 {peaks[False] / 1e9:.0f} GFLOP/s, bf16 {peaks[True] / 1e9:.0f} GFLOP/s")
    print(f"{'model':24} {'params':>8} {'GFLOP/img':>10} {'dtype':>6} {'img/s':>7} {'% peak':>7}")
    for name, net in models.items():
        flops = flops_per_image(net, batch)
        for bf16 in (False, True):
            rate = images_per_second(net, batch, bf16=bf16, steps=args.steps)
            print(f"{name:24} {count_parameters(net) / 1e6:7.2f}M {flops / 1e9:10.2f} {'bf16' if bf16 else 'fp32':>6} "
                  f"{rate:7.1f} {100 * rate * flops / peaks[bf16]:6.1f}%", flush=True)


if __name__ == "__main__":
    main()
