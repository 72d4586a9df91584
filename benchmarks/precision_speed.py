"""bf16 autocast against float32 on this machine: the bundled network's forward pass, and what galgen would choose.

One process, both precisions loaded side by side (`galgen.model.load_model(bf16=True / False)`), timed
in turns so that a neighbour's load hits both alike; the median of the rounds is reported. Run it
with ONEDNN_MAX_CPU_ISA=AVX2 (and ATEN_CPU_CAPABILITY=avx2) or =AVX512_CORE to play a CPU without
bf16 units on one that has them.

Usage: python benchmarks/precision_speed.py [--batch 8] [--rounds 7] [--calls 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from galgen.engine.runtime import choose_precision, machine_line
from galgen.model import load_model


def forward_seconds(model, x, sigma, *, calls: int) -> float:
    """Seconds per `LoadedModel.denoise` call of ``x``, the mean of ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        model.denoise(x, sigma)
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    models = {bf16: load_model(device="cpu", bf16=bf16) for bf16 in (True, False)}
    size = models[True].size
    x = torch.randn(args.batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    sigma = torch.ones(args.batch)
    times = {True: [], False: []}
    with torch.no_grad():
        for model in models.values():
            forward_seconds(model, x, sigma, calls=2)  # oneDNN picks its kernels
        for _ in range(args.rounds):
            for bf16, model in models.items():
                times[bf16].append(forward_seconds(model, x, sigma, calls=args.calls))
    print(machine_line())
    print(f"bundled network forward, batch {args.batch}, {size} px, median of {args.rounds} rounds:")
    for bf16 in (True, False):
        print(f"  {'bf16' if bf16 else 'float32':8s} {statistics.median(times[bf16]) * 1e3:8.1f} ms")
    ratio = statistics.median(times[False]) / statistics.median(times[True])
    print(f"  bf16 is {ratio:.2f}x float32's speed; galgen chooses {choose_precision('cpu')}")


if __name__ == "__main__":
    main()
