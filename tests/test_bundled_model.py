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


def test_bundled_model_samples_one_image():
    import torch

    from galgen.engine import samplers
    from galgen.engine.runtime import ImageNoise

    model = load_model(device="cpu")
    sigmas = samplers.select_sigmas(model.denoiser.sigmas, "dpmpp_2m", 3)
    noise = ImageNoise(0, [0])
    x = sigmas[0].item() * noise(torch.empty(1, 3, 64, 64))
    flux = model.to_flux(samplers.run_sampler("dpmpp_2m", model.denoise, x, sigmas.float(), noise=noise))
    assert flux.shape == (1, 3, 64, 64) and np.isfinite(flux).all()
