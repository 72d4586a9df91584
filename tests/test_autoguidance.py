"""Autoguidance (Karras et al. 2024): a weaker model of the same images guides `sample`; `train --keep-guide`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from galgen.cli import app
from galgen.engine.weights import load_tensors, read_metadata, save_weights
from galgen.io.cube import read_cube, read_provenance
from galgen.model import load_guide, load_model
from tiny_model import CONDITIONS, make_tiny_model

runner = CliRunner()
FAST = ["--steps", "3", "--no-bf16", "--workers", "1"]


@pytest.fixture(scope="module")
def guide_file(tmp_path_factory):
    """A second tiny network of the same images: the weaker model."""
    return make_tiny_model(tmp_path_factory.mktemp("guide") / "weak.safetensors", weights_seed=7)


def test_the_guided_denoiser_is_the_model_pushed_away_from_its_guide(model_file, guide_file):
    model = load_model(model_file, device="cpu", bf16=False)
    guide = load_guide(guide_file, model)
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    sigma = torch.full((2,), 1.5)
    good, weak = model.denoise(x, sigma), guide.denoise(x, sigma)
    assert not torch.allclose(good, weak)
    for w in (0.5, 2.0):
        torch.testing.assert_close(model.denoise(x, sigma, guide=guide, autoguidance=w), good + w * (good - weak))
    assert torch.equal(model.denoise(x, sigma, guide=guide, autoguidance=0.0), good)  # w = 0: no guidance


def test_sample_records_the_guide_doubles_the_nfe_and_resumes_only_its_own_run(model_file, guide_file, tmp_path):
    plain = runner.invoke(app, ["sample", "-n", "2", "-o", tmp_path / "plain", "--model", model_file, *FAST])
    args = ["sample", "-n", "2", "-o", tmp_path / "auto", "--model", model_file, *FAST, "--guide-model", guide_file,
            "--autoguidance", "1.5"]
    auto = runner.invoke(app, [*map(str, args), "--json"])
    assert plain.exit_code == 0 and auto.exit_code == 0, auto.output
    summary = json.loads(auto.stdout.strip().splitlines()[-1])
    assert summary["nfe"] == 2 * 3 and summary["autoguidance"]["autoguidance"] == 1.5
    mock = tmp_path / "auto" / "mock_000000.fits"
    prov = read_provenance(mock)
    assert (prov["autoguidance"], prov["guide"], prov["nfe"]) == (1.5, "weak.safetensors", 6)
    assert prov["guide_sha256"] == summary["autoguidance"]["guide_sha256"] != prov["model_sha256"]
    assert not np.array_equal(read_cube(mock).data, read_cube(tmp_path / "plain" / "mock_000000.fits").data)
    assert "autoguided with w = 1.5" in " ".join(read_cube(mock).header["HISTORY"])
    again = runner.invoke(app, list(map(str, args)))  # the same run: every file is kept
    assert again.exit_code == 0, again.output
    other = runner.invoke(app, list(map(str, args[:-1])) + ["2.5"])  # another weight: not this run's files
    assert other.exit_code == 2 and "autoguidance" in other.output and "another run" in other.output


def test_a_guide_for_other_images_or_half_the_options_is_refused_in_one_line(model_file, tmp_path):
    conditional = make_tiny_model(tmp_path / "cond.safetensors", conditions=CONDITIONS)
    meta = read_metadata(model_file)
    other_scale = save_weights(tmp_path / "scale.safetensors", load_tensors(model_file), {**meta, "pixel_scale": 0.5})
    base = ["sample", "-n", "1", "-o", str(tmp_path / "out"), "--model", str(model_file), *FAST]
    cases = {
        "describes other images": ["--guide-model", str(other_scale), "--autoguidance", "1"],
        "conditions differ": ["--guide-model", str(conditional), "--autoguidance", "1"],
        "the model itself": ["--guide-model", str(model_file), "--autoguidance", "1"],
        "needs both a guide model and a weight": ["--autoguidance", "1"],
        "not both": ["--guide-model", str(other_scale), "--autoguidance", "1", "--guidance", "1"],
    }
    for expected, extra in cases.items():
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2, (expected, result.output)
        assert expected in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_train_keeps_the_snapshot_of_the_step_asked_for(tmp_path):
    from test_train import write_dataset

    data = write_dataset(tmp_path)
    out = tmp_path / "m.safetensors"
    result = runner.invoke(app, ["train", str(data), "-o", str(out), "--steps", "3", "--batch", "2", "--no-bf16",
                                 "--keep-guide", "1", "--json"])
    assert result.exit_code == 0, result.output
    guide = tmp_path / "m.guide.safetensors"
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["guide"] == str(guide)
    meta = read_metadata(guide)
    assert (meta["step"], meta["guide_for"], read_metadata(out)["step"]) == (1, "m.safetensors", 3)
    model = load_model(out, device="cpu", bf16=False)
    assert load_guide(guide, model).sha256 != model.sha256  # it guides the model of its run
    refused = runner.invoke(app, ["train", str(data), "-o", str(tmp_path / "n.safetensors"), "--steps", "3",
                                  "--keep-guide", "3"])
    assert refused.exit_code == 2 and "keep_guide" in refused.output
