"""`galgen train`: a prepared dataset -> diffusion-model weights (safetensors, EMA) and a checkpoint.

The way of one image: ``images.npy`` (memory-mapped, [-1, 1]) -> the training loop of
galgen.engine.train (batches, augmentation, EMA, autocast, DDP under torchrun) -> the weights
file, with the dataset's normaliser, bands, pixel scale and unit in its metadata, so a weights
file alone is enough to sample. A conditional model also takes the dataset's labels
(``labels.npy``) named by ``conditions``, normalised as galgen.conditioning says, and stores the
conditions (names, units, training ranges, normalisation) in its metadata, and the training set's
label rows (``data.labels``, at most LABEL_TABLE_ROWS of them) as a tensor beside the weights, from
which `galgen sample -n` draws when no labels are asked for.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from galgen.errors import InputError
from galgen.holdout import Rows, training_rows
from galgen.progress import Progress, stage

LABEL_TABLE_ROWS = 100_000  # label rows a conditional model file keeps (a seeded subset of larger sets)
MEMORISATION_MOCKS = 256  # enough to see a drift of the 5 % tail towards the training images (binomial test)
MEMORISATION_SEED = 0  # the mocks' seed: the check is the same for every run of a model
MEMORISATION_BATCH = 64  # mocks per call (exact mode splits them into its calls of 8 on the CPU)


@dataclass(frozen=True)
class TrainSettings:
    """What a `train` run is asked for; a None field keeps the preset's (or the resumed checkpoint's) value."""

    preset: str = "tiny"  # network size: tiny, small or paper (galgen.engine.unet.PRESETS)
    steps: int | None = None  # optimiser steps in total (engine.train.TrainConfig.steps)
    batch: int | None = None  # global batch, split over the processes
    lr: float | None = None  # AdamW peak learning rate
    seed: int | None = None  # seed of every random draw
    schedule: str | None = None  # linear (the paper), linear-fine or cosine
    loss: str | None = None  # l2 (the paper) or l1
    prediction: str | None = None  # edm, eps (the paper) or v; resuming with another fine-tunes to it
    p_mean: float | None = None  # edm: mean log-sigma of the training noise
    p_std: float | None = None  # edm: spread of log-sigma
    ema: float | None = None  # EMA decay of the sampling weights
    label_dropout: float | None = None  # conditional: fraction of images trained without labels
    checkpoint_every: int | None = None  # steps between checkpoints, 0 = at the end
    keep_guide: int | None = None  # the step whose EMA is also kept as a weaker model for autoguidance
    bf16: bool | None = None  # bf16 autocast
    conditions: tuple[str, ...] | None = None  # labels (or colours a_b) to condition on; None: the dataset's
    # (`conditioning.default_conditions`, or a resumed checkpoint's), () unconditional
    activation: str | None = None  # the network's activation: mish (the preset's) or silu
    compile: bool | None = None  # torch.compile the network; None: on a GPU
    hold_out: bool = True  # keep `galgen.holdout`'s galaxies aside and end with the memorisation check

    def overrides(self) -> dict:
        """The engine's TrainConfig fields this run sets (those not None)."""
        fields = ("steps", "batch", "lr", "seed", "schedule", "loss", "prediction", "p_mean", "p_std", "ema",
                  "label_dropout", "checkpoint_every", "keep_guide", "bf16")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


@dataclass
class TrainSummary:
    """What a `train` run did (rank 0)."""

    output: Path
    checkpoint: Path
    step: int
    loss: float  # mean loss over the last log interval
    seconds: float
    images_per_second: float
    sha256: str
    device: str
    compiled: bool = False  # the network ran under torch.compile
    precision: object = None  # runtime.Precision: bf16 autocast or float32, and why
    conditions: tuple[str, ...] = ()  # the labels the model is conditioned on; () unconditional
    held_out: int = 0  # dataset rows kept aside (`galgen.holdout`)
    memorisation: object = None  # metrics.memorization.MemorisationReport of the end check, None without one
    guide: Path | None = None  # the weaker snapshot kept for autoguidance (`TrainSettings.keep_guide`), once written

    @property
    def conditioning(self) -> str:
        """What the model was conditioned on, for the summary line."""
        return f"conditioned on {', '.join(self.conditions)}" if self.conditions else "unconditional"

    @property
    def memorisation_line(self) -> str:
        """The memorisation check's verdict, or why there was none."""
        if self.memorisation is None:
            return "no memorisation check (it holds out 10 % of a set of 200 images or more)"
        return f"memorisation check ({self.held_out} held-out galaxies): {self.memorisation.verdict}"

    def to_dict(self) -> dict:
        return {"output": str(self.output), "checkpoint": str(self.checkpoint), "step": self.step, "loss": self.loss,
                "seconds": round(self.seconds, 3), "images_per_second": self.images_per_second,
                "sha256": self.sha256, "device": self.device, "compiled": self.compiled,
                "precision": None if self.precision is None else self.precision.to_dict(),
                "conditions": list(self.conditions), "held_out": self.held_out,
                "memorisation": None if self.memorisation is None else self.memorisation.to_dict(),
                "guide": None if self.guide is None else str(self.guide)}


def is_lead() -> bool:
    """Whether this process reports and saves: rank 0 of torchrun, or the only process."""
    return int(os.environ.get("RANK", "0")) == 0


def run(dataset, output, *, config: TrainSettings = TrainSettings(), resume=None, device: str = "auto",
        overwrite: bool = False, command: str = "galgen.flows.train",
        on_progress: Progress | None = None) -> TrainSummary | None:
    """Train on ``dataset`` (a `galgen prep` directory) and write ``output`` (.safetensors) and its checkpoint.

    ``config`` names the preset and the settings that override its TrainConfig (a bf16 of None:
    `training_precision`), the dataset labels a conditional model takes, the activation and
    compilation (`TrainSettings`); ``resume`` continues exactly from a checkpoint of the same data
    (and the same conditions and activation). The usual resume names the output whose checkpoint it
    is (``-o model.safetensors`` with ``model.ckpt.safetensors``): that is safe, since the checkpoint is
    read whole before the first step and every later one replaces it atomically. An ``output`` that is
    the ``resume`` file itself is refused: the model written at the end would replace the checkpoint.
    Progress stage "train", in steps, with the loss and the rate as fields. Returns the summary on
    the lead process, None on the others.
    """
    from galgen.io.atomic import check_output
    from galgen.io.provenance import file_sha256
    from galgen.dataset import open_dataset
    from galgen.engine import runtime, weights
    from galgen.engine.train import checkpoint_path, guide_path, settings_for, train

    if resume is not None and Path(output).resolve() == Path(resume).resolve():
        model = Path(output).name.removesuffix(".safetensors").removesuffix(".ckpt") + ".safetensors"
        raise InputError(f"is the checkpoint this run resumes from, and the model written at the end would replace "
                         f"it: name the model file instead (e.g. {model}; its checkpoint lies beside it)",
                         path=output, options=("output", "resume"))
    check_output(output, overwrite=overwrite or resume is not None, made_by_galgen=weights.is_weights_file,
                 suffixes=(".safetensors",))
    if config.keep_guide:
        check_output(guide_path(output), overwrite=overwrite or resume is not None,
                     made_by_galgen=weights.is_weights_file, suffixes=(".safetensors",))
    data = open_dataset(dataset)
    settings, activation, compile = config, config.activation, config.compile
    held = held_out(data, hold_out=settings.hold_out, resume=resume)
    rows = training_rows(len(data), held)
    images = Rows(data.images, rows) if len(held) else data.images
    try:
        unet, config = settings_for(settings.preset, bands=len(data.bands), size=data.size, resume=resume,
                                    **settings.overrides())
        where = runtime.pick_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    precision = training_precision(where, config, requested=settings.bf16, resume=resume)
    config = replace(config, bf16=precision.bf16)
    if resume is not None and weights.read_metadata(resume).get("normalizer") != data.normalizer.to_dict():
        raise InputError("checkpoint was trained on data with another normalisation", path=resume)
    if activation is not None and activation != unet.activation:
        if resume is not None:
            raise InputError(f"checkpoint's network uses {unet.activation}", path=resume, options="activation")
        try:
            unet = replace(unet, activation=activation)
        except ValueError as exc:
            raise InputError(str(exc), options="activation") from None
    chosen, labels, table = training_labels(data, settings.conditions, resume=resume, rows=rows)
    if chosen and not resume:
        unet = replace(unet, conditions=len(chosen))
    metadata = {
        "normalizer": data.normalizer.to_dict(), "bands": str(data.bands), "pixel_scale": data.meta.get("pixel_scale"),
        "unit": data.meta.get("unit"), "command": command,
        "data": {"path": str(dataset), "count": len(data), "held_out": len(held), "size": data.size,
                 "command": data.meta.get("command")},
    }
    if data.meta.get("input_units"):  # per band, what prep converted to nanomaggies (galgen.io.units)
        metadata["input_units"] = data.meta["input_units"]
    sky = (data.meta.get("normalizer_choice") or {}).get("sky_rms")
    if sky:  # the training cutouts' median border RMS per band: the noise the model's draws carry
        metadata["data"]["sky_rms"] = [float(v) for v in sky]
    if chosen:
        metadata["conditions"] = [c.to_dict() for c in chosen]
    lead = is_lead()
    first = weights.read_metadata(resume)["step"] if resume else 0
    advance = stage(on_progress if lead else None, "train", config.steps)
    advance(first)
    start = time.perf_counter()
    last = {"step": first, "time": start}

    def report(step: int, mean_loss: float):
        now = time.perf_counter()
        rate = (step - last["step"]) / max(now - last["time"], 1e-9)
        advance(step - last["step"], loss=mean_loss, **{"it/s": rate})
        last.update(step=step, time=now)

    result = train(images, unet=unet, config=config, output=output, metadata=metadata, resume=resume,
                   device=where, callback=report, labels=labels,
                   extra_tensors=None if table is None else {"data.labels": table}, compile=compile)
    if not lead:
        return None
    seconds = time.perf_counter() - start
    report = None
    if len(held):
        report = check_memorisation(result.output, images, data.images[held], device=where, precision=precision,
                                    on_progress=on_progress)
    recent = result.losses[-config.log_every:]
    return TrainSummary(output=Path(result.output), checkpoint=checkpoint_path(output), step=result.step,
                        loss=sum(recent) / max(1, len(recent)), seconds=seconds,
                        images_per_second=len(result.losses) * config.batch / seconds,
                        sha256=file_sha256(result.output), device=str(where),
                        compiled=runtime.compile_on(where, compile), precision=precision,
                        conditions=tuple(c.name for c in chosen), held_out=len(held), memorisation=report,
                        guide=guide_path(output) if config.keep_guide and guide_path(output).is_file() else None)


def training_precision(device, config, *, requested: bool | None, resume=None):
    """bf16 or float32 for a run (a runtime.Precision): as ``requested``; a resumed run as its checkpoint
    trained, so that it repeats the uninterrupted run exactly; else by the hardware (`runtime.choose_precision`)."""
    from galgen.engine.runtime import Precision, choose_precision

    if requested is None and resume is not None and config.bf16 is not None:
        return Precision(bool(config.bf16), f"kept from the checkpoint, bf16={bool(config.bf16)}, for an exact resume")
    return choose_precision(device, requested)


def held_out(data, *, hold_out: bool, resume=None):
    """The dataset rows this run keeps aside (`galgen.holdout`); a resumed run the ones its checkpoint did."""
    import numpy as np

    from galgen.engine import weights
    from galgen.holdout import held_out_rows

    if resume is None:
        return held_out_rows(len(data)) if hold_out else np.empty(0, dtype=np.int64)
    kept = int((weights.read_metadata(resume).get("data") or {}).get("held_out") or 0)  # 0: before hold-outs
    held = held_out_rows(len(data)) if kept else np.empty(0, dtype=np.int64)
    if len(held) != kept:
        raise InputError(f"checkpoint held out {kept} of its dataset's images, this dataset gives {len(held)}",
                         path=resume)
    return held


def training_labels(data, names=None, *, resume=None, rows=None):
    """(conditions, normalised labels (N, K) float32, label table) for a conditional run, or ([], None, None).

    ``names`` None: the dataset's default labels (`conditioning.default_conditions`; none if it has no
    labels); an empty sequence: unconditional.

    ``rows``: the dataset rows trained on (default: all); the labels and the table are theirs.

    The table holds the rows whose every label is known, in the conditions' units (float32 torch,
    at most LABEL_TABLE_ROWS: a subset drawn with a fixed seed, so a resumed run stores the same).

    A resumed run keeps its checkpoint's conditions and their normalisation; naming other ones
    is an InputError. Galaxies whose label is unknown (NaN) train unconditionally.
    """
    import numpy as np

    from galgen import conditioning as cond
    from galgen.engine import weights

    stored = weights.read_metadata(resume).get("conditions") if resume is not None else None
    if stored:
        kept = [cond.Condition.from_dict(c, path=resume) for c in stored]
        if names is not None and [n.lower() for n in names] != [c.name.lower() for c in kept]:
            raise InputError(f"checkpoint is conditioned on {','.join(c.name for c in kept)}", path=resume,
                             options="condition")
        names = [c.name for c in kept]
    elif resume is not None and names:
        raise InputError("checkpoint is of an unconditional model; conditions cannot be added", path=resume,
                         options="condition")
    defaulted = names is None and resume is None and data.label_info is not None
    if defaulted:
        names = cond.default_conditions(data.label_info["names"], data.bands)
    if not names:
        return [], None, None
    table, units = data.labels()
    where = f"{data.path}: the labels"
    columns = [cond.derive(table, units, name, where=where) for name in names]
    if rows is not None:
        columns = [(v[rows], u) for v, u in columns]
    if defaulted:  # a default label that varies nowhere (r_e of cutouts without a pixel scale) is left out
        keep = [k for k, (v, _) in enumerate(columns) if np.unique(v[np.isfinite(v)]).size > 1]
        names, columns = [names[k] for k in keep], [columns[k] for k in keep]
        if not names:
            return [], None, None
    values = np.stack([v for v, _ in columns], axis=1)
    chosen = kept if stored else cond.fit(names, values, [u for _, u in columns])
    return chosen, cond.normalise(chosen, values), label_table(values)


def label_table(values):
    """The rows of ``values`` (N, K) with every label known, as float32 torch (None if there are none);
    a seeded subset past LABEL_TABLE_ROWS."""
    import numpy as np
    import torch

    known = values[np.isfinite(values).all(axis=1)]
    if not len(known):
        return None
    if len(known) > LABEL_TABLE_ROWS:
        keep = np.sort(np.random.default_rng(0).choice(len(known), LABEL_TABLE_ROWS, replace=False))
        known = known[keep]
    return torch.from_numpy(np.ascontiguousarray(known, dtype=np.float32))


def check_memorisation(model_path: Path, training, held_out, *, device, precision, count: int | None = None,
                       on_progress: Progress | None = None):
    """The memorisation check that ends a run: a model that memorises draws mocks that sit on its training images,
    closer to them than the galaxies it never saw (`galgen.holdout`) are. The mocks are drawn as `galgen sample`
    would (default sampler and steps; a conditional model takes labels drawn from its training rows), clipped
    to [-1, 1], and compared in the training set's normalised pixel space (`galgen.metrics.memorization`).

    The `MemorisationReport` of ``count`` mocks of the model in ``model_path`` against ``training``
    (the rows it was trained on, (N, C, H, W) in model space) and ``held_out`` (the rows kept aside);
    ``count`` mocks, MEMORISATION_MOCKS by default."""
    import numpy as np
    import torch

    from galgen.conditioning import draw_requests, normalise
    from galgen.metrics.memorization import memorisation_report
    from galgen.model import draw, load_model

    count = MEMORISATION_MOCKS if count is None else count
    model = load_model(model_path, device=str(device), bf16=precision)
    sampler = model.default_sampler
    sigmas = model.sigmas(sampler)
    requests = draw_requests(model, count=count, seed=MEMORISATION_SEED)
    advance = stage(on_progress, "memorisation check: mocks", count)
    mocks = []
    for start in range(0, count, MEMORISATION_BATCH):
        rows = list(range(start, min(count, start + MEMORISATION_BATCH)))
        labels = None if requests is None else torch.from_numpy(normalise(model.conditions, requests.values[rows]))
        drawn = draw(model, rows, seed=MEMORISATION_SEED, sigmas=sigmas, sampler=sampler, exact=model.exact(None),
                     labels=labels)
        mocks.append(drawn.clamp(-1, 1).float().cpu().numpy())
        advance(len(rows))
    reference = stage(on_progress, "memorisation check: distances", len(training))
    return memorisation_report(np.concatenate(mocks), training, np.asarray(held_out, dtype=np.float32),
                               advance=reference)
