"""flows.sample: batch- and shard-invariant images, resume, calibration, provenance, worker split."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import assert_fitsverify_clean
from galgen.io.cube import read_cube, read_provenance
from galgen.engine.samplers import select_sigmas
from galgen.engine.weights import file_sha256
from galgen.errors import InputError
from galgen.flows.sample import parse_shard, SampleConfig, draw, mock_name, run, shard_indices, split_for_devices
from galgen.model import load_model
from galgen.model import EXACT_BATCH
from tiny_model import make_tiny_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")


def data_of(directory, count):
    return {i: read_cube(directory / mock_name(i, count)).data for i in range(count)
            if (directory / mock_name(i, count)).exists()}


@pytest.mark.parametrize("bf16", [True, False])
@pytest.mark.parametrize("sampler, steps", [("dpmpp_2m", 4), ("ddpm", 6)])
def test_an_image_is_the_same_bits_in_any_batch(model_file, bf16, sampler, steps):
    model = load_model(model_file, device="cpu", bf16=bf16)
    sigmas = select_sigmas(model.module.sigmas, sampler, steps)
    together = draw(model, range(7), seed=5, sigmas=sigmas, sampler=sampler)
    alone = torch.cat([draw(model, [i], seed=5, sigmas=sigmas, sampler=sampler) for i in range(7)])
    pair = draw(model, [4, 1], seed=5, sigmas=sigmas, sampler=sampler)
    assert torch.equal(together, alone)
    assert torch.equal(pair, together[[4, 1]])
    assert not torch.equal(together[0], together[1])  # images differ from each other
    other_seed = draw(model, [0], seed=6, sigmas=sigmas, sampler=sampler)
    assert not torch.equal(other_seed[0], together[0])


@pytest.mark.parametrize("bf16", [True, False])
def test_exact_mode_calls_the_network_with_fixed_batches_whatever_the_images_around(model_file, bf16, monkeypatch):
    model = load_model(model_file, device="cpu", bf16=bf16)
    seen = []
    forward = model.module.forward
    monkeypatch.setattr(model.module, "forward", lambda x, *a: seen.append(x.shape[0]) or forward(x, *a))
    g = torch.Generator().manual_seed(0)
    x, sigma = torch.randn(11, 3, 16, 16, generator=g), torch.rand(11, generator=g) + 0.1
    eleven = model.denoise(x, sigma, exact=True)
    assert seen == [EXACT_BATCH, EXACT_BATCH]  # 11 images: a full call and a padded one
    for rows in ([3], [3, 0, 10], [9, 3, 5, 1, 2, 0, 4, 8, 7, 6]):  # other places, other neighbours
        assert torch.equal(model.denoise(x[rows], sigma[rows], exact=True), eleven[rows])


def test_files_are_identical_for_batch_1_batch_7_and_a_shard(model_file, tmp_path):
    model = load_model(model_file, device="cpu")
    runs = {}
    for name, batch, shard in (("b1", 1, (1, 1)), ("b7", 7, (1, 1)), ("s23", 2, (2, 3))):
        config = SampleConfig(count=7, seed=3, batch=batch, steps=3, shard=shard)
        result = run(tmp_path / name, model=model, config=config)
        runs[name] = data_of(tmp_path / name, 7)
        assert len(result.written) == len(shard_indices(7, shard)) and result.nfe == 3
    assert sorted(runs["s23"]) == [1, 4]
    for i in range(7):
        assert runs["b1"][i].tobytes() == runs["b7"][i].tobytes()
    for i in (1, 4):
        assert runs["s23"][i].tobytes() == runs["b1"][i].tobytes()


def test_resume_skips_complete_files_and_remakes_the_rest(model_file, tmp_path):
    model = load_model(model_file, device="cpu")
    config = SampleConfig(count=4, seed=1, batch=3, steps=2)
    run(tmp_path, model=model, config=config)
    before = data_of(tmp_path, 4)
    kept = tmp_path / mock_name(0, 4)
    stamp = kept.stat().st_mtime_ns
    for i in (1, 3):
        (tmp_path / mock_name(i, 4)).unlink()
    seen = []
    result = run(tmp_path, model=model, config=config, on_progress=lambda stage, n, total: seen.append(n))
    assert [p.name for p in result.written] == [mock_name(1, 4), mock_name(3, 4)]
    assert len(result.skipped) == 2 and kept.stat().st_mtime_ns == stamp
    assert sum(seen) == pytest.approx(4.0)  # skipped files count as done on the progress bar
    after = data_of(tmp_path, 4)
    assert all(before[i].tobytes() == after[i].tobytes() for i in range(4))
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_mock_of_another_run_is_not_taken_as_done(model_file, tmp_path):
    model = load_model(model_file, device="cpu")
    run(tmp_path, model=model, config=SampleConfig(count=1, seed=1, steps=2))
    with pytest.raises(InputError, match="seed differ"):
        run(tmp_path, model=model, config=SampleConfig(count=1, seed=2, steps=2))


def test_calibration_factors_multiply_the_flux_exactly(model_file, tmp_path):
    factors = {"g": 2.0, "r": 0.5, "z": 1.23}
    calibrated = make_tiny_model(tmp_path / "calibrated.safetensors", calibration={"factors": factors})
    config = SampleConfig(count=2, seed=4, steps=2)
    run(tmp_path / "plain", model=load_model(model_file, device="cpu"), config=config)
    run(tmp_path / "cal", model=load_model(calibrated, device="cpu"), config=config)
    plain, cal = data_of(tmp_path / "plain", 2), data_of(tmp_path / "cal", 2)
    for i in range(2):
        assert np.array_equal(cal[i][0], plain[i][0] * np.float32(2.0))
        assert np.array_equal(cal[i][1], plain[i][1] * np.float32(0.5))
        np.testing.assert_allclose(cal[i][2], plain[i][2] * 1.23, rtol=1e-6)
    provenance = read_provenance(tmp_path / "cal" / mock_name(0, 2))
    assert provenance["calibrated"] is True and provenance["calibration"] == factors
    assert read_provenance(tmp_path / "plain" / mock_name(0, 2))["calibrated"] is False


def test_mock_header_carries_wcs_units_and_provenance(model_file, tmp_path, monkeypatch):
    from galgen.engine import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: "AVX512_BF16")  # the default's choice, on any CPU
    model = load_model(model_file, device="cpu")
    run(tmp_path, model=model, config=SampleConfig(count=3, seed=9, sampler="ddim", steps=2, ra=150.1, dec=2.2),
           command="galgen sample -n 3")
    path = tmp_path / mock_name(2, 3)
    cube = read_cube(path)
    assert cube.bands == "grz" and cube.unit == "nanomaggy" and cube.shape == (3, 16, 16)
    assert cube.pixel_scale == pytest.approx(0.262)
    ra, dec = cube.wcs.all_pix2world([[7.5, 7.5]], 0)[0]
    assert (ra, dec) == (pytest.approx(150.1), pytest.approx(2.2))
    provenance = read_provenance(path)
    expected = {"model_sha256": file_sha256(model_file), "model": "tiny.safetensors", "seed": 9, "index": 2,
                "count": 3, "sampler": "ddim", "steps": 2, "nfe": 2, "schedule": "linear-fine", "bf16": True,
                "precision": "bf16 (cpu has AVX512_BF16)", "exact": True, "command": "galgen sample -n 3",
                "calibrated": False}
    assert {k: provenance[k] for k in expected} == expected
    assert provenance["normaliser"]["bands"] == "grz" and provenance["version"]
    assert_fitsverify_clean(path)


def test_bad_settings_are_input_errors(model_file, tmp_path):
    for text in ("0/3", "4/3", "2", "a/b"):
        with pytest.raises(InputError):
            parse_shard(text)
    with pytest.raises(InputError, match="unknown sampler"):
        SampleConfig(count=1, sampler="euler")
    with pytest.raises(InputError, match="steps"):
        SampleConfig(count=1, steps=0)
    with pytest.raises(InputError, match="steps must be in 1..1000"):
        run(tmp_path / "out", model=load_model(model_file, device="cpu"), config=SampleConfig(count=1, steps=1001))
    assert not (tmp_path / "out").exists()


def test_index_split_over_shards_and_devices_covers_every_image_once():
    assert parse_shard("2/3") == (2, 3)
    assert list(shard_indices(10, (2, 3))) == [1, 4, 7]
    shards = [list(shard_indices(103, (k, 4))) for k in range(1, 5)]
    per_device = [split_for_devices(s, 3) for s in shards]
    every = sorted(i for shard in per_device for share in shard for i in share)
    assert every == list(range(103))
    assert split_for_devices([1, 4, 7, 10, 13], 2) == [[1, 7, 13], [4, 10]]
    assert mock_name(42, 1000) == "mock_000042.fits" and mock_name(5, 10_000_001) == "mock_00000005.fits"


@pytest.mark.slow
def test_two_worker_processes_write_what_one_process_writes(model_file, tmp_path):
    model = load_model(model_file, device="cpu")
    config = SampleConfig(count=5, seed=2, batch=2, steps=2)
    run(tmp_path / "one", model=model, config=config)
    seen = []
    result = run(tmp_path / "two", model=model, config=SampleConfig(count=5, seed=2, batch=2, steps=2, devices=("cpu", "cpu")),
                 on_progress=lambda stage, n, total: seen.append(n))
    assert len(result.written) == 5 and result.devices == ["cpu", "cpu"]
    assert sum(seen) == pytest.approx(5.0)
    one, two = data_of(tmp_path / "one", 5), data_of(tmp_path / "two", 5)
    assert all(one[i].tobytes() == two[i].tobytes() for i in range(5))


@pytest.mark.slow
def test_worker_processes_take_the_parents_precision_and_its_reason(model_file, tmp_path, monkeypatch):
    from galgen.engine import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: None)  # the workers, unpatched, may see bf16 units
    monkeypatch.setattr(runtime, "cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(runtime, "cpu_arch", lambda: "x86_64")
    model = load_model(model_file, device="cpu")
    assert (model.bf16, model.precision.reason) == (False, "cpu AVX2 has no bf16 units")
    config = SampleConfig(count=3, seed=2, steps=2)
    run(tmp_path / "one", model=model, config=config)
    result = run(tmp_path / "two", model=model, config=SampleConfig(count=3, seed=2, steps=2, devices=("cpu", "cpu")))
    assert result.to_dict()["precision"] == {"dtype": "float32", "bf16": False, "reason": "cpu AVX2 has no bf16 units"}
    for i in range(3):
        provenance = read_provenance(tmp_path / "two" / mock_name(i, 3))
        assert (provenance["bf16"], provenance["precision"]) == (False, "float32 (cpu AVX2 has no bf16 units)")
    one, two = data_of(tmp_path / "one", 3), data_of(tmp_path / "two", 3)
    assert all(one[i].tobytes() == two[i].tobytes() for i in range(3))  # exact mode: the same bits in float32


@pytest.mark.slow
def test_a_failing_worker_is_a_runtime_failure_naming_it(model_file, tmp_path):
    from galgen.errors import RuntimeFailure

    model = load_model(model_file, device="cpu")
    with pytest.raises(RuntimeFailure, match="worker 1 on cuda:99"):
        run(tmp_path, model=model, config=SampleConfig(count=4, steps=1, devices=("cpu", "cuda:99")))
    assert not list(tmp_path.glob(".tmp-*"))


def test_cpu_runs_use_one_process_per_core_unless_small(monkeypatch):
    import os

    from types import SimpleNamespace

    from galgen.flows.sample import plan_devices

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    cpu = SimpleNamespace(device=torch.device("cpu"), requested_device="auto")
    assert plan_devices(cpu, SampleConfig(count=1000)) == ["cpu", "cpu"]
    assert plan_devices(cpu, SampleConfig(count=5)) is None  # spawning costs more than it saves
    assert plan_devices(cpu, SampleConfig(count=5, workers=3)) == ["cpu"] * 3
    assert plan_devices(cpu, SampleConfig(count=1000, workers=1)) is None
    assert plan_devices(cpu, SampleConfig(count=1000, shard=(1, 200))) is None  # 5 images in this shard
