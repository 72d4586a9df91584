"""`galgen sgd --morphology / --train / --fid-weights`: the comparisons beyond photometry."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from galgen.cli import app
from test_sgd_cli import population


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("extras")
    return population(root / "real", 24, seed=11), population(root / "mock", 12, seed=12, brighter=3.0)


@pytest.mark.slow  # statmorph on 36 galaxies: about 15 s
def test_morphology_table_and_fid_skip_in_json(pair):
    real, mock = pair
    result = CliRunner().invoke(app, ["sgd", str(real), str(mock), "--json", "--bootstrap", "20", "--morphology",
                                      "-j", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    morph = summary["morphology"]["properties"]
    assert {"gini", "m20", "concentration", "asymmetry", "bulge"} <= set(morph)
    for name, row in morph.items():  # every statistic measured on most galaxies of both sets
        assert row["w1"] is not None and row["w1"] >= 0, name
        assert row["n_real"] >= 18 and row["n_mock"] >= 9, (name, row["n_real"], row["n_mock"])
    assert summary["fid"]["fid"] is None and "skipped" in summary["fid"]["message"]


def test_memorisation_flags_mocks_copied_from_the_training_set(pair, tmp_path):
    from galgen.dataset import open_dataset
    from galgen.prep import PrepConfig, prep_dataset

    real, mock = pair
    prep_dataset(sorted(mock.glob("*.fits")), tmp_path / "train", config=PrepConfig(size=32))
    train = open_dataset(tmp_path / "train")
    assert len(train) == 12
    # the "mocks" are the training images themselves: every one is a near-copy
    copied = CliRunner().invoke(app, ["sgd", str(real), str(mock), "--json", "--bootstrap", "0",
                                      "--train", str(tmp_path / "train")])
    assert copied.exit_code == 0, copied.output
    report = json.loads(copied.stdout)["memorisation"]
    assert report["near_copies"] == 12 and report["median_mock_to_train"] == pytest.approx(0.0, abs=1e-3)


def test_memorisation_rejects_a_training_set_larger_than_the_stamps(pair, tmp_path):
    from galgen.prep import PrepConfig, prep_dataset

    real, mock = pair
    big = tmp_path / "big"
    big.mkdir()
    population(big / "cubes", 4, seed=5, size=48)
    prep_dataset(sorted((big / "cubes").glob("*.fits")), big / "train", config=PrepConfig(size=48))
    result = CliRunner().invoke(app, ["sgd", str(real), str(mock), "--train", str(big / "train")])
    assert result.exit_code == 2 and "smaller than the training set" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow  # the Inception network on 36 galaxies: about 40 s
def test_sky_levels_axis_ratios_spreads_and_the_installed_fid_are_reported(pair):
    real, mock = pair
    result = CliRunner().invoke(app, ["sgd", str(real), str(mock), "--json", "--bootstrap", "20", "--fid"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    diagnostics = summary["diagnostics"]
    assert set(diagnostics["properties"]) == {"sky_g", "sky_r", "sky_z", "q"}
    assert set(diagnostics["sky_off"]["real"]) == {"g", "r", "z"} and diagnostics["sky_noise"]["r"] > 0
    assert all(0 < row["spread_ratio"] for row in summary["properties"].values())
    assert summary["fid"]["fid"] is not None and summary["fid"]["fid"] > 0  # the 'fid' extra's Inception, found
    table = CliRunner().invoke(app, ["sgd", str(real), str(mock), "--bootstrap", "0"])
    assert "sd real" in table.output and "not summed" in table.output and "sky level more than" in table.output
    assert "FID skipped: not asked for" in table.output
