"""FITS cubes: reading every supported layout, writing fitsverify-clean files, atomic writes."""

from __future__ import annotations

import gzip
import shutil
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from conftest import assert_fitsverify_clean
from galgen.io.atomic import atomic_output
from galgen.io.bandfiles import read_band_files
from galgen.io.cube import Cube, read_cube, read_table
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube, write_table
from galgen import __version__
from galgen.errors import InputError
from galgen.io.provenance import make_provenance

# astropy warns when it has to cut a card short: galgen's headers must never need that
pytestmark = pytest.mark.filterwarnings("error::astropy.io.fits.verify.VerifyWarning")


def small_cube(bands="grz", size=16, seed=0) -> Cube:
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 0.01, (len(bands), size, size)).astype(np.float32)
    return Cube(data=data, bands=bands, wcs=make_wcs((size, size), pixel_scale=0.262, ra=150.0, dec=2.0))


def write_raw(path, data, header=None, *, extra=()):
    """A FITS file written by astropy directly: how an outside tool would make it."""
    hdus = [fits.PrimaryHDU(data=data, header=header)] + list(extra)
    fits.HDUList(hdus).writeto(path)
    return path


# ----------------------------------------------------------------------------- round trips


def test_write_then_read_gives_the_same_cube(tmp_path):
    cube = small_cube()
    path = write_cube(cube, tmp_path / "c.fits")
    back = read_cube(path)
    assert back.bands == "grz" and back.unit == "nanomaggy" and back.mask is None
    np.testing.assert_array_equal(back.data, cube.data)
    assert back.pixel_scale == pytest.approx(0.262, rel=1e-12)
    corners = np.array([[0.0, 0.0], [15.0, 15.0], [3.5, 11.25]])
    np.testing.assert_allclose(back.wcs.all_pix2world(corners, 0), cube.wcs.all_pix2world(corners, 0),
                               rtol=0, atol=1e-12)


def test_golden_header(tmp_path):
    """Every card of a written cube, in order (CHECKSUM/DATASUM aside; the time is fixed here)."""
    cube = Cube(data=np.zeros((3, 8, 8), np.float32), bands="grz",
                wcs=make_wcs((8, 8), pixel_scale=0.262, ra=150.1, dec=2.2))
    cube.header["SURVEY"] = "DECaLS"  # a descriptive card of the input travels along
    provenance = {"version": __version__, "date": "2026-01-01T00:00:00",
                  "command": "galgen sample -n 1 --seed 3 -o out/",
                  "inputs": [{"path": "model.safetensors", "sha256": "cd" * 32}],
                  "model_sha256": "ab" * 32, "seed": 3, "index": 0, "sampler": "ddim", "nfe": 20}
    path = write_cube(cube, tmp_path / "g.fits", provenance=provenance, history=["sampled with ddim"])
    with fits.open(path, checksum=True) as hdul:  # checksum=True: astropy verifies CHECKSUM/DATASUM
        cards = [(c.keyword, c.value) for c in hdul[0].header.cards if c.keyword not in ("CHECKSUM", "DATASUM")]
    scale = 0.262 / 3600
    expected = [
        ("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 3), ("NAXIS1", 8), ("NAXIS2", 8), ("NAXIS3", 3),
        ("EXTEND", True), ("WCSAXES", 3), ("CRPIX1", 4.5), ("CRPIX2", 4.5),
        ("CDELT1", -scale), ("CDELT2", scale), ("CUNIT1", "deg"), ("CUNIT2", "deg"),
        ("CTYPE1", "RA---TAN"), ("CTYPE2", "DEC--TAN"), ("CRVAL1", 150.1), ("CRVAL2", 2.2),
        ("LONPOLE", 180.0), ("LATPOLE", 2.2), ("RADESYS", "ICRS"),
        ("CTYPE3", "BAND"), ("CRPIX3", 1.0), ("CRVAL3", 0.0), ("CDELT3", 1.0), ("CNAME3", "band"),
        ("BUNIT", "nanomaggy"), ("BANDS", "grz"), ("BAND0", "g"), ("BAND1", "r"), ("BAND2", "z"),
        ("SURVEY", "DECaLS"),
        ("DATE", "2026-01-01T00:00:00"), ("GALGEN", __version__), ("GGDATE", "2026-01-01T00:00:00"),
        ("GGCMD", "galgen sample -n 1 --seed 3 -o out/"), ("GGMODEL", "ab" * 32), ("GGSEED", 3),
        ("GGINDEX", 0), ("GGSAMPLR", "ddim"), ("GGNFE", 20),
        ("GGNIN", 1), ("GGIN1", "model.safetensors"), ("GGSHA1", "cd" * 32),
        ("HISTORY", f"2026-01-01T00:00:00 galgen {__version__}: galgen sample -n 1 --seed 3 -o out/"),
        ("HISTORY", "sampled with ddim"),
    ]
    assert [k for k, _ in cards] == [k for k, _ in expected]
    for (key, value), (_, want) in zip(cards, expected):
        assert value == (pytest.approx(want, rel=1e-12) if isinstance(want, float) else want), key


def test_make_wcs_is_centred_tan():
    wcs = make_wcs((64, 64), pixel_scale=0.262, ra=10.0, dec=-5.0)
    ra, dec = wcs.all_pix2world([[31.5, 31.5]], 0)[0]  # centre of a 64-px image, 0-based pixels
    assert (ra, dec) == pytest.approx((10.0, -5.0), abs=1e-12)
    assert list(wcs.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
    # east is left: x increasing goes to smaller RA
    assert wcs.all_pix2world([[32.5, 31.5]], 0)[0][0] < ra


def test_cube_rejects_band_count_mismatch():
    with pytest.raises(ValueError, match="planes"):
        Cube(data=np.zeros((3, 4, 4), np.float32), bands="gr")


def test_written_cube_is_fitsverify_clean(tmp_path):
    provenance = make_provenance(command="galgen sample -n 1 -o " + "very/long/output/dir/" * 6, seed=7)
    path = write_cube(small_cube(), tmp_path / "c.fits", provenance=provenance, history=["one", "two"])
    assert_fitsverify_clean(path)


def test_cube_with_extra_hdus_is_fitsverify_clean_and_reads_back(tmp_path):
    cube = small_cube()
    cube.mask = np.zeros(cube.shape, bool)
    cube.mask[1, 2:4, 5] = True
    std = np.full(cube.shape, 0.5, np.float64)
    path = write_cube(cube, tmp_path / "c.fits", extra_hdus=[("STD", std)],
                      provenance=make_provenance(command="galgen inpaint x.fits"))
    assert_fitsverify_clean(path)
    with fits.open(path) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "STD", "MASK"]
        assert hdul["MASK"].data.dtype == np.uint8 and hdul["STD"].data.dtype == np.dtype(">f4")
    back = read_cube(path)
    np.testing.assert_array_equal(back.mask, cube.mask)


def test_table_round_trip_and_fitsverify_clean(tmp_path):
    columns = {
        "id": np.arange(4, dtype=np.int64),
        "name": np.array(["a", "bb", "ccc", ""]),
        "mag": np.array([18.5, 19.0, np.nan, 20.25], dtype=np.float64),
        "flux": np.ones((4, 3), np.float32),
        "ok": np.array([True, False, True, True]),
    }
    path = write_table(columns, tmp_path / "t.fits", units={"mag": "mag", "flux": "nanomaggy"},
                       provenance=make_provenance(command="galgen sgd a b"))
    assert_fitsverify_clean(path)
    back = read_table(path)
    assert list(back) == list(columns)
    for name, values in columns.items():
        np.testing.assert_array_equal(back[name], values)
        assert back[name].dtype.byteorder in ("=", "|")
    with fits.open(path) as hdul:
        assert hdul[1].header["TUNIT3"] == "mag"


# ----------------------------------------------------------------------------- reading layouts


def test_big_endian_input_becomes_native_float32(tmp_path):
    data = np.arange(2 * 5 * 6, dtype=">f8").reshape(2, 5, 6)
    path = write_raw(tmp_path / "be.fits", data, fits.Header([("BANDS", "gr")]))
    cube = read_cube(path)
    assert cube.data.dtype == np.float32 and cube.data.dtype.byteorder == "="
    np.testing.assert_array_equal(cube.data, data.astype(np.float32))


def test_two_d_image_is_a_one_band_cube(tmp_path):
    path = write_raw(tmp_path / "r.fits", np.ones((5, 6), np.float32), fits.Header([("FILTER", "r")]))
    cube = read_cube(path)
    assert cube.shape == (1, 5, 6) and cube.bands == "r"


def test_nan_pixels_become_the_mask(tmp_path):
    data = np.ones((3, 4, 4), np.float32)
    data[2, 1, 1] = np.nan
    data[0, 3, 0] = np.inf
    cube = read_cube(write_raw(tmp_path / "n.fits", data, fits.Header([("BANDS", "grz")])))
    assert cube.mask.sum() == 2 and cube.mask[2, 1, 1] and cube.mask[0, 3, 0]


def test_mask_extension_and_blank_values(tmp_path):
    data = np.arange(16, dtype=np.int16).reshape(1, 4, 4)
    header = fits.Header([("BANDS", "g"), ("BLANK", 5)])
    flags = np.zeros((4, 4), np.uint8)
    flags[0, 0] = 4
    path = write_raw(tmp_path / "m.fits", data, header, extra=[fits.ImageHDU(flags, name="FLAGS")])
    cube = read_cube(path)
    assert np.argwhere(cube.mask).tolist() == [[0, 0, 0], [0, 1, 1]]


def test_compressed_files_read(tmp_path):
    cube = small_cube()
    plain = write_cube(cube, tmp_path / "c.fits")
    with open(plain, "rb") as src, gzip.open(tmp_path / "c.fits.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(cube.data, header=fits.getheader(plain),
                                                       compression_type="GZIP_2", quantize_level=0)]
                 ).writeto(tmp_path / "c.fits.fz")
    for name in ("c.fits.gz", "c.fits.fz"):
        back = read_cube(tmp_path / name)
        assert back.bands == "grz" and back.wcs is not None
        np.testing.assert_array_equal(back.data, cube.data)


def test_bands_from_per_plane_keywords_and_selection(tmp_path):
    data = np.stack([np.full((3, 3), v, np.float32) for v in (1, 2, 3)])
    header = fits.Header([("FILTER1", "g"), ("FILTER2", "DECam r DECam SDSS c0002"), ("FILTER3", "z.0000")])
    path = write_raw(tmp_path / "f.fits", data, header)
    assert read_cube(path).bands == "grz"
    picked = read_cube(path, bands="zg")
    assert picked.bands == "zg" and picked.data[:, 0, 0].tolist() == [3.0, 1.0]
    assert "FILTER1" not in picked.header  # per-plane names are rewritten as BANDS/BANDn, never carried stale


def test_band_names_that_disagree_are_an_input_error(tmp_path):
    path = write_raw(tmp_path / "b.fits", np.zeros((3, 4, 4), np.float32), fits.Header([("BANDS", "grz")]))
    with pytest.raises(InputError, match="b.fits.*'ugi'.*'grz'"):
        read_cube(path, bands="ugi")
    wrong = write_raw(tmp_path / "w.fits", np.zeros((3, 4, 4), np.float32), fits.Header([("BANDS", "gr")]))
    with pytest.raises(InputError, match="w.fits.*3 planes"):
        read_cube(wrong)
    unnamed = write_raw(tmp_path / "u.fits", np.zeros((3, 4, 4), np.float32))
    with pytest.raises(InputError, match="u.fits.*bands"):
        read_cube(unnamed)
    assert read_cube(unnamed, bands="grz").bands == "grz"
    with pytest.raises(InputError, match="u.fits.*'gr'.*3 planes"):
        read_cube(unnamed, bands="gr")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"not a fits file at all" * 200), "not a readable FITS file"),
        (lambda p: p.write_bytes(b""), "not a readable FITS file"),
        (lambda p: fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
            [fits.Column(name="a", format="E", array=np.ones(3))])]).writeto(p), "no image data"),
        (lambda p: fits.PrimaryHDU().writeto(p), "no image data"),
        (lambda p: fits.PrimaryHDU(np.zeros((2, 2, 3, 4), np.float32)).writeto(p), "2-D image or a 3-D"),
    ],
    ids=["garbage", "empty-file", "table-only", "header-only", "4-d"],
)
def test_unusable_files_are_one_line_input_errors(tmp_path, make, message):
    path = tmp_path / "bad.fits"
    make(path)
    with pytest.raises(InputError, match=message) as info:
        read_cube(path, bands="grz")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_cube_without_wcs_and_empty_table_are_fitsverify_clean(tmp_path):
    bare = Cube(data=np.ones((2, 5, 7), np.float32), bands="gr", unit="counts")
    path = write_cube(bare, tmp_path / "bare.fits")
    assert_fitsverify_clean(path)
    back = read_cube(path)
    assert back.wcs is None and back.pixel_scale is None and back.unit == "counts" and back.shape == (2, 5, 7)
    empty = write_table({"mag": np.array([], np.float64), "name": np.array([], str)}, tmp_path / "empty.fits")
    assert_fitsverify_clean(empty)
    assert {k: len(v) for k, v in read_table(empty).items()} == {"mag": 0, "name": 0}


def test_asking_for_a_table_hdu_as_an_image_is_an_input_error(tmp_path):
    path = write_table({"a": np.arange(3)}, tmp_path / "t.fits")
    with pytest.raises(InputError, match="HDU 1 is a BinTableHDU, not an image"):
        read_cube(path, hdu=1)
    with pytest.raises(InputError, match="no binary table"):
        read_table(write_cube(small_cube(), tmp_path / "c.fits"))


def test_missing_file_and_wrong_hdu(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_cube(tmp_path / "absent.fits")
    path = write_cube(small_cube(), tmp_path / "c.fits", extra_hdus=[("STD", np.ones((3, 16, 16)))])
    with pytest.raises(InputError, match="no HDU 'NOPE'"):
        read_cube(path, hdu="NOPE")
    assert read_cube(path, hdu="STD").data.max() == 1.0


def test_truncated_gzip_file_is_an_input_error(tmp_path):
    path = write_cube(small_cube(size=64), tmp_path / "c.fits.gz")
    assert path.read_bytes()[:2] == b"\x1f\x8b"  # really gzip: the temporary name kept the suffix
    assert_fitsverify_clean(path)
    cut = tmp_path / "cut.fits.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match="cut.fits.gz"):
        read_cube(cut)


def test_rewriting_a_cube_keeps_its_history_and_input_cards(tmp_path):
    first = small_cube()
    first.header["SURVEY"] = "DECaLS"
    one = write_cube(first, tmp_path / "one.fits", provenance=make_provenance(command="galgen sample"),
                     history=["step one"])
    two = write_cube(read_cube(one), tmp_path / "two.fits",
                     provenance=make_provenance(command="galgen desify one.fits", inputs=[one], strength=0.6))
    header = fits.getheader(two)
    keys = [k for k in header if k not in ("HISTORY", "COMMENT")]
    assert len(keys) == len(set(keys))  # no keyword twice (DATE, GALGEN, GG* are replaced)
    history = list(header["HISTORY"])
    assert history[1] == "step one" and "galgen desify one.fits" in history[2]
    assert header["SURVEY"] == "DECaLS" and header["GGSTRENG"] == 0.6
    assert_fitsverify_clean(two)


def test_truncated_file_is_an_input_error(tmp_path):
    path = write_cube(small_cube(size=64), tmp_path / "c.fits")
    cut = tmp_path / "cut.fits"
    cut.write_bytes(path.read_bytes()[:20000])
    with pytest.raises(InputError, match="cut.fits.*truncated"):
        read_cube(cut)


# ----------------------------------------------------------------------------- atomic writes


def test_failed_write_leaves_nothing_behind(tmp_path):
    cube = small_cube()
    with pytest.raises(Exception):
        write_cube(cube, tmp_path / "c.fits", extra_hdus=[("STD", np.array(["not", "an", "image"]))])
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "c.fits"
    write_cube(small_cube(seed=1), target)
    before = target.read_bytes()
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == before and sorted(tmp_path.iterdir()) == [target]


def test_writing_an_unsupported_suffix_is_an_input_error(tmp_path):
    for name in ("c.fits.fz", "c.png"):
        with pytest.raises(InputError, match="writes .fits or .fits.gz"):
            write_cube(small_cube(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_write_into_missing_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="output directory does not exist"):
        write_cube(small_cube(), tmp_path / "nope" / "c.fits")


# ----------------------------------------------------------------------------- per-band files


def test_band_files_on_the_same_grid_stack(tmp_path):
    cube = small_cube()
    paths = []
    for i, band in enumerate(cube.bands):
        plane = Cube(data=cube.data[i:i + 1], bands=band, wcs=cube.wcs)
        paths.append(write_cube(plane, tmp_path / f"{band}.fits"))
    stacked = read_band_files(paths)
    assert stacked.bands == "grz" and stacked.mask is None
    np.testing.assert_array_equal(stacked.data, cube.data)


def test_band_files_with_shifted_wcs_are_aligned(tmp_path):
    """A source at pixel (x=20, y=12) of a band whose grid is shifted by (+3, -2) pixels lands at (23, 10)."""
    size = 32
    ref_wcs = make_wcs((size, size), pixel_scale=0.262, ra=150.0, dec=2.0)
    shifted = ref_wcs.deepcopy()
    shifted.wcs.crpix = ref_wcs.wcs.crpix + np.array([-3.0, 2.0])  # the same sky sits 3 px left, 2 px up
    g = np.zeros((1, size, size), np.float32)
    g[0, 10, 23] = 1.0
    r = np.zeros((1, size, size), np.float32)
    r[0, 12, 20] = 1.0
    pg = write_cube(Cube(data=g, bands="g", wcs=ref_wcs), tmp_path / "g.fits")
    pr = write_cube(Cube(data=r, bands="r", wcs=shifted), tmp_path / "r.fits")
    for method in ("interp", "exact"):
        cube = read_band_files([pg, pr], method=method)
        assert cube.bands == "gr"
        peak = np.unravel_index(np.nanargmax(cube.data[1]), (size, size))
        assert peak == (10, 23)
        assert np.nanmax(cube.data[1]) == pytest.approx(1.0, abs=1e-3)
        # the band's grid covers reference columns 3..34 and rows -2..29: the first 3 columns and
        # the last 2 rows have no data
        assert cube.mask[1, :, :3].all() and cube.mask[1, -2:, :].all() and not cube.mask[0].any()
        assert not cube.mask[1, :-2, 3:].any()


def test_band_files_resampled_to_a_finer_grid_keep_their_total_flux(tmp_path):
    coarse = make_wcs((16, 16), pixel_scale=0.524, ra=150.0, dec=2.0)
    fine = make_wcs((32, 32), pixel_scale=0.262, ra=150.0, dec=2.0)
    flat = np.full((1, 16, 16), 4.0, np.float32)
    pg = write_cube(Cube(data=np.zeros((1, 32, 32), np.float32), bands="g", wcs=fine), tmp_path / "g.fits")
    pr = write_cube(Cube(data=flat, bands="r", wcs=coarse), tmp_path / "r.fits")
    cube = read_band_files([pg, pr], method="exact")
    inner = cube.data[1][2:-2, 2:-2]
    np.testing.assert_allclose(inner, 1.0, rtol=1e-5)  # a quarter of the area: a quarter of the flux


def test_band_files_need_names(tmp_path):
    p = write_raw(tmp_path / "x.fits", np.zeros((4, 4), np.float32))
    q = write_raw(tmp_path / "y.fits", np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match="x.fits.*bands"):
        read_band_files([p, q])
    assert read_band_files([p, q], bands="gr").bands == "gr"


# ----------------------------------------------------------------------------- real DECaLS cutouts


def test_real_cutout_reads_as_grz_nanomaggies(decals_dir):
    cube = read_cube(decals_dir / "example_a.fits")
    assert cube.shape == (3, 424, 424) and cube.bands == "grz" and cube.unit == "nanomaggy"
    assert cube.data.dtype == np.float32 and cube.data.dtype.byteorder == "="
    assert cube.mask is None and cube.header["SURVEY"] == "DECaLS"


def test_real_cutout_wcs_survives_write_and_read(decals_dir, tmp_path):
    ny, nx = 424, 424
    pixels = np.array([[0, 0], [nx - 1, 0], [0, ny - 1], [nx - 1, ny - 1], [211.5, 211.5], [17.25, 300.5]])
    for name in ("example_a.fits", "example_bad_pix.fits"):
        cube = read_cube(decals_dir / name)
        written = write_cube(cube, tmp_path / name)
        assert_fitsverify_clean(written)  # the cutout's CD matrix is written as PC + CDELT
        back = read_cube(written)
        np.testing.assert_allclose(back.wcs.all_pix2world(pixels, 0), cube.wcs.all_pix2world(pixels, 0),
                                   rtol=0, atol=1e-9)
        with fits.open(decals_dir / name) as original, warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)  # astropy notes the CD matrix it read
            truth = WCS(original[0].header).celestial
        np.testing.assert_allclose(back.wcs.all_pix2world(pixels, 0), truth.all_pix2world(pixels, 0),
                                   rtol=0, atol=1e-9)


def test_real_cutout_without_coverage_is_masked(decals_dir):
    cube = read_cube(decals_dir / "example_bad_pix.fits")
    # the cutout service writes exact zeros where no exposure covers the sky
    assert cube.mask is not None and cube.mask[:2].mean() > 0.5 and not cube.mask[2].any()
    assert read_cube(decals_dir / "example_bad_pix.fits", zero_is_missing=False).mask is None


def test_real_truncated_cutout_is_an_input_error(decals_dir):
    path = decals_dir / "example_incomplete.fits"
    with pytest.raises(InputError, match="truncated") as info:
        read_cube(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_same_grid_means_same_shape_and_corners_within_a_thousandth_of_a_pixel():
    from galgen.io.cube import same_grid

    wcs = make_wcs((16, 16), pixel_scale=0.262, ra=150.0, dec=2.0)
    a = Cube(data=np.zeros((1, 16, 16), np.float32), bands="g", wcs=wcs)
    for shift, same in ((0.0, True), (5e-4, True), (5e-3, False)):
        moved = wcs.deepcopy()
        moved.wcs.crpix = wcs.wcs.crpix + np.array([shift, 0.0])
        assert same_grid(a, Cube(data=a.data, bands="g", wcs=moved)) is same, shift
    assert not same_grid(a, Cube(data=np.zeros((1, 16, 15), np.float32), bands="g", wcs=wcs))
    bare = Cube(data=a.data, bands="g")
    assert same_grid(bare, Cube(data=a.data, bands="g")) and not same_grid(a, bare)
