"""prep --labels: labels measured by galgen's photometry or matched from a catalogue, stored with the dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from galgen.cli import app
from galgen.io.cube import Cube
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube, write_table
from galgen.dataset import open_dataset
from galgen.errors import InputError
from galgen.prep import PrepConfig, prep_dataset

runner = CliRunner()


def _cutout(path, *, flux: float, ra: float, seed: int):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:80, :80] - 40
    profile = np.exp(-(x**2 + y**2) / (2 * 3.0**2))
    data = np.stack([flux * c * profile / profile.sum() + rng.normal(0, s, (80, 80))
                     for c, s in zip((0.5, 1.0, 1.5), (0.002, 0.003, 0.006))]).astype(np.float32)
    write_cube(Cube(data=data, bands="grz", wcs=make_wcs((80, 80), pixel_scale=0.262, ra=ra, dec=0.0)), path)
    return path


@pytest.fixture
def cutouts(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    return [_cutout(folder / f"gal_{i}.fits", flux=f, ra=150.0 + i / 100, seed=i)
            for i, f in enumerate([10.0, 20.0, 40.0, 80.0])]


def test_measured_labels_travel_with_the_dataset(cutouts, tmp_path):
    result = prep_dataset(cutouts, tmp_path / "data", config=PrepConfig(size=64, labels="measure"))
    data = open_dataset(tmp_path / "data")
    table, units = data.labels()
    assert result.labels["names"] == list(table) == ["mag_g", "mag_r", "mag_z", "r_e", "q", "g_r", "r_z"]
    assert units["r_e"] == "arcsec" and units["mag_r"] == "mag"
    expected = 22.5 - 2.5 * np.log10([10.0, 20.0, 40.0, 80.0])
    assert np.asarray(table["mag_r"]) == pytest.approx(expected, abs=0.05)
    assert np.asarray(table["r_e"]) == pytest.approx(1.1774 * 3 * 0.262, rel=0.1)


def test_catalogue_labels_matched_by_name_id_or_sky_with_unmatched_cutouts_listed(cutouts, tmp_path):
    catalog = write_table({"file": np.array(["gal_2.fits", "gal_0.fits", "other.fits"]),
                           "objid": np.array([2, 0, 9]), "ra": np.array([150.02, 150.0, 10.0]),
                           "dec": np.zeros(3), "mag_r": np.array([17.0, 18.0, 19.0]), "z": np.array([0.1, 0.2, 0.3])},
                          tmp_path / "cat.fits", units={"mag_r": "mag"})
    expected_names = {"name": ["mag_r"], "name:FILE": ["objid", "ra", "dec", "mag_r", "z"], "sky": ["objid", "mag_r", "z"]}
    for i, match in enumerate(expected_names):
        config = PrepConfig(size=64, labels=str(catalog), match=match, label_columns=None if i else ("mag_r",))
        result = prep_dataset(cutouts, tmp_path / f"d{i}", config=config)
        table, units = open_dataset(tmp_path / f"d{i}").labels()
        assert table["mag_r"][0] == 18.0 and table["mag_r"][2] == 17.0 and np.isnan(table["mag_r"][1])
        assert units["mag_r"] == "mag"
        assert result.labels["unmatched"] == [str(cutouts[1]), str(cutouts[3])]
        assert list(table) == expected_names[match]  # every numeric column but those that matched


def test_id_matching_falls_back_on_the_file_stem(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    paths = [_cutout(folder / f"{n}.fits", flux=10.0, ra=150.0, seed=n) for n in (101, 102)]
    catalog = tmp_path / "cat.csv"
    catalog.write_text("ID,mag_r [mag]\n102,18.5\n101,17.5\n")
    prep_dataset(paths, tmp_path / "d", config=PrepConfig(size=64, labels=str(catalog), match="id:ID"))
    table, units = open_dataset(tmp_path / "d").labels()
    assert table["mag_r"].tolist() == [17.5, 18.5] and units == {"mag_r": "mag"}


def test_bad_catalogues_fail_before_any_file_is_read_and_leave_nothing(cutouts, tmp_path):
    catalog = tmp_path / "cat.csv"
    catalog.write_text("file,mag_r\nnone.fits,17\n")
    with pytest.raises(InputError, match="no cutout matched a row"):
        prep_dataset(cutouts, tmp_path / "d", config=PrepConfig(size=64, labels=str(catalog)))
    with pytest.raises(InputError, match="no column 'r_e'"):
        prep_dataset(cutouts, tmp_path / "d", config=PrepConfig(size=64, labels=str(catalog), label_columns=("r_e",)))
    with pytest.raises(InputError, match="no column 'ra'"):
        prep_dataset(cutouts, tmp_path / "d", config=PrepConfig(size=64, labels=str(catalog), match="sky"))
    assert not (tmp_path / "d").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.csv", "in"]


def test_cli_labels_warns_of_unmatched_cutouts_and_json_lists_them(cutouts, tmp_path):
    catalog = tmp_path / "cat.csv"
    catalog.write_text("file,mag_r [mag]\ngal_0.fits,17\ngal_1.fits,18\ngal_2.fits,19\n")
    out = runner.invoke(app, ["prep", str(cutouts[0].parent), "-o", str(tmp_path / "d"), "--labels", str(catalog),
                              "--json"])
    assert out.exit_code == 0, out.output
    assert "1 of 4 cutouts matched no catalogue row" in out.stderr and "gal_3.fits" in out.stderr
    assert json.loads(out.stdout)["labels"]["unmatched"] == [str(cutouts[3])]
    bad = runner.invoke(app, ["prep", str(cutouts[0].parent), "-o", str(tmp_path / "e"), "--labels", str(catalog),
                              "--match", "sky:ra"])
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--match" in bad.stderr
