"""Conditional models end to end: train --condition, info, sample --catalog / --condition / --guidance."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import assert_fitsverify_clean
from galgen.cli import app
from galgen.io.cube import Cube, read_provenance
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube
from galgen.errors import InputError
from galgen.flows import sample as flow
from galgen.model import load_model
from tiny_model import CONDITIONS, make_tiny_model

runner = CliRunner()


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model") / "cond.safetensors", conditions=CONDITIONS)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model") / "plain.safetensors")


def sample(*args):
    return runner.invoke(app, ["sample", *map(str, args)])


def test_condition_request_is_drawn_recorded_in_every_header_and_checked(conditional, tmp_path):
    done = sample("-n", 3, "-o", tmp_path / "m", "--model", conditional, "--steps", 2, "--condition", "mag_r=18",
                  "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["notes"] == ["the request gives no r_e: every mock takes the training median, 1.5 arcsec"]
    check = {row["name"]: row for row in summary["conditions"]}
    assert check["mag_r"]["requested_median"] == 18.0 and check["r_e"]["requested_median"] == 1.5
    assert check["mag_r"]["measured"] and "median_ratio" in check["r_e"]
    provenance = read_provenance(tmp_path / "m" / "mock_000002.fits")
    assert provenance["conditions"] == {"mag_r": 18.0, "r_e": 1.5} and provenance["guidance"] == 0.0
    assert_fitsverify_clean(tmp_path / "m" / "mock_000002.fits")


def test_one_mock_per_catalogue_row_with_its_id_and_guidance(conditional, tmp_path):
    catalog = tmp_path / "targets.csv"
    catalog.write_text("objid,mag_r [mag],r_e [arcsec]\n11,16,1.0\n12,19,3.0\n")
    done = sample("-o", tmp_path / "m", "--model", conditional, "--steps", 2, "--catalog", catalog, "--guidance", 2,
                  "--json")
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["written"] == 2 and summary["nfe"] == 4  # guidance evaluates the network twice per step
    second = read_provenance(tmp_path / "m" / "mock_000001.fits")
    assert (second["catalog_id"], second["conditions"], second["guidance"]) == ("12", {"mag_r": 19.0, "r_e": 3.0}, 2.0)
    text = sample("-o", tmp_path / "m", "--model", conditional, "--steps", 2, "--catalog", catalog, "--guidance", 2)
    assert text.exit_code == 0 and "requested vs measured" in text.stdout and "2 already there" in text.stdout


def test_guided_and_conditional_images_do_not_depend_on_the_batch(conditional):
    model = load_model(conditional, device="cpu")
    config = flow.SampleConfig(count=3, labels=((16.0, 1.0), (18.0, 2.0), (19.0, 3.0)), guidance=1.5)
    sigmas = model.sigmas("dpmpp_2m", 3)
    labels = flow._batch_labels(model, config, [0, 1, 2])
    together = flow.draw(model, [0, 1, 2], seed=4, sigmas=sigmas, sampler="dpmpp_2m", labels=labels, guidance=1.5)
    alone = flow.draw(model, [1], seed=4, sigmas=sigmas, sampler="dpmpp_2m", labels=labels[1:2], guidance=1.5)
    assert torch.equal(together[1], alone[0])
    unguided = flow.draw(model, [1], seed=4, sigmas=sigmas, sampler="dpmpp_2m", labels=labels[1:2])
    unconditional = flow.draw(model, [1], seed=4, sigmas=sigmas, sampler="dpmpp_2m")
    assert not torch.equal(unguided, alone) and not torch.equal(unguided, unconditional)


def test_classifier_free_guidance_is_the_extrapolation_of_two_denoisers(conditional):
    model = load_model(conditional, device="cpu", bf16=False)
    x, sigma = torch.randn(2, 3, 16, 16), torch.tensor([0.5, 2.0])
    labels = torch.tensor([[0.5, -1.0], [1.0, 1.0]])
    cond = model.denoise(x, sigma, labels=labels)
    uncond = model.denoise(x, sigma)
    assert torch.allclose(model.denoise(x, sigma, labels=labels, guidance=3.0), cond + 3.0 * (cond - uncond), atol=1e-5)


def test_conditioned_denoisers_normalise_values_and_desify_tells_each_input_its_own(conditional, plain):
    from galgen.conditioning import measured, normalise
    from galgen.conditioning import labels_of

    model = load_model(conditional, device="cpu", bf16=False)
    x, sigma = torch.randn(2, 3, 16, 16), torch.tensor([0.5, 2.0])
    values = np.array([[17.0, 1.0], [np.nan, np.nan]])
    told = model.conditioned(values)(x, sigma)
    assert torch.equal(told, model.denoise(x, sigma, labels=torch.from_numpy(normalise(model.conditions, values))))
    assert torch.equal(told[1], model.denoise(x, sigma)[1]) and not torch.equal(told[0], model.denoise(x, sigma)[0])
    assert torch.equal(model.conditioned(None)(x, sigma), model.denoise(x, sigma))
    # desify: a bright and a faint input galaxy are told their own magnitudes
    y, xx = np.mgrid[:16, :16] - 7.5
    blob = np.exp(-(xx**2 + y**2) / 18.0)[None] * np.array([0.4, 0.8, 1.2])[:, None, None]  # below the upper limits
    inputs = torch.from_numpy(model.to_model(np.stack([blob, 0.5 * blob]).astype(np.float32)))
    labels = labels_of(model, model.to_flux(inputs))
    expected = measured(model.conditions, model.to_flux(inputs), bands="grz", pixel_scale=0.262)
    np.testing.assert_array_equal(labels, expected)
    assert labels[1, 0] - labels[0, 0] == pytest.approx(2.5 * np.log10(2.0), abs=0.05)
    assert CONDITIONS[0]["min"] < labels[0, 0] < labels[1, 0] < CONDITIONS[0]["max"]
    assert labels_of(load_model(plain, device="cpu"), model.to_flux(inputs)) is None


def test_a_conditional_model_still_samples_unconditionally(conditional, tmp_path):
    done = sample("-n", 2, "-o", tmp_path / "m", "--model", conditional, "--steps", 2, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["conditions"] is None
    assert "conditions" not in read_provenance(tmp_path / "m" / "mock_000000.fits")


@pytest.mark.parametrize("args, message", [
    (["-n", 2, "--condition", "mag_r=25"], "mag_r = 25 lies outside the model's training range [15, 19.5]"),
    (["-n", 2, "--condition", "mag_i=18"], "takes no label 'mag_i' (it takes mag_r [mag], r_e [arcsec])"),
    (["-n", 2, "--condition", "mag_r"], "name=value pairs"),
    (["--condition", "mag_r=18", "--catalog", "x.csv"], "not both"),
    (["--guidance", "1"], "say how many mocks"),
])
def test_bad_requests_exit_2_in_one_line_and_write_nothing(conditional, tmp_path, args, message):
    done = sample("-o", tmp_path / "m", "--model", conditional, "--steps", 2, *args)
    assert done.exit_code == 2, done.output
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_catalogue_rows_out_of_range_or_miscounted_are_refused_or_drawn_flagged(conditional, tmp_path):
    catalog = tmp_path / "t.csv"
    catalog.write_text("id,mag_r\na,17\nb,14\n")
    done = sample("-o", tmp_path / "m", "--model", conditional, "--catalog", catalog)
    assert done.exit_code == 2 and "row b: mag_r = 14 lies outside" in done.stderr and "--extrapolate" in done.stderr
    flagged = sample("-o", tmp_path / "m", "--model", conditional, "--catalog", catalog, "--steps", 1, "--extrapolate",
                     "--json")
    assert flagged.exit_code == 0, flagged.output
    assert "1 of 2 rows lie outside the training range" in json.loads(flagged.stdout)["notes"][1]
    assert "outside" not in read_provenance(tmp_path / "m" / "mock_000000.fits")
    assert read_provenance(tmp_path / "m" / "mock_000001.fits")["outside"] == "mag_r"
    counted = sample("-n", 5, "-o", tmp_path / "m", "--model", conditional, "--catalog", catalog)
    assert counted.exit_code == 2 and "the catalogue has 2 rows" in counted.stderr


def test_an_unconditional_model_refuses_requests(plain, tmp_path):
    done = sample("-n", 1, "-o", tmp_path / "m", "--model", plain, "--condition", "mag_r=18")
    assert done.exit_code == 2 and "not conditional" in done.stderr


def _labelled_dataset(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    rows = ["file,mag_r [mag],mag_g [mag],r_e [arcsec]"]
    for i in range(6):
        data = rng.normal(0, 0.01, (3, 16, 16)).astype(np.float32)
        data[:, 8, 8] += 0.5 * (i + 1)
        write_cube(Cube(data=data, bands="grz", wcs=make_wcs((16, 16), pixel_scale=0.262)), folder / f"g{i}.fits")
        rows.append(f"g{i}.fits,{17 + 0.3 * i},{17.6 + 0.35 * i},{1 + 0.2 * i}")
    (tmp_path / "cat.csv").write_text("\n".join(rows) + "\n")
    done = runner.invoke(app, ["prep", str(folder), "-o", str(tmp_path / "data"), "--size", "16",
                               "--labels", str(tmp_path / "cat.csv")])
    assert done.exit_code == 0, done.output
    return tmp_path / "data"


def test_train_condition_stores_names_units_ranges_and_resume_keeps_them(tmp_path):
    data = _labelled_dataset(tmp_path)
    model = tmp_path / "m.safetensors"
    base = ["train", str(data), "-o", str(model), "--preset", "tiny", "--batch", "2", "--no-bf16"]
    done = runner.invoke(app, [*base, "--steps", "1", "--condition", "mag_r,g_r"])
    assert done.exit_code == 0, done.output
    info = json.loads(runner.invoke(app, ["info", str(model), "--json"]).stdout)["files"][0]["metadata"]
    mag_r, g_r = info["conditions"]
    assert (mag_r["name"], mag_r["unit"], mag_r["min"], mag_r["max"]) == ("mag_r", "mag", 17.0, 18.5)
    assert (g_r["name"], g_r["unit"]) == ("g_r", "mag") and g_r["median"] == pytest.approx(0.6 + 0.05 * 2.5)
    assert info["unet"]["conditions"] == 2
    resumed = runner.invoke(app, [*base, "--steps", "2", "--resume", str(tmp_path / "m.ckpt.safetensors")])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(runner.invoke(app, ["info", str(model), "--json"]).stdout)["files"][0]["metadata"][
        "conditions"] == info["conditions"]
    other = runner.invoke(app, [*base, "--steps", "3", "--resume", str(tmp_path / "m.ckpt.safetensors"),
                                "--condition", "r_e"])
    assert other.exit_code == 2 and "conditioned on mag_r,g_r" in other.stderr
    missing = runner.invoke(app, [*base, "--steps", "1", "--condition", "q", "--overwrite"])
    assert missing.exit_code == 2 and "no label 'q'" in missing.stderr


def test_the_model_keeps_its_training_labels_and_sample_draws_them_without_a_request(tmp_path):
    from galgen.engine import weights

    data = _labelled_dataset(tmp_path)
    model = tmp_path / "m.safetensors"
    done = runner.invoke(app, ["train", str(data), "-o", str(model), "--preset", "tiny", "--batch", "2",
                               "--no-bf16", "--steps", "1", "--condition", "mag_r,g_r"])
    assert done.exit_code == 0, done.output
    table = weights.read_data_tensor(model, "labels")
    rows = [(17 + 0.3 * i, 0.6 + 0.05 * i) for i in range(6)]  # the catalogue's mag_r and mag_g - mag_r
    np.testing.assert_allclose(table, rows, rtol=1e-6)
    info = json.loads(runner.invoke(app, ["info", str(model), "--json"]).stdout)["files"][0]
    assert info["label_rows"] == 6
    from galgen.conditioning import draw_requests

    loaded = load_model(model, device="cpu")
    first = draw_requests(loaded, count=3, seed=4)
    more = draw_requests(loaded, count=9, seed=4)
    np.testing.assert_array_equal(first.values, more.values[:3])  # mock i's labels do not depend on the count
    assert first.ids == more.ids[:3] and all(i.startswith("train:") for i in first.ids)
    assert not np.array_equal(draw_requests(loaded, count=9, seed=5).values, more.values)

    drawn = sample("-n", 3, "-o", tmp_path / "drawn", "--model", model, "--steps", 2, "--seed", 4, "--json")
    assert drawn.exit_code == 0, drawn.output
    assert "training label rows" in json.loads(drawn.stdout)["notes"][0]
    for i in range(3):
        found = read_provenance(tmp_path / "drawn" / f"mock_00000{i}.fits")
        assert found["catalog_id"] == first.ids[i]
        assert [found["conditions"][name] for name in ("mag_r", "g_r")] == pytest.approx(first.values[i])
    assert_fitsverify_clean(tmp_path / "drawn" / "mock_000000.fits")
    plain = sample("-n", 2, "-o", tmp_path / "plain", "--model", model, "--steps", 2, "--unconditional", "--json")
    assert plain.exit_code == 0, plain.output
    assert "conditions" not in read_provenance(tmp_path / "plain" / "mock_000000.fits")
    both = sample("-n", 2, "-o", tmp_path / "x", "--model", model, "--unconditional", "--condition", "mag_r=17")
    assert both.exit_code == 2 and "unconditional draws take no labels" in both.stderr and "--catalog" in both.stderr


def test_only_data_tensors_travel_beside_the_weights(tmp_path):
    from galgen.engine import weights

    with pytest.raises(ValueError, match="data"):
        weights.data_tensors({"labels": torch.zeros(2, 2)})
    path = make_tiny_model(tmp_path / "m.safetensors", conditions=CONDITIONS)
    meta, tensors = weights.read_metadata(path), weights.load_tensors(path)
    weights.save_weights(path, {**tensors, "data.labels": torch.ones(5, 2)}, meta)
    assert load_model(path, device="cpu").label_table().shape == (5, 2)  # the network loads beside it
    weights.save_weights(path, {**tensors, "data.labels": torch.ones(5, 3)}, meta)
    with pytest.raises(InputError, match="label table has shape"):
        load_model(path, device="cpu").label_table()
    weights.save_weights(path, {**tensors, "other.labels": torch.ones(5, 2)}, meta)
    with pytest.raises(InputError, match="unexpected tensor other.labels"):
        load_model(path, device="cpu")
