"""`train` keeps galaxies aside and ends with the memorisation check against them."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from galgen.cli import app
from galgen.holdout import MAX_HELD_OUT, MIN_SET, Rows, held_out_rows, training_rows
from galgen.metrics.neighbours import nearest_neighbours
from test_flow_desify import write_dataset

runner = CliRunner()


def test_the_held_out_rows_are_a_fixed_tenth_of_sets_of_200_or_more():
    assert len(held_out_rows(MIN_SET - 1)) == 0
    assert len(held_out_rows(MIN_SET)) == 20 and len(held_out_rows(50_000)) == MAX_HELD_OUT
    np.testing.assert_array_equal(held_out_rows(5000), held_out_rows(5000))  # every run the same galaxies
    held = held_out_rows(300)
    rows = training_rows(300, held)
    assert len(held) == 30 and len(rows) == 270 and not set(held) & set(rows)
    assert np.all(np.diff(held) > 0) and np.all(np.diff(rows) > 0)


def test_a_view_of_rows_reads_only_them_and_serves_the_neighbour_search(tmp_path):
    images = np.random.default_rng(0).normal(size=(40, 3, 4, 4)).astype(np.float32)
    np.save(tmp_path / "a.npy", images)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    index = np.arange(0, 40, 3)
    view = Rows(mapped, index)
    assert view.shape == (14, 3, 4, 4) and len(view) == 14 and view.dtype == np.float32
    np.testing.assert_array_equal(view[[2, 0]], images[index[[2, 0]]])
    np.testing.assert_array_equal(view[1:3], images[index[1:3]])
    np.testing.assert_array_equal(np.asarray(view), images[index])
    assert isinstance(view.reshape(len(view), -1).array, np.memmap)
    queries = images[:5] + 0.01
    found = nearest_neighbours(queries, view, k=2, chunk_rows=4)
    expected = nearest_neighbours(queries, images[index], k=2)
    np.testing.assert_array_equal(found[0], expected[0])
    np.testing.assert_allclose(found[1], expected[1])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    images = np.random.default_rng(1).uniform(-1, 1, (MIN_SET, 3, 16, 16)).astype(np.float32)
    return write_dataset(tmp_path_factory.mktemp("holdout") / "ds", images).path


def train(dataset, out, *args):
    return runner.invoke(app, ["train", str(dataset), "-o", str(out), "--preset", "tiny", "--batch", "2",
                               "--no-bf16", "--json", *map(str, args)])


def test_train_ends_with_the_memorisation_check_on_its_held_out_galaxies(dataset, tmp_path, monkeypatch):
    from galgen.flows import train as flow

    monkeypatch.setattr(flow, "MEMORISATION_MOCKS", 24)
    done = train(dataset, tmp_path / "m.safetensors", "--steps", 1)
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["held_out"] == 20
    report = summary["memorisation"]
    assert (report["n_mock"], report["n_real"], report["n_train"]) == (24, 20, 180)
    assert report["near_copies"] == 0  # one training step is no copy of anything
    metadata = json.loads(runner.invoke(app, ["info", str(tmp_path / "m.safetensors"), "--json"]).stdout)
    assert metadata["files"][0]["metadata"]["data"]["held_out"] == 20
    line = runner.invoke(app, ["train", str(dataset), "-o", str(tmp_path / "m.safetensors"), "--preset", "tiny",
                               "--batch", "2", "--no-bf16", "--steps", "2", "--resume",
                               str(tmp_path / "m.ckpt.safetensors")])
    assert line.exit_code == 0, line.output
    assert "memorisation check (20 held-out galaxies): " in line.stdout


def test_mocks_that_are_training_images_are_flagged(dataset, tmp_path, monkeypatch):
    import torch

    from galgen.dataset import open_dataset
    from galgen import model
    from galgen.flows import train as flow

    training = open_dataset(dataset).images[training_rows(MIN_SET, held_out_rows(MIN_SET))]
    monkeypatch.setattr(flow, "MEMORISATION_MOCKS", 24)
    monkeypatch.setattr(model, "draw", lambda model, rows, **_: torch.from_numpy(training[rows].copy()))
    done = train(dataset, tmp_path / "m.safetensors", "--steps", 1)
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)["memorisation"]
    assert report["near_copies"] == 24 and "near-copies of training images" in report["verdict"]


def test_no_hold_out_trains_on_every_image_and_a_resume_keeps_that(dataset, tmp_path):
    done = train(dataset, tmp_path / "m.safetensors", "--steps", 1, "--no-hold-out")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["held_out"] == 0 and json.loads(done.stdout)["memorisation"] is None
    resumed = train(dataset, tmp_path / "m.safetensors", "--steps", 2, "--resume", tmp_path / "m.ckpt.safetensors")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["held_out"] == 0  # the checkpoint trained on every image: so does its resume
