"""The model shipped in galgen/models: present, self-describing, and able to sample."""

import numpy as np
import pytest

from galgen.engine.weights import read_metadata
from galgen.pipeline import bundled_model_path, load_model


def test_bundled_model_describes_itself():
    meta = read_metadata(bundled_model_path())
    assert meta["kind"] == "galgen-model"
    assert (meta["bands"], meta["unet"]["size"]) == ("grz", 64)
    assert meta["pixel_scale"] == pytest.approx(0.262)
    assert meta["schedule"] == "linear-fine" and meta["unit"] == "nanomaggy"
    assert bundled_model_path().stat().st_size < 10 * 2**20  # "a few MB"


def test_bundled_model_mocks_have_the_training_sky_noise():
    """The default sampler keeps the sky noise of the training images (simulate: 0.007 / 0.013 / 0.029
    nanomaggy). A deterministic solver carries the network's errors at high sigma into the result:
    the same model with dpmpp_2m gives a border RMS about ten times too large (docs/sampling.md)."""
    from galgen.engine import samplers
    from galgen.metrics.photometry import border_background
    from galgen.pipeline import DEFAULT_SAMPLER, draw

    model = load_model(device="cpu")
    sigmas = samplers.select_sigmas(model.denoiser.sigmas, DEFAULT_SAMPLER, samplers.SAMPLERS[DEFAULT_SAMPLER].default_steps)
    flux = model.to_flux(draw(model, range(8), seed=0, sigmas=sigmas, sampler=DEFAULT_SAMPLER, exact=False))
    assert flux.shape == (8, 3, 64, 64) and np.isfinite(flux).all()
    _, rms = border_background(flux)
    # the median over images: a few mocks have a sky level below the normaliser's lower limit, clipped flat
    np.testing.assert_allclose(np.median(rms, axis=0), [0.007, 0.013, 0.029], rtol=0.3)
