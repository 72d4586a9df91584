"""A tiny model for sampling tests: 16 px grz, written exactly as `galgen train` writes it.

One real optimiser step of galgen.engine.train gives the file its metadata (network, schedule,
normaliser, pixel scale, data summary); the weights are then redrawn from N(0, 0.02) so that
every layer shapes the output (a freshly initialised U-Net is close to the identity and predicts
eps = 0). Such a network does not remove the noise: most of its samples clip at the normaliser's
limits, so tests compare the unclipped model-space tensors too.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from galgen.engine import weights
from galgen.engine.train import TrainConfig, train
from galgen.engine.unet import UNetConfig

TINY = UNetConfig(bands=3, size=16, base=16, mults=(1, 2, 2), attention=(8,), heads=2, groups=4)
NORMALIZER = {"bands": "grz", "lower": [-0.035, -0.065, -0.145], "upper": [1.0, 1.5, 2.5]}


# what a conditional tiny model is conditioned on (as `galgen train --condition mag_r,r_e` stores it)
CONDITIONS = [{"name": "mag_r", "unit": "mag", "min": 15.0, "median": 17.5, "max": 19.5, "scale": 1.0},
              {"name": "r_e", "unit": "arcsec", "min": 0.5, "median": 1.5, "max": 4.0, "scale": 0.5}]


def make_tiny_model(path, *, schedule: str = "linear-fine", calibration: dict | None = None,
                    conditions: list[dict] | None = None, weights_seed: int = 1) -> Path:
    """Write a tiny model file at ``path`` (about a second on one core); conditional with ``conditions``;
    ``weights_seed`` draws its weights (another seed: another network of the same images, e.g. a guide)."""
    path = Path(path)
    images = np.random.default_rng(0).uniform(-1, 1, size=(4, 3, 16, 16)).astype(np.float32)
    metadata = {"normalizer": NORMALIZER, "bands": "grz", "pixel_scale": 0.262, "unit": "nanomaggy",
                "command": "galgen train data -o model.safetensors", "data": {"path": "data", "count": 4, "size": 16}}
    unet, labels = TINY, None
    if conditions:
        unet = dataclasses.replace(TINY, conditions=len(conditions))
        labels = np.random.default_rng(1).normal(size=(4, len(conditions))).astype(np.float32)
        metadata["conditions"] = conditions
    train(images, unet=unet, config=TrainConfig(steps=1, batch=2, schedule=schedule, checkpoint_every=0),
          output=path, metadata=metadata, labels=labels)
    meta = weights.read_metadata(path)
    generator = torch.Generator().manual_seed(weights_seed)
    spread = {name: torch.randn(t.shape, generator=generator) * 0.02 for name, t in weights.load_tensors(path).items()}
    if calibration is not None:
        meta["calibration"] = calibration
    return weights.save_weights(path, spread, meta)
