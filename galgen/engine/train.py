"""The training loop (Ho et al. 2020; Karras et al. 2022; Smith et al. 2022 section 2): AdamW, warm-up, clipping, EMA, bf16, DDP.

Exact resume: every random draw of step k is a pure function of (seed, k, sample position):
which images form the batch (an epoch-wise permutation seeded by (seed, epoch)), their flips and
rotations, their timesteps and their noise. A run resumed from a checkpoint therefore repeats
the uninterrupted run's losses bit for bit on the CPU, and a run split over N processes sees
exactly the samples a single process would (each rank takes its slice of the global batch).

Multi-process runs start under ``torchrun``; the one block in `_distributed` reads its
environment. Rank 0 alone reports and saves.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from galgen import __version__
from galgen.io.atomic import sweep_stale
from galgen.engine import weights
from galgen.engine.denoiser import LOSSES, PREDICTIONS, Denoiser
from galgen.engine.runtime import autocast, choose_precision, compile_network, compile_on, generator, mix_seed
from galgen.engine.schedules import SCHEDULES
from galgen.engine.unet import UNet, UNetConfig, preset
from galgen.errors import InputError, RuntimeFailure

# tags keep the different random streams of one (seed, step) apart
_INIT, _EPOCH, _SAMPLE, _DROPOUT = 0, 1, 2, 3


@dataclass
class TrainConfig:
    """Optimisation settings; stored as JSON in checkpoints and weights files."""

    steps: int = 20000  # optimiser steps in total (a resumed run continues up to this)
    batch: int = 32  # global batch, split evenly over the processes
    lr: float = 2e-4  # AdamW peak learning rate, constant after warm-up (the paper's Adam)
    warmup: int = 500  # steps of linear learning-rate warm-up from 0
    weight_decay: float = 0.0  # AdamW decoupled weight decay (0 = the paper's plain Adam)
    grad_clip: float = 1.0  # global gradient-norm clip (0 = off)
    ema: float = 0.999  # EMA decay of the sampling weights (warmed up as (1+k)/(10+k))
    schedule: str = "linear"  # beta schedule: linear (paper) or cosine (companion code)
    timesteps: int = 1000  # T, the number of diffusion steps
    loss: str = "l2"  # l2 (paper eq. 11) or l1 (companion code)
    prediction: str = "edm"  # the network's output: edm (Karras et al. 2022; measured best), eps (paper) or v (Salimans & Ho 2022)
    sigma_data: float | None = None  # edm: the data's RMS in [-1, 1] units; None: measured on the training set
    p_mean: float = -1.2  # edm: mean of log(sigma) of the training noise levels (Karras et al. 2022: -1.2)
    p_std: float = 1.2  # edm: spread of log(sigma) (Karras et al. 2022: 1.2)
    label_dropout: float = 0.1  # conditional: fraction of images trained without labels (classifier-free guidance)
    seed: int = 0  # every random draw derives from this
    bf16: bool | None = None  # bf16 autocast for the network (None: `runtime.choose_precision`); float32 master
    # weights, loss and optimiser either way
    augment: bool = True  # random flips and 90-degree rotations (galaxies have no orientation)
    checkpoint_every: int = 1000  # steps between checkpoints (0: only at the end)
    keep_guide: int = 0  # at this step the EMA weights are also written as a model, `guide_path(output)`: a weaker
    # snapshot of the run for autoguidance (`model.load_guide`); 0: none
    log_every: int = 10  # steps between progress reports

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose from {', '.join(SCHEDULES)}")
        if self.prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {self.prediction!r}; choose from {', '.join(PREDICTIONS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.steps < 1 or self.batch < 1 or self.lr <= 0 or not 0 <= self.ema < 1:
            raise ValueError("steps and batch must be >= 1, lr > 0 and 0 <= ema < 1")
        if self.sigma_data is not None and not self.sigma_data > 0:
            raise ValueError(f"sigma_data must be positive, got {self.sigma_data}")
        if not self.p_std > 0:
            raise ValueError(f"p_std must be positive, got {self.p_std}")
        if not 0 <= self.label_dropout <= 1:
            raise ValueError(f"label_dropout must be in [0, 1], got {self.label_dropout}")
        if not 0 <= self.keep_guide < self.steps:
            raise ValueError(f"keep_guide must be a step before the last ({self.steps}), got {self.keep_guide}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return cls(**{"prediction": "eps", **d})  # files from before the field existed trained eps


@dataclass
class TrainResult:
    """What a (possibly resumed) run did."""

    step: int  # the step reached
    losses: list[float] = field(default_factory=list)  # mean loss over the global batch, per step run
    output: Path | None = None  # the weights file (rank 0)
    checkpoint: Path | None = None  # the last checkpoint written (rank 0)
    saved_step: int | None = None  # the step of that checkpoint


def guide_path(output) -> Path:
    """model.safetensors -> model.guide.safetensors, beside the output: the snapshot `keep_guide` writes."""
    output = Path(output)
    return output.with_name(f"{output.name.removesuffix('.safetensors')}.guide.safetensors")


def checkpoint_path(output) -> Path:
    """model.safetensors -> model.ckpt.safetensors, beside the output."""
    output = Path(output)
    return output.with_name(f"{output.name.removesuffix('.safetensors')}.ckpt.safetensors")


def settings_for(preset_name: str, *, bands: int, size: int, resume=None, **overrides) -> tuple[UNetConfig, TrainConfig]:
    """Network and training settings: a preset and the defaults, or a checkpoint's own; overrides win.

    A resumed run keeps its checkpoint's network (the preset is ignored) and settings, so that
    only what the caller changes on purpose (typically ``steps``) differs.
    """
    if resume is None:
        return preset(preset_name, bands=bands, size=size), TrainConfig(**overrides)
    meta = weights.read_metadata(resume)
    try:
        unet = UNetConfig.from_dict(meta["unet"], path=resume)
        config = dataclasses.replace(TrainConfig.from_dict(meta["train"]), **overrides)
    except (KeyError, TypeError) as exc:
        raise InputError(f"checkpoint settings are unusable: {exc}", path=resume) from None
    if (unet.bands, unet.size) != (bands, size):
        raise InputError(f"checkpoint is for {unet.bands} bands of {unet.size} px, the data has {bands} of {size} px",
                         path=resume)
    return unet, config


def train(
    images,
    *,
    unet: UNetConfig,
    config: TrainConfig,
    output,
    metadata: dict | None = None,
    resume=None,
    device: torch.device | str = "cpu",
    callback: Callable[[int, float], None] | None = None,
    labels: np.ndarray | None = None,
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
    compile: bool | None = None,
) -> TrainResult:
    """Train (or resume training) a denoiser (eps, v or EDM preconditioned: `config.prediction`) on images
    (N, C, H, W) in [-1, 1]; Ho et al. 2020, Karras et al. 2022.

    ``images`` may be a numpy memmap: only each step's batch is read. ``labels`` (N, unet.conditions),
    normalised, for a conditional network: a row with a NaN trains that image unconditionally, and
    ``config.label_dropout`` of the others are dropped at random (Ho & Salimans 2022). Rank 0 writes the EMA
    weights to ``output`` (with ``metadata``: normaliser, pixel scale, data summary) and
    checkpoints beside it; ``callback(step, mean_loss)`` is called on rank 0 every log_every steps.
    ``extra_tensors`` (names starting ``data.``, e.g. the training labels) travel in the model file beside
    the network's weights. ``compile``: run the network under torch.compile (None: on a GPU, where it
    pays back; `runtime.compile_on`); the weights and checkpoints are the same either way.
    """
    _check_images(images, unet)
    _check_labels(labels, images, unet)
    if config.prediction == "edm" and config.sigma_data is None:
        config = dataclasses.replace(config, sigma_data=measure_sigma_data(images))
    rank, world, device = _distributed(torch.device(device))
    if config.bf16 is None:  # the checkpoints record what was chosen
        config = dataclasses.replace(config, bf16=choose_precision(device).bf16)
    if rank == 0:
        sweep_stale(Path(output).parent)  # a killed run's half-written checkpoint
    if config.batch % world:
        raise ValueError(f"batch {config.batch} does not split evenly over {world} processes")
    torch.manual_seed(mix_seed(config.seed, _INIT))
    net = new_network(unet, device)
    ema = copy.deepcopy(net).requires_grad_(False)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start, ema_from = 0, 0
    if resume is not None:
        start, ema_from = _load_checkpoint(resume, net=net, ema=ema, optimizer=optimizer, unet=unet, config=config)
    if compile_on(device, compile):
        compile_network(net)
    trained = net
    if world > 1:
        ids = [device.index] if device.type == "cuda" else None
        trained = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
    denoiser = Denoiser(trained, **denoiser_settings(config)).to(device)

    meta = {**(metadata or {}), "unet": unet.to_dict(), "train": config.to_dict(), "loss": config.loss,
            **denoiser_settings(config), "galgen_version": __version__}
    result, pending = TrainResult(step=start), []
    share = config.batch // world
    positions = range(rank * share, (rank + 1) * share)
    for step in range(start, config.steps):
        x0, t, noise, z, y = _batch(images, step=step, positions=positions, config=config, labels=labels)
        torch.manual_seed(mix_seed(config.seed, _DROPOUT, step, rank))
        for group in optimizer.param_groups:
            group["lr"] = config.lr * min(1.0, (step + 1) / max(1, config.warmup))
        with autocast(device, enabled=config.bf16):
            loss = denoiser.loss(x0.to(device), t=t.to(device), noise=noise.to(device), z=z.to(device),
                                 kind=config.loss, labels=None if y is None else y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        optimizer.step()
        age = step - ema_from
        _update_ema(ema, net, decay=min(config.ema, (1 + age) / (10 + age)))
        pending.append(loss.detach())
        done = step + 1
        if rank == 0 and done == config.keep_guide:
            with _diverged_at(done, result):
                _save_model(guide_path(output), ema, extra_tensors, {**meta, "step": done, "guide_for": Path(output).name})
        saving = done == config.steps or (config.checkpoint_every and done % config.checkpoint_every == 0)
        if done % max(1, config.log_every) == 0 or saving:
            losses = _global_mean(torch.stack(pending), world)
            _check_finite(losses, first=done - len(pending) + 1, result=result)
            result.losses.extend(losses.tolist())
            pending = []
            if rank == 0 and callback is not None:
                callback(done, float(losses.mean()))
        if rank == 0 and saving:
            with _diverged_at(done, result):
                result.checkpoint = _save_checkpoint(checkpoint_path(output), net=net, ema=ema, optimizer=optimizer,
                                                     meta={**meta, "step": done, "ema_from": ema_from})
            result.saved_step = done
        result.step = done
    if rank == 0:
        with _diverged_at(result.step, result):
            result.output = _save_model(output, ema, extra_tensors, {**meta, "step": result.step})
    return result


def _save_model(path, ema: torch.nn.Module, extra_tensors, meta: dict) -> Path:
    """The EMA weights (and the ``data.`` tensors) as a model file at ``path``."""
    return weights.save_weights(path, {**ema.state_dict(), **weights.data_tensors(extra_tensors)},
                                {**meta, "kind": weights.MODEL_KIND})


def new_network(unet: UNetConfig, device: torch.device | str = "cpu") -> UNet:
    """A freshly initialised U-Net on ``device``, in the memory layout it trains fastest in there.

    On the CPU that is channels-last (NHWC): oneDNN's bf16 convolutions need no layout copies then and
    ran a training step 1.3x faster (docs/training.md, "Speed"); the batch needs no conversion, since the
    first convolution follows its weights. Elsewhere the default layout (no GPU measurement yet).
    """
    net = UNet(unet).to(device)
    if torch.device(device).type == "cpu":
        net.to(memory_format=torch.channels_last)
    return net


class TrainingDiverged(RuntimeFailure):
    """The loss or the weights became NaN or infinite; nothing after the last good checkpoint is written."""


def _check_finite(losses: torch.Tensor, *, first: int, result: TrainResult) -> None:
    """TrainingDiverged at the first of ``losses`` (steps first, first + 1, ...) that is NaN or infinite."""
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        raise TrainingDiverged(f"the loss became {float(losses[bad[0, 0]])} at step {first + int(bad[0, 0])} "
                               f"(learning rate too high?); {_kept(result)}")


@contextlib.contextmanager
def _diverged_at(step: int, result: TrainResult):
    try:
        yield
    except weights.NonFiniteWeights:
        raise TrainingDiverged(f"the weights became NaN or infinite by step {step} (learning rate too high?); "
                               f"{_kept(result)}") from None


def _kept(result: TrainResult) -> str:
    if result.checkpoint is None:
        return "nothing was written by this run"
    return f"the last good checkpoint, step {result.saved_step}, is kept: {result.checkpoint}"


def _distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """(rank, world size, device) from torchrun's environment; sets up the process group once."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device


def _global_mean(losses: torch.Tensor, world: int) -> torch.Tensor:
    """Per-step losses averaged over the processes (each holds an equal share of the batch)."""
    losses = losses.float()
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(losses)
        losses = losses / world
    return losses.cpu()


def denoiser_settings(config: TrainConfig) -> dict:
    """The Denoiser's keyword arguments (and weights-file metadata) that a training config implies."""
    settings = {"schedule": config.schedule, "timesteps": config.timesteps, "prediction": config.prediction}
    if config.prediction == "edm":
        settings.update(sigma_data=config.sigma_data, p_mean=config.p_mean, p_std=config.p_std)
    return settings


def measure_sigma_data(images, *, count: int = 2048) -> float:
    """EDM's sigma_data: the RMS of the pixel values of up to ``count`` evenly spaced training images.

    The RMS about zero, not the spread about the mean: c_skip = sd^2 / (sigma^2 + sd^2) is the optimal
    skip weight for E[x0^2] = sd^2 (Karras et al. 2022 appendix B.6), whatever the data's mean.
    """
    rows = np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(np.int64)
    sample = np.asarray(images[np.unique(rows)], dtype=np.float64)
    if not np.isfinite(sample).all():
        raise InputError("training images contain NaN or infinite values (found measuring sigma_data)")
    return float(np.sqrt(np.mean(sample**2)))


def _check_images(images, unet: UNetConfig) -> None:
    shape = tuple(getattr(images, "shape", ()))
    expected = (unet.bands, unet.size, unet.size)
    if len(shape) != 4 or shape[1:] != expected or shape[0] < 1:
        raise InputError(f"training images have shape {shape}; the model expects (N, {', '.join(map(str, expected))})")


def _check_labels(labels, images, unet: UNetConfig) -> None:
    if labels is None and not unet.conditions:
        return
    shape = tuple(getattr(labels, "shape", ()))
    if labels is None or shape != (len(images), unet.conditions):
        raise InputError(f"labels have shape {shape}; the network takes ({len(images)}, {unet.conditions})")


def _batch(images, *, step: int, positions: range, config: TrainConfig, labels=None):
    """Images, timesteps, noise and labels of one step's share: a pure function of (seed, step, position)."""
    n = len(images)
    index = np.empty(len(positions), dtype=np.int64)
    for i, j in enumerate(positions):
        p = step * config.batch + j
        index[i] = _epoch_order(config.seed, p // n, n)[p % n]
    order = np.argsort(index, kind="stable")  # read the memmap in file order
    rows = np.empty((len(index), *images.shape[1:]), dtype=np.float32)
    rows[order] = np.asarray(images[index[order]], dtype=np.float32)
    if not np.isfinite(rows).all():
        raise InputError(f"training images contain NaN or infinite values (step {step})")
    x0 = torch.from_numpy(rows)
    t = torch.empty(len(index), dtype=torch.long)
    noise = torch.empty_like(x0)
    z = torch.empty(len(index))
    y = None if labels is None else torch.from_numpy(np.asarray(labels[index], dtype=np.float32))
    for i, j in enumerate(positions):
        g = generator(config.seed, _SAMPLE, step, j)
        t[i] = int(torch.randint(config.timesteps, (1,), generator=g))
        turn = int(torch.randint(8, (1,), generator=g))
        noise[i] = torch.randn(x0.shape[1:], generator=g)
        z[i] = torch.randn((), generator=g)  # drawn after the others: those are the draws of older versions
        if y is not None and float(torch.rand((), generator=g)) < config.label_dropout:
            y[i] = float("nan")  # this image trains the unconditional model
        if config.augment:
            x0[i] = _dihedral(x0[i], turn)
    return x0, t, noise, z, y


@functools.lru_cache(maxsize=2)
def _epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the n images (cached: a batch spans at most two epochs)."""
    return torch.randperm(n, generator=generator(seed, _EPOCH, epoch)).numpy()


def _dihedral(image: torch.Tensor, turn: int) -> torch.Tensor:
    """One of the 8 symmetries of the square: turn % 4 quarter turns, then a mirror if turn >= 4."""
    image = torch.rot90(image, turn % 4, dims=(-2, -1))
    return image.flip(-1) if turn >= 4 else image


@torch.no_grad()
def _update_ema(ema: torch.nn.Module, net: torch.nn.Module, *, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net, in place."""
    torch._foreach_lerp_(list(ema.parameters()), list(net.parameters()), 1 - decay)


def _save_checkpoint(path: Path, *, net, ema, optimizer, meta: dict) -> Path:
    tensors = {f"model.{k}": v for k, v in net.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    for i, state in optimizer.state_dict()["state"].items():
        tensors.update({f"opt.{i}.{k}": torch.as_tensor(v) for k, v in state.items()})
    return weights.save_weights(path, tensors, {**meta, "kind": weights.CHECKPOINT_KIND})


def _load_checkpoint(path, *, net, ema, optimizer, unet: UNetConfig, config: TrainConfig) -> tuple[int, int]:
    """Restore model, EMA and AdamW moments in place; returns (step reached, step the EMA started at).

    Resuming with another ``prediction`` fine-tunes the network to the new output: the old EMA
    averages weights that predict the other quantity, so it restarts from the network at this step.
    """
    meta = weights.read_metadata(path)
    if meta["kind"] != weights.CHECKPOINT_KIND:
        raise InputError("not a training checkpoint (a model file cannot be resumed)", path=path)
    if meta.get("unet") != unet.to_dict():
        raise InputError("checkpoint was made for another network configuration", path=path)
    if (meta.get("schedule"), meta.get("timesteps")) != (config.schedule, config.timesteps):
        raise InputError(f"checkpoint was trained with the {meta.get('schedule')} schedule", path=path)
    step = int(meta["step"])
    if step > config.steps:
        raise InputError(f"checkpoint is at step {step}, beyond the {config.steps} steps asked for", path=path,
                         options="steps")
    tensors = weights.load_tensors(path, device=next(net.parameters()).device)
    try:
        net.load_state_dict(_prefixed(tensors, "model."))
        ema.load_state_dict(_prefixed(tensors, "ema."))
        state = optimizer.state_dict()
        moments = _prefixed(tensors, "opt.")
        for i in state["param_groups"][0]["params"]:
            entry = {k.split(".", 1)[1]: v for k, v in moments.items() if k.split(".", 1)[0] == str(i)}
            if entry:
                entry["step"] = entry["step"].cpu()  # AdamW keeps its step count on the CPU
                state["state"][i] = entry
        optimizer.load_state_dict(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise InputError(f"checkpoint does not match: {str(exc).splitlines()[0]}", path=path) from None
    if meta.get("prediction", "eps") != config.prediction:
        ema.load_state_dict(net.state_dict())
        return step, step
    return step, int(meta.get("ema_from", 0))


def _prefixed(tensors: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
