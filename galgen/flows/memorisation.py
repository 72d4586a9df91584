"""The memorisation check that ends `galgen train`: the new model's mocks against the galaxies it never saw.

A model that memorises its training set draws mocks that sit on training images: their distance to the
nearest training image is smaller than that of real galaxies the model never saw (`galgen.holdout`).
The check draws MOCKS mocks as `galgen sample` would (the default sampler and steps; a conditional model
takes labels drawn from its training rows), clipped to [-1, 1], and compares the two distance sets in the
normalised pixel space of the training set (`galgen.metrics.memorization`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from galgen.progress import Progress, stage

MOCKS = 256  # enough to see a drift of the 5 % tail towards the training images (binomial test)
SEED = 0  # the mocks' seed: the check is the same for every run of a model


def check(model_path: Path, training, held_out, *, device, precision, count: int | None = None,
          on_progress: Progress | None = None):
    """The `MemorisationReport` of ``count`` mocks of the model in ``model_path`` against ``training``
    (the rows it was trained on, (N, C, H, W) in model space) and ``held_out`` (the rows kept aside);
    ``count`` mocks, MOCKS by default."""
    import torch

    from galgen.conditioning import draw_requests, normalise
    from galgen.flows.sample import default_batch, draw
    from galgen.metrics.memorization import memorisation_report
    from galgen.model import load_model

    count = MOCKS if count is None else count
    model = load_model(model_path, device=str(device), bf16=precision)
    sampler = model.default_sampler
    sigmas = model.sigmas(sampler)
    requests = draw_requests(model, count=count, seed=SEED)
    batch = default_batch(model)
    advance = stage(on_progress, "memorisation check: mocks", count)
    mocks = []
    for start in range(0, count, batch):
        rows = list(range(start, min(count, start + batch)))
        labels = None if requests is None else torch.from_numpy(normalise(model.conditions, requests.values[rows]))
        drawn = draw(model, rows, seed=SEED, sigmas=sigmas, sampler=sampler, exact=model.exact(None),
                     labels=labels)
        mocks.append(drawn.clamp(-1, 1).float().cpu().numpy())
        advance(len(rows))
    reference = stage(on_progress, "memorisation check: distances", len(training))
    return memorisation_report(np.concatenate(mocks), training, np.asarray(held_out, dtype=np.float32),
                               advance=reference)
