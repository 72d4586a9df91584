"""Any survey's files (issue 41, part 3): seven JWST NIRCam bands, one float64 file per band per galaxy, as archives
write them, through prep -> train -> sample -> sgd -> calibrate; and every bad input prep refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from conftest import assert_fitsverify_clean
from galgen.bands import Bands, band_order, parse_bands
from galgen.cli import app
from galgen.errors import InputError
from galgen.io.bandfiles import match_galaxies
from galgen.io.cube import make_wcs, read_cube
from galgen.io.units import NANOMAGGY_JY, band_unit

BANDS = ("F115W", "F150W", "F200W", "F277W", "F356W", "F410M", "F444W")
SCALE = 0.03  # arcsec / pixel, NIRCam short-wavelength drizzled
SIDE = 40  # px of each stamp; prep crops 32
PIXAR_SR = (SCALE * np.pi / 648000.0) ** 2
SIGMA_NMGY = 0.004  # sky noise per pixel, nanomaggies
PHOTFNU = 2.0e-8  # Jy per electron/s (F277W)
MAGZERO = 31.0  # AB magnitude of one count (F356W, integers: the sky noise is 10 counts)
STATED_ZP = 28.0  # F410M's zero point, which its header does not give
# nanomaggies per file unit, band by band, as each file states its unit
FACTOR = {"F115W": 1e6 * PIXAR_SR / NANOMAGGY_JY, "F150W": 1e6 * PIXAR_SR / NANOMAGGY_JY,
          "F200W": 1e6 * PIXAR_SR / NANOMAGGY_JY, "F277W": PHOTFNU / NANOMAGGY_JY,
          "F356W": 10 ** (-0.4 * (MAGZERO - 22.5)), "F410M": 10 ** (-0.4 * (STATED_ZP - 22.5)),
          "F444W": 1e-9 / NANOMAGGY_JY}
COUNT = 10


def sky_grid(band: str, k: int):
    """Each galaxy's TAN grid at 0.03"/px; F444W's is shifted by (1.5, -0.7) px and turned by 7 degrees."""
    ra, dec = 53.1 + 0.01 * k, -27.8
    wcs = make_wcs((SIDE, SIDE), pixel_scale=SCALE, ra=ra, dec=dec)
    if band == "F444W":
        turn = np.radians(7.0)
        cdelt = wcs.wcs.cdelt.copy()
        wcs.wcs.pc = [[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]
        wcs.wcs.cdelt = cdelt
        wcs.wcs.crpix = wcs.wcs.crpix + np.array([1.5, -0.7])
        wcs.wcs.set()
    return wcs


def galaxy_nmgy(band: str, k: int, wcs) -> np.ndarray:
    """A Gaussian galaxy at the stamp's sky centre (RA, Dec of galaxy k), in nanomaggies, plus sky noise."""
    rng = np.random.default_rng(1000 * k + BANDS.index(band))
    ra, dec = 53.1 + 0.01 * k, -27.8
    x0, y0 = wcs.all_world2pix([[ra, dec]], 0)[0]
    y, x = np.mgrid[:SIDE, :SIDE]
    width = 2.5 + 0.3 * (k % 4) + 0.1 * BANDS.index(band)
    flux = (2.0 + k) * (1.0 + 0.1 * BANDS.index(band))
    image = flux / (2 * np.pi * width**2) * np.exp(-((x - x0) ** 2 + (y - y0) ** 2) / (2 * width**2))
    return image + rng.normal(0.0, SIGMA_NMGY, image.shape)


def write_band(path: Path, band: str, k: int) -> None:
    """One band of galaxy k as its archive writes it."""
    wcs = sky_grid(band, k)
    flux = galaxy_nmgy(band, k, wcs) / FACTOR[band]  # in the file's own unit
    head = wcs.to_header()
    head["FILTER"] = band
    if band in ("F115W", "F150W", "F200W"):  # JWST i2d: empty primary, SCI in MJy/sr, ERR
        head["BUNIT"], head["PIXAR_SR"] = "MJy/sr", PIXAR_SR
        err = np.full(flux.shape, SIGMA_NMGY / FACTOR[band])
        err[0, 0] = 0.0  # a pixel without data
        hdus = [fits.PrimaryHDU(), fits.ImageHDU(flux.astype(np.float64), head, name="SCI"),
                fits.ImageHDU(err, name="ERR")]
    elif band == "F277W":  # HST-style count rates with PHOTFNU
        head["BUNIT"], head["PHOTFNU"] = "ELECTRONS/S", PHOTFNU
        hdus = [fits.PrimaryHDU(flux.astype(np.float64), head)]
    elif band == "F356W":  # integer counts with a zero point
        head["MAGZERO"] = MAGZERO
        hdus = [fits.PrimaryHDU(np.round(flux).astype(np.int32), head)]
    elif band == "F410M":  # no unit at all: prep must be told
        hdus = [fits.PrimaryHDU(flux.astype(np.float64), head)]
    else:  # nJy on its own grid
        head["BUNIT"] = "nJy"
        hdus = [fits.PrimaryHDU(flux.astype(np.float64), head)]
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path)


def write_archive(root: Path, *, count: int = COUNT, missing: tuple[int, str] | None = (3, "F200W")) -> Path:
    """stamps/<band>/gal_<k>_<band lower case>.fits, one band of one galaxy left out."""
    for k in range(count):
        for band in BANDS:
            if (k, band) != missing:
                write_band(root / "stamps" / band / f"gal_{k:03d}_{band.lower()}.fits", band, k)
    return root / "stamps"


PREP = ["--bands", ",".join(BANDS), "--size", "32", "--zero-point", f"F410M={STATED_ZP}"]


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return write_archive(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def prepared(archive, tmp_path_factory):
    """prep on the archive's per-band template, through the CLI in this process."""
    out = tmp_path_factory.mktemp("run")
    prep = invoke("prep", f"{archive}/{{band}}/*.fits", "-o", out / "ds", *PREP, "--json")
    assert prep.exit_code == 0, prep.output
    return out, json.loads(prep.stdout)


@pytest.fixture(scope="module")
def trained(prepared):
    """train (30 steps: enough for the mocks to hold a measurable galaxy in every band) -> sample 6 mocks."""
    out, _ = prepared
    train = invoke("train", out / "ds", "-o", out / "model.safetensors", "--preset", "tiny", "--steps", 30,
                   "--batch", 4, "--lr", "3e-3", "--no-bf16")
    assert train.exit_code == 0, train.output
    sample = invoke("sample", "-n", 6, "-o", out / "mocks", "--model", out / "model.safetensors", "--steps", 4,
                    "--seed", 1, "--no-bf16")
    assert sample.exit_code == 0, sample.output
    return out


def test_band_names_parse_as_the_survey_writes_them():
    grz = parse_bands("grz")
    assert grz == ("g", "r", "z") and grz == "grz" and str(grz) == "grz"
    jwst = parse_bands(",".join(BANDS))
    assert tuple(jwst) == BANDS and str(jwst) == ",".join(BANDS) and Bands(str(jwst)) == jwst
    assert tuple(parse_bands("F115W")) == ("F115W",) and tuple(parse_bands("VIS,")) == ("VIS",)
    assert str(Bands(("VIS",))) == "VIS," and tuple(parse_bands("HSC-G,HSC-R")) == ("HSC-G", "HSC-R")
    assert band_order(jwst) == list(range(7)) and band_order("F444W,F115W") == [1, 0]
    assert band_order(Bands(("X2", "X1")), strict=False) == [0, 1]  # unknown: the order given


@pytest.mark.parametrize("text, problem", [
    ("F115W,F115W", "named twice"), ("g,G", "named twice"), (",".join(f"B{i}" for i in range(11)), "1 to 10"),
    ("F115W,F1_50W", "not a band name"), ("r,e", "would mean two things"), ("", "1 to 10"),
])
def test_bad_band_names_are_one_line_errors(text, problem):
    with pytest.raises(InputError, match=problem) as info:
        parse_bands(text)
    assert "\n" not in str(info.value)


def test_units_from_the_cards_archives_write():
    assert band_unit({"PIXAR_SR": PIXAR_SR}, "MJy/sr", band="F115W", pixel_scale=None).factor == pytest.approx(
        FACTOR["F115W"])
    assert band_unit({}, "MJy/sr", band="F115W", pixel_scale=SCALE).factor == pytest.approx(FACTOR["F115W"])
    hst = band_unit({"PHOTFLAM": 1e-19, "PHOTPLAM": 8000.0}, "ELECTRONS/S", band="F814W", pixel_scale=0.05)
    assert hst.source == "PHOTFLAM" and hst.factor == pytest.approx(1e-19 * 8000.0**2 / 2.99792458e18 * 1e23 / 3.631e-6)
    assert band_unit({"FLUXMAG0": 10 ** (0.4 * 27.0)}, "", band="HSC-G", pixel_scale=0.168).factor == pytest.approx(
        10 ** (-0.4 * 4.5))
    assert band_unit({}, "", band="g", pixel_scale=0.262).factor == 1.0  # Legacy Survey cutouts, as before
    with pytest.raises(InputError, match="F115W: no BUNIT"):
        band_unit({}, "", band="F115W", pixel_scale=SCALE)
    with pytest.raises(InputError, match="'counts' is not a flux unit"):
        band_unit({}, "counts", band="g", pixel_scale=SCALE)


def test_galaxies_are_matched_by_name_across_band_folders(archive):
    galaxies = match_galaxies([f"{archive}/{{band}}/*.fits"], bands=BANDS)
    assert len(galaxies) == COUNT and galaxies[0].name.endswith("{band}/gal_000_{band}.fits")
    assert [f is None for f in galaxies[3].files] == [band == "F200W" for band in BANDS]
    assert len(match_galaxies([archive], bands=BANDS)) == COUNT  # a folder of band folders


def test_prep_reads_seven_bands_of_per_band_files(prepared):
    out, summary = prepared
    meta = json.loads((out / "ds" / "dataset.json").read_text())
    assert meta["bands"] == ",".join(BANDS) and meta["unit"] == "nanomaggy" and summary["count"] == COUNT - 1
    assert meta["pixel_scale"] == pytest.approx(SCALE)
    [(skipped, reason)] = [(s["path"], s["reason"]) for s in summary["skipped"]]
    assert "gal_003_f115w" in skipped and "no F200W file" in reason and "F200W/gal_003_F200W.fits" in reason
    units = meta["input_units"]
    assert [units[b]["source"] for b in BANDS] == ["BUNIT"] * 3 + ["PHOTFNU", "MAGZERO", "stated zero point", "BUNIT"]
    for band in BANDS:
        assert units[band]["factor_min"] == pytest.approx(FACTOR[band], rel=1e-6)
    images = np.load(out / "ds" / "images.npy", mmap_mode="r")
    assert images.shape == (COUNT - 1, 7, 32, 32)
    sky = meta["normalizer_choice"]["sky_rms"]  # from the ERR extensions in F115W-F200W, MAD elsewhere
    assert sky[:3] == pytest.approx([SIGMA_NMGY] * 3, rel=1e-6)
    assert sky[3:6] == pytest.approx([SIGMA_NMGY] * 3, rel=0.25)
    assert 0.4 * SIGMA_NMGY < sky[6] < 0.9 * SIGMA_NMGY  # bilinear resampling averages F444W's noise down
    source = json.loads((out / "ds" / "sources.jsonl").read_text().splitlines()[0])
    assert len(source["band_files"]) == 7 and source["band_files"][6].endswith("gal_000_f444w.fits")


def test_the_rotated_band_is_resampled_onto_the_first_grid(archive):
    from galgen.io.bandfiles import read_galaxy
    from galgen.io.units import StatedUnits

    galaxy = match_galaxies([f"{archive}/{{band}}/*.fits"], bands=BANDS)[5]
    cube, sigma, units = read_galaxy(galaxy, bands=BANDS, stated=StatedUnits(zero_points={"F410M": STATED_ZP}))
    assert cube.shape == (7, SIDE, SIDE) and cube.unit == "nanomaggy" and cube.bands == Bands(BANDS)
    truth = galaxy_nmgy("F444W", 5, sky_grid("F115W", 5))
    inner = slice(6, -6)
    assert np.abs(cube.data[6, inner, inner] - truth[inner, inner]).max() < 0.02  # the galaxy where F115W has it
    assert np.nansum(cube.data[6, inner, inner]) == pytest.approx(np.sum(truth[inner, inner]), rel=0.02)
    assert cube.mask[0, 0, 0] and np.isnan(sigma[0, 0, 0]) and np.isnan(sigma[6]).all()
    assert sigma[1, 5, 5] == pytest.approx(SIGMA_NMGY, rel=1e-5)


@pytest.mark.slow  # 30 training steps and 6 mocks: about 10 s
def test_train_sample_sgd_calibrate_on_the_seven_band_model(trained):
    from galgen.engine.weights import read_metadata

    out = trained
    meta = read_metadata(out / "model.safetensors")
    assert meta["bands"] == ",".join(BANDS) and meta["input_units"]["F277W"]["source"] == "PHOTFNU"
    colours = [f"{a}_{b}" for a, b in zip(BANDS, BANDS[1:])]  # conditioned on prep's measured labels by default
    assert [c["name"] for c in meta["conditions"]] == ["mag_F277W", "r_e", "q", *colours]
    mocks = sorted((out / "mocks").glob("mock_*.fits"))
    assert len(mocks) == 6
    for path in mocks:
        assert_fitsverify_clean(path)
        header = fits.getheader(path)
        assert header["BANDS"] == ",".join(BANDS) and header["BAND6"] == "F444W" and header["BUNIT"] == "nanomaggy"
        assert json.loads(header["GGINUNIT"])["F115W"]["unit"] == "MJy/sr"
        cube = read_cube(path)
        assert cube.shape == (7, 32, 32) and tuple(cube.bands) == BANDS
    sgd = invoke("sgd", out / "ds", out / "mocks", "--json")
    assert sgd.exit_code == 0, sgd.output
    assert "F115W" in json.loads(sgd.stdout)["properties"]
    calibrate = invoke("calibrate", out / "ds", out / "mocks", "--json", "--model", out / "model.safetensors",
                       "--write-to", out / "calibrated.safetensors")
    assert calibrate.exit_code == 0, calibrate.output
    assert set(read_metadata(out / "calibrated.safetensors")["calibration"]["factors"]) == set(BANDS)


@pytest.mark.slow  # a few seconds of sampling
def test_inpaint_and_desify_on_the_seven_band_model(trained, tmp_path):
    from PIL import Image

    from galgen.io.write import write_cube
    from galgen.io.cube import Cube

    out = trained
    model = ["--model", out / "model.safetensors", "--steps", 4, "--no-bf16"]
    mock = read_cube(out / "mocks" / "mock_000000.fits")
    trail = np.zeros(mock.shape[1:], np.float32)
    trail[14:17, :] = 1
    write_cube(Cube(data=trail[None], bands="m", wcs=mock.wcs), tmp_path / "trail.fits")
    inpaint = invoke("inpaint", out / "mocks" / "mock_000000.fits", "--mask", tmp_path / "trail.fits", "-o",
                     tmp_path / "fixed.fits", *model)
    assert inpaint.exit_code == 0, inpaint.output
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(tmp_path / "pic.png")
    desify = invoke("desify", tmp_path / "pic.png", out / "mocks" / "mock_000001.fits", "-o", tmp_path / "des", *model)
    assert desify.exit_code == 0, desify.output
    written = [tmp_path / "fixed.fits", *sorted((tmp_path / "des").glob("*.fits"))]  # RGB: B B G G G R R
    assert len(written) == 3
    for path in written:
        assert_fitsverify_clean(path)
        assert tuple(read_cube(path).bands) == BANDS


@pytest.mark.slow  # five Python start-ups, 30 training steps, 4 mocks: about 20 s
def test_the_whole_chain_as_subprocesses(archive, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(*args):
        done = subprocess.run([sys.executable, "-m", "galgen", *map(str, args)], capture_output=True, text=True,
                              env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    model = tmp_path / "model.safetensors"
    run("prep", archive, "-o", tmp_path / "ds", *PREP)  # the folder of band folders
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["count"] == COUNT - 1
    run("train", tmp_path / "ds", "-o", model, "--preset", "tiny", "--steps", 30, "--batch", 4, "--lr", "3e-3")
    run("sample", "-n", 4, "-o", tmp_path / "mocks", "--model", model, "--steps", 4, "--seed", 2)
    mocks = sorted((tmp_path / "mocks").glob("mock_*.fits"))
    assert len(mocks) == 4 and fits.getheader(mocks[0])["BANDS"] == ",".join(BANDS)
    for path in mocks:
        assert_fitsverify_clean(path)
    assert "F444W" in json.loads(run("sgd", tmp_path / "ds", tmp_path / "mocks", "--json"))["properties"]
    factors = json.loads(run("calibrate", tmp_path / "ds", tmp_path / "mocks", "--json"))["factors"]
    assert len(factors) == 7


def test_noise_maps_mask_zero_weight_and_give_the_noise(tmp_path):
    from galgen.io.bandfiles import read_galaxy

    wcs = make_wcs((SIDE, SIDE), pixel_scale=SCALE, ra=53.1, dec=-27.8)
    image = np.ones((SIDE, SIDE))
    ivar = np.full((SIDE, SIDE), 1.0 / 0.01**2)
    ivar[2, 3] = 0.0
    weight = np.ones((SIDE, SIDE))
    weight[4, 5] = 0.0
    for band, name, values in (("g", "IVAR", ivar), ("r", "WHT", weight)):
        fits.HDUList([fits.PrimaryHDU(image, wcs.to_header()), fits.ImageHDU(values, name=name)]).writeto(
            tmp_path / f"gal_{band}.fits")
    [galaxy] = match_galaxies([f"{tmp_path}/gal_{{band}}.fits"], bands="gr")
    cube, sigma, units = read_galaxy(galaxy, bands="gr")
    assert [u.factor for u in units] == [1.0, 1.0]  # no unit cards, one-letter bands: nanomaggies
    assert np.argwhere(cube.mask).tolist() == [[0, 2, 3], [1, 4, 5]]
    assert sigma[0, 0, 0] == pytest.approx(0.01) and np.isnan(sigma[0, 2, 3]) and np.isnan(sigma[1]).all()


def refused(args, *words, out: Path):
    result = invoke("prep", *args, "-o", out)
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]  # after the reading stage's progress line, if any
    assert line.startswith("galgen prep: error: ") and "Traceback" not in result.output, result.output
    assert all(w in line for w in words), line
    assert not out.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(".")]
    return line


def test_an_unknown_unit_is_refused_naming_the_file(archive, tmp_path):
    refused([f"{archive}/{{band}}/*.fits", "--bands", ",".join(BANDS), "--size", "32"],
            "gal_000_f410m.fits", "band F410M: no BUNIT", "--unit", "--zero-point", out=tmp_path / "ds")


def test_a_band_with_no_files_is_refused(archive, tmp_path):
    refused([f"{archive}/{{band}}/*.fits", "--bands", "F115W,F090W", "--size", "32"],
            "band F090W", "matches no file", out=tmp_path / "ds")


@pytest.mark.parametrize("bands, words", [
    ("F115W,F150W,F115W", ("named twice",)), (",".join(f"F{i}W" for i in range(11)), ("1 to 10",)),
    ("F115W,F1_50W", ("'F1_50W' is not a band name",)), ("r,e", ("'r_e'",)),
])
def test_bad_bands_are_refused(archive, tmp_path, bands, words):
    refused([f"{archive}/{{band}}/*.fits", "--bands", bands], *words, out=tmp_path / "ds")


def test_a_stated_unit_that_galgen_does_not_know_is_refused(archive, tmp_path):
    refused([f"{archive}/{{band}}/*.fits", "--bands", ",".join(BANDS), "--unit", "furlongs"], "'furlongs'",
            out=tmp_path / "ds")


def test_per_band_and_plain_inputs_do_not_mix(archive, tmp_path):
    plain = next((archive / "F115W").iterdir())
    refused([f"{archive}/{{band}}/*.fits", plain, "--bands", ",".join(BANDS)], "not a per-band input",
            plain.name, out=tmp_path / "ds")


def test_band_files_matched_by_sky_position(tmp_path):
    """HSC-style names that share nothing across bands: a galaxy's files are found by their image centres."""
    bands = ("HSC-G", "HSC-R")
    for k in range(4):
        for band, name in zip(bands, (f"calexp-HSC-G-{k}.fits", f"calexp-HSC-R-{(3 * k + 1) % 4}x.fits")):
            if (k, band) == (2, "HSC-R"):
                continue
            wcs = make_wcs((SIDE, SIDE), pixel_scale=0.168, ra=150.0 + 0.01 * k, dec=2.0)
            head = wcs.to_header()
            head["FLUXMAG0"] = 10 ** (0.4 * 27.0)
            path = tmp_path / band / name
            path.parent.mkdir(exist_ok=True)
            y, x = np.mgrid[:SIDE, :SIDE] - (SIDE - 1) / 2
            galaxy = np.exp(-(x**2 + y**2) / 8.0) + np.random.default_rng(k).normal(0, 0.01, (SIDE, SIDE))
            fits.PrimaryHDU(galaxy, head).writeto(path)
    galaxies = match_galaxies([tmp_path], bands=bands, match="sky", radius=1.0)
    assert len(galaxies) == 4 and all(g.files[0] is not None for g in galaxies)
    for k, galaxy in enumerate(galaxies):
        if k == 2:
            assert galaxy.files[1] is None
        else:
            assert galaxy.files[1].name == f"calexp-HSC-R-{(3 * k + 1) % 4}x.fits"
    by_name = match_galaxies([tmp_path], bands=bands)
    assert len(by_name) == 7  # nothing in common by name
    result = invoke("prep", tmp_path, "--bands", ",".join(bands), "--band-match", "sky", "--size", "32",
                    "-o", tmp_path / "ds", "--json", "--no-labels")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["count"] == 3 and "no HSC-R file (none within 1 arcsec)" in summary["skipped"][0]["reason"]


def test_a_bad_band_match_and_two_files_of_one_galaxy_are_refused(archive, tmp_path):
    args = [f"{archive}/{{band}}/*.fits", "--bands", ",".join(BANDS), "--zero-point", f"F410M={STATED_ZP}"]
    refused([*args, "--band-match", "pixel"], "'pixel'", "--band-match", out=tmp_path / "ds")
    twin = tmp_path / "twin"
    for band in ("F115W", "F150W"):
        for k in (0, 1):
            write_band(twin / band / f"gal_{k}.fits", band, 0)  # two galaxies at one place
    refused([twin, "--bands", "F115W,F150W", "--band-match", "sky"], "band F115W", "the same galaxy's",
            out=tmp_path / "ds")


def test_one_band_folder_given_as_cubes_says_how_to_give_the_bands(archive, tmp_path):
    """The issue's observation: `galgen prep sample/f115w` read each band file as a three-band cube."""
    refused([archive / "F115W", "--size", "32"], "bands 'grz' given for an image with 1 planes",
            "'DIR/{band}/*.fits'", out=tmp_path / "ds")


def test_fid_renders_any_named_bands():
    from galgen.fid import render_rgb

    flux = np.zeros((2, 7, 8, 8), np.float32)
    flux[:, 6] = 1.0  # F444W, the reddest, drives red
    rgb = render_rgb(flux, bands=BANDS)
    assert rgb.shape == (2, 8, 8, 3) and rgb[..., 0].min() > 0 and rgb[..., 2].max() == 0


def test_an_hsc_calexp_mask_and_variance(tmp_path):
    """HSC/Rubin calexps: MASK bits named by MP_ cards (a DETECTED galaxy is good data), VARIANCE the noise."""
    from galgen.io.bandfiles import read_galaxy

    wcs = make_wcs((SIDE, SIDE), pixel_scale=0.168, ra=150.0, dec=2.0)
    head = wcs.to_header()
    head["FLUXMAG0"] = 10 ** (0.4 * 27.0)  # counts of magnitude 0: 1 count = 10^(-0.4 x 4.5) nanomaggy
    flags = np.zeros((SIDE, SIDE), np.int32)
    flags[10:30, 10:30] = 1 << 5  # DETECTED
    flags[0, 0] = 1 << 8  # NO_DATA
    mask_head = fits.Header([(f"HIERARCH MP_{name}", bit) for name, bit in (("BAD", 0), ("SAT", 1), ("DETECTED", 5),
                                                                        ("NO_DATA", 8))])
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((SIDE, SIDE), np.float32), head, name="IMAGE"),
                  fits.ImageHDU(flags, mask_head, name="MASK"),
                  fits.ImageHDU(np.full((SIDE, SIDE), 4.0, np.float32), name="VARIANCE")]).writeto(tmp_path / "c-HSC-G.fits")
    [galaxy] = match_galaxies([f"{tmp_path}/c-{{band}}.fits"], bands="HSC-G,")
    cube, sigma, (unit,) = read_galaxy(galaxy, bands="HSC-G,")
    assert unit.source == "FLUXMAG0" and cube.data[0, 5, 5] == pytest.approx(10 ** (-0.4 * 4.5), rel=1e-5)
    assert np.argwhere(cube.mask).tolist() == [[0, 0, 0]]
    assert sigma[0, 5, 5] == pytest.approx(2.0 * 10 ** (-0.4 * 4.5), rel=1e-5)
