"""`galgen sample` end to end: JSON summary, resume, preview, one-line errors, a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image
from typer.testing import CliRunner

from galgen.cli import app
from galgen.io.cube import read_provenance
from tiny_model import make_tiny_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")


def run(*args):
    return CliRunner().invoke(app, ["sample", *map(str, args)])


def test_json_summary_then_resume_then_info(model_file, tmp_path):
    out = tmp_path / "mocks"
    first = run("-n", 3, "-o", out, "--model", model_file, "--steps", 2, "--seed", 7, "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert (summary["written"], summary["skipped"], summary["nfe"], summary["sampler"]) == (3, 0, 2, "dpmpp_2m")
    assert sorted(p.name for p in out.iterdir()) == ["mock_000000.fits", "mock_000001.fits", "mock_000002.fits"]
    again = run("-n", 4, "-o", out, "--model", model_file, "--steps", 2, "--seed", 7, "--json")
    assert (json.loads(again.stdout)["written"], json.loads(again.stdout)["skipped"]) == (1, 3)
    info = CliRunner().invoke(app, ["info", str(out / "mock_000003.fits"), "--json"])
    provenance = json.loads(info.stdout)["files"][0]["provenance"]
    assert (provenance["seed"], provenance["index"], provenance["steps"]) == (7, 3, 2)
    assert provenance["command"].split()[0] == "galgen"  # under CliRunner sys.argv is the test runner's


def test_the_precision_and_its_reason_are_in_the_json_the_line_and_the_headers(model_file, tmp_path, monkeypatch):
    from galgen.engine import runtime
    from galgen.io.cube import read_provenance

    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: None)
    monkeypatch.setattr(runtime, "cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(runtime, "cpu_arch", lambda: "x86_64")
    chosen = run("-n", 1, "-o", tmp_path / "a", "--model", model_file, "--steps", 1, "--device", "cpu", "--json")
    assert chosen.exit_code == 0, chosen.output
    reason = "cpu AVX2 has no bf16 units"
    assert json.loads(chosen.stdout)["precision"] == {"dtype": "float32", "bf16": False, "reason": reason}
    provenance = read_provenance(tmp_path / "a" / "mock_000000.fits")
    assert (provenance["bf16"], provenance["precision"]) == (False, f"float32 ({reason})")
    asked = run("-n", 1, "-o", tmp_path / "b", "--model", model_file, "--steps", 1, "--device", "cpu", "--bf16")
    assert asked.exit_code == 0, asked.output
    assert asked.stdout.strip().endswith("; bf16 (asked for with bf16=True)")
    assert read_provenance(tmp_path / "b" / "mock_000000.fits")["precision"] == "bf16 (asked for with bf16=True)"
    # the other run's mocks are not this one's: the precision is part of a run's identity
    again = run("-n", 1, "-o", tmp_path / "a", "--model", model_file, "--steps", 1, "--device", "cpu", "--bf16")
    assert again.exit_code == 2 and "bf16 differ" in again.output


def test_preview_png_has_one_tile_per_mock(model_file, tmp_path):
    png = tmp_path / "montage.png"
    done = run("-n", 5, "-o", tmp_path / "m", "--model", model_file, "--steps", 1, "--preview", png)
    assert done.exit_code == 0, done.output
    # 5 tiles -> 3 columns x 2 rows of 16 px x zoom 2, 2 px gaps
    assert Image.open(png).size == (3 * 34 + 2, 2 * 34 + 2)


@pytest.mark.parametrize("args, message", [
    (["--shard", "4/3"], "--shard"),
    (["--shard", "two"], "--shard"),
    (["--sampler", "euler"], "unknown sampler"),
    (["--steps", "0"], "steps"),
    (["--steps", "1001"], "steps must be in 1..1000"),
])
def test_bad_options_exit_2_with_one_line_and_no_files(model_file, tmp_path, args, message):
    out = tmp_path / "mocks"
    done = run("-n", 2, "-o", out, "--model", model_file, *args)
    assert done.exit_code == 2
    assert message in done.output and done.output.strip().count("\n") == 0 and "Traceback" not in done.output
    assert not out.exists()


def test_missing_and_corrupt_models_exit_2(tmp_path):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    for model in (tmp_path / "absent.safetensors", corrupt):
        done = run("-n", 1, "-o", tmp_path / "out", "--model", model)
        assert done.exit_code == 2 and model.name in done.output and done.output.strip().count("\n") == 0


def test_subprocess_writes_mocks_and_reports_json(model_file, tmp_path):
    args = ["-n", "2", "-o", tmp_path, "--model", model_file, "--sampler", "ddpm", "--steps", "3", "--shard", "2/2",
            "--batched", "--json"]
    done = subprocess.run([sys.executable, "-m", "galgen", "sample", *map(str, args)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["written"] == 1
    assert [p.name for p in tmp_path.glob("mock_*.fits")] == ["mock_000001.fits"]
    assert read_provenance(tmp_path / "mock_000001.fits")["exact"] is False


def test_the_default_sampler_follows_what_the_network_predicts(model_file):
    # the CLI and desify leave the sampler to the model: deterministic for v, stochastic for eps
    import typer.main

    from galgen.flows.desify import DesifyConfig
    from galgen.flows.sample import SampleConfig
    from galgen.model import DEFAULT_SAMPLERS, load_model

    commands = typer.main.get_command(app).commands
    for name in ("sample", "desify"):
        option = next(p for p in commands[name].params if p.name == "sampler")
        assert option.default is None, name
    assert DesifyConfig().sampler is None and SampleConfig(count=1).sampler is None
    assert DEFAULT_SAMPLERS == {"v": "dpmpp_2m", "eps": "dpmpp_2m_sde", "edm": "dpmpp_2m"}
    bundled = load_model(device="cpu")
    assert bundled.module.prediction == "edm" and bundled.default_sampler == "dpmpp_2m"
    config = SampleConfig(count=1).for_model(bundled)
    assert (config.sampler, config.steps) == ("dpmpp_2m", 25)
    assert SampleConfig(count=1, sampler="ddpm").for_model(bundled).sampler == "ddpm"  # a choice is kept
    assert DesifyConfig().for_model(bundled).sampler == "dpmpp_2m"
    assert load_model(model_file, device="cpu").default_sampler == "dpmpp_2m"  # the tiny test model: edm
