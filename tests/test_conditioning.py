"""Conditions: derived colours, training ranges and normalisation, requests and their range checks."""

from __future__ import annotations

import numpy as np
import pytest

from galgen.conditioning import Condition, derive, fit, normalise, outside, parse_names, parse_request
from galgen.errors import InputError
from galgen.normalize import MAD_TO_SIGMA


def test_a_colour_is_derived_from_two_magnitudes_when_it_is_no_column():
    columns = {"MAG_G": np.array([18.0, 19.0]), "mag_r": np.array([17.5, 18.0]), "q": np.array([0.5, 0.7])}
    values, unit = derive(columns, {"q": ""}, "g_r")
    assert values.tolist() == [0.5, 1.0] and unit == "mag"
    assert derive(columns, {"q": ""}, "Q")[0].tolist() == [0.5, 0.7]
    with pytest.raises(InputError, match="no label 'r_e'"):
        derive(columns, {}, "r_e")


def test_fit_takes_median_and_robust_spread_and_ignores_unknown_values():
    values = np.array([[1.0, 10.0], [2.0, np.nan], [3.0, 30.0], [4.0, 20.0], [100.0, 10.0]])
    a, b = fit(["a", "b"], values, ["mag", ""])
    assert (a.min, a.median, a.max) == (1.0, 3.0, 100.0)
    assert a.scale == pytest.approx(MAD_TO_SIGMA * 1.0)  # MAD of 1,2,3,4,100 about 3 is 1
    assert (b.min, b.median, b.max) == (10.0, 15.0, 30.0)
    assert normalise([a, b], np.array([[3.0 + a.scale, np.nan]])).tolist()[0][0] == pytest.approx(1.0)
    assert Condition.from_dict(a.to_dict()) == a
    with pytest.raises(InputError, match="same value"):
        fit(["c"], np.array([[1.0], [1.0], [1.0]]), [""])
    with pytest.raises(InputError, match="known for 1 training"):
        fit(["c"], np.array([[1.0], [np.nan]]), [""])


def test_outside_finds_every_value_beyond_the_training_range_and_nan():
    c = [Condition("mag_r", "mag", 15.0, 17.5, 19.5, 1.0), Condition("q", "", 0.1, 0.7, 1.0, 0.2)]
    values = np.array([[15.0, 1.0], [14.9, 0.5], [19.5, np.nan], [20.0, 0.05]])
    assert outside(c, values) == [(1, "mag_r", 14.9), (2, "q", pytest.approx(np.nan, nan_ok=True)),
                                  (3, "mag_r", 20.0), (3, "q", 0.05)]


@pytest.mark.parametrize("text", ["", "mag_r", "mag_r=", "mag_r=x", "=1", "a=1,a=2"])
def test_bad_requests_are_input_errors(text):
    with pytest.raises(InputError, match="name=value"):
        parse_request(text)


def test_requests_and_names_parse():
    assert parse_request(" mag_r=17.5, r_e=1.2 ") == {"mag_r": 17.5, "r_e": 1.2}
    assert parse_names("mag_r, r_e,q ,g_r") == ["mag_r", "r_e", "q", "g_r"]
    with pytest.raises(InputError, match="distinct"):
        parse_names("q,Q")


def test_measured_conditions_are_as_measured_or_nan_and_clipped_only_when_told():
    from galgen.conditioning import beyond, clip, measured

    y, x = np.mgrid[:32, :32] - 15.5
    blob = np.exp(-(x**2 + y**2) / 18.0)
    flux = np.stack([blob[None] * np.array([2.0, 4.0, 6.0])[:, None, None], 0 * blob[None].repeat(3, 0)])
    wide = [Condition("mag_r", "mag", 10.0, 18.0, 25.0, 1.0), Condition("g_r", "mag", -2.0, 0.5, 3.0, 0.3)]
    values = measured(wide, flux, bands="grz", pixel_scale=0.262)
    total = 4.0 * np.pi * 18.0  # nanomaggy in r; g - r = -2.5 log10(2 / 4)
    assert values[0, 0] == pytest.approx(22.5 - 2.5 * np.log10(total), abs=0.02)
    assert values[0, 1] == pytest.approx(2.5 * np.log10(2.0), abs=0.01)
    assert np.isnan(values[1]).all()  # an empty stamp: no positive flux, unconditional
    narrow = [Condition("mag_r", "mag", 18.0, 19.0, 20.0, 1.0)]
    bright = measured(narrow, flux[:1], bands="grz", pixel_scale=0.262)
    assert bright[0, 0] == pytest.approx(values[0, 0])  # brighter than the range: kept as measured
    assert clip(narrow, bright)[0, 0] == 18.0  # what the network is told
    assert np.isnan(clip(narrow, [[np.nan]])).all()
    note = beyond(narrow, bright)
    assert note.startswith("; beyond the training range") and f"mag_r {bright[0, 0]:.3g} (range 18-20)" in note
    several = beyond(narrow, [[bright[0, 0]], [19.0], [23.0], [np.nan]])  # NaN rows (unconditional) are not counted
    assert "mag_r in 2 of 3 windows, up to 23 (range 18-20)" in several, several
    assert beyond(narrow, [[19.0], [np.nan]]) == ""
    other = [Condition("z_phot", "", 0.0, 0.5, 1.0, 0.2)]  # not measured by galgen: unconditional
    assert np.isnan(measured(other, flux[:1], bands="grz", pixel_scale=0.262)).all()
