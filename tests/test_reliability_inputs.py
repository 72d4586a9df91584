"""A third hostile catalogue: inputs that were accepted silently, or ended in an internal error.

Issue "No hang, no silent garbage: a third hostile catalogue" (the inputs part). Each case failed
before its fix: a silent exit 0 with garbage, an internal error (exit 1, no file named), the wrong
reason, or a rerun refused.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from test_fault_catalogue import invoke, one_line_error


def sample_catalog(catalog, out, model):
    return invoke("sample", "--catalog", catalog, "-o", out, "--model", model, "--steps", 1, "-j", 1, "--json")


def requested(out, count):
    from galgen.io.cube import read_provenance

    return [read_provenance(out / f"mock_{i:06d}.fits")["conditions"] for i in range(count)]


# ----------------------------------------------------------------------------- catalogues accepted silently


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_semicolon_or_tab_separated_catalogue_is_split_on_its_separator(conditional_file, tmp_path, separator):
    catalog = tmp_path / "cat.csv"
    catalog.write_text(f"mag_r{separator}r_e\n17{separator}1.2\n18{separator}2.5\n")
    done = sample_catalog(catalog, tmp_path / "out", conditional_file)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["notes"] == []  # both columns found: no median stands in
    assert requested(tmp_path / "out", 2) == [{"mag_r": 17.0, "r_e": 1.2}, {"mag_r": 18.0, "r_e": 2.5}]


def test_a_catalogue_that_gives_none_of_the_conditions_is_refused(conditional_file, tmp_path):
    catalog = tmp_path / "stars.csv"
    catalog.write_text("ra,dec,teff\n10,1,5800\n11,2,4000\n")
    line = one_line_error(sample_catalog(catalog, tmp_path / "out", conditional_file))
    assert str(catalog) in line and "none of the model's conditions" in line
    assert "ra, dec, teff" in line and "mag_r [mag], r_e [arcsec]" in line
    assert not (tmp_path / "out").exists()
    # one that gives some of them: the others take the training median, said in a note
    catalog = tmp_path / "mags.csv"
    catalog.write_text("mag_r\n17\n")
    done = sample_catalog(catalog, tmp_path / "out", conditional_file)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["notes"] == [f"{catalog} gives no r_e: every mock takes the training median, "
                                                "1.5 arcsec"]


def test_a_condition_named_twice_in_another_case_is_refused(conditional_file, tmp_path):
    line = one_line_error(invoke("sample", "-n", 1, "--condition", "mag_r=17,MAG_R=18", "-o", tmp_path / "out",
                                 "--model", conditional_file, "--steps", 1))
    assert "mag_r twice" in line and "--condition" in line
    assert not (tmp_path / "out").exists()
    # a FITS table alike (a CSV header naming a column twice was refused already)
    from astropy.io import fits

    table = tmp_path / "twice.fits"
    columns = [fits.Column(name=name, format="D", array=np.array([value]))
               for name, value in (("mag_r", 17.0), ("MAG_R", 18.0), ("r_e", 1.2))]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(table)
    line = one_line_error(sample_catalog(table, tmp_path / "out", conditional_file))
    assert str(table) in line and "names a column twice" in line
    assert not (tmp_path / "out").exists()


def test_a_catalogue_unit_is_converted_to_the_conditions(conditional_file, tmp_path):
    catalog = tmp_path / "deg.csv"
    catalog.write_text("mag_r,r_e [deg]\n17,0.0005\n")
    done = sample_catalog(catalog, tmp_path / "out", conditional_file)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["notes"] == [f"{catalog}: column r_e converted from deg to arcsec"]
    assert requested(tmp_path / "out", 1)[0]["r_e"] == pytest.approx(1.8)
    # a FITS column's TUNIT alike; AB magnitudes are galgen's mag
    from galgen.io.write import write_table

    table = write_table({"mag_r": np.array([17.0]), "r_e": np.array([0.03])}, tmp_path / "cat.fits",
                        units={"mag_r": "mag(AB)", "r_e": "arcmin"})
    done = sample_catalog(table, tmp_path / "fits", conditional_file)
    assert done.exit_code == 0, done.output
    assert requested(tmp_path / "fits", 1)[0] == pytest.approx({"mag_r": 17.0, "r_e": 1.8})


@pytest.mark.parametrize("unit, reason", [("pixel", "does not convert"), ("furlongs", "astropy does not know")])
def test_a_catalogue_unit_that_does_not_convert_is_refused(conditional_file, tmp_path, unit, reason):
    catalog = tmp_path / "cat.csv"
    catalog.write_text(f"mag_r,r_e [{unit}]\n17,4\n")
    line = one_line_error(sample_catalog(catalog, tmp_path / "out", conditional_file))
    assert str(catalog) in line and reason in line and "'arcsec'" in line and "r_e" in line
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- catalogues ending in internal errors


def test_a_vector_catalogue_column_is_an_input_error(conditional_file, tmp_path):
    from galgen.io.write import write_table

    table = write_table({"mag_r": np.array([[17.0, 17.1, 17.2], [18.0, 18.1, 18.2]]), "r_e": np.array([1.2, 1.5])},
                        tmp_path / "vector.fits")
    line = one_line_error(sample_catalog(table, tmp_path / "out", conditional_file))
    assert str(table) in line and "'mag_r' holds 3 values per row" in line
    assert not (tmp_path / "out").exists()


def test_non_ascii_catalogue_bytes_are_an_input_error_or_read_as_utf8(conditional_file, tmp_path):
    from astropy.table import Table

    latin = tmp_path / "latin.fits"
    Table({"id": np.array([b"gal\xe9", b"b"]), "mag_r": [17.0, 18.0], "r_e": [1.2, 1.5]}).write(latin)
    line = one_line_error(sample_catalog(latin, tmp_path / "out", conditional_file))
    assert str(latin) in line and "column 'id' row 0" in line and "neither ASCII nor UTF-8" in line
    assert not (tmp_path / "out").exists()
    utf8 = tmp_path / "utf8.fits"
    Table({"id": np.array(["galaxié".encode(), b"b"]), "mag_r": [17.0, 18.0], "r_e": [1.2, 1.5]}).write(utf8)
    done = sample_catalog(utf8, tmp_path / "ok", conditional_file)
    assert done.exit_code == 0, done.output
    from galgen.io.cube import read_provenance

    assert read_provenance(tmp_path / "ok" / "mock_000000.fits")["catalog_id"] == "galaxié"
    csv = tmp_path / "latin.csv"
    csv.write_bytes(b"id,mag_r,r_e\ngal\xe9,17,1.2\n")
    line = one_line_error(sample_catalog(csv, tmp_path / "out", conditional_file))
    assert str(csv) in line and "line 2" in line and "not UTF-8" in line


# ----------------------------------------------------------------------------- counts, sizes and indices out of reach


def test_a_sample_count_beyond_the_limit_is_refused_at_once(model_file, tmp_path):
    from galgen.flows.sample import MAX_COUNT

    out = tmp_path / "out"
    line = one_line_error(invoke("sample", "-n", 10**12, "-o", out, "--model", model_file, "--steps", 1))
    assert f"at most {MAX_COUNT:,}" in line and "--count" in line
    assert not out.exists()
    from typer.testing import CliRunner

    from galgen.cli import app

    text = CliRunner().invoke(app, ["sample", "--help"], env={"COLUMNS": "300"}).output
    assert f"at most {MAX_COUNT:,}" in text  # the help says the limit the library holds


@pytest.mark.parametrize("args, words", [
    (("--size", 100000), ("size", "1,024", "--size")),
    (("--pixel-scale", "1e6"), ("pixel scale", "[0.01, 2]", "--pixel-scale")),
    (("--start", 2**63 - 1, "-n", 2), ("start + count - 1", "--start")),
    (("--seed", 2**63), ("seed", "--seed")),
    (("-n", 10**12), ("count", "10,000,000", "--count")),
])
def test_simulate_refuses_sizes_scales_counts_and_indices_out_of_reach_before_any_work(tmp_path, args, words):
    out = tmp_path / "sims"
    line = one_line_error(invoke("simulate", "-n", 1, "-o", out, "-j", 1, *args))
    assert all(word in line for word in words), line
    assert not out.exists()


def test_simulate_help_states_the_limits_the_library_holds():
    from typer.testing import CliRunner

    from galgen import simulate as sim
    from galgen.cli import app

    text = " ".join(CliRunner().invoke(app, ["simulate", "--help"], env={"COLUMNS": "300"}).output.split())
    assert f"16 to {sim.MAX_SIZE}" in text and f"{sim.PIXEL_SCALES[0]:g} to {sim.PIXEL_SCALES[1]:g}" in text
    assert f"at most {sim.MAX_COUNT:,}" in text and "below 2^63" in text


# ----------------------------------------------------------------------------- an interrupted simulate resumes


def test_an_interrupted_simulate_is_resumed_by_the_same_command(monkeypatch, tmp_path):
    from galgen import galaxies as gal, simulate as sim
    from galgen.io.cube import read_cube, read_table

    args = ("simulate", "-n", 5, "--size", 16, "-j", 1, "--seed", 3, "--json")
    whole = tmp_path / "whole"
    assert invoke(*args, "-o", whole).exit_code == 0
    out = tmp_path / "cut"
    real, calls = gal.draw_observation, {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(sim, "draw_observation", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sim.simulate(5, out, seed=3, size=16, workers=1)
    monkeypatch.setattr(sim, "draw_observation", real)
    kept = {p.name: p.read_bytes() for p in out.glob("sim_*.fits")}
    assert len(kept) == 3 and not (out / "truth.fits").exists()
    done = invoke(*args, "-o", out)
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["kept"] == 3
    assert all((out / name).read_bytes() == data for name, data in kept.items())  # kept, not rewritten
    truth, expected = read_table(out / "truth.fits"), read_table(whole / "truth.fits")
    assert sorted(truth) == sorted(expected) and all(np.array_equal(truth[k], expected[k]) for k in expected)
    for i in range(5):
        assert np.array_equal(read_cube(out / sim.file_name(i)).data, read_cube(whole / sim.file_name(i)).data)
    # run complete: the same command is refused as before; a cube of another run is never taken for this one's
    assert "already exists" in one_line_error(invoke(*args, "-o", out))
    (out / "truth.fits").unlink()
    (out / sim.file_name(4)).unlink()
    line = one_line_error(invoke("simulate", "-n", 5, "--size", 16, "-j", 1, "--seed", 4, "-o", out))
    assert "another run (seed differ)" in line and sim.file_name(0) in line
    line = one_line_error(invoke(*args, "--noise-free", "-o", out))
    assert "noise-free extension differ" in line
    assert not (out / "truth.fits").exists() and not (out / sim.file_name(4)).exists()


# ----------------------------------------------------------------------------- images at pixel scales out of range


def image_at(path, pixel_scale: float, size: int = 32):
    from galgen.io.cube import Cube, make_wcs
    from galgen.io.write import write_cube

    data = np.random.default_rng(0).normal(0.05, 0.01, (3, size, size)).astype(np.float32)
    return write_cube(Cube(data=data, bands="grz", wcs=make_wcs((size, size), pixel_scale=pixel_scale)), path)


def trail_mask(path, size: int = 32):
    from astropy.io import fits

    mask = np.zeros((size, size), np.uint8)
    mask[size // 2 - 1 : size // 2 + 1] = 1
    fits.PrimaryHDU(mask).writeto(path)
    return path


@pytest.mark.parametrize("scale, shown", [(3600.0, "3600 arcsec/px"), (1e-5, "1e-05 arcsec/px")])
def test_desify_and_inpaint_refuse_an_image_whose_pixel_scale_is_out_of_range_for_the_model(model_file, tmp_path,
                                                                                           scale, shown):
    image = image_at(tmp_path / "sky.fits", scale)
    line = one_line_error(invoke("desify", image, "-o", tmp_path / "d", "--model", model_file, "--steps", 1))
    assert str(image) in line and shown in line and "out of range for the model's 0.262 arcsec/px" in line
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").iterdir())
    line = one_line_error(invoke("inpaint", image, "--mask", trail_mask(tmp_path / "mask.fits"), "-o",
                                 tmp_path / "fixed.fits", "--model", model_file, "--steps", 1, "--draws", 1))
    assert str(image) in line and shown in line and "out of range for the model's 0.262 arcsec/px" in line
    assert "--native-scale" in line and not (tmp_path / "fixed.fits").exists()


def test_inpaint_refuses_a_model_scale_grid_too_large_to_hold(monkeypatch, model_file, tmp_path):
    import galgen.io.regrid

    monkeypatch.setattr(galgen.io.regrid, "MAX_GRID_PIXELS", 40 * 40)
    image = image_at(tmp_path / "coarse.fits", 0.524)  # 32 px at twice the model's scale: a 66 x 66 px grid
    line = one_line_error(invoke("inpaint", image, "--mask", trail_mask(tmp_path / "mask.fits"), "-o",
                                 tmp_path / "fixed.fits", "--model", model_file, "--steps", 1, "--draws", 1))
    assert str(image) in line and "66 x 66 px" in line and "0.524 arcsec/px" in line and "--native-scale" in line
    assert not (tmp_path / "fixed.fits").exists()


# ----------------------------------------------------------------------------- desify: an output is an input


def test_desify_overwrite_never_replaces_an_input_of_the_same_run(model_file, tmp_path):
    picture = tmp_path / "cartoon.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(picture)
    out = tmp_path / "d"
    assert invoke("desify", picture, "-o", out, "--model", model_file, "--steps", 1).exit_code == 0
    made = out / "cartoon_draw0.fits"
    before = made.read_bytes()
    line = one_line_error(invoke("desify", made, picture, "-o", out, "--model", model_file, "--steps", 1,
                                 "--overwrite"))
    assert "is an input of this run" in line and str(made) in line
    assert made.read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["cartoon_draw0.fits"]
    # through a link to it too
    link = tmp_path / "linked.fits"
    link.symlink_to(made)
    copy = out / "linked_draw0.fits"
    copy.symlink_to(made)  # the output of input "linked.fits" is the same file as the input itself
    line = one_line_error(invoke("desify", link, "-o", out, "--model", model_file, "--steps", 1, "--overwrite"))
    assert "is an input of this run" in line and made.read_bytes() == before


# ----------------------------------------------------------------------------- desify: deep pictures


def test_float_and_16_bit_tiffs_are_scaled_by_their_own_range_not_read_as_black(model_file, tmp_path):
    from galgen.io.cube import read_cube
    from galgen.io.regrid import prepare_input

    y, x = np.mgrid[:32, :32]
    blob = np.exp(-((x - 16.0) ** 2 + (y - 16.0) ** 2) / 20.0)
    pictures = {"float.tif": Image.fromarray(blob.astype(np.float32), mode="F"),
                "deep.tif": Image.fromarray((100 + 900 * blob).astype(np.uint16))}
    for name, picture in pictures.items():
        picture.save(tmp_path / name)
        prepared = prepare_input(tmp_path / name, bands="grz", size=16, pixel_scale=0.262)
        assert prepared.pixels.min() == pytest.approx(-1, abs=0.05) and prepared.pixels.max() > 0.5, name
        assert any("scaled by its own range" in note for note in prepared.notes), name
    done = invoke("desify", tmp_path / "float.tif", "-o", tmp_path / "d", "--model", model_file, "--steps", 1)
    assert done.exit_code == 0, done.output
    history = " ".join(read_cube(tmp_path / "d" / "float_draw0.fits").header.get("HISTORY", []))
    assert "float picture scaled by its own range" in history


@pytest.mark.parametrize("values, reason", [(np.full((16, 16), 0.5), "one value"),
                                            (np.where(np.eye(16) > 0, np.nan, 0.5), "NaN or infinite")])
def test_a_float_picture_without_a_range_is_refused(model_file, tmp_path, values, reason):
    picture = tmp_path / "flat.tif"
    Image.fromarray(values.astype(np.float32), mode="F").save(picture)
    line = one_line_error(invoke("desify", picture, "-o", tmp_path / "d", "--model", model_file, "--steps", 1))
    assert str(picture) in line and reason in line
    assert not (tmp_path / "d").exists() or not list((tmp_path / "d").iterdir())
