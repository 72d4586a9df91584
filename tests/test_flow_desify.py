"""The desify flow (galgen.flows.desify, galgen.io.regrid): inputs onto the model's grid and range, SDEdit, outputs, neighbours."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import assert_fitsverify_clean
from tiny_model import NORMALIZER, TINY, make_tiny_model
from galgen.io.cube import Cube, read_cube, read_provenance
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube
from galgen.dataset import SOURCES_NAME, open_dataset, write_images, write_meta
from galgen.engine.denoiser import Denoiser
from galgen.engine.weights import file_sha256
from galgen.errors import InputError
from galgen.bands import band_order
from galgen.flows.desify import DesifyConfig, output_neighbours, plan_sigmas, run as desify
from galgen.model import load_model
from galgen.io.regrid import prepare_input, read_picture

SIZE = TINY.size  # 16 px
S = 0.3  # pixel spread of the ideal model's data, in [-1, 1] units


class GaussianEps(torch.nn.Module):
    """The exact noise predictor for pixels drawn from N(0, s^2): eps = sigma x / (s^2 + sigma^2) in VE form.

    It takes what the U-Net takes (x / sqrt(1 + sigma^2) and the fractional timestep t), so a
    Denoiser wraps it unchanged and the whole desify path runs with a known ideal denoiser.
    """

    def __init__(self, s: float, sigma_table: torch.Tensor):
        super().__init__()
        self.s = s
        self.register_buffer("log_sigmas", sigma_table.log())

    def forward(self, x_vp, t):
        low = t.floor().long().clamp(max=len(self.log_sigmas) - 2)
        frac = t - low
        sigma = ((1 - frac) * self.log_sigmas[low] + frac * self.log_sigmas[low + 1]).exp()[:, None, None, None]
        x = x_vp * (1 + sigma**2).sqrt()
        return sigma * x / (self.s**2 + sigma**2)


class ZeroEps(torch.nn.Module):
    """A network that predicts no noise at all: its denoiser is the identity, D(x, sigma) = x."""

    def forward(self, x_vp, t):
        return torch.zeros_like(x_vp)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def unet_model(model_file):
    """The tiny U-Net (spread random weights) as `galgen desify` loads it."""
    return load_model(model_file, device="cpu", bf16=False)


def with_network(loaded, net):
    """The same loaded model file with ``net`` in place of the U-Net (same schedule and sigma table)."""
    denoiser = Denoiser(net, schedule=loaded.module.schedule, timesteps=len(loaded.module.sigmas))
    return dataclasses.replace(loaded, module=denoiser.eval())


@pytest.fixture(scope="module")
def model(unet_model):
    """The ideal denoiser of N(0, S^2) pixels: every result has a known answer."""
    return with_network(unet_model, GaussianEps(S, unet_model.module.sigmas))


@pytest.fixture(scope="module")
def identity_model(unet_model):
    return with_network(unet_model, ZeroEps())


def picture(path, array, mode=None):
    Image.fromarray(np.asarray(array), mode=mode).save(path)
    return path


def gaussian_cube(path, *, n: int, scale: float, sigma_px: float, flux: float = 100.0, wcs=True):
    """A round Gaussian of total ``flux`` per band at the centre of an n x n grz cube."""
    y, x = np.mgrid[:n, :n] - (n - 1) / 2.0
    blob = flux * np.exp(-(x**2 + y**2) / (2 * sigma_px**2)) / (2 * np.pi * sigma_px**2)
    cube = Cube(data=np.stack([blob] * 3), bands="grz", wcs=make_wcs((n, n), pixel_scale=scale) if wcs else None)
    return write_cube(cube, path)


def moments(plane):
    """Total, centroid (x, y) and the mean of the two second-moment sigmas (pixels) of an image."""
    y, x = np.mgrid[: plane.shape[0], : plane.shape[1]]
    total = plane.sum()
    cx, cy = (plane * x).sum() / total, (plane * y).sum() / total
    var = (plane * ((x - cx) ** 2 + (y - cy) ** 2)).sum() / total / 2
    return total, cx, cy, np.sqrt(var)


# ----------------------------------------------------------------------------- inputs


def test_band_order_is_by_wavelength():
    assert band_order("grz") == [0, 1, 2]
    assert band_order("zgr") == [1, 2, 0]
    with pytest.raises(InputError, match="unknown: q"):
        band_order("gqz")


def test_pure_red_picture_lights_only_the_z_band(tmp_path):
    red = np.zeros((20, 20, 3), np.uint8)
    red[..., 0] = 255
    prepared = prepare_input(picture(tmp_path / "red.png", red), bands="grz", size=SIZE, pixel_scale=0.262)
    assert prepared.space == "model" and prepared.pixels.shape == (3, SIZE, SIZE)
    np.testing.assert_array_equal(prepared.pixels[2], 1.0)  # R -> z, 255 -> +1
    np.testing.assert_array_equal(prepared.pixels[:2], -1.0)  # g and r stay black: 0 -> -1
    blue = np.zeros((20, 20, 3), np.uint8)
    blue[..., 2] = 255
    prepared = prepare_input(picture(tmp_path / "blue.png", blue), bands="zrg", size=SIZE, pixel_scale=None)
    np.testing.assert_array_equal(prepared.pixels[2], 1.0)  # B -> g, wherever g sits among the planes
    np.testing.assert_array_equal(prepared.pixels[:2], -1.0)


def test_greyscale_goes_to_every_band_and_alpha_is_dropped(tmp_path):
    grey = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))  # 16 x 16, 0..240
    prepared = prepare_input(picture(tmp_path / "grey.png", grey), bands="grz", size=SIZE, pixel_scale=None)
    expected = grey / 127.5 - 1
    for plane in prepared.pixels:
        np.testing.assert_allclose(plane, expected, atol=1e-6)
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 1] = 255  # pure green, fully transparent: alpha must not matter
    prepared = prepare_input(picture(tmp_path / "green.png", rgba), bands="grz", size=SIZE, pixel_scale=None)
    np.testing.assert_array_equal(prepared.pixels[1], 1.0)
    np.testing.assert_array_equal(prepared.pixels[[0, 2]], -1.0)


def test_sixteen_bit_and_jpeg_scale_to_the_full_range(tmp_path):
    deep = np.array([[0, 65535], [65535, 0]], dtype=np.uint16)
    np.testing.assert_allclose(read_picture(picture(tmp_path / "deep.png", deep)), [[-1, 1], [1, -1]])
    jpeg = tmp_path / "flat.jpg"
    Image.fromarray(np.full((8, 8, 3), 255, np.uint8)).save(jpeg, quality=100)
    np.testing.assert_allclose(read_picture(jpeg), 1.0, atol=1e-6)


def test_picture_is_centre_cropped_then_resized(tmp_path):
    wide = np.zeros((32, 64), np.uint8)
    wide[:, 16:48] = 255  # the centred 32 x 32 square is white, the sides black
    prepared = prepare_input(picture(tmp_path / "wide.png", wide), bands="grz", size=SIZE, pixel_scale=None)
    np.testing.assert_allclose(prepared.pixels, 1.0)
    assert "centre square resized to 16x16" in prepared.notes[0]


@pytest.mark.parametrize("content", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 20])
def test_unreadable_picture_is_an_input_error_naming_it(tmp_path, content):
    bad = tmp_path / "broken.png"
    bad.write_bytes(content)
    with pytest.raises(InputError, match="broken.png: not a readable image"):
        prepare_input(bad, bands="grz", size=SIZE, pixel_scale=None)


def test_truncated_png_is_an_input_error(tmp_path):
    good = picture(tmp_path / "full.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    cut = tmp_path / "cut.png"
    cut.write_bytes(good.read_bytes()[:300])
    with pytest.raises(InputError, match="cut.png: not a readable image"):
        prepare_input(cut, bands="grz", size=SIZE, pixel_scale=None)


def test_fits_at_another_pixel_scale_is_resampled_onto_the_model_grid(tmp_path):
    # sigma 1.5 px at 0.524 arcsec/px is 3 px at the model's 0.262: the image doubles in size
    path = gaussian_cube(tmp_path / "coarse.fits", n=12, scale=0.524, sigma_px=1.5)
    prepared = prepare_input(path, bands="grz", size=SIZE, pixel_scale=0.262, unit="nanomaggy")
    assert prepared.space == "flux" and prepared.pixels.shape == (3, SIZE, SIZE)
    assert prepared.wcs is not None
    assert abs(np.sqrt(abs(np.linalg.det(prepared.wcs.pixel_scale_matrix))) * 3600 - 0.262) < 1e-9
    total, cx, cy, sigma = moments(prepared.pixels[0].astype(np.float64))
    assert sigma == pytest.approx(3.0, rel=0.05)  # a known size change: x2
    assert total == pytest.approx(100.0 * 0.995, rel=0.01)  # flux kept (minus the wings cut by the 16 px frame)
    assert (cx, cy) == pytest.approx(((SIZE - 1) / 2, (SIZE - 1) / 2), abs=0.02)
    assert "resampled 0.524 -> 0.262" in prepared.notes[0]


def test_fits_at_the_model_scale_is_cut_out_exactly(tmp_path):
    data = np.random.default_rng(1).normal(size=(3, 24, 20)).astype(np.float32)
    wcs = make_wcs((24, 20), pixel_scale=0.262, ra=150.0, dec=2.0)
    path = write_cube(Cube(data=data, bands="grz", wcs=wcs), tmp_path / "big.fits")
    prepared = prepare_input(path, bands="grz", size=SIZE, pixel_scale=0.262)
    np.testing.assert_array_equal(prepared.pixels, data[:, 4:20, 2:18])
    # the cut-out's WCS still points every pixel at the same sky position
    sky_in = wcs.all_pix2world([[2.0, 4.0], [17.0, 19.0]], 0)
    sky_out = prepared.wcs.all_pix2world([[0.0, 0.0], [15.0, 15.0]], 0)
    np.testing.assert_allclose(sky_out, sky_in, atol=1e-10)


def test_fits_without_wcs_is_resized_keeping_its_flux_and_bands_are_matched_by_name(tmp_path):
    data = np.random.default_rng(2).uniform(0, 1, (3, 32, 32)).astype(np.float32)
    data[0] += 10  # plane 0 of the file is z: it must land in the model's z plane
    path = write_cube(Cube(data=data, bands="zrg"), tmp_path / "plain.fits")
    prepared = prepare_input(path, bands="grz", size=SIZE, pixel_scale=0.262)
    assert prepared.wcs is None
    np.testing.assert_allclose(prepared.pixels.sum(axis=(1, 2)), data[::-1].sum(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(prepared.pixels[2, 0, 0], data[0, :2, :2].sum(), rtol=1e-5)  # 2x2 box, flux summed


def test_masked_and_missing_pixels_become_zero_flux(tmp_path):
    data = np.ones((3, SIZE, SIZE), np.float32)
    data[1, 3, 4] = np.nan
    path = write_cube(Cube(data=data, bands="grz", wcs=make_wcs((SIZE, SIZE), pixel_scale=0.262)), tmp_path / "m.fits")
    prepared = prepare_input(path, bands="grz", size=SIZE, pixel_scale=0.262)
    assert prepared.pixels[1, 3, 4] == 0 and np.isfinite(prepared.pixels).all()
    assert prepared.notes == ["1 masked or uncovered pixel values set to 0"]


def test_fits_in_another_unit_or_without_the_bands_is_refused(tmp_path):
    cube = Cube(data=np.ones((3, 8, 8), np.float32), bands="gri", unit="Jy")
    path = write_cube(cube, tmp_path / "jy.fits")
    with pytest.raises(InputError, match="jy.fits"):
        prepare_input(path, bands="grz", size=SIZE, pixel_scale=None)
    path = write_cube(Cube(data=np.ones((3, 8, 8), np.float32), bands="grz", unit="Jy"), tmp_path / "jy2.fits")
    with pytest.raises(InputError, match="flux unit 'Jy'"):
        prepare_input(path, bands="grz", size=SIZE, pixel_scale=None, unit="nanomaggy")


def test_real_decals_cutout_is_resampled_to_the_model_grid(decals_dir):
    # the cutouts are 424 px at 0.1 arcsec/px: 64 px at 0.262 cover their central 168 px
    prepared = prepare_input(decals_dir / "example_a.fits", bands="grz", size=64, pixel_scale=0.262)
    cube = read_cube(decals_dir / "example_a.fits")
    centre = cube.data[:, 212 - 84:212 + 84, 212 - 84:212 + 84].sum(axis=(1, 2))
    np.testing.assert_allclose(prepared.pixels.sum(axis=(1, 2)), centre, rtol=0.01)


# ----------------------------------------------------------------------------- SDEdit


def test_strength_sets_the_noise_level_exactly(tmp_path, identity_model):
    # with D(x, sigma) = x the output is the input plus sigma_start x noise: the spread of
    # (output - input) measures the sigma the strength chose (table index strength x T - 1)
    grey = picture(tmp_path / "grey.png", np.full((16, 16), 128, np.uint8))
    config = DesifyConfig(strength=0.05, draws=4, sampler="ddim", steps=10, seed=3)
    result = desify([grey], tmp_path / "out", model=identity_model, config=config)
    sigma = float(identity_model.module.sigmas[49])
    start = 128 / 127.5 - 1
    residual = np.stack([identity_model.to_model(read_cube(o.path).data) for o in result.outputs]) - start
    assert residual.std() == pytest.approx(sigma, rel=0.05)
    assert abs(residual.mean()) < 3 * sigma / np.sqrt(residual.size)
    assert not np.allclose(residual[0], residual[1])  # each draw its own noise
    assert plan_sigmas(identity_model, config)[0][0] == pytest.approx(sigma)


def test_low_strength_returns_almost_the_input(tmp_path, model):
    path = gaussian_cube(tmp_path / "galaxy.fits", n=SIZE, scale=0.262, sigma_px=2.0, flux=20.0)
    result = desify([path], tmp_path / "out", model=model, config=DesifyConfig(strength=0.002, steps=5))
    before, after = read_cube(path).data, read_cube(result.outputs[0].path).data
    change = np.abs(model.to_model(after) - model.to_model(before))
    assert change.max() < 0.05  # sigma_start = 0.0125 in [-1, 1] units
    widest = max(hi - lo for lo, hi in zip(NORMALIZER["lower"], NORMALIZER["upper"]))
    assert np.abs(after - before).max() < 0.05 * widest / 2  # the same bound in flux


def test_strength_one_forgets_the_input(tmp_path, model):
    white = picture(tmp_path / "white.png", np.full((16, 16), 255, np.uint8))
    black = picture(tmp_path / "black.png", np.zeros((16, 16), np.uint8))
    config = DesifyConfig(strength=1.0, seed=7, steps=10)
    a = desify([white], tmp_path / "a", model=model, config=config).outputs[0].path
    b = desify([black], tmp_path / "b", model=model, config=config).outputs[0].path
    xa, xb = (model.to_model(read_cube(p).data) for p in (a, b))
    assert np.abs(xa - xb).max() < 0.05  # the inputs differ by 2 everywhere
    weak = desify([white, black], tmp_path / "c", model=model, config=DesifyConfig(strength=0.1, seed=7, steps=10))
    xa, xb = (model.to_model(read_cube(o.path).data) for o in weak.outputs)
    assert np.abs(xa - xb).mean() > 0.5  # at strength 0.1 (sigma 0.35) they stay apart


def test_sdedit_with_the_ideal_denoiser_follows_the_exact_flow(tmp_path, model):
    # for N(0, s^2) pixels the probability-flow ODE from sigma0 maps x to x s / sqrt(s^2 + sigma0^2),
    # and x = input + sigma0 n with n the first draw of the (seed, index) generator
    from galgen.engine.runtime import ImageNoise

    grey = picture(tmp_path / "grey.png", np.full((16, 16), 150, np.uint8))
    config = DesifyConfig(strength=0.1, draws=2, seed=4, steps=40, sampler="dpmpp_2m")
    result = desify([grey], tmp_path / "out", model=model, config=config)
    sigma0 = float(model.module.sigmas[99])
    for out in result.outputs:
        n = ImageNoise(4, [out.index])(torch.empty(1, 3, SIZE, SIZE))[0].numpy()
        expected = (150 / 127.5 - 1 + sigma0 * n) * S / np.sqrt(S**2 + sigma0**2)
        got = model.to_model(read_cube(out.path).data)
        inside = np.abs(expected) < 0.99  # outputs are clipped to [-1, 1]
        assert inside.mean() > 0.9
        np.testing.assert_allclose(got[inside], expected[inside], atol=2e-3)


def test_draws_are_byte_identical_whatever_the_batch(tmp_path, unet_model):
    # the real (tiny) U-Net: on the CPU the network sees one image per call, so batching changes nothing
    inputs = [picture(tmp_path / f"p{i}.png", np.full((16, 16, 3), 60 * i, np.uint8)) for i in range(2)]
    config = dict(strength=0.4, draws=3, steps=4, seed=11, sampler="ddpm")
    one = desify(inputs, tmp_path / "one", model=unet_model, config=DesifyConfig(batch=1, **config))
    four = desify(inputs, tmp_path / "four", model=unet_model, config=DesifyConfig(batch=4, **config))
    assert [o.path.name for o in one.outputs] == [f"p{i}_draw{k}.fits" for i in range(2) for k in range(3)]
    assert [o.index for o in four.outputs] == list(range(6))
    first = read_cube(one.outputs[0].path).data
    assert not np.array_equal(first, read_cube(one.outputs[1].path).data)
    for a, b in zip(one.outputs, four.outputs):
        np.testing.assert_array_equal(read_cube(a.path).data, read_cube(b.path).data)


def test_outputs_carry_provenance_and_pass_fitsverify(tmp_path, model, model_file):
    source = gaussian_cube(tmp_path / "src.fits.gz", n=24, scale=0.4, sigma_px=2.0)
    result = desify([source], tmp_path / "out", model=model, command="galgen desify src.fits.gz",
                    config=DesifyConfig(strength=0.3, draws=2, seed=5, steps=6, sampler="ddim"))
    out = result.outputs[1]
    assert out.path.name == "src_draw1.fits"
    assert_fitsverify_clean(out.path)
    prov = read_provenance(out.path)
    assert prov["inputs"] == [{"path": str(source), "sha256": file_sha256(source)}]
    assert (prov["strength"], prov["sampler"], prov["steps"], prov["nfe"], prov["seed"]) == (0.3, "ddim", 6, 6, 5)
    assert (prov["index"], prov["draw"]) == (1, 1)
    assert prov["model_sha256"] == file_sha256(model_file) and prov["normaliser"] == NORMALIZER
    assert prov["command"] == "galgen desify src.fits.gz"
    cube = read_cube(out.path)
    assert cube.bands == "grz" and cube.unit == "nanomaggy" and cube.pixel_scale == pytest.approx(0.262)
    from astropy.io import fits

    history = " ".join(str(h) for h in fits.getheader(out.path)["HISTORY"])
    assert "strength 0.3" in history and "resampled 0.4 -> 0.262" in history


def test_existing_outputs_same_stems_and_bad_settings_are_refused(tmp_path, model):
    grey = picture(tmp_path / "g.png", np.zeros((16, 16), np.uint8))
    desify([grey], tmp_path / "out", model=model, config=DesifyConfig(steps=2))
    with pytest.raises(InputError, match="g_draw0.fits: output exists"):
        desify([grey], tmp_path / "out", model=model, config=DesifyConfig(steps=2))
    desify([grey], tmp_path / "out", model=model, config=DesifyConfig(steps=2), overwrite=True)
    twin = gaussian_cube(tmp_path / "g.fits", n=8, scale=0.262, sigma_px=1.0)
    with pytest.raises(InputError, match="same output names"):
        desify([grey, twin], tmp_path / "other", model=model)
    for strength in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(InputError, match="strength must lie in"):
            DesifyConfig(strength=strength)
    with pytest.raises(InputError, match="unknown sampler"):
        desify([grey], tmp_path / "x", model=model, config=DesifyConfig(sampler="euler"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "other").exists()


# ----------------------------------------------------------------------------- neighbours


def write_dataset(directory, images, *, sources=True):
    directory.mkdir()
    write_images(directory, images.shape, [images])
    write_meta(directory, {"bands": "grz", "size": images.shape[-1], "pixel_scale": 0.262, "unit": "nanomaggy",
                           "normalizer": NORMALIZER, "count": len(images)})
    if sources:
        with open(directory / SOURCES_NAME, "w") as handle:
            for i in range(len(images)):
                handle.write(json.dumps({"path": f"cutout_{i:03d}.fits"}) + "\n")
    return open_dataset(directory)


def test_planted_outputs_are_found_at_distance_zero(tmp_path, model):
    inputs = [picture(tmp_path / f"in{i}.png", np.full((16, 16, 3), 80 * i, np.uint8)) for i in range(3)]
    result = desify(inputs, tmp_path / "out", model=model, config=DesifyConfig(strength=0.5, steps=3))
    images = np.random.default_rng(0).uniform(-1, 1, (50, 3, SIZE, SIZE)).astype(np.float32)
    plant = {0: 17, 1: 3, 2: 42}  # output -> dataset row
    for o, row in plant.items():
        images[row] = open_dataset_normalise(result.outputs[o].path)
    images[18] = np.clip(images[17] + 0.01, -1, 1)  # a near twin: second place for output 0
    rows = output_neighbours([o.path for o in result.outputs], write_dataset(tmp_path / "ds", images), k=2,
                             group=2)
    assert [(r.output.name, r.rank) for r in rows] == [(f"in{i}_draw0.fits", k) for i in range(3) for k in (1, 2)]
    for o, row in plant.items():
        best = rows[2 * o]
        assert best.index == row and best.distance < 1e-5 and best.source == f"cutout_{row:03d}.fits"
    assert rows[1].index == 18 and rows[1].distance == pytest.approx(0.01 * np.sqrt(3 * SIZE * SIZE), rel=0.05)


def open_dataset_normalise(path):
    from galgen.normalize import Normalizer

    return Normalizer.from_dict(NORMALIZER).forward(read_cube(path).data)


def test_neighbours_check_the_dataset(tmp_path, model):
    from galgen.flows.desify import check_dataset

    dataset = write_dataset(tmp_path / "ds", np.zeros((4, 3, 8, 8), np.float32), sources=False)
    with pytest.raises(InputError, match="dataset holds grz images of 8 px"):
        check_dataset(dataset, k=1, bands="grz", size=SIZE)
    with pytest.raises(InputError, match="must lie in 1..4"):
        check_dataset(dataset, k=5)


def test_calibration_factors_cancel_on_fits_input_and_are_recorded(tmp_path, identity_model):
    # FITS flux is divided by the model's calibration before normalising and multiplied back after,
    # so at a tiny strength a calibrated model returns the input flux (not factor x flux)
    calibration = {"factors": {"g": 2.0, "r": 1.0, "z": 0.5}}
    calibrated = dataclasses.replace(identity_model, factors=np.array([2.0, 1.0, 0.5], np.float32),
                                     meta={**identity_model.meta, "calibration": calibration})
    path = gaussian_cube(tmp_path / "galaxy.fits", n=SIZE, scale=0.262, sigma_px=2.0, flux=5.0)
    result = desify([path], tmp_path / "out", model=calibrated, config=DesifyConfig(strength=0.001, steps=2))
    before, after = read_cube(path).data, read_cube(result.outputs[0].path).data
    np.testing.assert_allclose(after, before, atol=0.02)
    assert read_provenance(result.outputs[0].path)["calibration"] == calibration["factors"]


def test_a_conditional_model_is_told_the_inputs_own_labels_and_says_so(tmp_path):
    from astropy.io import fits

    from tiny_model import CONDITIONS

    conditional = load_model(make_tiny_model(tmp_path / "c.safetensors", conditions=CONDITIONS), device="cpu")
    source = gaussian_cube(tmp_path / "src.fits", n=16, scale=0.262, sigma_px=2.0)
    result = desify([source], tmp_path / "out", model=conditional, config=DesifyConfig(steps=2))
    told = " ".join(" ".join(str(h) for h in fits.getheader(result.outputs[0].path)["HISTORY"]).split())
    assert "told the galaxy's own labels, measured in the input" in told and "mag_r" in told and "r_e" in told
    from galgen.conditioning import told_note

    def note(row):
        return told_note(conditional.conditions, np.array(row), where="in the input")

    assert "ran unconditionally" in note([np.nan, 1.0])
    low, high = conditional.conditions[0].min, conditional.conditions[0].max
    assert "beyond" not in note([(low + high) / 2, 1.0])
    bright = note([low - 2.0, 1.0])  # 2 mag brighter than any it learnt
    assert f"beyond the training range, so clipped to it: mag_r {low - 2.0:.3g}" in bright
