"""Training: learning at all, exact resume, reproducibility, DDP equivalence, and `galgen train`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from galgen.cli import app
from galgen.engine.denoiser import Denoiser
from galgen.engine.train import TrainConfig, _batch, _dihedral, checkpoint_path, train
from galgen.engine.unet import UNet, UNetConfig
from galgen.engine.weights import load_denoiser, read_metadata
from galgen.errors import InputError

SMALL = UNetConfig(bands=3, size=16, base=16, mults=(1, 2, 2), attention=(8,), heads=2, groups=4)
QUICK = dict(batch=4, warmup=2, log_every=1, checkpoint_every=0)



@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(-1, 1, (10, 3, 16, 16)).astype(np.float32)


def same_tensors(a, b) -> bool:
    a, b = load_file(str(a)), load_file(str(b))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_network_overfits_one_fixed_batch():
    # fixed images, timesteps and noise: the loss must fall by 10x if network + loss + optimiser work
    torch.manual_seed(0)
    denoiser = Denoiser(UNet(SMALL))
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    t, noise = torch.tensor([50, 300, 600, 900]), torch.randn(4, 3, 16, 16)
    optimizer = torch.optim.AdamW(denoiser.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = denoiser.loss(x0, t=t, noise=noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert min(losses[-5:]) < losses[0] / 10


def test_resumed_run_repeats_the_uninterrupted_one_bit_for_bit(images, tmp_path):
    whole = train(images, unet=SMALL, config=TrainConfig(steps=6, **QUICK), output=tmp_path / "whole.safetensors")
    first = train(images, unet=SMALL, config=TrainConfig(steps=3, **QUICK), output=tmp_path / "part.safetensors")
    assert first.checkpoint == checkpoint_path(tmp_path / "part.safetensors")
    assert read_metadata(first.checkpoint)["step"] == 3
    rest = train(images, unet=SMALL, config=TrainConfig(steps=6, **QUICK), output=tmp_path / "part.safetensors",
                 resume=first.checkpoint)
    assert first.losses + rest.losses == whole.losses
    assert rest.step == 6 and read_metadata(rest.output)["step"] == 6
    assert same_tensors(whole.output, rest.output)
    assert same_tensors(whole.checkpoint, rest.checkpoint)


def test_resuming_with_another_prediction_fine_tunes_and_restarts_the_ema(images, tmp_path):
    eps = train(images, unet=SMALL, config=TrainConfig(steps=3, prediction="eps", **QUICK),
                output=tmp_path / "eps.safetensors")
    config = TrainConfig(steps=5, prediction="v", **QUICK)
    v = train(images, unet=SMALL, config=config, output=tmp_path / "v.safetensors", resume=eps.checkpoint)
    meta = read_metadata(v.checkpoint)
    assert (meta["prediction"], meta["train"]["prediction"], meta["ema_from"], meta["step"]) == ("v", "v", 3, 5)
    denoiser, _ = load_denoiser(v.output)
    assert denoiser.prediction == "v" and load_denoiser(eps.output)[0].prediction == "eps"
    # the EMA restarted from the network at step 3 (not the eps run's average), and its warm-up
    # decay (1 + k) / (10 + k) counts from there: two updates later it is exactly this mix
    start = load_file(str(eps.checkpoint))
    end = load_file(str(v.checkpoint))
    key = next(k for k in start if k.startswith("model.") and k.endswith("weight"))
    ema = key.replace("model.", "ema.", 1)
    d1, d2 = 1 / 10, 2 / 11  # decays of the first two EMA updates after the restart
    mid = train(images, unet=SMALL, config=TrainConfig(steps=4, prediction="v", **QUICK),
                output=tmp_path / "mid.safetensors", resume=eps.checkpoint)
    net4 = load_file(str(mid.checkpoint))[key]
    expected = d2 * (d1 * start[key] + (1 - d1) * net4) + (1 - d2) * end[key]
    assert torch.allclose(end[ema], expected, atol=1e-6)
    # and a plain resume of the v run goes on exactly (the restart point travels in the checkpoint)
    again = train(images, unet=SMALL, config=TrainConfig(steps=6, prediction="v", **QUICK),
                  output=tmp_path / "mid.safetensors", resume=mid.checkpoint)
    whole = train(images, unet=SMALL, config=TrainConfig(steps=6, prediction="v", **QUICK),
                  output=tmp_path / "v.safetensors", resume=v.checkpoint)
    assert same_tensors(again.checkpoint, whole.checkpoint)


def test_same_seed_same_run_other_seed_other_run(images, tmp_path):
    config = TrainConfig(steps=3, seed=5, **QUICK)
    a = train(images, unet=SMALL, config=config, output=tmp_path / "a.safetensors")
    b = train(images, unet=SMALL, config=config, output=tmp_path / "b.safetensors")
    c = train(images, unet=SMALL, config=TrainConfig(steps=3, seed=6, **QUICK), output=tmp_path / "c.safetensors")
    assert a.losses == b.losses and same_tensors(a.output, b.output)
    assert a.losses != c.losses


def test_each_steps_draws_are_a_pure_function_of_seed_step_and_position(images):
    labels = np.random.default_rng(1).normal(size=(len(images), 2))
    config = TrainConfig(steps=10, batch=4, seed=3, label_dropout=0.5)
    whole = _batch(images, step=7, positions=range(4), config=config, labels=labels)
    halves = [_batch(images, step=7, positions=range(r * 2, r * 2 + 2), config=config, labels=labels)
              for r in range(2)]
    for full, *parts in zip(whole, *halves):
        assert torch.equal(full.nan_to_num(9.0), torch.cat(parts).nan_to_num(9.0))
    again = _batch(images, step=7, positions=range(4), config=config, labels=labels)
    assert all(torch.equal(a.nan_to_num(9.0), b.nan_to_num(9.0)) for a, b in zip(whole, again))
    other = _batch(images, step=8, positions=range(4), config=config, labels=labels)
    assert not torch.equal(whole[2], other[2])


def test_labels_are_dropped_at_the_configured_rate_whole_rows_at_a_time(images):
    labels = np.arange(2.0 * len(images)).reshape(len(images), 2)
    config = TrainConfig(steps=400, batch=5, label_dropout=0.3, augment=False)
    rows = torch.cat([_batch(images, step=k, positions=range(5), config=config, labels=labels)[4] for k in range(200)])
    dropped = torch.isnan(rows)
    assert torch.equal(dropped[:, 0], dropped[:, 1])  # a row goes whole: the image is unconditional
    assert 0.25 < dropped[:, 0].float().mean() < 0.35
    kept = rows[~dropped[:, 0]]
    assert set(kept[:, 0].tolist()) <= set(labels[:, 0].tolist())
    unlabelled = TrainConfig(steps=2, batch=5)
    assert _batch(images, step=0, positions=range(5), config=unlabelled)[4] is None


def test_a_conditional_model_learns_to_use_its_labels(tmp_path):
    """Two populations told apart only by their label: the trained denoiser follows the label."""
    rng = np.random.default_rng(0)
    bright = np.full((8, 3, 16, 16), 0.8, dtype=np.float32) + rng.normal(0, 0.01, (8, 3, 16, 16)).astype(np.float32)
    dark = -bright
    images = np.concatenate([bright, dark])
    labels = np.concatenate([np.ones((8, 1)), -np.ones((8, 1))]).astype(np.float32)
    unet = UNetConfig(bands=3, size=16, base=16, mults=(1, 2, 2), attention=(8,), heads=2, groups=4, conditions=1)
    config = TrainConfig(steps=60, batch=8, lr=2e-3, warmup=1, ema=0.0, label_dropout=0.2, checkpoint_every=0,
                         log_every=10, prediction="v", bf16=False)
    result = train(images, unet=unet, config=config, output=tmp_path / "c.safetensors", labels=labels)
    denoiser, meta = load_denoiser(result.output)
    noise = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 5.0
    with torch.no_grad():
        up = denoiser(noise, torch.full((2,), 5.0), torch.ones(2, 1)).mean()
        down = denoiser(noise, torch.full((2,), 5.0), -torch.ones(2, 1)).mean()
    assert meta["unet"]["conditions"] == 1
    assert up > 0.3 and down < -0.3  # from pure noise, each label gives its own population


def test_labels_that_do_not_fit_the_network_are_an_input_error(images, tmp_path):
    unet = UNetConfig(bands=3, size=16, base=16, mults=(1, 2, 2), attention=(8,), heads=2, groups=4, conditions=2)
    with pytest.raises(InputError, match="labels have shape"):
        train(images, unet=unet, config=TrainConfig(steps=1, **QUICK), output=tmp_path / "x.safetensors",
              labels=np.zeros((len(images), 3)))
    with pytest.raises(InputError, match="labels have shape"):
        train(images, unet=unet, config=TrainConfig(steps=1, **QUICK), output=tmp_path / "x.safetensors")


def test_an_epoch_visits_every_image_once(images):
    config = TrainConfig(steps=10, batch=5, augment=False)
    seen = torch.cat([_batch(images, step=k, positions=range(5), config=config)[0] for k in (0, 1)])
    rows = {tuple(np.round(r.numpy().ravel()[:4], 5)) for r in seen}
    assert len(rows) == 10


def test_augmentation_is_the_dihedral_group():
    image = torch.arange(9.0).reshape(1, 3, 3)
    turned = [_dihedral(image, k) for k in range(8)]
    assert len({tuple(t.ravel().tolist()) for t in turned}) == 8
    assert torch.equal(turned[1][0], torch.rot90(image[0], 1))
    assert torch.equal(turned[4][0], image[0].flip(-1))


@pytest.mark.slow  # 60 real optimiser steps: about 5 s
def test_train_itself_lowers_the_loss():
    # one fixed batch of 4 (batch = dataset size, no augmentation): train() must fit it, so a broken
    # optimiser step, loss or data path fails here
    x = np.random.default_rng(3).uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32)
    config = TrainConfig(steps=60, batch=4, lr=3e-3, warmup=1, log_every=1, checkpoint_every=0, augment=False,
                         bf16=False, prediction="eps")
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        result = train(x, unet=SMALL, config=config, output=f"{work}/m.safetensors")
    first, last = np.mean(result.losses[:5]), np.mean(result.losses[-10:])
    assert last < first / 2, (first, last)


def test_a_periodic_checkpoint_resumes_exactly(images, tmp_path):
    import shutil as sh

    config = TrainConfig(steps=5, batch=4, warmup=2, log_every=1, checkpoint_every=2)
    kept = tmp_path / "step2.ckpt.safetensors"

    def keep_step_two(step, loss):  # called before step `step`'s own checkpoint: step 2's exists at step 3
        if step == 3:
            sh.copy(checkpoint_path(tmp_path / "whole.safetensors"), kept)

    whole = train(images, unet=SMALL, config=config, output=tmp_path / "whole.safetensors", callback=keep_step_two)
    assert read_metadata(kept)["step"] == 2
    rest = train(images, unet=SMALL, config=config, output=tmp_path / "rest.safetensors", resume=kept)
    assert rest.losses == whole.losses[2:]
    assert same_tensors(whole.output, rest.output)


def test_resume_refuses_what_it_cannot_continue(images, tmp_path):
    first = train(images, unet=SMALL, config=TrainConfig(steps=2, **QUICK), output=tmp_path / "a.safetensors")
    cases = [
        (first.output, SMALL, TrainConfig(steps=3, **QUICK), "not a training checkpoint"),
        (first.checkpoint, UNetConfig(**{**SMALL.to_dict(), "base": 32}), TrainConfig(steps=3, **QUICK),
         "another network configuration"),
        (first.checkpoint, SMALL, TrainConfig(steps=3, schedule="cosine", **QUICK), "linear schedule"),
        (first.checkpoint, SMALL, TrainConfig(steps=1, **QUICK), "beyond the 1 steps asked for"),
    ]
    for resume, unet, config, message in cases:
        with pytest.raises(InputError, match=message):
            train(images, unet=unet, config=config, output=tmp_path / "b.safetensors", resume=resume)
    assert not (tmp_path / "b.safetensors").exists()


def test_nan_training_data_is_an_input_error(tmp_path):
    bad = np.zeros((4, 3, 16, 16), np.float32)
    bad[2, 1, 3, 3] = np.nan
    with pytest.raises(InputError, match="NaN or infinite"):
        train(bad, unet=SMALL, config=TrainConfig(steps=2, **QUICK), output=tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_images_that_do_not_fit_the_model_are_an_input_error(images, tmp_path):
    with pytest.raises(InputError, match=r"shape \(10, 3, 16, 16\).*\(N, 3, 32, 32\)"):
        train(images, unet=UNetConfig(**{**SMALL.to_dict(), "size": 32}), config=TrainConfig(steps=1),
              output=tmp_path / "x.safetensors")
    assert list(tmp_path.iterdir()) == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_with_two_gloo_processes_matches_one_process(dataset, tmp_path):
    # the same global batch of 4, split 2 + 2 over two CPU processes started by torchrun
    args = ["train", str(dataset), "--steps", "3", "--batch", "4", "--no-bf16", "--checkpoint-every", "0"]
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(free_port()),
         "-m", "galgen", *args, "-o", str(tmp_path / "ddp.safetensors"), "--json"],
        capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(run.stdout.strip().splitlines()) == 1  # rank 0 alone reports
    result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "one.safetensors")])
    assert result.exit_code == 0, result.output
    ddp, one = load_file(str(tmp_path / "ddp.safetensors")), load_file(str(tmp_path / "one.safetensors"))
    assert ddp.keys() == one.keys()
    assert max(float((ddp[k] - one[k]).abs().max()) for k in one) < 1e-6


# --- the command line -----------------------------------------------------------------------------


@pytest.fixture
def dataset(tmp_path):
    return write_dataset(tmp_path)


def write_dataset(tmp_path):
    """A 16 px dataset in galgen's on-disk format (images.npy + dataset.json), written by hand."""
    path = tmp_path / "data"
    path.mkdir()
    np.save(path / "images.npy", np.random.default_rng(1).uniform(-1, 1, (6, 3, 16, 16)).astype(np.float32))
    meta = {"format": "galgen-dataset", "format_version": 1, "bands": "grz", "size": 16, "pixel_scale": 0.262,
            "unit": "nanomaggy", "count": 6, "command": "test",
            "normalizer": {"bands": "grz", "lower": [0, 0, 0], "upper": [5, 5, 5]},
            "normalizer_choice": {"sky_rms": [0.007, 0.013, 0.029]}}
    (path / "dataset.json").write_text(json.dumps(meta))
    return path


def test_cli_trains_resumes_and_writes_a_self_describing_model(dataset, tmp_path):
    out = tmp_path / "model.safetensors"
    runner = CliRunner()
    args = ["train", str(dataset), "-o", str(out), "--steps", "2", "--batch", "2", "--seed", "3", "--schedule",
            "cosine", "--loss", "l1", "--no-bf16", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["step"] == 2 and summary["output"] == str(out)
    meta = read_metadata(out)
    assert (meta["schedule"], meta["loss"], meta["step"], meta["bands"]) == ("cosine", "l1", 2, "grz")
    assert meta["normalizer"]["upper"] == [5, 5, 5] and meta["unet"]["size"] == 16
    assert meta["train"]["seed"] == 3 and meta["data"]["count"] == 6
    assert meta["data"]["sky_rms"] == [0.007, 0.013, 0.029]  # the noise its draws carry (inpainting's STD)
    denoiser, _ = load_denoiser(out)
    assert denoiser.schedule == "cosine"
    # resuming keeps the checkpoint's settings (cosine, l1, seed 3) and goes on to --steps
    result = runner.invoke(app, ["train", str(dataset), "-o", str(out), "--steps", "3",
                                 "--resume", str(checkpoint_path(out)), "--json"])
    assert result.exit_code == 0, result.output
    meta = read_metadata(out)
    assert (meta["step"], meta["schedule"], meta["train"]["seed"], meta["train"]["bf16"]) == (3, "cosine", 3, False)


def test_cli_trains_in_the_precision_the_hardware_chose_and_a_resume_keeps_it(dataset, tmp_path, monkeypatch):
    from galgen.engine import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: None)
    monkeypatch.setattr(runtime, "cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(runtime, "cpu_arch", lambda: "x86_64")
    out = tmp_path / "model.safetensors"
    runner = CliRunner()
    args = ["train", str(dataset), "-o", str(out), "--batch", "2", "--device", "cpu", "--checkpoint-every", "0"]
    result = runner.invoke(app, [*args, "--steps", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["precision"] == {"dtype": "float32", "bf16": False, "reason": "cpu AVX2 has no bf16 units"}
    assert read_metadata(out)["train"]["bf16"] is False
    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: "AMX-BF16")  # another machine: the checkpoint wins
    result = runner.invoke(app, [*args, "--steps", "2", "--resume", str(checkpoint_path(out))])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith("; float32 (kept from the checkpoint, bf16=False, for an exact resume)")
    assert read_metadata(out)["train"]["bf16"] is False
    result = runner.invoke(app, [*args, "--steps", "3", "--resume", str(checkpoint_path(out)), "--bf16", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["precision"]["reason"] == "asked for with bf16=True"
    assert read_metadata(out)["train"]["bf16"] is True


def test_the_engine_resolves_an_open_precision_before_it_records_it(images, tmp_path, monkeypatch):
    from galgen.engine import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: None)
    config = TrainConfig(steps=1, batch=2, checkpoint_every=0, log_every=1)
    assert config.bf16 is None
    train(images, unet=SMALL, config=config, output=tmp_path / "m.safetensors")
    assert read_metadata(tmp_path / "m.safetensors")["train"]["bf16"] is False


def test_cli_refuses_bad_input_in_one_line(dataset, tmp_path):
    runner = CliRunner()
    out = tmp_path / "m.safetensors"
    cases = [
        (["train", str(tmp_path / "absent"), "-o", str(out)], "no such dataset"),
        (["train", str(dataset), "-o", str(out), "--schedule", "sqrt"], "unknown schedule"),
        (["train", str(dataset), "-o", str(out), "--prediction", "x0"], "unknown prediction"),
        (["train", str(dataset), "-o", str(out), "--preset", "huge"], "unknown preset"),
        (["train", str(dataset), "-o", str(out), "--device", "tpu"], "device"),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    out.write_bytes(b"x")
    result = runner.invoke(app, ["train", str(dataset), "-o", str(out)])
    assert result.exit_code == 2 and "already exists" in result.output
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    meta = json.loads((other / "dataset.json").read_text())
    (other / "dataset.json").write_text(json.dumps({**meta, "normalizer": {**meta["normalizer"], "upper": [6, 6, 6]}}))
    runner.invoke(app, ["train", str(dataset), "-o", str(tmp_path / "a.safetensors"), "--steps", "1", "--batch", "2"])
    result = runner.invoke(app, ["train", str(other), "-o", str(tmp_path / "a.safetensors"), "--steps", "2",
                                 "--resume", str(tmp_path / "a.ckpt.safetensors")])
    assert result.exit_code == 2 and "another normalisation" in result.output
    np.save(other / "images.npy", np.zeros((6, 3, 32, 32), np.float32))
    (other / "dataset.json").write_text(json.dumps({**meta, "size": 32}))
    result = runner.invoke(app, ["train", str(other), "-o", str(tmp_path / "a.safetensors"), "--steps", "2",
                                 "--resume", str(tmp_path / "a.ckpt.safetensors")])
    assert result.exit_code == 2 and "checkpoint is for 3 bands of 16 px, the data has 3 of 32 px" in result.output


@pytest.mark.slow  # an interpreter start-up importing torch
def test_python_dash_m_galgen_train_runs_as_a_subprocess(dataset, tmp_path):
    out = tmp_path / "sub.safetensors"
    run = subprocess.run(
        [sys.executable, "-m", "galgen", "train", str(dataset), "-o", str(out), "--steps", "1", "--batch", "2"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(f"wrote {out} (step 1")
    assert read_metadata(out)["kind"] == "galgen-model"


def test_edm_training_measures_sigma_data_and_the_weights_file_keeps_it(images, tmp_path):
    from galgen.engine.train import measure_sigma_data

    assert measure_sigma_data(np.full((5, 3, 4, 4), -0.5, np.float32)) == pytest.approx(0.5)
    config = TrainConfig(steps=2, prediction="edm", p_mean=-1.0, p_std=0.8, **QUICK)
    result = train(images, unet=SMALL, config=config, output=tmp_path / "edm.safetensors")
    assert np.isfinite(result.losses).all()
    denoiser, meta = load_denoiser(result.output)
    measured = float(np.sqrt(np.mean(images.astype(np.float64) ** 2)))
    assert denoiser.prediction == "edm" and denoiser.sigma_data == pytest.approx(measured, rel=1e-6)
    assert (denoiser.p_mean, denoiser.p_std) == (-1.0, 0.8) and meta["train"]["sigma_data"] == pytest.approx(measured)


def test_cli_activation_is_stored_kept_on_resume_and_checked(dataset, tmp_path):
    runner = CliRunner()
    out = tmp_path / "silu.safetensors"
    base = ["train", str(dataset), "-o", str(out), "--batch", "2", "--no-bf16"]
    result = runner.invoke(app, [*base, "--steps", "1", "--activation", "silu"])
    assert result.exit_code == 0, result.output
    assert read_metadata(out)["unet"]["activation"] == "silu"
    denoiser, _ = load_denoiser(out)
    assert any(isinstance(m, torch.nn.SiLU) for m in denoiser.modules())
    resumed = runner.invoke(app, [*base, "--steps", "2", "--resume", str(checkpoint_path(out)), "--activation", "silu"])
    assert resumed.exit_code == 0, resumed.output
    assert read_metadata(out)["unet"]["activation"] == "silu"
    other = runner.invoke(app, [*base, "--steps", "3", "--resume", str(checkpoint_path(out)), "--activation", "mish"])
    assert other.exit_code == 2 and "checkpoint's network uses silu" in other.output
    bad = runner.invoke(app, ["train", str(dataset), "-o", str(tmp_path / "x.safetensors"), "--activation", "gelu"])
    assert bad.exit_code == 2 and "unknown activation 'gelu'" in bad.output and "Traceback" not in bad.output


def test_the_default_parametrisation_is_edm_and_old_files_read_as_eps():
    """EDM measured best at equal compute (docs/training.md); a file from before the field existed trained eps."""
    assert TrainConfig().prediction == "edm"
    old = {k: v for k, v in TrainConfig().to_dict().items() if k != "prediction"}
    assert TrainConfig.from_dict(old).prediction == "eps"
