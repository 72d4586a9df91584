"""Does galgen's written-out attention backward (galgen.engine.attention) pay on this CPU?

A training step of the bundled recipe's network (the `tiny` preset with SiLU, 64 px, bf16 autocast,
channels-last; forward + backward + AdamW, as `galgen train` runs it) with galgen's `attention`
against the same step with torch's `scaled_dot_product_attention` alone, interleaved in one process
(A B A B ...), so both see the same machine load. Prints the CPU kind, ms per step for each (median
and range over the rounds) and the ratio.

Usage: python benchmarks/attention_backward.py [--batch 32] [--steps 5] [--rounds 6]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from galgen.engine import unet as unet_module
from galgen.engine.runtime import autocast
from galgen.engine.train import new_network
from galgen.engine.unet import preset


def cpu_kind() -> str:
    name = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
                platform.processor())
    return f"{name}, torch capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads"


def step_seconds(net, optimizer, batch, *, steps: int) -> float:
    x, t, noise = batch
    start = time.perf_counter()
    for _ in range(steps):
        with autocast("cpu"):
            loss = (net(x, t).float() - noise).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="steps per round and variant")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    torch.manual_seed(0)
    config = replace(preset("tiny"), activation="silu")
    net = new_network(config)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-5)
    x = torch.randn(args.batch, 3, config.size, config.size).to(memory_format=torch.channels_last)
    batch = (x, torch.rand(args.batch) * 2 - 1, torch.randn_like(x))
    variants = {"galgen attention": unet_module.attention, "torch sdpa": F.scaled_dot_product_attention}
    times = {name: [] for name in variants}
    for name, fn in variants.items():  # warm-up
        unet_module.attention = fn
        step_seconds(net, optimizer, batch, steps=2)
    for _ in range(args.rounds):
        for name, fn in variants.items():
            unet_module.attention = fn
            times[name].append(step_seconds(net, optimizer, batch, steps=args.steps))
    print(cpu_kind())
    print(f"tiny preset, SiLU, 64 px, batch {args.batch}, bf16 autocast: ms per training step over {args.rounds} rounds")
    for name, values in times.items():
        print(f"  {name:17s} median {1e3 * statistics.median(values):7.1f}  range {1e3 * min(values):7.1f} - "
              f"{1e3 * max(values):7.1f}")
    ratio = statistics.median(times["torch sdpa"]) / statistics.median(times["galgen attention"])
    print(f"  torch sdpa / galgen attention: {ratio:.3f}")


if __name__ == "__main__":
    main()
