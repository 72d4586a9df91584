"""`galgen desify` through Typer's CliRunner and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import assert_fitsverify_clean
from galgen.cli import app
from galgen.io.cube import read_cube, read_provenance
from galgen.normalize import Normalizer
from test_flow_desify import NORMALIZER, gaussian_cube, model_file, picture, write_dataset  # noqa: F401 - model_file is a fixture

runner = CliRunner()


@pytest.fixture
def cartoons(tmp_path):
    disc = np.zeros((40, 40, 3), np.uint8)
    disc[np.hypot(*np.mgrid[-20:20, -20:20]) < 12] = (255, 200, 120)
    return [picture(tmp_path / "disc.png", disc), gaussian_cube(tmp_path / "blob.fits", n=24, scale=0.4, sigma_px=2)]


def desify_cli(*args):
    result = runner.invoke(app, ["desify", *map(str, args)])
    return result, result.stdout


def test_desify_records_the_precision_chosen_or_asked_for(tmp_path, cartoons, model_file, monkeypatch):
    from galgen.engine import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: None)
    monkeypatch.setattr(runtime, "cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(runtime, "cpu_arch", lambda: "x86_64")
    common = [cartoons[0], "--model", model_file, "--steps", "1", "--strength", "0.3", "--device", "cpu"]
    result, out = desify_cli(*common, "-o", tmp_path / "a", "--json")
    assert result.exit_code == 0, result.output
    reason = "cpu AVX2 has no bf16 units"
    assert json.loads(out)["precision"] == {"dtype": "float32", "bf16": False, "reason": reason}
    assert read_provenance(tmp_path / "a" / "disc_draw0.fits")["precision"] == f"float32 ({reason})"
    result, out = desify_cli(*common, "-o", tmp_path / "b", "--bf16")
    assert result.exit_code == 0, result.output
    assert out.strip().endswith("; bf16 (asked for with bf16=True)")
    assert read_provenance(tmp_path / "b" / "disc_draw0.fits")["bf16"] is True


def test_desify_writes_cubes_finds_planted_neighbours_and_a_preview(tmp_path, cartoons, model_file):
    common = [*cartoons, "-o", tmp_path / "out", "--model", model_file, "--steps", "3", "--no-bf16",
              "--strength", "0.5", "--draws", "2", "--seed", "9"]
    result, out = desify_cli(*common, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(out)
    names = [o["path"].split("/")[-1] for o in summary["outputs"]]
    assert names == ["disc_draw0.fits", "disc_draw1.fits", "blob_draw0.fits", "blob_draw1.fits"]
    assert (summary["nfe"], summary["strength"], summary["neighbours"]) == (3, 0.5, [])
    # plant the first blob draw (normalised as prep would) in a dataset at row 7
    planted = Normalizer.from_dict(NORMALIZER).forward(read_cube(tmp_path / "out" / "blob_draw0.fits").data)
    images = np.random.default_rng(3).uniform(-1, 1, (20, 3, 16, 16)).astype(np.float32)
    images[7] = planted
    write_dataset(tmp_path / "ds", images)
    result, out = desify_cli(*common, "--overwrite", "--neighbours", "2", "--dataset", tmp_path / "ds",
                             "--preview", tmp_path / "montage.png", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(out)["neighbours"]
    assert len(rows) == 4 * 2 and [r["rank"] for r in rows[:2]] == [1, 2]
    best = [r for r in rows if r["output"].endswith("blob_draw0.fits")][0]
    assert (best["index"], best["source"]) == (7, "cutout_007.fits") and best["distance"] < 1e-5
    from PIL import Image

    with Image.open(tmp_path / "montage.png") as montage:  # 2 rows of input + 2 draws + 2 x 2 neighbours
        assert montage.size == (7 * (2 * 16 + 2) + 2, 2 * (2 * 16 + 2) + 2)


def test_desify_batched_and_exact_are_recorded(tmp_path, cartoons, model_file):
    for flag, expected in (("--batched", False), ("--exact", True)):
        out_dir = tmp_path / flag.strip("-")
        result, _ = desify_cli(cartoons[0], "-o", out_dir, "--model", model_file, "--steps", "2", "--no-bf16", flag)
        assert result.exit_code == 0, result.output
        assert read_provenance(out_dir / "disc_draw0.fits")["exact"] is expected


def test_desify_prints_a_summary_and_a_neighbour_table(tmp_path, cartoons, model_file):
    write_dataset(tmp_path / "ds", np.zeros((5, 3, 16, 16), np.float32))
    result, out = desify_cli(cartoons[0], "-o", tmp_path / "out", "--model", model_file, "--steps", "2",
                             "--no-bf16", "--neighbours", "1", "--dataset", tmp_path / "ds")
    assert result.exit_code == 0, result.output
    assert "wrote 1 file(s)" in out and "dpmpp_2m 2 steps (2 NFE)" in out
    assert "disc_draw0.fits" in out and "cutout_000.fits" in out and "distance" in out


@pytest.mark.parametrize("args, message", [
    (["--strength", "0"], "strength must lie in (0, 1], got 0"),
    (["--strength", "1.01"], "strength must lie in (0, 1], got 1.01"),
    (["--neighbours", "3"], "neighbours and dataset go together (see --neighbours, --dataset)"),
    (["--sampler", "euler"], "unknown sampler 'euler'"),
])
def test_bad_settings_exit_2_with_one_line(tmp_path, cartoons, model_file, args, message):
    result, _ = desify_cli(cartoons[0], "-o", tmp_path / "out", "--model", model_file, *args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"galgen desify: error: {message}")
    assert not (tmp_path / "out").exists()


def test_unreadable_image_exits_2_naming_it(tmp_path, model_file):
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    result, _ = desify_cli(bad, "-o", tmp_path / "out", "--model", model_file, "--steps", "2", "--no-bf16")
    assert result.exit_code == 2
    # the reading progress bar's line may precede the error (stderr and stdout are mixed here)
    errors = [line for line in result.output.strip().splitlines() if line.startswith("galgen desify:")]
    assert errors == [result.output.strip().splitlines()[-1]] and "Traceback" not in result.output
    assert errors[0].startswith(f"galgen desify: error: {bad}: not a readable image")
    assert not (tmp_path / "out").exists()  # every input is read before anything is written


def test_a_bad_input_after_good_ones_writes_nothing(tmp_path, cartoons, model_file):
    bad = tmp_path / "zz_last.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    result, _ = desify_cli(*cartoons, bad, "-o", tmp_path / "out", "--model", model_file, "--steps", "2")
    assert result.exit_code == 2 and "zz_last.png: not a readable image" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # an interpreter start-up importing torch
def test_desify_as_a_subprocess(tmp_path, cartoons, model_file):
    command = [sys.executable, "-m", "galgen", "desify", str(cartoons[0]), "-o", str(tmp_path / "out"),
               "--model", str(model_file), "--steps", "2", "--no-bf16", "--strength", "0.3"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    output = tmp_path / "out" / "disc_draw0.fits"
    assert_fitsverify_clean(output)
    provenance = read_provenance(output)
    assert provenance["command"].startswith("galgen desify ") and provenance["strength"] == 0.3
    failed = subprocess.run([*command[:-1], "2"], capture_output=True, text=True, timeout=300)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.strip() == "galgen desify: error: strength must lie in (0, 1], got 2"
