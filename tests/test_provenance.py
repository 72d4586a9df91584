"""Provenance: gathered, written as FITS keywords + HISTORY, read back unchanged."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from astropy.io import fits

from galgen import __version__
from galgen.io.cube import Cube, read_provenance
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube
from galgen.io.provenance import make_provenance, provenance_from_header, provenance_to_header


def test_make_provenance_records_version_time_command_and_input_checksums(tmp_path):
    source = tmp_path / "in.fits"
    source.write_bytes(b"galaxy" * 1000)
    prov = make_provenance(command="galgen sample -n 4", inputs=[source], seed=np.int64(3), sampler="ddim",
                           nfe=20, strength=None)
    assert prov["version"] == __version__ and prov["command"] == "galgen sample -n 4"
    assert prov["inputs"] == [{"path": str(source), "sha256": hashlib.sha256(b"galaxy" * 1000).hexdigest()}]
    assert prov["seed"] == 3 and type(prov["seed"]) is int
    assert "strength" not in prov  # None fields are left out
    assert len(prov["date"]) == 19 and prov["date"][10] == "T"


def test_missing_input_is_an_input_error(tmp_path):
    from galgen.errors import InputError

    with pytest.raises(InputError, match="gone.fits"):
        make_provenance(command="galgen x", inputs=[tmp_path / "gone.fits"])


def test_provenance_round_trips_through_a_header(tmp_path):
    inputs = []
    for i in range(3):
        inputs.append(tmp_path / f"in{i}.fits")
        inputs[-1].write_bytes(bytes([i]) * 10)
    prov = make_provenance(
        command="galgen sample --model " + "/a/long/path" * 10 + " -n 1000",
        inputs=inputs, model_sha256="ab" * 32, seed=42, index=7, sampler="dpmpp_2m", nfe=25, eta=0.0,
        schedule="cosine", normaliser={"bands": "grz", "lower": [-0.03, -0.05, -0.1], "upper": [5.5, 5.5, 5.5]},
        calibration={"g": 1.18, "r": 1.16}, custom_flag=True, custom_list=[1, 2, 3],
    )
    header = fits.Header()
    provenance_to_header(prov, header)
    assert all(len(k) <= 8 for k in header)
    assert provenance_from_header(header) == prov
    assert any("galgen sample --model" in str(v) for v in header["HISTORY"])


def test_provenance_survives_a_written_file(tmp_path):
    prov = make_provenance(command="galgen inpaint a.fits --mask m.fits", seed=1, draws=8, resample=10, jump=10)
    cube = Cube(data=np.zeros((1, 4, 4), np.float32), bands="r", wcs=make_wcs((4, 4), pixel_scale=0.262))
    path = write_cube(cube, tmp_path / "p.fits", provenance=prov)
    assert read_provenance(path) == prov


def test_field_names_sharing_a_prefix_get_distinct_keywords():
    header = fits.Header()
    prov = {"schedule": "cosine", "sched": "x", "custom_a": 1, "custom_b": 2, "in1": "not an input"}
    provenance_to_header(prov, header)
    assert header["GGSCHED"] == "cosine" and provenance_from_header(header) == prov
    with pytest.raises(ValueError, match="lower-case identifiers"):
        make_provenance(command="x", **{"Bad": 1})


def test_many_inputs_are_summarised_by_one_digest():
    inputs = [{"path": f"f{i}.fits", "sha256": f"{i:064x}"} for i in range(1500)]
    header = fits.Header()
    provenance_to_header({"command": "galgen prep", "inputs": inputs}, header)
    back = provenance_from_header(header)
    assert back["inputs"][0]["count"] == 1500 and len(back["inputs"][0]["sha256_of_sha256s"]) == 64
    assert len(header) < 20


def test_every_keyword_is_documented():
    from pathlib import Path

    from galgen.io.provenance import FIELDS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "fits-format.md").read_text()
    for field, (keyword, _, _) in FIELDS.items():
        assert f"| `{keyword}` | `{field}` |" in doc


def test_a_damaged_json_card_reads_back_as_text():
    header = fits.Header([("GGNORM", "{not json"), ("GGEXTRA", "also not json"), ("GGSEED", 4)])
    assert provenance_from_header(header) == {"normaliser": "{not json", "seed": 4}


def test_text_fits_cannot_hold_is_escaped_and_reads_back_exactly():
    from astropy.io import fits

    from galgen.io.provenance import fits_text, provenance_from_header, provenance_to_header

    assert fits_text("galgen sample -n 10 -o mocks/") == ("galgen sample -n 10 -o mocks/", False)
    assert fits_text("mocks été 100%") == ("mocks %C3%A9t%C3%A9 100%25", True)
    long_quoted = "galgen sample -o '" + "x" * 70 + " y' --seed 1"  # a CONTINUE piece would start with a quote
    for command in ("galgen sample -o 'mocks été'", "tab\there", long_quoted, "galgen desify 'galaxie à moi.png'"):
        header = fits.Header()
        provenance_to_header({"command": command, "model": "modèle.safetensors",
                              "inputs": [{"path": "/data/é.fits", "sha256": "0" * 64}]}, header)
        read = provenance_from_header(fits.Header.fromstring(header.tostring()))
        assert read["command"] == command and read["model"] == "modèle.safetensors"
        assert read["inputs"][0]["path"] == "/data/é.fits"
        assert header.tostring().isascii()
