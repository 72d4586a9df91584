"""`galgen sgd` end to end: table, JSON, figure, reference mode, errors, a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from galgen.cli import app


def population(directory, count, *, seed, size=32, brighter=1.0):
    """Write ``count`` exponential-disc galaxies (nanomaggies, sky noise) as FITS cubes."""
    from galgen.io.cube import Cube
    from galgen.io.cube import make_wcs
    from galgen.io.write import write_cube

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - size // 2
    directory.mkdir()
    for i in range(count):
        disc = np.exp(-np.hypot(x, y) / rng.uniform(1.5, 3.0))
        flux = brighter * 10 ** rng.uniform(0.3, 1.2) * disc / disc.sum()
        cube = np.stack([0.6 * flux, flux, 1.4 * flux]) + rng.normal(size=(3, size, size)) * np.array([0.007, 0.013, 0.029])[:, None, None]
        write_cube(Cube(data=cube.astype(np.float32), bands="grz", wcs=make_wcs((size, size), pixel_scale=0.262)),
                   directory / f"g{i:03d}.fits")
    return directory


@pytest.fixture(scope="module")
def populations(tmp_path_factory):
    root = tmp_path_factory.mktemp("sgd")
    return (population(root / "real", 40, seed=1), population(root / "mock", 30, seed=2, brighter=1.5),
            population(root / "real2", 40, seed=3))


def test_json_reports_every_property_with_interval_and_baseline(populations):
    real, mock, _ = populations
    result = CliRunner().invoke(app, ["sgd", str(real), str(mock), "--json", "--bootstrap", "100"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["mode"] == "default" and (summary["n_real"], summary["n_mock"]) == (40, 30)
    assert set(summary["properties"]) == {"g", "r", "z", "R_e", "g-r", "r-z"}
    g = summary["properties"]["g"]
    # independent mocks 1.5x brighter: magnitudes about 2.5 log10(1.5) = 0.44 brighter, with sampling noise
    assert 0.2 < g["w1"] < 0.8 and g["ci"][0] <= g["w1"] <= g["ci"][1] and g["baseline"] > 0
    assert summary["sgd"] == pytest.approx(sum(p["w1"] for p in summary["properties"].values()))


def test_a_known_flux_shift_gives_its_magnitude_shift_in_both_modes(populations, tmp_path):
    # the real cubes times 1.5, noise included: every measurement of both modes is linear in flux, so
    # every band's W1 is 2.5 log10(1.5) = 0.440 mag and the colours do not move
    from galgen.io.cube import read_cube
    from galgen.io.write import write_cube

    real, _, _ = populations
    brighter = tmp_path / "brighter"
    brighter.mkdir()
    for path in sorted(real.glob("*.fits")):
        cube = read_cube(path)
        cube.data = cube.data * np.float32(1.5)
        write_cube(cube, brighter / path.name)
    for mode in ("default", "reference"):
        result = CliRunner().invoke(app, ["sgd", str(real), str(brighter), "--json", "--mode", mode,
                                          "--bootstrap", "20"])
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)["properties"]
        for band in "grz":
            assert rows[band]["w1"] == pytest.approx(2.5 * np.log10(1.5), abs=1e-4), (mode, band)
        assert rows["g-r"]["w1"] < 1e-4 and rows["r-z"]["w1"] < 1e-4, mode


def test_same_population_against_itself_is_zero_in_both_modes(populations):
    real, _, _ = populations
    for mode in ("default", "reference"):
        result = CliRunner().invoke(app, ["sgd", str(real), str(real), "--json", "--mode", mode, "--bootstrap", "20"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["mode"] == mode and summary["sgd"] == 0.0


def test_table_and_figure(populations, tmp_path):
    real, _, real2 = populations
    figure = tmp_path / "hist.png"
    result = CliRunner().invoke(app, ["sgd", str(real), str(real2), "--bootstrap", "50", "--plot", str(figure)])
    assert result.exit_code == 0, result.output
    for text in ("default mode", "baseline W1", "Cohen's d", "R_e [arcsec]", "SGD"):
        assert text in result.stdout
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".tmp-*"))


def test_bad_mode_and_missing_directory_exit_2_with_one_line(populations, tmp_path):
    real, _, _ = populations
    missing = CliRunner().invoke(app, ["sgd", str(real), str(tmp_path / "nowhere")])
    assert missing.exit_code == 2
    assert missing.output.strip().count("\n") == 0 and "nowhere" in missing.output and "Traceback" not in missing.output
    bad = CliRunner().invoke(app, ["sgd", str(real), str(real), "--mode", "paper"])
    assert bad.exit_code == 2 and "--mode" in bad.output


def test_subprocess_json(populations):
    real, mock, _ = populations
    done = subprocess.run([sys.executable, "-m", "galgen", "sgd", str(real), str(mock), "--json", "--mode", "reference"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["mode"] == "reference" and summary["sgd_ci"] is None
    assert any("truncated to 30" in note for note in summary["notes"])


def test_subprocess_missing_input_is_one_line_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "galgen", "sgd", str(tmp_path / "a"), str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [f"galgen sgd: error: {tmp_path / 'a'}: no such file or directory"]


def test_real_decals_cutouts_in_both_modes(decals_dir, tmp_path):
    listing = tmp_path / "real.txt"
    listing.write_text("".join(f"{decals_dir / f'example_{c}.fits'}\n" for c in "abc"))
    mock = str(decals_dir / "example_[de]*.fits")  # d and the one with masked pixels
    for mode in ("default", "reference"):
        result = CliRunner().invoke(app, ["sgd", f"@{listing}", mock, "--json", "--mode", mode, "--bootstrap", "50"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["mode"] == mode and (summary["n_real"], summary["n_mock"]) == (3, 2)
        rows = summary["properties"]
        assert summary["sgd"] == pytest.approx(sum(row["w1"] for row in rows.values()))
        counts = (3, 2) if mode == "default" else (2, 2)  # the reference shuffles and truncates to 2
        assert all(row["w1"] > 0 and (row["n_real"], row["n_mock"]) == counts for row in rows.values()), rows
    assert any("masked" in note for note in summary["notes"])
