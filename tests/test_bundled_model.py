"""The model shipped in galgen/models: present, self-describing, and able to sample."""

import numpy as np
import pytest

from galgen.engine.weights import read_metadata
from galgen.model import bundled_model_path, load_model


def test_bundled_model_describes_itself():
    meta = read_metadata(bundled_model_path())
    assert meta["kind"] == "galgen-model"
    assert (meta["bands"], meta["unet"]["size"]) == ("grz", 64)
    assert meta["pixel_scale"] == pytest.approx(0.262)
    assert meta["schedule"] == "linear-fine" and meta["unit"] == "nanomaggy"
    # examples/train_default_model.sh: each choice is measured in docs/training.md
    assert meta["prediction"] == "edm" and meta["normalizer"]["stretch"] == "asinh"
    assert meta["unet"]["activation"] == "silu"
    assert [c["name"] for c in meta["conditions"]] == ["mag_r", "r_e", "q", "g_r"]
    assert bundled_model_path().stat().st_size < 10 * 2**20  # "a few MB"


def test_bundled_model_keeps_the_labels_of_its_training_set():
    """`galgen sample -n` draws each mock's labels from these rows (docs/conditional.md): the 12000
    simulate galaxies of seed 1, in the ranges of galgen simulate's population."""
    model = load_model(device="cpu")
    table = model.label_table()
    assert table.shape == (12000, 4) and np.isfinite(table).all()
    mag_r, r_e, q, g_r = np.median(table, axis=0)
    assert 16 < mag_r < 21 and 0.3 < r_e < 3 and 0.2 < q < 1 and 0 < g_r < 1.5
    for condition, column in zip(model.conditions, table.T):
        assert (condition.min, condition.max) == pytest.approx((column.min(), column.max()), rel=1e-5)


@pytest.mark.slow  # the bundled 64 px model samples 8 mocks: about 30 s on 2 cores
def test_bundled_model_mocks_have_the_training_sky_level_and_noise():
    """The default path (labels drawn from the training rows, the default sampler) keeps the sky of the
    training images: level 0, noise 0.007 / 0.013 / 0.029 nanomaggy (simulate). Earlier eps-prediction
    models put the median mock's sky 2-4 noise RMS too high (docs/sampling.md)."""
    import torch

    from galgen.conditioning import draw_requests, normalise
    from galgen.engine import samplers
    from galgen.flows.sample import draw
    from galgen.metrics.photometry import border_background

    model = load_model(device="cpu")
    sampler = model.default_sampler
    sigmas = samplers.select_sigmas(model.module.sigmas, sampler, samplers.SAMPLERS[sampler].default_steps)
    requests = draw_requests(model, count=8, seed=0)
    labels = torch.from_numpy(normalise(model.conditions, requests.values)).float()
    flux = model.to_flux(draw(model, range(8), seed=0, sigmas=sigmas, sampler=sampler, labels=labels))
    assert flux.shape == (8, 3, 64, 64) and np.isfinite(flux).all()
    level, rms = border_background(flux)
    noise = np.array([0.007, 0.013, 0.029])
    np.testing.assert_allclose(np.median(rms, axis=0), noise, rtol=0.3)
    assert (np.abs(np.median(level, axis=0)) < 0.7 * noise).all(), np.median(level, axis=0)
