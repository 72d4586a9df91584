"""Catalogue tables: CSV and FITS reading with units, and the three ways rows find their cutouts."""

from __future__ import annotations

import numpy as np
import pytest

from galgen.io.catalog import CutoutKey, MatchRule, match_rows, read_catalog
from galgen.io.write import write_table
from galgen.errors import InputError


def test_csv_numbers_strings_units_and_empty_cells(tmp_path):
    path = tmp_path / "cat.csv"
    path.write_text("id,file,mag_r [mag],r_e [arcsec],q\n7,a.fits,17.5,1.2,0.5\n8,b.fits,18.25,,0.9\n")
    catalog = read_catalog(path)
    assert len(catalog) == 2 and catalog.numeric() == ["id", "mag_r", "r_e", "q"]
    assert catalog.units == {"id": "", "file": "", "mag_r": "mag", "r_e": "arcsec", "q": ""}
    assert catalog.column("MAG_R").tolist() == [17.5, 18.25]  # look-ups ignore case
    assert np.isnan(catalog.column("r_e")[1]) and catalog.column("file").tolist() == ["a.fits", "b.fits"]


def test_fits_table_keeps_its_units(tmp_path):
    path = write_table({"file": np.array(["a.fits"]), "mag_r": np.array([17.0])}, tmp_path / "cat.fits",
                       units={"mag_r": "mag"})
    catalog = read_catalog(path)
    assert catalog.units["mag_r"] == "mag" and catalog.column("mag_r").tolist() == [17.0]


@pytest.mark.parametrize("text, message", [
    ("", "no rows"),
    ("a,b\n", "no rows"),
    ("a,a\n1,2\n", "names a column twice"),
    ("a,b\n1,2,3\n", "line 2 has 3 fields"),
])
def test_unusable_csv_is_one_input_error(tmp_path, text, message):
    path = tmp_path / "cat.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_catalog(path)


def test_a_catalogue_must_be_a_table_file(tmp_path):
    with pytest.raises(InputError, match="FITS table or a CSV"):
        read_catalog(tmp_path / "cat.txt")
    with pytest.raises(InputError, match="no such file"):
        read_catalog(tmp_path / "absent.csv")


def _catalog(tmp_path, text):
    path = tmp_path / "cat.csv"
    path.write_text(text)
    return read_catalog(path)


def test_match_by_file_name_ignores_directories(tmp_path):
    catalog = _catalog(tmp_path, "file,mag_r\ndata/b.fits,18\na.fits,17\n")
    keys = [CutoutKey("cutouts/a.fits"), CutoutKey("/x/b.fits"), CutoutKey("c.fits")]
    assert match_rows(catalog, keys, MatchRule.parse("name")).tolist() == [1, 0, -1]


def test_match_by_id_uses_the_header_keyword_else_the_file_stem(tmp_path):
    catalog = _catalog(tmp_path, "OBJID,mag_r\n12345,17\n99,18\n")
    keys = [CutoutKey("gal.fits", header_id="99"), CutoutKey("12345.fits.fz"), CutoutKey("7.fits")]
    assert match_rows(catalog, keys, MatchRule.parse("id:objid")).tolist() == [1, 0, -1]


def test_match_by_sky_takes_the_nearest_row_within_the_radius(tmp_path):
    catalog = _catalog(tmp_path, "ra,dec,mag_r\n150.0,2.0,17\n150.0,2.0005,18\n10.0,-30.0,19\n")
    keys = [CutoutKey("a.fits", ra=150.0, dec=2.0001),  # 0.36" from row 0, 1.44" from row 1
            CutoutKey("b.fits", ra=150.0, dec=2.0004),  # 0.36" from row 1
            CutoutKey("c.fits", ra=10.0 + 2 / 3600 / np.cos(np.radians(30)), dec=-30.0),  # 2" east of row 2
            CutoutKey("d.fits")]  # no WCS
    assert match_rows(catalog, keys, MatchRule.parse("sky", radius=1.0)).tolist() == [0, 1, -1, -1]
    assert match_rows(catalog, keys, MatchRule.parse("sky", radius=2.5)).tolist() == [0, 1, 2, -1]


def test_a_repeated_name_or_id_is_refused_and_bad_rules_are_usage_errors(tmp_path):
    catalog = _catalog(tmp_path, "file,mag_r\na.fits,1\nsub/a.fits,2\n")
    with pytest.raises(InputError, match="holds 'a.fits' twice"):
        match_rows(catalog, [CutoutKey("a.fits")], MatchRule.parse("name"))
    for text in ("id", "sky:ra", "radius", "name:a,b"):
        with pytest.raises(InputError, match="name\\[:COLUMN\\], id:COLUMN or sky"):
            MatchRule.parse(text)
    with pytest.raises(InputError, match="radius must be positive"):
        MatchRule.parse("sky", radius=0.0)
