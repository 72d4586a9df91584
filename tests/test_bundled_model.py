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
    assert meta["prediction"] == "v"  # an eps network misplaced its mocks' sky level (docs/sampling.md)
    assert bundled_model_path().stat().st_size < 10 * 2**20  # "a few MB"


@pytest.mark.slow  # the bundled 64 px model samples 8 mocks: about 2 minutes on 2 cores
def test_bundled_model_mocks_have_the_training_sky_level_and_noise():
    """The default sampler keeps the sky of the training images: level 0, noise 0.007 / 0.013 / 0.029
    nanomaggy (simulate). The earlier eps-prediction model put the median mock's sky 2-4 noise RMS
    too high (+0.025 / +0.030 / +0.062) with dpmpp_2m_sde, and its dpmpp_2m mocks had a border RMS
    about ten times too large (docs/sampling.md)."""
    from galgen.engine import samplers
    from galgen.metrics.photometry import border_background
    from galgen.flows.sample import draw

    model = load_model(device="cpu")
    sampler = model.default_sampler
    sigmas = samplers.select_sigmas(model.module.sigmas, sampler, samplers.SAMPLERS[sampler].default_steps)
    flux = model.to_flux(draw(model, range(8), seed=0, sigmas=sigmas, sampler=sampler, exact=False))
    assert flux.shape == (8, 3, 64, 64) and np.isfinite(flux).all()
    level, rms = border_background(flux)
    noise = np.array([0.007, 0.013, 0.029])
    np.testing.assert_allclose(np.median(rms, axis=0), noise, rtol=0.3)
    assert (np.abs(np.median(level, axis=0)) < 0.7 * noise).all(), np.median(level, axis=0)  # old model: 0.016+
