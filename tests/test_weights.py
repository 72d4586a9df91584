"""Weights files: self-describing safetensors, validated on load, calibrated atomically."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import torch
from safetensors.torch import save_file

from galgen.engine.denoiser import Denoiser
from galgen.engine.unet import UNet, UNetConfig
from galgen.engine.weights import (
    CHECKPOINT_KIND,
    MODEL_KIND,
    file_sha256,
    load_denoiser,
    read_metadata,
    save_weights,
    write_calibration,
)
from galgen.errors import InputError

SMALL = UNetConfig(bands=3, size=16, base=16, mults=(1, 2, 2), attention=(8,), heads=2, groups=4)
NORMALIZER = {"bands": "grz", "lower": [-0.1, -0.1, -0.2], "upper": [5.0, 5.0, 6.0]}


def metadata(config=SMALL, **extra):
    return {"kind": MODEL_KIND, "unet": config.to_dict(), "schedule": "cosine", "timesteps": 1000, "loss": "l1",
            "normalizer": NORMALIZER, "pixel_scale": 0.262, "step": 12, **extra}


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(0)
    net = UNet(SMALL)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.05)
    return save_weights(tmp_path / "model.safetensors", net.state_dict(), metadata()), net


def test_round_trip_gives_the_same_network_and_metadata(model_file):
    path, net = model_file
    denoiser, meta = load_denoiser(path)
    assert isinstance(denoiser, Denoiser) and not denoiser.training
    assert meta == metadata() == read_metadata(path)
    assert denoiser.schedule == "cosine"
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([3.0, 700.0])
    with torch.no_grad():
        assert torch.equal(denoiser.net(x, t), net(x, t))


def test_checkpoints_load_their_ema_weights(tmp_path, model_file):
    _, net = model_file
    tensors = {f"ema.{k}": v for k, v in net.state_dict().items()}
    tensors.update({f"model.{k}": torch.zeros_like(v) for k, v in net.state_dict().items()})
    path = save_weights(tmp_path / "run.ckpt.safetensors", tensors, metadata(kind=CHECKPOINT_KIND))
    denoiser, meta = load_denoiser(path)
    assert meta["kind"] == CHECKPOINT_KIND
    assert all(torch.equal(denoiser.net.state_dict()[k], v) for k, v in net.state_dict().items())


def test_truncated_file_is_an_input_error(model_file, tmp_path):
    path, _ = model_file
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[: os.path.getsize(path) - 1000])
    with pytest.raises(InputError, match="truncated") as err:
        load_denoiser(cut)
    assert str(cut) in str(err.value)
    cut.write_bytes(path.read_bytes()[:5])
    with pytest.raises(InputError, match="too short"):
        read_metadata(cut)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff" * 64, "bad header length"),
        (len(b"{nope").to_bytes(8, "little") + b"{nope", "not JSON"),
        (b"SIMPLE  =                    T" + b" " * 50, "bad header length"),
        (len(b'{"w": 1}').to_bytes(8, "little") + b'{"w": 1}', "bad tensor table"),
        (len(b"[1, 2]").to_bytes(8, "little") + b"[1, 2]", "not a table"),
    ],
)
def test_garbage_is_an_input_error(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        load_denoiser(path)


def test_foreign_safetensors_is_an_input_error(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={"format": "pt"})
    with pytest.raises(InputError, match="not a galgen model"):
        load_denoiser(path)
    save_file({"w": torch.zeros(3)}, str(path), metadata={"galgen": json.dumps({"kind": "lora"})})
    with pytest.raises(InputError, match="no known file kind"):
        read_metadata(path)


def test_weights_that_do_not_fit_their_configuration_are_an_input_error(tmp_path, model_file):
    _, net = model_file
    wider = UNetConfig(**{**SMALL.to_dict(), "base": 32})
    path = save_weights(tmp_path / "mismatch.safetensors", net.state_dict(), metadata(wider))
    with pytest.raises(InputError, match="do not match"):
        load_denoiser(path)
    path = save_weights(tmp_path / "noconfig.safetensors", net.state_dict(), {"kind": MODEL_KIND})
    with pytest.raises(InputError, match="unusable"):
        load_denoiser(path)


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        read_metadata(tmp_path / "absent.safetensors")


def test_write_calibration_in_place_keeps_tensors_and_changes_the_hash(model_file, tmp_path):
    path, net = model_file
    before = file_sha256(path)
    assert before == hashlib.sha256(path.read_bytes()).hexdigest()
    write_calibration(path, path, {"g": 1.18, "r": 1.16, "z": 1.23})
    meta = read_metadata(path)
    assert meta["calibration"] == {"g": 1.18, "r": 1.16, "z": 1.23}
    assert {k: v for k, v in meta.items() if k != "calibration"} == metadata()
    assert file_sha256(path) != before
    denoiser, _ = load_denoiser(path)
    assert all(torch.equal(denoiser.net.state_dict()[k], v) for k, v in net.state_dict().items())
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temporary left behind


def test_a_failed_save_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError):
        save_weights(tmp_path / "nan.safetensors", {"w": torch.zeros(1)}, {"kind": MODEL_KIND, "x": float("nan")})
    assert list(tmp_path.iterdir()) == []
