"""galgen.io.write's two writers: the direct one writes what astropy's writes, card for card and byte for byte.

Golden files: each case is written once through astropy (the reference) and once directly; the
headers must hold the same cards (keyword, value, comment, image) in the same order, the same
pixels and WCS as astropy reads them, CHECKSUM/DATASUM that astropy and fitsverify accept, and
only the checksum cards (their time stamps) may differ.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from conftest import assert_fitsverify_clean
from galgen.flows.output import write_mock
from galgen.io.cards import Cards, card_image
from galgen.io.cube import Cube, read_cube
from galgen.io.provenance import make_provenance, provenance_to_header
from galgen.io.cube import make_wcs
from galgen.io.write import Image, _encode_checksum, direct_applies, write_cube, write_images

pytestmark = pytest.mark.filterwarnings("error::astropy.io.fits.verify.VerifyWarning")

LONG_COMMAND = "galgen sample -n 1000 -o mocks/ --model " + "/a/long/path" * 8 + " 'quoted arg' été"
_STAMP = re.compile(r"(HDU checksum updated|data unit checksum updated) \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def cube(bands="grz", size=16, *, mask=False, wcs=True, seed=0) -> Cube:
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 0.01, (len(bands), size, size)).astype(np.float32)
    data[0, 0, 0] = np.nan
    flags = None
    if mask:
        flags = np.zeros(data.shape, bool)
        flags[1, 2:5, 3:9] = True
    grid = make_wcs((size, size), pixel_scale=0.262, ra=150.0, dec=2.0) if wcs else None
    return Cube(data=data, bands=bands, wcs=grid, mask=flags)


def provenance(**fields) -> dict:
    prov = make_provenance(command=LONG_COMMAND, seed=3, index=7, sampler="ddim", steps=50, eta=0.0, strength=0.6,
                           guidance=1.25, conditions={"mag_r": 19.5, "r_e": 1.2}, catalog_id="row 12",
                           normaliser={"bands": "grz", "lower": [-0.0350858996880697, -0.065], "upper": [6.0, 11.3]},
                           custom_list=[1, 2], **fields)
    prov["date"] = "2024-01-02T03:04:05"
    return prov


def read_back(path) -> list[tuple[list, np.ndarray]]:
    """Each HDU's cards (astropy's) and pixels, the checksums verified by astropy (a mismatch is an error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path, checksum=True) as hdul:
            return [(list(hdu.header.cards), np.array(hdu.data)) for hdu in hdul]


def assert_same_files(reference, direct) -> None:
    """Card for card (keyword, value, comment, image), then the pixels and the WCS, as astropy reads them."""
    ours, theirs = read_back(direct), read_back(reference)
    assert len(ours) == len(theirs)
    for (cards, data), (expected, want) in zip(ours, theirs):
        assert [c.keyword for c in cards] == [c.keyword for c in expected]
        for card, ref in zip(cards, expected):
            if card.keyword == "CHECKSUM":
                continue  # depends on the time stamp in the comments
            assert card.value == ref.value, card.keyword
            assert _STAMP.sub(r"\1", card.comment) == _STAMP.sub(r"\1", ref.comment), card.keyword
            assert _STAMP.sub(r"\1", card.image) == _STAMP.sub(r"\1", ref.image), card.keyword
        assert data.dtype == want.dtype and data.shape == want.shape
        assert data.tobytes() == want.tobytes()  # NaN included
        header, ref_header = fits.Header(cards), fits.Header(expected)
        if "CTYPE1" in ref_header:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the band axis 3 is not celestial
                ours_wcs, ref_wcs = WCS(header).celestial, WCS(ref_header).celestial
            assert ours_wcs.to_header_string() == ref_wcs.to_header_string()
    assert _outside_checksums(direct) == _outside_checksums(reference)
    assert_fitsverify_clean(direct)
    assert_fitsverify_clean(reference)


def _outside_checksums(path) -> bytes:
    """The file's bytes with the CHECKSUM and DATASUM cards blanked (their stamps and the CHECKSUM differ)."""
    raw = bytearray(path.read_bytes())
    for match in re.finditer(rb"(CHECKSUM|DATASUM )= '[^']*' +/ [^\n]{0,60}", bytes(raw)):
        start = match.start() - match.start() % 80
        if match.start() == start:
            raw[start : start + 80] = b" " * 80
    return bytes(raw)


def write_both(tmp_path, name, write) -> tuple:
    return write(tmp_path / f"astropy-{name}", "astropy"), write(tmp_path / f"direct-{name}", "direct")


def test_a_mock_is_the_same_file_from_both_writers(tmp_path):
    wcs = make_wcs((64, 64), pixel_scale=0.262).to_header(relax=False).tostring()
    data = np.random.default_rng(1).normal(size=(3, 64, 64)).astype(np.float32)
    prov = provenance()
    history = ["mock 7 of seed 3: ddim 50 steps", "flux = normaliser inverse (model not calibrated)"]

    def write(path, backend):
        return write_mock(path.with_suffix(".fits"), data, bands="grz", unit="nanomaggy", wcs=wcs,
                          provenance=prov, history=history, backend=backend)

    reference, direct = write_both(tmp_path, "mock", write)
    assert_same_files(reference, direct)
    header = fits.getheader(direct)
    assert header["GGCMD"] == LONG_COMMAND.replace("'", "%27").replace("é", "%C3%A9")  # escaped, long
    assert header["LONGSTRN"] == "OGIP 1.0" and "CONTINUE" in fits.getheader(direct).tostring()
    assert header["GGINDEX"] == 7 and list(header["HISTORY"])[-2:] == history


def test_long_strings_masks_and_extensions_are_the_same_from_both_writers(tmp_path):
    image = cube(mask=True)
    extras = [("STD", np.full(image.shape, 0.5)), ("COUNT", np.arange(256, dtype=">i4").reshape(16, 16)),
              ("WEIGHT", np.ones((2, 3), np.float64).astype(np.float32))]

    def write(path, backend):
        return write_cube(image, path.with_suffix(".fits"), provenance=provenance(), history=["one", "two " * 40],
                          extra_hdus=extras, backend=backend)

    reference, direct = write_both(tmp_path, "cube", write)
    assert_same_files(reference, direct)
    with fits.open(direct) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "STD", "COUNT", "WEIGHT", "MASK"]
        assert hdul["MASK"].data.dtype == np.uint8 and hdul["COUNT"].header["BITPIX"] == 32
    back = read_cube(direct)
    assert np.array_equal(back.mask, image.mask | np.isnan(image.data))  # the NaN pixel is masked on reading


def test_input_cards_and_a_bare_cube_are_the_same_from_both_writers(tmp_path):
    source = tmp_path / "source.fits"
    header = fits.Header([("BANDS", "gr"), ("TELESCOP", "Blanco"), ("EXPTIME", 90.5, "[s]"),
                          ("HISTORY", "input history 1"), ("COMMENT", "a comment"), ("SKYLEVEL", 1.5e-5),
                          ("OBSERVER", "somebody with a long name " * 4, "who"), ("HISTORY", "input history 2")])
    fits.PrimaryHDU(np.ones((2, 8, 8), np.float32), header=header).writeto(source)
    image = read_cube(source)

    def write(path, backend):
        prov = make_provenance(command="galgen desify source.fits", inputs=[source], strength=0.6)
        prov["date"] = "2024-01-02T03:04:05"
        return write_cube(image, path.with_suffix(".fits"), provenance=prov, history=["desified"], backend=backend)

    assert_same_files(*write_both(tmp_path, "reread", write))

    def bare(path, backend):
        return write_cube(cube(bands="r", wcs=False), path.with_suffix(".fits"), backend=backend)

    assert_same_files(*write_both(tmp_path, "bare", bare))


def test_auto_writes_directly_where_it_can_and_through_astropy_elsewhere(tmp_path):
    image = cube()
    plain = Image(image.data, Cards([("BANDS", "grz", "")]))
    odd = Image(np.arange(12, dtype=np.uint16).reshape(3, 4), Cards())  # FITS stores it with BZERO
    assert direct_applies([plain], tmp_path / "c.fits")
    assert not direct_applies([plain], tmp_path / "c.fits.gz")
    assert not direct_applies([plain, odd], tmp_path / "c.fits")
    with pytest.raises(ValueError, match="direct writer cannot"):
        write_images([plain, odd], tmp_path / "c.fits", backend="direct")
    path = write_images([plain, odd], tmp_path / "c.fits")  # auto: astropy
    with fits.open(path) as hdul:
        assert hdul[1].data.dtype == np.uint16 and hdul[1].header["BZERO"] == 32768
    assert_fitsverify_clean(path)
    gz = write_cube(image, tmp_path / "c.fits.gz", provenance=provenance())
    assert_fitsverify_clean(gz)
    assert np.array_equal(read_cube(gz).data, image.data, equal_nan=True)


def test_checksum_encoding_matches_astropys():
    encode = getattr(fits.PrimaryHDU(), "_char_encode", None)
    if encode is None:
        pytest.skip("astropy no longer has _char_encode")
    rng = np.random.default_rng(0)
    values = [0, 1, 0xFFFFFFFF, 0x3A3A3A3A, 0x5B5B5B5B, *rng.integers(0, 2**32, 2000).tolist()]
    for value in values:
        assert _encode_checksum(value) == encode(value), hex(value)


def test_cards_place_cards_as_an_astropy_header_does():
    prov = provenance(command_line_tail="x" * 100)
    ours, theirs = Cards(), fits.Header()
    for header in (ours, theirs):
        header["FIRST"] = (1, "first")
        header.add_history("early history")
        provenance_to_header(prov, header)
        header.add_comment("a comment")
        header["LATE"] = (2.5, "after the last keyword, before the commentary")
        header.set("BEFORE", "x", "placed", before="FIRST")
        header.set("FIRST", 3)  # value replaced, comment kept
    assert [c[:3] for c in ours] == [(c.keyword, c.value, c.comment) for c in theirs.cards]
    last_keyword = max(i for i, c in enumerate(theirs.cards) if c.keyword not in ("HISTORY", "COMMENT"))
    assert ours.keyword_end() == last_keyword + 1
    assert "GGCMD" in ours and ours.get("GGSEED") == 3 and ours.get("ABSENT", 0) == 0


def test_card_images_are_astropys_and_zero_keeps_its_sign():
    assert card_image("CRVAL2", -0.0, "c") != card_image("CRVAL2", 0.0, "c")
    assert card_image("GGBF16", True) != card_image("GGBF16", 1)
    for card in [("GGCMD", "x" * 200, "long"), ("CDELT1", -7.277777777777778e-05, "deg"), ("HISTORY", "text", "")]:
        assert card_image(*card) == fits.Card(*card).image
    with pytest.raises(ValueError):
        card_image("GGCMD", "not ascii: é")  # FITS cards hold printable ASCII only
