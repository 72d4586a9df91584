"""torch.compile: when galgen compiles the network, and that compiling changes the speed, not the results.

The tests compile with the "aot_eager" backend (dynamo's tracing and autograd, no code generation): the
same path through galgen in seconds instead of a minute and a half of inductor's C++ on 2 cores.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from galgen.io.cube import read_cube, read_provenance
from galgen.engine import runtime, weights
from galgen.engine.runtime import COMPILE_PIXELS, compile_on
from galgen.engine.train import TrainConfig, train
from galgen.flows.sample import SampleConfig, default_batch, mock_name, run
from galgen.model import load_model
from tiny_model import NORMALIZER, TINY, make_tiny_model


@pytest.fixture
def quick_compiler(monkeypatch):
    monkeypatch.setattr(runtime, "COMPILE_BACKEND", "aot_eager")


def test_compiling_is_on_by_default_only_on_a_gpu_and_for_sampling_only_for_long_runs():
    assert compile_on("cpu", None) is False
    assert compile_on("cuda", None) is True  # training: always pays back on a GPU
    assert compile_on("cuda:1", None, pixels=COMPILE_PIXELS) is True
    assert compile_on("cuda", None, pixels=COMPILE_PIXELS - 1) is False
    assert compile_on("cuda", None, pixels=1000 * 256**2) is True  # sample -n 1000 at 256 px
    assert compile_on("cuda", None, pixels=1000 * 64**2) is False  # ... but not at 64 px
    assert compile_on("cpu", True) is True and compile_on("cuda", False) is False  # asked: as asked


def test_the_default_batch_is_8_on_the_cpu_and_a_million_pixels_on_a_gpu():
    def model(device, size):
        return SimpleNamespace(device=torch.device(device), size=size)

    assert default_batch(model("cpu", 64)) == 8
    assert default_batch(model("cuda", 64)) == 256
    assert default_batch(model("cuda", 256)) == 16
    assert default_batch(model("cuda", 1024)) == 8


def test_training_under_compile_gives_the_eager_losses_and_the_same_weights_file(tmp_path, quick_compiler):
    images = np.random.default_rng(0).uniform(-1, 1, (16, 3, 16, 16)).astype(np.float32)
    config = TrainConfig(steps=3, batch=4, lr=1e-3, warmup=1, checkpoint_every=0, log_every=1, prediction="v")
    runs = {c: train(images, unet=TINY, config=config, output=tmp_path / f"{c}.safetensors", device="cpu",
                     metadata={"normalizer": NORMALIZER}, compile=c) for c in (False, True)}
    np.testing.assert_allclose(runs[True].losses, runs[False].losses, rtol=1e-5)
    eager, compiled = (weights.load_denoiser(runs[c].output)[0].net.state_dict() for c in (False, True))
    assert list(compiled) == list(eager)  # no "_orig_mod." prefixes: the file loads anywhere
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-4, atol=1e-6)


def test_sampling_under_compile_matches_eager_and_says_so_in_the_header(tmp_path, quick_compiler):
    model_file = make_tiny_model(tmp_path / "tiny.safetensors")
    for compiled in (False, True):
        run(tmp_path / str(compiled), model=load_model(model_file, device="cpu"),
            config=SampleConfig(count=3, steps=3, compile=compiled, workers=1))
    for i in range(3):
        name = mock_name(i, 3)
        eager, compiled = read_cube(tmp_path / "False" / name).data, read_cube(tmp_path / "True" / name).data
        np.testing.assert_allclose(compiled, eager, rtol=1e-4, atol=1e-4)
        assert read_provenance(tmp_path / "True" / name)["compiled"] is True
        assert "compiled" not in read_provenance(tmp_path / "False" / name)
