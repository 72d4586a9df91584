"""Lupton RGB previews: band order, fixed stretch, montage geometry, PNG output."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from galgen.io.cube import Cube
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube
from galgen.preview import Stretch, lupton_rgb, montage, preview_files, side_by_side


def test_reddest_band_drives_red_and_zero_flux_is_black():
    flux = np.zeros((3, 8, 8), dtype=np.float32)
    flux[2, 2, 2] = 5.0  # z only
    flux[0, 5, 5] = 5.0  # g only
    rgb = lupton_rgb(flux, "grz", stretch=Stretch(weights={}))
    assert rgb.dtype == np.uint8 and rgb.shape == (8, 8, 3)
    assert rgb[2, 2, 0] > 0 and rgb[2, 2, 1] == rgb[2, 2, 2] == 0
    assert rgb[5, 5, 2] > 0 and rgb[5, 5, 0] == rgb[5, 5, 1] == 0
    assert not rgb[0, 0].any()
    # the same cube with its planes listed in another order gives the same picture
    assert np.array_equal(lupton_rgb(flux[::-1], "zrg", stretch=Stretch(weights={})), rgb)


def test_stretch_is_fixed_not_per_image():
    faint = np.full((3, 4, 4), 0.05, dtype=np.float32)
    assert lupton_rgb(faint, "grz").max() < lupton_rgb(faint * 10, "grz").max()


def test_one_band_is_grey_and_nan_is_black():
    flux = np.array([[[np.nan, 1.0]]], dtype=np.float32)
    rgb = lupton_rgb(flux, "r")
    assert not rgb[0, 0].any() and rgb[0, 1, 0] == rgb[0, 1, 1] == rgb[0, 1, 2] > 0


def test_montage_geometry():
    tiles = [np.full((4, 6, 3), n, dtype=np.uint8) for n in range(1, 6)]
    canvas = montage(tiles, columns=2, gap=1, zoom=3)
    assert canvas.shape == (3 * (12 + 1) + 1, 2 * (18 + 1) + 1, 3)
    assert canvas[1, 1, 0] == 1 and canvas[1 + 13, 1 + 19, 0] == 4 and canvas[0, 0, 0] == 0
    with pytest.raises(ValueError):
        montage([])


def test_preview_files_and_side_by_side_write_pngs(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        cube = Cube(data=rng.normal(0, 0.1, (3, 10, 10)), bands="grz", wcs=make_wcs((10, 10), pixel_scale=0.262))
        paths.append(write_cube(cube, tmp_path / f"c{i}.fits"))
    png = preview_files(paths, tmp_path / "p.png", columns=3, zoom=1)
    assert Image.open(png).size == (3 * 12 + 2, 12 + 2)
    flux = [rng.normal(0, 0.1, (3, 10, 10)) for _ in range(4)]
    both = side_by_side(flux, flux, tmp_path / "s.png", columns=2, zoom=1)
    width, height = Image.open(both).size
    assert width == 2 * (2 * 12 + 2) + 8 and height == (2 * 12 + 2) + 28


def test_mocks_beside_simulations_draws_as_many_simulations(tmp_path):
    pytest.importorskip("galsim")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from mocks_vs_simulations import mocks_beside_simulations

    cube = Cube(data=np.zeros((3, 32, 32)), bands="grz", wcs=make_wcs((32, 32), pixel_scale=0.262))
    paths = [write_cube(cube, tmp_path / f"mock_{i}.fits") for i in range(2)]
    png = mocks_beside_simulations(paths, tmp_path / "both.png", columns=2, zoom=1)
    picture = np.asarray(Image.open(png))
    assert picture.shape == ((32 + 4) + 28, 2 * (2 * 34 + 2) + 8, 3)
    panel = picture[14 : 14 + 36]
    assert not panel[:, : 2 * 34 + 2].any()  # the mocks are empty sky: black
    assert panel[:, 2 * 34 + 2 + 8 :].any()  # the simulations are not
