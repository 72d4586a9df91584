"""`galgen inpaint` end to end: FITS in, FITS out, exit codes, provenance, fitsverify."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from conftest import assert_fitsverify_clean
from galgen.cli import app
from galgen.io.cube import Cube, read_cube, read_provenance
from galgen.io.write import write_cube
from galgen.engine.weights import file_sha256
from test_flow_inpaint import diagonal_mask, galaxy, write_tiny_model

FAST = ["--steps", "4", "--jump", "2", "--resample", "2"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 40 x 48 grz image whose trail pixels hold NaN, a 2-D trail mask, a tiny 16 px model."""
    root = tmp_path_factory.mktemp("inpaint")
    image = galaxy()
    mask = diagonal_mask()
    image.data[mask] = np.nan
    image.header["OBSERVER"] = ("someone", "a card of the input, kept")
    write_cube(image, root / "image.fits")
    write_cube(Cube(data=mask[0].astype(np.float32), bands="m", wcs=image.wcs), root / "mask.fits")
    model = write_tiny_model(root / "tiny.safetensors")
    return root, model


def invoke(*args):
    return CliRunner().invoke(app, ["inpaint", *map(str, args)])


def test_the_precision_is_chosen_by_the_hardware_or_as_asked_and_recorded(files, tmp_path, monkeypatch):
    from galgen.engine import runtime

    root, model = files
    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: "AMX-BF16")
    args = [root / "image.fits", "--mask", root / "mask.fits", "--model", model, "--steps", "2", "--draws", "1",
            "--device", "cpu"]
    chosen = invoke(*args, "-o", tmp_path / "a.fits", "--json")
    assert chosen.exit_code == 0, chosen.output
    assert json.loads(chosen.stdout)["precision"] == {"dtype": "bf16", "bf16": True, "reason": "cpu has AMX-BF16"}
    assert read_provenance(tmp_path / "a.fits")["precision"] == "bf16 (cpu has AMX-BF16)"
    asked = invoke(*args, "-o", tmp_path / "b.fits", "--no-bf16")
    assert asked.exit_code == 0, asked.output
    assert asked.stdout.strip().endswith("; float32 (asked for with bf16=False)")
    provenance = read_provenance(tmp_path / "b.fits")
    assert (provenance["bf16"], provenance["precision"]) == (False, "float32 (asked for with bf16=False)")


def test_fills_the_mask_and_keeps_everything_else(files):
    root, model = files
    out = root / "filled.fits"
    result = invoke(root / "image.fits", "--mask", root / "mask.fits", "-o", out, "--model", model, *FAST,
                    "--draws", "3", "--batch", "2", "--seed", "7", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tiles"] > 1 and summary["draws"] == 3 and summary["nfe_per_tile"] == 6
    before, after = read_cube(root / "image.fits"), read_cube(out)
    mask = diagonal_mask()
    assert summary["filled_pixels"] == mask.sum()
    assert np.array_equal(after.data[~mask], before.data[~mask])  # bit for bit, read back from FITS
    assert np.isfinite(after.data).all()
    with fits.open(out) as hdul:
        assert np.array_equal(hdul["MASK"].data.astype(bool), mask)
        std = hdul["STD"].data
        assert (std >= 0).all() and (std[~mask] == 0).all() and (std[mask] > 0).any()
        header = hdul[0].header
        assert header["OBSERVER"] == "someone"
        history = " ".join(str(line).strip() for line in header["HISTORY"])
        assert f"filled {mask.sum()} masked pixels of bands grz" in history and "RePaint" in history
    assert after.wcs is not None and after.wcs.to_header_string() == before.wcs.to_header_string()
    assert_fitsverify_clean(out)


def trail_filled(files, name: str, *options: str):
    """Fill the trail of the test image with the tiny model (FAST, then ``options``); the output's path."""
    root, model = files
    out = root / name
    result = invoke(root / "image.fits", "-m", root / "mask.fits", "-o", out, "--model", model, *FAST, *options)
    assert result.exit_code == 0, result.output
    return out


def test_provenance_round_trip(files):
    root, model = files
    prov = read_provenance(trail_filled(files, "prov.fits", "--seed", "3", "--sampler", "ddim"))
    assert prov["model_sha256"] == file_sha256(model)
    assert (prov["seed"], prov["sampler"], prov["steps"], prov["nfe"]) == (3, "ddim", 4, 6)
    assert (prov["resample"], prov["jump"], prov["draws"], prov["eta"]) == (2, 2, 4, 1.0)  # 4 draws by default
    assert prov["tiles"] > 1 and prov["filled"] == diagonal_mask().sum()
    assert prov["normaliser"]["bands"] == "grz"
    assert [i["sha256"] for i in prov["inputs"]] == [file_sha256(root / "image.fits"), file_sha256(root / "mask.fits")]
    assert prov["command"].startswith("galgen")  # CliRunner leaves sys.argv as pytest's


def test_gradient_guidance_is_recorded(files):
    root, model = files
    out = trail_filled(files, "pulled.fits", "--pull", "2.5", "--resample", "1")
    prov = read_provenance(out)
    assert (prov["pull"], prov["resample"]) == (2.5, 1)
    with fits.open(out) as hdus:
        history = " ".join(str(line).strip() for line in hdus[0].header["HISTORY"])
    assert "gradient guidance, pull 2.5" in history
    assert_fitsverify_clean(out)
    refused = invoke(root / "image.fits", "-m", root / "mask.fits", "-o", root / "bad.fits", "--model", model,
                     "--pull", "-1")
    assert refused.exit_code == 2 and not (root / "bad.fits").exists()


def test_mask_nans_alone_fills_the_image_own_bad_pixels(files):
    root, model = files
    out = root / "nans.fits"
    result = invoke(root / "image.fits", "--mask-nans", "-o", out, "--model", model, *FAST)
    assert result.exit_code == 0, result.output
    with fits.open(out) as hdul:
        assert np.array_equal(hdul["MASK"].data.astype(bool), diagonal_mask())
        assert "STD" in hdul  # four draws by default: their spread
    single = root / "nans1.fits"
    assert invoke(root / "image.fits", "--mask-nans", "-o", single, "--model", model, *FAST, "--draws", "1").exit_code == 0
    with fits.open(single) as hdul:
        assert "STD" not in hdul  # one draw has no spread


def test_pixel_scale_difference_is_noted(files, tmp_path):
    root, _ = files
    model = write_tiny_model(tmp_path / "coarse.safetensors", pixel_scale=0.524)
    out = tmp_path / "scaled.fits"
    result = invoke(root / "image.fits", "--mask-nans", "-o", out, "--model", model, *FAST)
    assert result.exit_code == 0, result.output
    assert "note: filled on a 26 x 22 px grid at the model's 0.524 arcsec (the image's 0.262" in result.stderr
    native = tmp_path / "native.fits"
    result = invoke(root / "image.fits", "--mask-nans", "-o", native, "--model", model, *FAST, "--native-scale")
    assert result.exit_code == 0, result.output
    assert "note: image pixel scale 0.262 arcsec differs from the model's 0.524" in result.stderr
    with fits.open(native) as hdul:
        history = " ".join(str(line).strip() for line in hdul[0].header["HISTORY"])
        assert "differs from the model's 0.524" in history
    with fits.open(out) as grid, fits.open(native) as own:
        mask = grid["MASK"].data.astype(bool)
        assert np.array_equal(mask, own["MASK"].data.astype(bool))
        assert np.array_equal(grid[0].data[~mask], own[0].data[~mask])  # outside the mask: the input's, both ways
        assert not np.allclose(grid[0].data[mask], own[0].data[mask])


def mask_file(path, data, **kw):
    write_cube(Cube(data=np.asarray(data, np.float32), bands="m" if np.ndim(data) == 2 else "grz", **kw), path)
    return path


@pytest.mark.parametrize("case,message", [
    ("shape", "mask is 40 x 40 pixels, the image 40 x 48"),
    ("empty", "the mask selects no pixel"),
    ("all", "the mask covers every pixel"),
    ("none", "say which pixels to fill"),
    ("nan_outside", "NaN/inf image pixels lie outside the mask"),
])
def test_bad_masks_exit_2_with_one_line(files, tmp_path, case, message):
    root, model = files
    masks = {
        "shape": lambda: mask_file(tmp_path / "m.fits", np.ones((40, 40))),
        "empty": lambda: mask_file(tmp_path / "m.fits", np.zeros((40, 48))),
        "all": lambda: mask_file(tmp_path / "m.fits", np.ones((40, 48))),
        "nan_outside": lambda: mask_file(tmp_path / "m.fits", np.pad(np.ones((1, 1)), ((0, 39), (0, 47)))),
    }
    args = [] if case == "none" else ["--mask", masks[case]()]
    out = tmp_path / "out.fits"
    result = invoke(root / "image.fits", *args, "-o", out, "--model", model, *FAST)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("galgen inpaint: error:") and message in lines[0], result.stderr
    assert not out.exists() and not list(tmp_path.glob(".tmp-*"))


def test_existing_output_needs_overwrite(files):
    root, model = files
    (root / "taken.fits").write_bytes(b"keep")
    result = invoke(root / "image.fits", "--mask-nans", "-o", root / "taken.fits", "--model", model, *FAST)
    assert result.exit_code == 2 and "--overwrite" in result.stderr
    assert (root / "taken.fits").read_bytes() == b"keep"


@pytest.mark.slow  # two interpreter start-ups importing torch: ~10 s on a busy machine
def test_real_subprocess(files, tmp_path):
    root, model = files
    out = tmp_path / "sub.fits"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "galgen", "inpaint", str(root / "image.fits"), "--mask",
                           str(root / "mask.fits"), "-o", str(out), "--model", str(model), *FAST, "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == str(out)
    assert read_provenance(out)["command"].startswith(f"galgen inpaint {root / 'image.fits'} --mask")
    bad = subprocess.run([sys.executable, "-m", "galgen", "inpaint", str(root / "image.fits"), "--mask",
                          str(root / "nope.fits"), "-o", str(tmp_path / "x.fits"), "--model", str(model)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().endswith("nope.fits: no such file")


@pytest.mark.realdata
def test_a_real_424_px_decals_cutout_is_filled_in_tiles(decals_dir, files, tmp_path):
    from galgen.trails import Trail, trail_mask

    _, model = files
    cutout = decals_dir / "example_a.fits"
    image = read_cube(cutout)
    trail = trail_mask(image.shape[1:], Trail(angle=28.0, offset=3.0, width=3.0, brightness=(1.0,) * 3))
    mask = mask_file(tmp_path / "trail.fits", trail, wcs=image.wcs)
    out = tmp_path / "fixed.fits"
    result = invoke(cutout, "--mask", mask, "-o", out, "--model", model, "--steps", "2", "--jump", "1",
                    "--resample", "1", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["tiles"] > 10 and summary["filled_pixels"] == 3 * trail.sum()
    # the cutouts are resampled to 0.1 arcsec: filled on a 0.262 arcsec grid over the 424 px (42.4 arcsec)
    assert "filled on a 164 x 164 px grid at the model's 0.262 arcsec (the image's 0.100" in result.stderr
    after = read_cube(out)
    outside = ~np.broadcast_to(trail, image.shape)
    assert np.array_equal(after.data[outside], image.data[outside]) and np.isfinite(after.data).all()


def test_cli_defaults_are_the_flows():
    """The command's option defaults are InpaintConfig's (the measured default walk: ddim 15, pull 5)."""
    import dataclasses

    import typer

    from galgen.flows.fill import DEFAULT_PULL, DEFAULT_STEPS, InpaintConfig

    command = typer.main.get_command(app).commands["inpaint"]
    cli_defaults = {param.name: param.default for param in command.params}
    config = InpaintConfig()
    for field in dataclasses.fields(InpaintConfig):
        if field.name in cli_defaults:
            assert cli_defaults[field.name] == getattr(config, field.name), field.name
    assert (config.resolved_steps(), config.pull) == (DEFAULT_STEPS, DEFAULT_PULL) == (15, 5.0)
    assert InpaintConfig(sampler="ddpm").resolved_steps() != DEFAULT_STEPS  # another sampler keeps its own
