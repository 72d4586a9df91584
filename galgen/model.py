"""The loaded model: a weights file made ready to run, with every fact the flows need from it.

`load_model` reads a safetensors file (default: the bundled model) onto a device and returns a
`LoadedModel`: the denoiser D(x, sigma) the samplers call, the normaliser and calibration that
take flux to the network's [-1, 1] space and back, the default sampler, the noise levels of a
run, and the provenance fields every output made with it carries. The flows (galgen.flows)
use nothing else of the engine's weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from galgen.engine import runtime, weights
from galgen.errors import InputError, RuntimeFailure
from galgen.normalize import Normalizer

BUNDLED_MODEL = "default.safetensors"
# The sampler used when none is named, per network output (docs/sampling.md, "Choosing the sampler").
# A v network is accurate at every noise level, and the deterministic solver then gives the mocks
# closest to the data per step; an eps network's error grows with sigma, and only a stochastic
# solver forgets it.
DEFAULT_SAMPLERS = {"v": "dpmpp_2m", "eps": "dpmpp_2m_sde", "edm": "dpmpp_2m"}


# The network batch of exact mode: every call sees exactly this many images (the last chunk padded).
EXACT_BATCH = 8


def exact_on(device, requested: bool | None) -> bool:
    """Whether the network sees a fixed batch of EXACT_BATCH images per call: asked for, or by default on the CPU.

    oneDNN's convolutions and matrix products are not batch-invariant bit for bit: in fp32 the
    time-embedding Linear and some convolutions differ by ~1e-7 between batch 1 and 2..16, since the
    kernel chosen depends on the batch size. For a fixed batch size, an image's result depends
    neither on its place in the batch nor on the other images (tested), so calls of exactly
    EXACT_BATCH images, padded, make image i the same whatever --batch, sharding or workers.
    On a GPU it is opt-in (docs/sampling.md).
    """
    return torch.device(device).type == "cpu" if requested is None else bool(requested)


def _pad(rows: torch.Tensor, *, value: float = 0.0) -> torch.Tensor:
    """``rows`` filled up to EXACT_BATCH along the first axis with ``value`` (in the same memory format)."""
    missing = EXACT_BATCH - rows.shape[0]
    if missing <= 0:
        return rows
    filler = torch.full((missing, *rows.shape[1:]), value, dtype=rows.dtype, device=rows.device)
    padded = torch.cat([rows, filler])
    return padded.contiguous(memory_format=torch.channels_last) if rows.ndim == 4 else padded


def bundled_model_path() -> Path:
    """Where the default model ships inside the package (galgen/models/)."""
    return Path(str(files("galgen.models") / BUNDLED_MODEL))


@dataclass
class LoadedModel:
    """A denoiser ready to run, with the facts of its weights file."""

    module: torch.nn.Module  # engine.denoiser.Denoiser: the network and its preconditioning
    meta: dict  # the weights file's metadata
    path: Path
    sha256: str
    device: torch.device
    precision: runtime.Precision  # bf16 autocast or float32, and why (`runtime.choose_precision`)
    normalizer: Normalizer
    factors: np.ndarray = field(repr=False)  # (C,) calibration multipliers, ones when uncalibrated
    requested_device: str = "auto"  # what the caller asked for ("auto" lets `sample` use every GPU)

    @property
    def bf16(self) -> bool:
        """Whether the network runs under bf16 autocast."""
        return self.precision.bf16

    @property
    def bands(self):
        """The band of each plane (galgen.bands.Bands)."""
        return self.normalizer.bands

    @property
    def size(self) -> int:
        return int(self.meta["unet"]["size"])

    @property
    def pixel_scale(self) -> float | None:
        scale = self.meta.get("pixel_scale")
        return None if scale is None else float(scale)

    @property
    def unit(self) -> str:
        return self.meta.get("unit") or "nanomaggy"

    @property
    def sky_rms(self) -> np.ndarray | None:
        """(C,) sky noise RMS of the training cutouts in flux units, calibration applied (the noise the
        model's draws carry); None for a model trained before galgen recorded it (the bundled one)."""
        sky = (self.meta.get("data") or {}).get("sky_rms")
        if not sky or len(sky) != len(self.bands):
            return None
        return np.asarray(sky, dtype=np.float64) * self.factors

    @property
    def calibrated(self) -> bool:
        return "calibration" in self.meta

    @property
    def calibration(self) -> dict[str, float] | None:
        """Band -> flux factor as the weights file stores it (None when uncalibrated)."""
        if not self.calibrated:
            return None
        stored = self.meta["calibration"].get("factors", {})
        return {band: float(stored.get(band, 1.0)) for band in self.bands}

    @property
    def conditions(self) -> list:
        """The labels a conditional model takes (galgen.conditioning.Condition), [] for an unconditional one."""
        from galgen.conditioning import Condition

        return [Condition.from_dict(c, path=self.path) for c in self.meta.get("conditions", [])]

    def label_table(self) -> np.ndarray | None:
        """The training set's label rows (N, K) in the conditions' units, as the weights file keeps them
        (``data.labels``), or None (an unconditional model, or a conditional one trained before they were kept).

        `load_model` reads it once to check it: a float table of at least one row of K labels, every one finite.
        galgen keeps only the rows whose every label is known, so a NaN row is a corrupt file and refused,
        not dropped (it would draw an unconditional mock with NaN in its GGCOND).
        """
        from galgen.engine.weights import read_data_tensor

        if not self.conditions:
            return None
        table = read_data_tensor(self.path, "labels")
        if table is not None and (table.ndim != 2 or table.shape[1] != len(self.conditions) or not len(table)):
            raise InputError(f"the label table has shape {table.shape}, the model takes {len(self.conditions)} "
                             "conditions", path=self.path)
        if table is not None and not np.isfinite(table).all():
            row = int(np.flatnonzero(~np.isfinite(table).all(axis=1))[0])
            raise InputError(f"row {row} of the label table holds NaN or infinity (galgen keeps only rows whose "
                             "every label is known: a corrupt file)", path=self.path)
        return table

    @property
    def default_sampler(self) -> str:
        """The sampler `sample` and `desify` use when none is named: by what the network predicts."""
        return DEFAULT_SAMPLERS[self.module.prediction]

    def exact(self, requested: bool | None) -> bool:
        """Whether the network sees fixed batches on this model's device (`exact_on`)."""
        return exact_on(self.device, requested)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, *, exact: bool = False, labels: torch.Tensor | None = None,
                guidance: float = 0.0, guide: LoadedModel | None = None, autoguidance: float = 0.0) -> torch.Tensor:
        """D(x, sigma) for the samplers: the network in the model's precision, the result in float32.

        With ``exact`` the network sees calls of exactly EXACT_BATCH images (the last one padded),
        so an image does not depend on its batch. ``labels`` (B, K), normalised
        (`conditioning.normalise`), condition a conditional model; with ``guidance`` w > 0 the result
        is classifier-free guided (Ho & Salimans 2022): ``D = D_cond + w (D_cond - D_uncond)``, both
        evaluated on one doubled batch. With a weaker ``guide`` model (`load_guide`) and ``autoguidance``
        w > 0 it is autoguided (Karras et al. 2024): ``D = D + w (D - D_guide)``, the guide told the
        same labels (Karras's weight is 1 + w).
        """
        if guide is not None and autoguidance:
            good = self.denoise(x, sigma, exact=exact, labels=labels, guidance=guidance)
            weak = guide.denoise(x, sigma, exact=exact, labels=labels, guidance=guidance)
            return good + autoguidance * (good - weak)
        if labels is not None:
            labels = labels.to(self.device)
        if labels is None or not guidance:
            return self._network(x, sigma, labels, exact)
        nan = torch.full_like(labels, float("nan"))  # a NaN row is the unconditional model
        both = self._network(torch.cat([x, x]), torch.cat([sigma, sigma]), torch.cat([labels, nan]), exact)
        conditional, unconditional = both.chunk(2)
        return conditional + guidance * (conditional - unconditional)

    def conditioned(self, values: np.ndarray | None, **options):
        """`denoise` with ``options`` (e.g. exact) for rows told ``values`` (N, K) in the conditions' units,
        clipped to their training ranges, NaN rows unconditional; plain `denoise` when ``values`` is None."""
        from functools import partial

        if values is None:
            return partial(self.denoise, **options)
        from galgen.conditioning import clip, normalise

        labels = normalise(self.conditions, clip(self.conditions, values))
        return partial(self.denoise, labels=torch.from_numpy(labels), **options)

    def _network(self, x: torch.Tensor, sigma: torch.Tensor, labels: torch.Tensor | None, exact: bool) -> torch.Tensor:
        """The denoiser under autocast, in float32; in exact mode as calls of EXACT_BATCH images, zero-padded.
        It records a graph only for an ``x`` that requires grad (inpainting's gradient guidance)."""
        if exact and x.shape[0] != EXACT_BATCH:
            chunks = []
            for start in range(0, x.shape[0], EXACT_BATCH):
                part = slice(start, start + EXACT_BATCH)
                rows = x[part].shape[0]
                chunks.append(self._network(_pad(x[part]), _pad(sigma[part], value=1.0),
                                            None if labels is None else _pad(labels[part]), True)[:rows])
            return torch.cat(chunks)
        with torch.set_grad_enabled(x.requires_grad), runtime.autocast(self.device, enabled=self.bf16):
            return (self.module(x, sigma) if labels is None else self.module(x, sigma, labels)).float()

    def sigmas(self, sampler: str, steps: int | None = None, *, strength: float = 1.0) -> torch.Tensor:
        """The noise levels a run of ``sampler`` visits (steps None: its default), on the CPU."""
        from galgen.engine.samplers import get_sampler, select_sigmas

        steps = get_sampler(sampler).default_steps if steps is None else steps
        return select_sigmas(self.module.sigmas.cpu(), sampler, steps, strength=strength)

    def to_flux(self, x) -> np.ndarray:
        """Model space [-1, 1] (N, C, H, W) -> calibrated flux in the model's unit (float32)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().float().cpu().numpy()
        if not np.isfinite(x).all():
            raise RuntimeFailure(f"the model {self.path.name} produced NaN or infinite pixels; nothing of them "
                                 "is written")
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is caught below, by name
            flux = (self.normalizer.inverse(np.clip(x, -1.0, 1.0)) * self.factors[:, None, None]).astype(np.float32)
        if not np.isfinite(flux).all():  # the factors applied: what is written, checked
            raise RuntimeFailure(f"the model {self.path.name} gave NaN or infinite flux once its normaliser and "
                                 "calibration were applied; nothing of it is written")
        return flux

    def to_model(self, flux: np.ndarray) -> np.ndarray:
        """Flux (..., C, H, W) -> model space [-1, 1]: calibration divided out, then normalised."""
        return self.normalizer.forward(np.asarray(flux, dtype=np.float32) / self.factors[:, None, None])

    def provenance(self) -> dict:
        """The provenance fields every output made with this model carries (calibration recorded here only)."""
        return {
            "model_sha256": self.sha256, "model": self.path.name, "schedule": self.meta.get("schedule"),
            "bf16": self.bf16, "precision": str(self.precision), "device": str(self.device),
            "normaliser": self.normalizer.to_dict(),
            "calibrated": self.calibrated,
            "calibration": self.calibration,
            "input_units": self.meta.get("input_units"),  # what the training data was converted from (prep)
        }

    def flux_history(self) -> str:
        """One HISTORY line saying how the network's output became flux."""
        if not self.calibrated:
            return "flux = normaliser inverse (model not calibrated)"
        factors = ", ".join(f"{b} x{f:.4g}" for b, f in zip(self.bands, self.factors))
        return f"flux = normaliser inverse times calibration factors ({factors})"


def load_model(model: str | Path | None = None, *, device: str = "auto",
               bf16: bool | runtime.Precision | None = None) -> LoadedModel:
    """Load a weights file (default: the bundled model) onto a device, validated.

    ``bf16``: True or False as asked; None chooses by the hardware (`runtime.choose_precision`: bf16
    where it runs faster); a `runtime.Precision` already chosen is kept (a worker process takes its
    parent's). Raises InputError naming the file when it is missing, corrupt or lacks a normaliser.
    """
    from galgen.io.inputs import refuse_special_file

    path = bundled_model_path() if model is None else Path(model)
    refuse_special_file(path)
    if not path.is_file():
        hint = " (the bundled model is missing from this install; name a weights file)" if model is None else ""
        raise InputError(f"no such weights file{hint}", path=path)
    try:
        where = runtime.pick_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    precision = bf16 if isinstance(bf16, runtime.Precision) else runtime.choose_precision(where, bf16)
    module, meta = weights.load_denoiser(path, device=where)
    # oneDNN's convolutions (and cuDNN's in bf16) run fastest on NHWC; the input follows the weights
    module.net.to(memory_format=torch.channels_last)
    if precision.bf16:
        runtime.precast_for_autocast(module.net)
    if "normalizer" not in meta:
        raise InputError("weights file has no normaliser (was it written by 'galgen train'?)", path=path)
    normalizer = Normalizer.from_dict(meta["normalizer"], path=path)
    factors = checked_facts(meta, normalizer, module.net.config, path)
    loaded = LoadedModel(module=module, meta=meta, path=path, sha256=weights.file_sha256(path), device=where,
                         precision=precision, normalizer=normalizer, factors=factors, requested_device=device)
    loaded.label_table()  # a conditional model's training label rows, checked before any work
    return loaded


def load_guide(path, model: LoadedModel) -> LoadedModel:
    """The weaker model that autoguides ``model`` (`LoadedModel.denoise`), loaded on its device in its precision.

    It must describe the same images: bands, size, normaliser, unit, pixel scale and conditions (names and
    units) equal to the model's; InputError naming the file otherwise, or when it is the model itself.
    """
    guide = load_model(path, device=str(model.device), bf16=model.precision)
    if guide.sha256 == model.sha256:
        raise InputError("the guide is the model itself: autoguidance needs a weaker model, for example an "
                         "earlier snapshot of the same run", path=guide.path)
    mine, theirs = _described(model), _described(guide)
    differ = [name for name in mine if mine[name] != theirs[name]]
    if differ:
        raise InputError(f"the guide describes other images than {model.path.name}: its {', '.join(differ)} "
                         f"differ ({'; '.join(f'{n}: {theirs[n]!r}, not {mine[n]!r}' for n in differ)})",
                         path=guide.path)
    return guide


def _described(model: LoadedModel) -> dict:
    """What a model's images are: the facts a guide must share with the model it guides."""
    return {"bands": model.bands, "size": model.size, "normaliser": model.normalizer.to_dict(), "unit": model.unit,
            "pixel scale": model.pixel_scale, "conditions": [(c.name, c.unit) for c in model.conditions]}


MAX_PIXEL_SCALE = 3600.0  # arcsec per pixel (a degree): beyond it a "pixel scale" is no image's


def checked_facts(meta: dict, normalizer: Normalizer, unet, path) -> np.ndarray:
    """The (C,) calibration factors of a model file, once every fact `LoadedModel` reads from its metadata is
    checked (InputError naming ``path``): the network's bands against the normaliser's, ``pixel_scale`` (None, or
    arcsec per pixel in (0, MAX_PIXEL_SCALE]), ``unit``, ``data.sky_rms`` (one value >= 0 per band), the
    ``conditions`` (`Condition.from_dict`, as many as the network takes, distinct) and the calibration
    (factors within `weights.FACTOR_RANGE`, for the model's own bands). The normaliser, the network and the
    denoiser's settings check themselves (`Normalizer.from_dict`, `weights.load_denoiser`).
    """
    from galgen.conditioning import Condition

    bands = normalizer.bands
    if unet.bands != len(bands) or meta.get("bands", bands) != bands:
        raise InputError(f"the network takes {unet.bands} bands, the normaliser has {bands!r} and the metadata "
                         f"says {meta.get('bands', bands)!r}", path=path)
    scale = meta.get("pixel_scale")
    if scale is not None and not (weights.is_real(scale) and 0 < scale <= MAX_PIXEL_SCALE):
        raise InputError(f"pixel scale {scale!r} is not a number of arcsec per pixel in (0, {MAX_PIXEL_SCALE:g}]",
                         path=path)
    unit = meta.get("unit")
    if unit is not None and not (isinstance(unit, str) and unit.strip()):
        raise InputError(f"flux unit {unit!r} is not a name", path=path)
    data = meta.get("data", {})
    sky = data.get("sky_rms") if isinstance(data, dict) else None
    if not isinstance(data, dict) or (sky and not (isinstance(sky, list) and len(sky) == len(bands)
                                                   and all(weights.is_real(v) and v >= 0 for v in sky))):
        raise InputError(f"the training data's sky RMS {sky!r} is not one number >= 0 per band ({bands})", path=path)
    conditions = meta.get("conditions", [])
    if not isinstance(conditions, list):
        raise InputError(f"conditions {conditions!r} are not a list", path=path)
    names = [Condition.from_dict(c, path=path).name.lower() for c in conditions]
    if len(names) != unet.conditions or len(set(names)) != len(names):
        raise InputError(f"the metadata lists {len(names)} conditions ({', '.join(names) or 'none'}), the network "
                         f"takes {unet.conditions} distinct ones", path=path)
    return calibration_factors(meta, bands, path)


def calibration_factors(meta: dict, bands: str, path) -> np.ndarray:
    """(C,) float32 flux factors of a model file's ``calibration`` (ones when uncalibrated or for a band it
    leaves out), each checked to be a number within `weights.FACTOR_RANGE`: InputError naming ``path``."""
    calibration = meta.get("calibration", {})
    stored = calibration.get("factors", {}) if isinstance(calibration, dict) else None
    if not isinstance(stored, dict):
        raise InputError(f"calibration {calibration!r} holds no table of factors", path=path)
    low, high = weights.FACTOR_RANGE
    for band, factor in stored.items():
        if band not in list(bands):
            raise InputError(f"calibration factor for band {band!r}, which the model has not ({bands})", path=path)
        if not (weights.is_real(factor) and low <= factor <= high):
            raise InputError(f"calibration factor {band} {factor!r} is not a number in [{low:g}, {high:g}]",
                             path=path)
    return np.array([float(stored.get(band, 1.0)) for band in bands], dtype=np.float32)


def draw(model: LoadedModel, indices, *, seed: int, sigmas: torch.Tensor, sampler: str, exact: bool = True,
         advance: Callable[[], None] | None = None, labels: torch.Tensor | None = None,
         guidance: float = 0.0, guide: LoadedModel | None = None, autoguidance: float = 0.0) -> torch.Tensor:
    """Images ``indices`` of run ``seed`` in model space (B, C, H, W), float32 on the model's device.

    Noise comes from one generator per image seeded by (seed, index) (runtime.ImageNoise), so
    with ``exact`` an image is bit-identical whatever batch it is drawn in. ``labels`` (B, K),
    normalised, condition a conditional model (``guidance``, ``guide``, ``autoguidance``:
    `LoadedModel.denoise`).
    """
    from functools import partial

    from galgen.engine import runtime, samplers

    indices = list(indices)
    noise = runtime.ImageNoise(seed, indices, device=model.device)
    shape = (len(indices), len(model.bands), model.size, model.size)
    x = float(sigmas[0]) * noise(torch.empty(shape, device=model.device))
    callback = None if advance is None else (lambda *_: advance())
    with torch.no_grad():
        denoise = partial(model.denoise, exact=exact, labels=labels, guidance=guidance, guide=guide,
                          autoguidance=autoguidance)
        return samplers.run_sampler(sampler, denoise, x, sigmas, noise=noise, callback=callback)
