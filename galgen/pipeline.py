"""Plain functions joining FITS cubes and the normaliser to the engine.

The flow is one call per arrow: flux cube -> ``LoadedModel.to_model`` -> tensor in [-1, 1] ->
sampler over ``LoadedModel.denoise`` -> ``LoadedModel.to_flux`` -> flux cube + provenance.
This module loads a model once and carries everything a weights file says about it (bands,
size, pixel scale, normaliser, calibration, sha256); `sample`, `inpaint` and `desify` build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from galgen.engine import runtime, weights
from galgen.errors import InputError
from galgen.normalize import Normalizer

BUNDLED_MODEL = "default.safetensors"


def bundled_model_path() -> Path:
    """Where the default model ships inside the package (galgen/models/)."""
    return Path(str(files("galgen.models") / BUNDLED_MODEL))


@dataclass
class LoadedModel:
    """A denoiser ready to run, with the facts of its weights file."""

    denoiser: torch.nn.Module
    meta: dict
    path: Path
    sha256: str
    device: torch.device
    bf16: bool
    normalizer: Normalizer
    factors: np.ndarray = field(repr=False)  # (C,) calibration multipliers, ones when uncalibrated

    @property
    def bands(self) -> str:
        return self.normalizer.bands

    @property
    def size(self) -> int:
        return int(self.meta["unet"]["size"])

    @property
    def pixel_scale(self) -> float | None:
        scale = self.meta.get("pixel_scale")
        return None if scale is None else float(scale)

    @property
    def calibrated(self) -> bool:
        return "calibration" in self.meta

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """D(x, sigma) for the samplers: the network under bf16 autocast, the result in float32."""
        with torch.no_grad(), runtime.autocast(self.device, enabled=self.bf16):
            return self.denoiser(x, sigma).float()

    def to_flux(self, x) -> np.ndarray:
        """Model space [-1, 1] (N, C, H, W) -> calibrated flux in the model's unit (float32)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().float().cpu().numpy()
        flux = self.normalizer.inverse(np.clip(x, -1.0, 1.0))
        return (flux * self.factors[:, None, None]).astype(np.float32)

    def to_model(self, flux: np.ndarray) -> np.ndarray:
        """Flux (..., C, H, W) -> model space [-1, 1]: calibration divided out, then normalised."""
        return self.normalizer.forward(np.asarray(flux, dtype=np.float32) / self.factors[:, None, None])

    def provenance(self) -> dict:
        """The provenance fields every output made with this model carries."""
        return {"model_sha256": self.sha256, "model": self.path.name, "schedule": self.meta.get("schedule")}


def load_model(model: str | Path | None = None, *, device: str = "auto", bf16: bool = True) -> LoadedModel:
    """Load a weights file (default: the bundled model) onto a device, validated.

    Raises InputError naming the file when it is missing, corrupt or lacks a normaliser.
    """
    path = bundled_model_path() if model is None else Path(model)
    if not path.is_file():
        hint = " (the bundled model is missing from this install; pass --model)" if model is None else ""
        raise InputError(f"no such weights file{hint}", path=path)
    try:
        where = runtime.pick_device(device)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    denoiser, meta = weights.load_model(path, device=where)
    if "normalizer" not in meta:
        raise InputError("weights file has no normaliser (was it written by 'galgen train'?)", path=path)
    normalizer = Normalizer.from_dict(meta["normalizer"])
    factors = np.ones(len(normalizer.bands), dtype=np.float32)
    for i, band in enumerate(normalizer.bands):
        factors[i] = float(meta.get("calibration", {}).get("factors", {}).get(band, 1.0))
    return LoadedModel(denoiser=denoiser, meta=meta, path=path, sha256=weights.file_sha256(path),
                       device=where, bf16=bf16, normalizer=normalizer, factors=factors)
