"""Command-line options that only their own test reaches: each must change what it says it changes."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from galgen.cli import app
from galgen.io.cube import read_provenance
from galgen.engine.unet import PRESETS
from galgen.engine.weights import read_metadata
from test_fault_catalogue import galaxies


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("opts")
    galaxies(root / "cut", 4, size=16)
    invoke("prep", root / "cut", "-o", root / "train", "--size", 16)
    return root / "train"


def test_train_lr_ema_and_overwrite(dataset, tmp_path):
    out = tmp_path / "m.safetensors"
    invoke("train", dataset, "-o", out, "--steps", 1, "--batch", 2, "--lr", "1e-3", "--ema", "0.5")
    first = read_metadata(out)
    assert (first["train"]["lr"], first["train"]["ema"]) == (1e-3, 0.5)
    invoke("train", dataset, "-o", out, "--steps", 2, "--batch", 2, "--overwrite")
    assert (read_metadata(out)["step"], read_metadata(out)["train"]["lr"]) == (2, 2e-4)


@pytest.mark.slow  # the paper preset is ~35M parameters: one step takes seconds
@pytest.mark.parametrize("name", ["small", "paper"])
def test_train_presets_build_their_network(dataset, tmp_path, name):
    out = tmp_path / f"{name}.safetensors"
    invoke("train", dataset, "-o", out, "--preset", name, "--steps", 1, "--batch", 2, "--checkpoint-every", 0,
           "--unconditional")
    expected = {**PRESETS[name].to_dict(), "bands": 3, "size": 16}
    assert read_metadata(out)["unet"] == expected


def test_sample_ra_dec_and_exact(model_file, tmp_path):  # noqa: F811
    invoke("sample", "-n", 1, "-o", tmp_path / "a", "--model", model_file, "--steps", 1, "--ra", "10.5",
           "--dec", "-30.25", "--exact")
    header = fits.getheader(tmp_path / "a" / "mock_000000.fits")
    assert (header["CRVAL1"], header["CRVAL2"]) == (10.5, -30.25) and header["GGEXACT"] is True
    invoke("sample", "-n", 1, "-o", tmp_path / "b", "--model", model_file, "--steps", 1, "--batched")
    assert read_provenance(tmp_path / "b" / "mock_000000.fits")["exact"] is False


@pytest.mark.slow  # two spawned worker processes each import torch
def test_sample_workers_split_the_run_and_change_no_pixel(model_file, tmp_path):  # noqa: F811
    two = json.loads(invoke("sample", "-n", 4, "-o", tmp_path / "two", "--model", model_file, "--steps", 2,
                            "--workers", 2, "--json").stdout)
    assert two["devices"] == ["cpu", "cpu"] and two["written"] == 4
    invoke("sample", "-n", 4, "-o", tmp_path / "one", "--model", model_file, "--steps", 2, "--workers", 1)
    for i in range(4):
        name = f"mock_{i:06d}.fits"
        assert np.array_equal(fits.getdata(tmp_path / "one" / name), fits.getdata(tmp_path / "two" / name))


def test_prep_bands_and_workers(tmp_path):
    galaxies(tmp_path / "cut", 3, size=16)
    invoke("prep", tmp_path / "cut", "-o", tmp_path / "zg", "--size", 16, "--bands", "zg")
    zg = json.loads((tmp_path / "zg" / "dataset.json").read_text())
    assert zg["bands"] == "zg" and zg["normalizer"]["bands"] == "zg"
    images = np.load(tmp_path / "zg" / "images.npy")
    assert images.shape == (3, 2, 16, 16)
    invoke("prep", tmp_path / "cut", "-o", tmp_path / "grz", "--size", 16)
    full = np.load(tmp_path / "grz" / "images.npy")
    lo, hi = np.array(zg["normalizer"]["lower"]), np.array(zg["normalizer"]["upper"])
    grz = json.loads((tmp_path / "grz" / "dataset.json").read_text())["normalizer"]
    assert [grz["upper"][2], grz["upper"][0]] == pytest.approx(list(hi)) and lo[0] == pytest.approx(grz["lower"][2])
    np.testing.assert_allclose(images[:, 0], full[:, 2], atol=1e-6)  # z first, then g
    invoke("prep", tmp_path / "cut", "-o", tmp_path / "two", "--size", 16, "--workers", 2)
    assert np.array_equal(np.load(tmp_path / "two" / "images.npy"), full)


def test_simulate_pixel_scale(tmp_path):
    invoke("simulate", "-n", 1, "-o", tmp_path / "s", "--size", 16, "--pixel-scale", "0.5", "-j", 1)
    header = fits.getheader(tmp_path / "s" / "sim_000000.fits")
    assert header["CDELT2"] * 3600 == pytest.approx(0.5)
    assert read_provenance(tmp_path / "s" / "truth.fits")["pixel_scale"] == 0.5


def test_sgd_seed_moves_the_bootstrap_and_only_it(tmp_path):
    galaxies(tmp_path / "real", 12)
    galaxies(tmp_path / "mock", 12, seed=5)

    def run(seed):
        return json.loads(invoke("sgd", tmp_path / "real", tmp_path / "mock", "--bootstrap", 50, "--seed", seed,
                                 "--json").stdout)

    a, again, b = run(1), run(1), run(2)
    assert a == again
    assert a["sgd"] == b["sgd"] and a["sgd_ci"] != b["sgd_ci"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_sgd_fid_weights_computes_a_fid(tmp_path):
    import torch

    class StandIn(torch.nn.Module):  # a scripted feature extractor with Inception's call signature
        def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1) / 255.0

    weights = tmp_path / "standin.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(StandIn()).save(str(weights))
    galaxies(tmp_path / "real", 6)
    galaxies(tmp_path / "mock", 6, seed=5)
    summary = json.loads(invoke("sgd", tmp_path / "real", tmp_path / "mock", "--bootstrap", 10, "--fid-weights",
                                weights, "--json").stdout)
    assert summary["fid"]["fid"] is not None and summary["fid"]["fid"] >= 0



def test_train_edm_noise_levels(dataset, tmp_path):
    out = tmp_path / "edm.safetensors"
    invoke("train", dataset, "-o", out, "--steps", 1, "--batch", 2, "--prediction", "edm", "--p-mean", "-0.5",
           "--p-std", "0.7")
    meta = read_metadata(out)
    assert (meta["prediction"], meta["p_mean"], meta["p_std"]) == ("edm", -0.5, 0.7) and meta["sigma_data"] > 0


def test_prep_stretch_and_softening(tmp_path):
    galaxies(tmp_path / "cut", 4, size=16)
    invoke("prep", tmp_path / "cut", "-o", tmp_path / "asinh", "--size", 16, "--stretch", "asinh", "--softening", 2)
    meta = json.loads((tmp_path / "asinh" / "dataset.json").read_text())
    norm = meta["normalizer"]
    sky = meta["normalizer_choice"]["sky_rms"]
    assert norm["stretch"] == "asinh" and norm["softening"] == pytest.approx([2 * s for s in sky])
    images = np.load(tmp_path / "asinh" / "images.npy")
    assert images.max() == pytest.approx(1.0, abs=1e-6)  # the brightest pixel is kept, at 1
    result = CliRunner().invoke(app, ["prep", str(tmp_path / "cut"), "-o", str(tmp_path / "x"), "--stretch", "log"])
    assert result.exit_code == 2 and "unknown stretch 'log'" in result.output and "--stretch" in result.output


def test_sgd_c2st(tmp_path):
    galaxies(tmp_path / "a", 8, size=16)
    galaxies(tmp_path / "b", 8, size=16)
    result = invoke("sgd", tmp_path / "a", tmp_path / "b", "--json", "--bootstrap", 0, "--c2st")
    summary = json.loads(result.stdout)
    assert summary["c2st"]["scored"] == 16 and 0 <= summary["c2st"]["accuracy"] <= 1
    assert summary["fid"]["fid"] is None and summary["fid"]["message"] == "FID skipped: not asked for"
