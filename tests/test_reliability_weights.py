"""The third hostile catalogue, weights and calibration: numbers in a weights file are checked when it is loaded,
calibrate writes only a model's own factors into it, and neither a full disk nor a resume loses a file.

Every case failed before the fix (issue "No hang, no silent garbage: a third hostile catalogue", MAJOR 3 and 4
and their minor classes): exit 0 with wrong mocks, an internal error, or a file replaced.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from galgen.cli import app
from galgen.engine.weights import METADATA_KEY, MODEL_KIND, file_sha256, load_tensors, read_metadata, save_weights
from galgen.errors import RuntimeFailure
from test_calibrate import FACTORS, make_mocks, real_galaxies
from tiny_model import CONDITIONS


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, code: int = 2) -> str:
    """The single stderr line of a failed command (asserted: exit code, one line, no traceback)."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("galgen")]  # not progress
    assert len(lines) == 1 and "Traceback" not in result.output and "internal error" not in lines[0], result.stderr
    return lines[0]


def variant(source, target, change=None, *, tensors=None, raw=None):
    """A copy of the model file ``source`` at ``target`` with its metadata changed in place by ``change``
    (or replaced by the JSON text ``raw``), written as a hostile user would: safetensors' own writer."""
    meta = read_metadata(source)
    if change is not None:
        change(meta)
    text = raw if raw is not None else json.dumps(meta)  # json.dumps writes NaN and Infinity as they come
    save_file(load_tensors(source) if tensors is None else tensors, str(target), metadata={METADATA_KEY: text})
    return target


def setting(*keys, value):
    """A change setting ``meta[k1][k2]... = value``."""
    def change(meta):
        inner = meta
        for key in keys[:-1]:
            inner = inner.setdefault(key, {})
        inner[keys[-1]] = value
    return change


def sample(model, out, *extra):
    return invoke("sample", "-n", 1, "-o", out, "--model", model, "--steps", 1, *extra)


# ----------------------------------------------------------------------------- MAJOR 3: numbers checked at load

HOSTILE = {
    "factor_nan": (setting("calibration", "factors", value={"g": float("nan"), "r": 1.0, "z": 1.0}),
                   "calibration.factors.g"),
    "factor_negative_huge": (setting("calibration", "factors", value={"g": -1e30, "r": 1.0, "z": 1.0}),
                             "calibration factor g"),
    "factor_as_text": (setting("calibration", "factors", value={"g": "1.2"}), "calibration factor g"),
    "factor_of_no_band": (setting("calibration", "factors", value={"u": 1.1}), "band 'u'"),
    "pixel_scale_nan": (setting("pixel_scale", value=float("nan")), "pixel_scale"),
    "pixel_scale_negative": (setting("pixel_scale", value=-0.262), "pixel scale -0.262"),
    "pixel_scale_text": (setting("pixel_scale", value="nan"), "pixel scale 'nan'"),
    "normaliser_overflows_float32": (setting("normalizer", "upper", value=[1e39, 1.5, 2.5]), "normaliser band g"),
    "normaliser_not_a_table": (setting("normalizer", value=[1, 2]), "malformed normaliser"),
    "normaliser_text_limits": (setting("normalizer", "lower", value="-1"), "malformed normaliser"),
    "unet_groups_zero": (setting("unet", "groups", value=0), "groups 0"),
    "unet_mults_fraction": (setting("unet", "mults", value=[1.5, 2, 2]), "mults [1.5, 2, 2]"),  # read as 1, 2, 2
    "unet_conditions_negative": (setting("unet", "conditions", value=-1), "conditions -1"),
    "timesteps_fraction": (setting("timesteps", value=999.5), "timesteps 999.5"),
    "timesteps_huge": (setting("timesteps", value=10**12), "timesteps"),
    "sigma_data_infinite": (lambda meta: meta.update(prediction="edm", sigma_data=float("inf")), "sigma_data"),
    "sigma_data_text": (lambda meta: meta.update(prediction="edm", sigma_data="0.1"), "sigma_data"),
    "sky_rms_negative": (setting("data", "sky_rms", value=[-1.0, 0.01, 0.02]), "sky RMS"),
    "sky_rms_short": (setting("data", "sky_rms", value=[0.01]), "sky RMS"),
    "conditions_without_network": (setting("conditions", value=CONDITIONS), "conditions"),
    "huge_integer": (setting("step", value=10**30), "step"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_every_number_of_the_metadata_is_checked_when_the_file_is_loaded(model_file, tmp_path, case):
    change, words = HOSTILE[case]
    bad = variant(model_file, tmp_path / f"{case}.safetensors", change)
    line = one_line_error(sample(bad, tmp_path / "mocks"))
    assert str(bad) in line and words in line
    assert not (tmp_path / "mocks").exists()


@pytest.mark.parametrize("key, value, words", [
    ("scale", 0.0, "scale 0 must be positive"),
    ("median", float("nan"), "median"),
    ("min", 30.0, "not in order"),
    ("name", "", "has no name"),
])
def test_condition_ranges_and_scales_are_checked_when_the_file_is_loaded(conditional_file, tmp_path, key, value,
                                                                          words):
    def change(meta):
        meta["conditions"][0][key] = value

    bad = variant(conditional_file, tmp_path / "bad.safetensors", change)
    line = one_line_error(sample(bad, tmp_path / "mocks"))
    assert str(bad) in line and words in line
    assert not (tmp_path / "mocks").exists()


def test_to_flux_checks_the_flux_once_the_factors_are_applied(model_file):
    from galgen.model import load_model

    model = load_model(model_file, device="cpu", bf16=False)
    model.factors = np.array([1.0, 1.0, 3e38], dtype=np.float32)  # past the checks at load: z's 2.5 x 3e38 overflows
    with pytest.raises(RuntimeFailure, match="NaN or infinite flux"):
        model.to_flux(np.ones((1, 3, 16, 16), dtype=np.float32))


def test_info_json_refuses_non_finite_metadata_in_one_line(model_file, tmp_path):
    bad = variant(model_file, tmp_path / "nan.safetensors", setting("pixel_scale", value=float("nan")))
    line = one_line_error(invoke("info", bad, "--json"))
    assert str(bad) in line and "pixel_scale" in line


@pytest.mark.parametrize("where", ["metadata", "header"])
def test_deeply_nested_json_is_an_input_error_naming_the_file(model_file, tmp_path, where):
    bad = tmp_path / f"deep-{where}.safetensors"
    if where == "metadata":
        variant(model_file, bad, raw="[" * 100_000 + "]" * 100_000)
    else:  # the safetensors header itself, before galgen's metadata
        header = ('{"__metadata__": {"a": "b"}, "deep": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
        bad.write_bytes(len(header).to_bytes(8, "little") + header)
    for command in (("info", bad, "--json"), ("sample", "-n", 1, "-o", tmp_path / "m", "--model", bad)):
        line = one_line_error(invoke(*command))
        assert str(bad) in line
    assert not (tmp_path / "m").exists()


def test_a_bad_normaliser_in_weights_names_the_file(model_file, tmp_path):
    bad = variant(model_file, tmp_path / "swapped.safetensors",
                  setting("normalizer", "lower", value=[2.0, -0.065, -0.145]))  # g: lower above upper
    line = one_line_error(sample(bad, tmp_path / "mocks"))
    assert str(bad) in line and "normaliser band g" in line


def test_a_bad_normaliser_in_dataset_json_names_the_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "images.npy", np.zeros((2, 3, 16, 16), np.float32))
    meta = {"format": "galgen-dataset", "format_version": 1, "bands": "grz", "size": 16, "count": 2,
            "normalizer": {"bands": "grz", "lower": [0, 0, 0], "upper": [5, -1, 5]}}
    (data / "dataset.json").write_text(json.dumps(meta))
    line = one_line_error(invoke("train", data, "-o", tmp_path / "m.safetensors", "--steps", 1, "--batch", 2))
    assert str(data / "dataset.json") in line and "normaliser band r" in line
    assert not (tmp_path / "m.safetensors").exists()


def test_int8_tensors_are_refused_naming_the_tensor(model_file, tmp_path):
    tensors = {name: (t * 100).to(torch.int8) for name, t in load_tensors(model_file).items()}
    bad = variant(model_file, tmp_path / "int8.safetensors", tensors=tensors)
    line = one_line_error(sample(bad, tmp_path / "mocks"))
    assert str(bad) in line and "is stored as I8" in line and "tensor" in line
    assert not (tmp_path / "mocks").exists()


def label_rows() -> torch.Tensor:
    """Four training label rows (mag_r, r_e) inside CONDITIONS' ranges, as `galgen train` keeps them."""
    return torch.tensor([[16.0, 1.0], [17.5, 1.5], [18.0, 2.0], [19.0, 3.0]])


def test_nan_label_rows_are_refused_at_load(conditional_file, tmp_path):
    tensors = {**load_tensors(conditional_file), "data.labels": label_rows()}
    good = variant(conditional_file, tmp_path / "labels.safetensors", tensors=tensors)
    assert sample(good, tmp_path / "fine").exit_code == 0  # drawn from the table
    tensors["data.labels"][2, 1] = float("nan")
    bad = variant(conditional_file, tmp_path / "nan-labels.safetensors", tensors=tensors)
    line = one_line_error(sample(bad, tmp_path / "mocks"))
    assert str(bad) in line and "row 2 of the label table" in line
    assert not (tmp_path / "mocks").exists()


def test_integer_label_tables_are_refused(conditional_file, tmp_path):
    tensors = {**load_tensors(conditional_file), "data.labels": label_rows().to(torch.int8)}
    bad = variant(conditional_file, tmp_path / "int-labels.safetensors", tensors=tensors)
    line = one_line_error(sample(bad, tmp_path / "mocks"))
    assert str(bad) in line and "data.labels is stored as I8" in line


# ----------------------------------------------------------------------------- MAJOR 4: calibrate's model and mocks


def write_set(directory, stack, *, provenance=None, factors=None):
    """FITS cubes of ``stack`` (times ``factors`` per band, as a calibrated model writes them) with
    ``provenance`` (the fields `LoadedModel.provenance` gives a mock) in their headers."""
    from galgen.io.cube import Cube, make_wcs
    from galgen.io.provenance import make_provenance
    from galgen.io.write import write_cube

    directory.mkdir()
    fields = None
    if provenance is not None:
        fields = make_provenance(command="galgen sample", **provenance)
    scale = np.ones(3) if factors is None else np.asarray(factors)
    for i, stamp in enumerate(stack):
        cube = Cube(data=(stamp * scale[:, None, None]).astype(np.float32), bands="grz",
                    wcs=make_wcs(stamp.shape[-2:], pixel_scale=0.262))
        write_cube(cube, directory / f"g{i:03d}.fits", provenance=fields)
    return directory


def plain_model(path) -> str:
    save_weights(path, {"w": torch.zeros(2)}, {"kind": MODEL_KIND, "bands": "grz"})
    return file_sha256(path)


def made_by(path, **extra) -> dict:
    return {"model": path.name, "model_sha256": file_sha256(path), "calibrated": False, **extra}


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    """Real discs and their uncalibrated mocks (faint by FACTORS): as arrays, and the real set on disk."""
    root = tmp_path_factory.mktemp("populations")
    real = real_galaxies(30, seed=8)
    return root, write_set(root / "real", real), make_mocks(real)


def calibrate(real, mocks, model, *extra):
    return invoke("calibrate", real, mocks, "--write-to", model, "--json", *extra)


def test_calibrate_refuses_mocks_that_another_model_made(populations, tmp_path):
    _, real, stack = populations
    target, other = tmp_path / "m.safetensors", tmp_path / "other.safetensors"
    plain_model(target)
    save_weights(other, {"w": torch.ones(2)}, {"kind": MODEL_KIND, "bands": "grz"})
    mocks = write_set(tmp_path / "mocks", stack, provenance=made_by(other))
    before = target.read_bytes()
    line = one_line_error(calibrate(real, mocks, target))
    assert str(mocks / "g000.fits") in line and "other.safetensors" in line and file_sha256(other)[:12] in line
    assert "--any-model" in line and target.read_bytes() == before
    result = calibrate(real, mocks, target, "--any-model")  # the user says so
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert any("other.safetensors" in note for note in summary["notes"])
    assert read_metadata(target)["calibration"]["factors"]["r"] == pytest.approx(FACTORS[1], rel=0.05)


def test_a_calibrated_file_still_takes_the_mocks_of_the_model_it_was_calibrated_from(populations, tmp_path):
    _, real, stack = populations
    target = tmp_path / "m.safetensors"
    uncalibrated = plain_model(target)
    mocks = write_set(tmp_path / "mocks", stack, provenance=made_by(target))
    first = calibrate(real, mocks, target)
    assert first.exit_code == 0, first.output
    assert file_sha256(target) != uncalibrated
    assert read_metadata(target)["calibration"]["calibrated_from"] == [uncalibrated]
    calibrated = file_sha256(target)
    again = calibrate(real, mocks, target)  # the same mocks, now made by "the model it was calibrated from"
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["factors"] == json.loads(first.stdout)["factors"]
    assert read_metadata(target)["calibration"]["calibrated_from"] == [uncalibrated, calibrated]
    # and a copy of it accepts them too
    copy = calibrate(real, mocks, tmp_path / "copy.safetensors", "--model", target)
    assert copy.exit_code == 0, copy.output


def test_mocks_made_with_factors_applied_give_the_model_those_times_m(populations, tmp_path):
    _, real, stack = populations
    target = tmp_path / "m.safetensors"
    plain_model(target)
    applied = {"g": 1.1, "r": 1.05, "z": 1.2}  # a first calibration, already in the mocks' flux and headers
    mocks = write_set(tmp_path / "mocks", stack, factors=list(applied.values()),
                      provenance=made_by(target, calibrated=True, calibration=applied))
    result = calibrate(real, mocks, target)
    assert result.exit_code == 0, result.output
    measured = json.loads(result.stdout)["factors"]
    stored = read_metadata(target)["calibration"]
    for band, truth in zip("grz", FACTORS):
        assert measured[band] == pytest.approx(truth / applied[band], rel=0.05)  # relative to the mocks' factors
        assert stored["factors"][band] == pytest.approx(measured[band] * applied[band], rel=1e-9)
    assert stored["mock_factors"] == applied


def test_calibrate_never_rewrites_the_bundled_model(populations, tmp_path):
    from galgen.model import bundled_model_path

    _, real, stack = populations
    bundled = bundled_model_path()
    before = bundled.read_bytes()
    mocks = write_set(tmp_path / "mocks", stack, provenance=made_by(bundled))
    link = tmp_path / "link.safetensors"
    link.symlink_to(bundled)
    try:
        for target in (bundled, link):
            line = one_line_error(calibrate(real, mocks, target))
            assert str(target) in line and "bundled" in line and "--model" in line
    finally:
        if bundled.read_bytes() != before:  # never leave the checkout's model calibrated, even when this fails
            bundled.write_bytes(before)
    assert bundled.read_bytes() == before and link.is_symlink()
    copied = calibrate(real, mocks, tmp_path / "copy.safetensors", "--model", bundled)  # the way out
    assert copied.exit_code == 0, copied.output


def test_a_symlinked_write_to_is_written_through(populations, tmp_path):
    _, real, stack = populations
    (tmp_path / "store").mkdir()
    target, link = tmp_path / "store" / "m.safetensors", tmp_path / "m.safetensors"
    plain_model(target)
    link.symlink_to(target)
    mocks = write_set(tmp_path / "mocks", stack, provenance=made_by(target))
    result = calibrate(real, mocks, link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert "calibration" in read_metadata(target)
    assert [p.name for p in (tmp_path / "store").iterdir()] == ["m.safetensors"]  # no temporary left


def test_a_full_disk_during_calibrate_is_one_line_and_leaves_the_model_whole(monkeypatch, populations, tmp_path):
    import safetensors.torch
    from safetensors import SafetensorError

    _, real, stack = populations
    target = tmp_path / "m.safetensors"
    plain_model(target)
    before = target.read_bytes()
    mocks = write_set(tmp_path / "mocks", stack, provenance=made_by(target))

    def full(tensors, name, metadata=None):
        with open(name, "wb") as handle:
            handle.write(b"partial")
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    line = one_line_error(calibrate(real, mocks, target), code=1)
    assert str(target) in line and line.count("No space left on device") == 1 and ".tmp-" not in line
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors", "mocks"]


# ----------------------------------------------------------------------------- train: the checkpoint it resumes


def test_train_refuses_an_output_that_is_the_checkpoint_it_resumes_from(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    np.save(data / "images.npy", np.random.default_rng(1).uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32))
    meta = {"format": "galgen-dataset", "format_version": 1, "bands": "grz", "size": 16, "count": 4,
            "pixel_scale": 0.262, "unit": "nanomaggy",
            "normalizer": {"bands": "grz", "lower": [0, 0, 0], "upper": [5, 5, 5]}}
    (data / "dataset.json").write_text(json.dumps(meta))
    out = tmp_path / "m.safetensors"
    first = invoke("train", data, "-o", out, "--steps", 1, "--batch", 2, "--no-bf16")
    assert first.exit_code == 0, first.output
    checkpoint = tmp_path / "m.ckpt.safetensors"
    before = checkpoint.read_bytes()
    line = one_line_error(invoke("train", data, "-o", checkpoint, "--resume", checkpoint, "--overwrite",
                                 "--steps", 2, "--batch", 2))
    assert str(checkpoint) in line and "resumes from" in line and "m.safetensors" in line
    assert checkpoint.read_bytes() == before and read_metadata(checkpoint)["kind"] == "galgen-checkpoint"
