"""Where and how the network runs: device choice, bf16 autocast, per-image random generators, threads.

Per-image generators follow Karras et al. 2022 (EDM generate.py): image i of seed s draws its
noise from a generator seeded by (s, i) alone, so results never depend on batch size, sharding
or the number of devices.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from typing import Sequence

import torch


def pick_device(name: str = "auto") -> torch.device:
    """'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'; ValueError when unavailable."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} requested but only {torch.cuda.device_count()} GPU(s) exist")
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return device


def autocast(device: torch.device | str, *, enabled: bool = True):
    """bf16 autocast on CPU or CUDA (weights and optimiser stay float32); a no-op when disabled."""
    device = torch.device(device)
    if not enabled:
        return nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


# the layers whose weights bf16 autocast casts at every call (its lower-precision matrix products)
_MATMUL_LAYERS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear)


def precast_for_autocast(module: torch.nn.Module) -> torch.nn.Module:
    """Store the weights that bf16 autocast would cast at every call in bf16 once, for inference.

    Autocast caches a cast only for weights that require grad, so a frozen network re-casts
    every convolution and linear weight at every call (13 % of a bf16 forward pass on the CPU).
    The cast is the same rounding either way, so the outputs are bit-identical; norms keep float32.
    Only for a network that runs under `autocast` and is never trained.
    """
    for layer in module.modules():
        if isinstance(layer, _MATMUL_LAYERS):
            layer.to(torch.bfloat16)
    return module


# torch.compile pays back on a GPU, not on the CPU (docs/sampling.md, "On a GPU": on an H200 training ran
# 1.7-1.9x faster after under a minute of warm-up and sampling 2.6-3.7x after 13-24 s; on 2 CPU cores
# it gained nothing after 1-2 minutes). Sampling compiles by default only when its work reaches this
# many image pixels (images x H x W), about twice the measured break-even: 916 images at 256 px,
# 14,649 at 64 px.
COMPILE_PIXELS = 60_000_000
COMPILE_BACKEND = "inductor"  # torch.compile's own default (tests use "aot_eager": the same tracing, no code generation)


def compile_on(device: torch.device | str, requested: bool | None, *, pixels: int | None = None) -> bool:
    """Whether to torch.compile the network: as requested, else on a GPU (sampling: work >= COMPILE_PIXELS)."""
    if requested is not None:
        return requested
    return torch.device(device).type == "cuda" and (pixels is None or pixels >= COMPILE_PIXELS)


def compile_network(net: torch.nn.Module) -> torch.nn.Module:
    """Compile ``net``'s forward in place (static shapes); its parameters and state_dict keys stay the same.

    Where the compiler cannot run (no C compiler for Triton, say), the network runs eagerly instead.
    """
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    net.compile(backend=COMPILE_BACKEND, dynamic=False)
    return net


def mix_seed(*parts: int) -> int:
    """A 63-bit generator seed that is a pure function of the integers given (sha256 of them)."""
    digest = hashlib.sha256(":".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def generator(*parts: int) -> torch.Generator:
    """A CPU generator seeded from integers, e.g. (seed, step, sample)."""
    return torch.Generator().manual_seed(mix_seed(*parts))


class ImageNoise:
    """Standard-normal noise for a batch whose row b comes from its own generator seeded by (seed, indices[b]).

    Each call draws the next block of every image's stream, on the CPU (so a GPU run gives
    the same numbers) and then moves it to the device.
    """

    def __init__(self, seed: int, indices: Sequence[int | tuple[int, ...]], *, device: torch.device | str = "cpu"):
        # draws are always made on the CPU (identical on every machine); `device` is only the
        # intended destination: each call returns its noise on `like`'s own device.
        # An index may be a tuple of integers: the stream of (seed, *index).
        self.device = torch.device(device)
        self.generators = [generator(seed, *(i if isinstance(i, tuple) else (i,))) for i in indices]

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        if like.shape[0] != len(self.generators):
            raise ValueError(f"batch has {like.shape[0]} images but noise was set up for {len(self.generators)}")
        rows = [torch.randn(like.shape[1:], generator=g, dtype=torch.float32) for g in self.generators]
        dtype = like.dtype if like.dtype.is_floating_point else torch.float32
        return torch.stack(rows).to(device=like.device, dtype=dtype)
