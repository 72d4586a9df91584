"""The CUDA path: training, sampling and exact mode on a GPU (skipped where there is none; benchmarks/gpu_check.sh
runs them on one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from galgen.engine.samplers import select_sigmas
from galgen.engine.train import TrainConfig, train
from galgen.flows.sample import draw
from galgen.model import load_model
from tiny_model import NORMALIZER, TINY, make_tiny_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")


def test_training_on_the_gpu_learns_and_writes_weights_the_cpu_loads(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, (16, 3, 16, 16)).astype(np.float32)
    config = TrainConfig(steps=30, batch=8, lr=1e-3, warmup=1, checkpoint_every=0, log_every=1, prediction="v")
    result = train(images, unet=TINY, config=config, output=tmp_path / "m.safetensors", device="cuda",
                   metadata={"normalizer": NORMALIZER, "bands": "grz", "unit": "nanomaggy"})
    assert np.isfinite(result.losses).all() and np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    assert load_model(result.output, device="cpu").device.type == "cpu"


def test_gpu_sampling_agrees_with_the_cpu_in_fp32(model_file):
    sigmas = select_sigmas(load_model(model_file, device="cpu").module.sigmas, "dpmpp_2m", 5)
    cpu = draw(load_model(model_file, device="cpu", bf16=False), range(3), seed=2, sigmas=sigmas, sampler="dpmpp_2m")
    gpu = draw(load_model(model_file, device="cuda", bf16=False), range(3), seed=2, sigmas=sigmas, sampler="dpmpp_2m")
    assert gpu.device.type == "cuda"
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-3)  # same noise (drawn on the CPU), same network


def test_exact_mode_on_the_gpu_is_batch_invariant(model_file):
    model = load_model(model_file, device="cuda")
    sigmas = select_sigmas(model.module.sigmas.cpu(), "dpmpp_2m", 5)
    together = draw(model, range(7), seed=5, sigmas=sigmas, sampler="dpmpp_2m", exact=True)
    alone = torch.cat([draw(model, [i], seed=5, sigmas=sigmas, sampler="dpmpp_2m", exact=True) for i in range(7)])
    assert torch.equal(together, alone)
