"""Where and how the network runs: device choice, precision (bf16 or float32), per-image random generators.

Per-image generators follow Karras et al. 2022 (EDM generate.py): image i of seed s draws its
noise from a generator seeded by (s, i) alone, so results never depend on batch size, sharding
or the number of devices.
"""

from __future__ import annotations

import functools
import hashlib
import os
from contextlib import nullcontext
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Precision:
    """Whether the network runs under bf16 autocast, and why (recorded in every output)."""

    bf16: bool
    reason: str  # e.g. "cpu has AVX512_BF16", "cpu AVX2 has no bf16 units", "asked for with bf16=True"

    @property
    def dtype(self) -> str:
        return "bf16" if self.bf16 else "float32"

    def __str__(self) -> str:
        return f"{self.dtype} ({self.reason})"

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "bf16": self.bf16, "reason": self.reason}


def choose_precision(device: torch.device | str, requested: bool | None = None) -> Precision:
    """bf16 autocast where it is measured faster than float32, or as ``requested`` when that is not None.

    bf16 on a CPU with bf16 units (AMX-BF16 or AVX512_BF16: `cpu_bf16_units`) and on a CUDA device
    that supports bf16 (Ampere or later); float32 elsewhere, where bf16 is emulated (on an AVX2-only
    CPU `galgen sample` ran 9.4x slower in bf16). docs/sampling.md, "Precision", has the measurements.
    """
    if requested is not None:
        return Precision(bool(requested), f"asked for with bf16={bool(requested)}")
    device = torch.device(device)
    if device.type == "cpu":
        units = cpu_bf16_units()
        if units:
            return Precision(True, f"cpu has {units}")
        if cpu_arch().lower() not in _X86:  # its bf16 units (Arm's BF16, SVE) have not been timed with galgen
            return Precision(False, f"no bf16 measured on {cpu_arch()} cpus")
        capped = f" oneDNN may use, {_ISA_VARIABLE}={_onednn_isa()}" if _onednn_isa() else ""
        return Precision(False, f"cpu {cpu_capability()} has no bf16 units{capped}")
    if device.type == "cuda":
        supported, name = cuda_bf16_support(device)
        return Precision(supported, f"cuda {name} {'supports bf16' if supported else 'has no bf16 support'}")
    return Precision(False, f"no bf16 measured on {device.type}")


def cpu_capability() -> str:
    """The vector instructions ATen dispatches to on this CPU: "AVX512", "AVX2", "DEFAULT" (aarch64: "SVE256"...)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


_X86 = ("x86_64", "amd64", "x86", "i386", "i686")


def cpu_arch() -> str:
    """The CPU architecture as the platform names it ("x86_64", "aarch64", "arm64", ...)."""
    import platform

    return platform.machine() or "unknown"


def cpu_bf16_units() -> str | None:
    """"AMX-BF16" or "AVX512_BF16" when this CPU has bf16 dot-product units that oneDNN may use, else None.

    Tests replace this function to play other machines.
    """
    return _detected_bf16_units()


@functools.lru_cache(maxsize=1)
def _detected_bf16_units() -> str | None:
    """`cpu_bf16_units` worked out once: torch's cpuinfo, then /proc/cpuinfo, capped by ONEDNN_MAX_CPU_ISA."""
    flags = _torch_cpu_flags() | _proc_cpu_flags()
    allowed = _onednn_isa_cap()
    if "amx_bf16" in flags and "amx" in allowed:
        return "AMX-BF16"
    if "avx512_bf16" in flags and "avx512_bf16" in allowed:
        return "AVX512_BF16"
    return None


def _torch_cpu_flags() -> set[str]:
    """The bf16 flags torch's cpuinfo reports (torch.cpu.get_capabilities, or its older helpers)."""
    cpu = getattr(torch, "cpu", None)
    try:
        capabilities = cpu.get_capabilities()
        return {name for name in ("amx_bf16", "avx512_bf16") if capabilities.get(name)}
    except (AttributeError, RuntimeError):
        pass
    flags = set()
    for name, probe in (("amx_bf16", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported")):
        try:
            if getattr(cpu, probe)():
                flags.add(name)
        except (AttributeError, RuntimeError):
            pass
    return flags


def _proc_cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    """The bf16 flags of the first processor in /proc/cpuinfo (Linux; empty elsewhere)."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return {"amx_bf16", "avx512_bf16"} & set(line.split(":", 1)[-1].split())
    except OSError:
        pass
    return set()


_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"  # oneDNN's cap on the instructions it uses (DNNL_MAX_CPU_ISA, its old name)


def _onednn_isa() -> str | None:
    """The instruction set oneDNN is capped to by the environment, upper case; None when it may use all."""
    isa = (os.environ.get(_ISA_VARIABLE) or os.environ.get("DNNL_MAX_CPU_ISA") or "").strip().upper()
    return None if isa in ("", "ALL", "DEFAULT") else isa


def _onednn_isa_cap() -> set[str]:
    """Which bf16 units ("amx", "avx512_bf16") oneDNN may use under `_onednn_isa` (both when it is not capped)."""
    isa = _onednn_isa()
    if isa is None:
        return {"amx", "avx512_bf16"}
    allowed = {"amx"} if "AMX" in isa else set()
    if "AMX" in isa or isa in ("AVX512_CORE_BF16", "AVX512_CORE_FP16") or isa.startswith("AVX10"):
        allowed.add("avx512_bf16")
    return allowed


def cuda_bf16_support(device: torch.device | str) -> tuple[bool, str]:
    """(native bf16 on this CUDA device, its name); emulated bf16 (before Ampere) counts as none."""
    device = torch.device(device)
    if not torch.cuda.is_available():
        return False, "(none available)"
    index = device.index if device.index is not None else torch.cuda.current_device()
    name = torch.cuda.get_device_name(index)
    with torch.cuda.device(index):
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False)), name
        except TypeError:  # torch before 2.3 knew no emulation
            return bool(torch.cuda.is_bf16_supported()), name


def describe_machine(commands: Sequence[str] = (), *, device: str = "auto") -> dict:
    """What decides where and in which precision the network runs here: torch, the CPU and its bf16 units,
    the CUDA devices, and the precision each of ``commands`` would use on ``device`` unless asked otherwise."""
    where = pick_device(device)
    chosen = choose_precision(where)
    cuda = []
    for index in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        major, minor = torch.cuda.get_device_capability(index)
        cuda.append({"device": f"cuda:{index}", "name": torch.cuda.get_device_name(index),
                     "compute_capability": f"{major}.{minor}", "precision": choose_precision(f"cuda:{index}").to_dict()})
    return {
        "torch": torch.__version__,
        "cpu": {"name": cpu_name(), "capability": cpu_capability(), "bf16_units": cpu_bf16_units() or "none",
                "onednn_max_cpu_isa": _onednn_isa(), "threads": torch.get_num_threads(),
                "precision": choose_precision("cpu").to_dict()},
        "cuda": cuda,
        "device": str(where),
        "commands": {name: {"device": str(where), **chosen.to_dict()} for name in commands},
    }


def machine_line() -> str:
    """One line naming this machine's kind, for every benchmark's first line: the CPU, torch's kernel
    level, its bf16 units, the cores and torch threads, the torch version (timings of one kind are no
    promise for another)."""
    import os

    return (f"machine: {cpu_name()}, capability {cpu_capability()}, bf16 units {cpu_bf16_units() or 'none'}, "
            f"{os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}")


def cpu_name() -> str:
    """The CPU's model name as cpuinfo or /proc/cpuinfo give it (else the platform's word for it)."""
    import platform

    try:
        name = torch.cpu.get_capabilities().get("cpu_name")
    except (AttributeError, RuntimeError):
        name = None
    if not name:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
        except OSError:
            pass
    return str(name or platform.processor() or platform.machine() or "unknown")


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
