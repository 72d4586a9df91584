"""Loading populations for the metrics: FITS cubes in any form, prepared datasets, crops, errors."""

from __future__ import annotations

import numpy as np
import pytest

from galgen.errors import InputError
from galgen.io.regrid import centre_crop
from galgen.populations import load_pair, load_population


def write_cubes(directory, stamps, *, bands="grz", pixel_scale=0.262, prefix="gal"):
    """One FITS cube per stamp, through galgen.io.cube, with a TAN WCS."""
    from galgen.io.cube import Cube
    from galgen.io.cube import make_wcs
    from galgen.io.write import write_cube

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, stamp in enumerate(stamps):
        wcs = make_wcs(stamp.shape[-2:], pixel_scale=pixel_scale)
        paths.append(write_cube(Cube(data=stamp, bands=bands, wcs=wcs), directory / f"{prefix}_{i:03d}.fits"))
    return paths


def stamps(count, size=32, seed=0):
    return np.random.default_rng(seed).normal(size=(count, 3, size, size)).astype(np.float32)


def test_directory_glob_and_list_give_the_same_stack(tmp_path):
    data = stamps(4)
    paths = write_cubes(tmp_path / "real", data)
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in paths) + "\n")
    for items in ([tmp_path / "real"], [str(tmp_path / "real" / "*.fits")], [f"@{listing}"]):
        population = load_population(items)
        np.testing.assert_array_equal(population.flux, data)
        assert population.bands == "grz" and population.unit == "nanomaggy"
        assert population.pixel_scale == pytest.approx(0.262, rel=1e-6)
        assert population.flux.dtype == np.float32 and len(population) == 4


def test_each_image_keeps_its_own_pixel_scale(tmp_path):
    write_cubes(tmp_path / "pop", stamps(2), pixel_scale=0.262, prefix="a")
    write_cubes(tmp_path / "pop", stamps(1), pixel_scale=0.1, prefix="b")
    population = load_population([tmp_path / "pop"])
    np.testing.assert_allclose(population.pixel_scales, [0.262, 0.262, 0.1], rtol=1e-6)
    assert population.pixel_scale == pytest.approx(0.262, rel=1e-6)
    assert any("pixel scales differ" in note for note in population.notes)


def test_different_sizes_are_centre_cropped_to_the_smallest_with_a_note(tmp_path):
    big, small = stamps(2, size=40, seed=1), stamps(1, size=24, seed=2)
    write_cubes(tmp_path / "mixed", big, prefix="a")
    write_cubes(tmp_path / "mixed", small, prefix="b")
    population = load_population([tmp_path / "mixed"])
    assert population.flux.shape == (3, 3, 24, 24)
    np.testing.assert_array_equal(population.flux[0], centre_crop(big[0], (24, 24)))
    # the target pixel (W // 2, H // 2) stays the target
    assert population.flux[0, 0, 12, 12] == big[0, 0, 20, 20]
    assert any("centre-cropped to 24x24" in note for note in population.notes)


def test_unreadable_file_is_an_input_error_naming_it(tmp_path):
    write_cubes(tmp_path / "pop", stamps(2))
    bad = tmp_path / "pop" / "zz_broken.fits"
    bad.write_bytes(b"SIMPLE  =                    T" + b" " * 50)
    with pytest.raises(InputError, match="zz_broken.fits"):
        load_population([tmp_path / "pop"])


def test_missing_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_population([tmp_path / "nowhere"])


def test_masked_pixels_become_nan(tmp_path):
    from galgen.io.cube import Cube
    from galgen.io.cube import make_wcs
    from galgen.io.write import write_cube

    data = stamps(1)[0]
    mask = np.zeros(data.shape, dtype=bool)
    mask[1, 3, 4] = True
    write_cube(Cube(data=data, bands="grz", wcs=make_wcs((32, 32), pixel_scale=0.262), mask=mask), tmp_path / "m.fits")
    population = load_population([tmp_path / "m.fits"])
    assert np.isnan(population.flux[0, 1, 3, 4]) and np.isfinite(population.flux).sum() == data.size - 1


def test_prepared_dataset_is_mapped_back_to_flux(tmp_path):
    from galgen.dataset import write_meta
    from galgen.normalize import Normalizer

    normalizer = Normalizer(bands="grz", lower=(-0.1, -0.2, -0.3), upper=(5.0, 6.0, 7.0))
    flux = np.random.default_rng(3).uniform(-0.1, 5.0, size=(5, 3, 16, 16)).astype(np.float32)
    (tmp_path / "ds").mkdir()
    np.save(tmp_path / "ds" / "images.npy", normalizer.forward(flux).astype(np.float32))  # the DATASET layout
    write_meta(tmp_path / "ds", {"bands": "grz", "size": 16, "count": 5, "pixel_scale": 0.262, "unit": "nanomaggy",
                                 "normalizer": normalizer.to_dict()})
    population = load_population([tmp_path / "ds"])
    np.testing.assert_allclose(population.flux, flux, atol=1e-5)
    assert population.bands == "grz" and population.pixel_scale == 0.262


def test_pair_must_share_bands_and_is_cropped_to_a_common_size(tmp_path):
    write_cubes(tmp_path / "real", stamps(2, size=40))
    write_cubes(tmp_path / "mock", stamps(2, size=32))
    real, mock = load_pair([tmp_path / "real"], [tmp_path / "mock"])
    assert real.flux.shape[-2:] == mock.flux.shape[-2:] == (32, 32)
    write_cubes(tmp_path / "gr", stamps(2)[:, :2], bands="gr")
    with pytest.raises(InputError, match="bands"):
        load_pair([tmp_path / "real"], [tmp_path / "gr"])


def test_real_decals_cutouts_load(decals_dir):
    population = load_population([decals_dir / "example_a.fits", decals_dir / "example_b.fits"])
    assert population.flux.shape == (2, 3, 424, 424) and population.bands == "grz"
    assert population.pixel_scale == pytest.approx(0.1, rel=1e-3)  # these cutouts were cut at 0.1"/px
    with pytest.raises(InputError, match="example_incomplete"):
        load_population([decals_dir / "example_incomplete.fits"])


def test_catalogue_beside_the_cubes_is_skipped_with_a_note(tmp_path):
    # simulate writes truth.fits next to its cubes; `galgen sgd sims/ ...` must read the cubes only
    import numpy as np

    from galgen.io.cube import Cube
    from galgen.io.write import write_cube, write_table
    from galgen.populations import load_population

    for i in range(3):
        write_cube(Cube(np.full((3, 8, 8), i, np.float32), bands="grz"), tmp_path / f"sim_{i}.fits")
    write_table({"index": np.arange(3)}, tmp_path / "truth.fits")
    population = load_population([tmp_path])
    assert population.flux.shape == (3, 3, 8, 8)
    assert [p.name for p in population.paths] == ["sim_0.fits", "sim_1.fits", "sim_2.fits"]
    assert any("truth.fits" in note for note in population.notes)
