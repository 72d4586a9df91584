"""The inpaint flow (galgen.flows.inpaint, galgen.flows.fill) and its tiles: masks, tiles, draws, exactness outside the mask."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from galgen.io.cube import Cube
from galgen.io.cube import make_wcs
from galgen.io.write import write_cube
from galgen.engine.unet import UNet, UNetConfig
from galgen.engine.inpaint import repaint_steps
from galgen.engine.weights import MODEL_KIND, save_weights
from galgen.errors import InputError
from galgen.flows.fill import InpaintConfig, check_mask, draw_noise, fill_cube, fill_stamps, plan
from galgen.io.mask import read_mask
from galgen.model import load_model
from galgen.tiles import plan_tiles, waves
from galgen.uncertainty import noise_rms

TINY = UNetConfig(bands=3, size=16, base=16, mults=(1, 2, 2), attention=(8,), heads=2, groups=4)
NORMALIZER = {"bands": "grz", "lower": [-0.05, -0.05, -0.1], "upper": [1.0, 1.5, 2.0]}
FAST = InpaintConfig(steps=4, jump=2, resample=2, draws=1)  # 6 NFE per tile: seconds, not minutes



def write_tiny_model(path, *, pixel_scale=0.262, **extra):
    """A random 16 px grz model with the metadata 'galgen train' writes."""
    torch.manual_seed(0)
    net = UNet(TINY)
    metadata = {"kind": MODEL_KIND, "unet": TINY.to_dict(), "schedule": "linear", "timesteps": 1000, "loss": "l2",
                "normalizer": NORMALIZER, "bands": "grz", "pixel_scale": pixel_scale, "unit": "nanomaggy",
                "step": 1, **extra}
    return save_weights(path, net.state_dict(), metadata)


def galaxy(shape=(3, 40, 48), *, seed=1, pixel_scale=0.262) -> Cube:
    """A smooth blob on sky noise, with a WCS."""
    rng = np.random.default_rng(seed)
    _, ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    blob = 0.8 * np.exp(-((x - nx / 2) ** 2 + (y - ny / 2) ** 2) / 40.0)
    data = blob[None] * np.array([0.6, 1.0, 1.4])[:, None, None] + rng.normal(0, 0.01, shape)
    return Cube(data=data.astype(np.float32), bands="grz", wcs=make_wcs((ny, nx), pixel_scale=pixel_scale))


def diagonal_mask(shape=(3, 40, 48)) -> np.ndarray:
    _, ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    return np.broadcast_to(np.abs(y - 0.7 * x - 3) < 1.5, shape).copy()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return load_model(write_tiny_model(tmp_path_factory.mktemp("m") / "tiny.safetensors"), device="cpu")


def trail(angle_deg: float, shape=(424, 424), width=4.0, through=(212, 212)) -> np.ndarray:
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    a = np.radians(angle_deg)
    return np.abs((x - through[1]) * np.sin(a) - (y - through[0]) * np.cos(a)) < width / 2


@pytest.mark.parametrize("angle", [0, 10, 33, 45, 60, 90, 127])
def test_cores_hold_every_masked_pixel_with_the_margin_of_context(angle):
    masked = trail(angle) | trail(angle + 70, width=2, through=(40, 390))
    masked[5, 420] = True  # a lone pixel at the image corner
    tiles = plan_tiles(masked, size=64, margin=8)
    held = np.zeros(masked.shape, dtype=bool)
    for t in tiles:
        ys, xs = t.window(64)
        assert 0 <= ys.start and ys.stop <= 424 and 0 <= xs.start and xs.stop <= 424
        assert ys.start <= t.core_y.start and t.core_y.stop <= ys.stop and xs.start <= t.core_x.start
        assert t.core_x.stop <= xs.stop and t.core_y.stop - t.core_y.start >= 48 <= t.core_x.stop - t.core_x.start
        for window, core in ((ys, t.core_y), (xs, t.core_x)):  # 8 px of context, or the image's edge
            assert core.start - window.start >= 8 or window.start == 0
            assert window.stop - core.stop >= 8 or window.stop == 424
        assert masked[t.core_y, t.core_x].any()
        held[t.core_y, t.core_x] = True
    assert held[masked].all()


@pytest.mark.parametrize("width", [2, 4, 6])
@pytest.mark.parametrize("angle", [0, 2, 20, 45, 71, 88, 90, 110, 135, 160, 178])
def test_a_trail_across_the_image_takes_one_tile_per_core_length_whatever_its_angle(angle, width):
    # a fixed grid of 48 px cores needs 9 for a horizontal trail and 17 for a diagonal one
    tiles = plan_tiles(trail(angle, width=width), size=64, margin=8)
    assert len(tiles) <= 10
    assert len(waves(tiles, size=64)) <= 3  # every other tile, then the ones between


def test_tiles_cover_a_trail_and_a_lone_pixel_and_nothing_else():
    masked = np.zeros((424, 424), dtype=bool)
    masked[100:103, :] = True  # a horizontal trail
    masked[300, 50] = True
    tiles = plan_tiles(masked, size=64, margin=8)
    assert len(tiles) == 9 + 1  # one row of cores across the image, plus the lone pixel's
    assert sum(masked[t.core_y, t.core_x].any() for t in tiles) == len(tiles)


def test_no_tile_runs_in_the_wave_of_a_tile_whose_core_it_sees():
    masked = (np.hypot(*(np.mgrid[0:300, 0:300] - 150)) < 90) | trail(30, shape=(300, 300))
    tiles = plan_tiles(masked, size=64, margin=8)
    groups = waves(tiles, size=64)
    wave_of = {t: w for w, group in enumerate(groups) for t in group}
    assert sorted(wave_of) == list(range(len(tiles)))
    for j, tile in enumerate(tiles):
        ys, xs = tile.window(64)
        for i in range(j):
            if ys.start < tiles[i].core_y.stop and tiles[i].core_y.start < ys.stop \
                    and xs.start < tiles[i].core_x.stop and tiles[i].core_x.start < xs.stop:
                assert wave_of[i] < wave_of[j]
    assert len(groups) < len(tiles) / 2


def test_a_fill_in_waves_equals_the_fill_tile_by_tile(tiny_model, monkeypatch):
    # a denoiser that works pixel by pixel gives the same numbers whatever it is batched with
    import galgen.flows.fill as flow

    image, mask = galaxy(), diagonal_mask()
    monkeypatch.setattr(tiny_model, "denoise", lambda x, sigma, **_: 0.9 * x / (1 + sigma[:, None, None, None] ** 2))
    config = InpaintConfig(steps=6, jump=2, resample=2, draws=2)
    together = fill_cube(image, mask, model=tiny_model, config=config)
    assert together.waves < together.tiles
    monkeypatch.setattr(flow, "waves", lambda tiles, size: [[t] for t in range(len(tiles))])
    one_by_one = fill_cube(image, mask, model=tiny_model, config=config)
    assert one_by_one.waves == one_by_one.tiles
    assert np.array_equal(together.data, one_by_one.data) and np.array_equal(together.std, one_by_one.std)


def test_output_equals_input_outside_the_mask_bit_for_bit(tiny_model):
    image, mask = galaxy(), diagonal_mask()
    image.data[mask] = np.nan  # masked pixels are never read
    result = fill_cube(image, mask, model=tiny_model, config=FAST)
    assert result.tiles > 1  # 40 x 48 pixels with a 16 px model
    assert np.array_equal(result.data[~mask], image.data[~mask])
    assert np.isfinite(result.data).all()
    assert np.array_equal(result.mask, mask)
    assert (result.std == 0).all()  # one draw: no spread


def plane_fit(window, sigma, **_):
    """A denoiser whose answer is known: the least-squares plane through its window, per band."""
    n, c, h, w = window.shape
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    basis = torch.stack([torch.ones(h * w), yy.flatten(), xx.flatten()], dim=1)  # (hw, 3)
    values = window.reshape(n * c, h * w).T  # (hw, nc)
    coef = torch.linalg.lstsq(basis, values).solution
    return (basis @ coef).T.reshape(n, c, h, w)


def test_a_multi_tile_fill_equals_the_known_answer_pixel_for_pixel(tiny_model, monkeypatch):
    # A denoiser whose answer is known: it returns the least-squares plane through its window, per
    # band. On a plane image every window's answer is the image itself, so the fill must equal the
    # plane wherever the tile sits; a tile pasted one pixel off is out by the slope (>= 0.0048 / px).
    shape = (3, 40, 48)
    y, x = np.mgrid[0 : shape[1], 0 : shape[2]]
    plane = (0.35 + 0.012 * y - 0.008 * x)[None] * np.array([0.6, 1.0, 1.4])[:, None, None]  # inside the normaliser
    image = Cube(data=plane.astype(np.float32), bands="grz", wcs=make_wcs(shape[1:], pixel_scale=0.262))
    mask = diagonal_mask(shape)

    monkeypatch.setattr(tiny_model, "denoise", plane_fit)
    monkeypatch.setattr("galgen.flows.fill.PEAK_FRACTION", np.inf)  # the tiles' geometry alone: no window scaled
    result = fill_cube(image, mask, model=tiny_model, config=InpaintConfig(steps=100, jump=1, resample=1, pull=0.0, draws=1))
    assert result.tiles > 2 and len({(t.y0, t.x0) for t in plan(image, mask, model=tiny_model,
                                                                config=FAST).tiles}) == result.tiles
    error = np.abs(result.data[mask] - plane[mask])  # the plane is found up to the last step's noise
    assert error.max() < 3e-3 and error.mean() < 1e-3, (error.max(), error.mean())


def test_fills_are_seeded(tiny_model):
    image, mask = galaxy(), diagonal_mask()
    one = fill_cube(image, mask, model=tiny_model, config=FAST)
    again = fill_cube(image, mask, model=tiny_model, config=FAST)
    other = fill_cube(image, mask, model=tiny_model, config=InpaintConfig(steps=4, jump=2, resample=2, seed=5, draws=1))
    assert np.array_equal(one.data, again.data)
    assert not np.array_equal(one.data[mask], other.data[mask])
    assert np.isfinite(one.data).all()


@pytest.mark.slow  # six inpainting runs over six tiles
def test_draws_give_a_spread_inside_the_mask_only_whatever_the_batch(tiny_model):
    image, mask = galaxy(), diagonal_mask()
    three = InpaintConfig(steps=4, jump=2, resample=2, draws=3, batch=3)
    result = fill_cube(image, mask, model=tiny_model, config=three)
    assert (result.std >= 0).all() and (result.std[~mask] == 0).all()
    assert (result.std[mask] > 0).mean() > 0.5  # a random network saturates some fills at the range ends
    single = fill_cube(image, mask, model=tiny_model, config=InpaintConfig(steps=4, jump=2, resample=2,
                                                                                  draws=3, batch=1))
    np.testing.assert_allclose(single.data, result.data, atol=1e-5)
    np.testing.assert_allclose(single.std, result.std, atol=1e-5)


def test_an_image_smaller_than_the_model_is_padded(tiny_model):
    image = galaxy((3, 12, 10))
    mask = np.zeros(image.shape, dtype=bool)
    mask[:, 5, :] = True
    result = fill_cube(image, mask, model=tiny_model, config=FAST)
    assert result.data.shape == (3, 12, 10) and result.tiles == 1
    assert np.array_equal(result.data[~mask], image.data[~mask]) and np.isfinite(result.data).all()


def test_bands_are_matched_by_name_and_extra_bands_pass_through(tiny_model):
    base = galaxy()
    extra = np.random.default_rng(3).normal(size=(1, 40, 48)).astype(np.float32)
    image = Cube(data=np.concatenate([extra, base.data[::-1]]), bands="izrg", wcs=base.wcs)
    mask = np.zeros(image.shape, dtype=bool)
    mask[1:] = diagonal_mask()
    result = fill_cube(image, mask, model=tiny_model, config=FAST)
    reference = fill_cube(base, diagonal_mask(), model=tiny_model, config=FAST)
    assert np.array_equal(result.data[0], extra[0])
    np.testing.assert_allclose(result.data[1:], reference.data[::-1], atol=1e-6)


@pytest.mark.parametrize("case,message", [
    ("empty", "no pixel"), ("all", "every pixel"), ("other_band", "cannot fill"), ("nan_outside", "mask_nans"),
])
def test_bad_masks_are_input_errors(case, message):
    image = Cube(data=np.ones((4, 8, 8), np.float32), bands="grzi")
    mask = np.zeros(image.shape, dtype=bool)
    if case == "all":
        mask[:3] = True  # every pixel of the bands the model fills
    elif case == "other_band":
        mask[3, 2, 2] = mask[0, 1, 1] = True
    elif case == "nan_outside":
        mask[0, 1, 1] = True
        image.data[1, 4, 4] = np.nan
    with pytest.raises(InputError, match=message):
        check_mask(mask, image=image, bands="grz")


def test_read_mask_2d_broadcasts_3d_matches_band_names(tmp_path):
    image = galaxy((3, 8, 9))
    flat = np.zeros((8, 9), np.float32)
    flat[2, 3] = 7
    write_cube(Cube(data=flat, bands="m", wcs=image.wcs), tmp_path / "m2.fits")
    assert read_mask(tmp_path / "m2.fits", image=image).sum() == 3
    per_band = np.zeros((3, 8, 9), np.float32)
    per_band[0, 1, 1] = 1  # band z in the file's order
    per_band[2, 4, 4] = np.nan  # NaN counts as bad
    write_cube(Cube(data=per_band, bands="zrg", wcs=image.wcs), tmp_path / "m3.fits")
    mask = read_mask(tmp_path / "m3.fits", image=image)
    assert mask[2, 1, 1] and mask[0, 4, 4] and mask.sum() == 2


def test_read_mask_rejects_other_shapes_and_grids(tmp_path):
    image = galaxy((3, 8, 9))
    write_cube(Cube(data=np.ones((8, 8), np.float32), bands="m"), tmp_path / "shape.fits")
    with pytest.raises(InputError, match="8 x 8 pixels, the image 8 x 9"):
        read_mask(tmp_path / "shape.fits", image=image)
    moved = make_wcs((8, 9), pixel_scale=0.262, ra=181.0)
    write_cube(Cube(data=np.ones((8, 9), np.float32), bands="m", wcs=moved), tmp_path / "wcs.fits")
    with pytest.raises(InputError, match="different WCS"):
        read_mask(tmp_path / "wcs.fits", image=image)


def test_the_default_margin_is_an_eighth_of_the_model(tiny_model):
    image = galaxy((3, 64, 64))
    mask = np.zeros(image.shape, dtype=bool)
    mask[:, 30, :] = True
    tiles = plan(image, mask, model=tiny_model, config=InpaintConfig()).tiles
    # margin 16 / 8 = 2 px: cores of up to 16 - 2 x 2 = 12 px, ceil((64 - 2 x 2) / 12) = 5 along the row
    assert len(tiles) == 5 and all(t.core_y.start <= 30 < t.core_y.stop for t in tiles)


def test_stamps_in_one_batch_match_the_single_image_path(tiny_model):
    first, second = galaxy((3, 16, 16), seed=1), galaxy((3, 16, 16), seed=2)
    masks = np.zeros((2, 1, 16, 16), dtype=bool)
    masks[0, 0, 7:9, :] = True
    masks[1, 0, :, 3] = True
    stamps = np.stack([first.data, second.data])
    filled = fill_stamps(stamps, masks, model=tiny_model, config=FAST)
    alone = fill_cube(first, np.broadcast_to(masks[0], first.shape), model=tiny_model, config=FAST)
    np.testing.assert_allclose(filled[0], alone.data, atol=1e-5)
    outside = ~np.broadcast_to(masks, stamps.shape)
    assert np.array_equal(filled[outside], stamps[outside])
    with pytest.raises(InputError, match="stamps must be"):
        fill_stamps(stamps[:, :, :8], masks[:, :, :8], model=tiny_model, config=FAST)


def test_stamps_split_into_network_calls_fill_as_one_call(tiny_model, monkeypatch):
    stamps = np.stack([galaxy((3, 16, 16), seed=s).data for s in range(5)])
    masks = np.zeros((5, 1, 16, 16), dtype=bool)
    masks[:, 0, 6:9, :] = True
    whole = fill_stamps(stamps, masks, model=tiny_model, config=FAST)
    monkeypatch.setattr("galgen.flows.fill.CPU_WINDOWS", 2)  # calls of 2, 2 and 1 stamps
    steps = []
    split = fill_stamps(stamps, masks, model=tiny_model, config=FAST, advance=lambda: steps.append(1))
    np.testing.assert_allclose(split, whole, rtol=1e-4, atol=1e-6)
    assert len(steps) == 3 * repaint_steps(FAST.resolved_steps(), jump=FAST.jump, resample=FAST.resample)


def test_a_fill_beside_flux_above_the_upper_truncation_is_noted(tiny_model, monkeypatch):
    monkeypatch.setattr("galgen.flows.fill.PEAK_FRACTION", np.inf)  # windows filled at their own flux (S = 1)
    image, mask = galaxy(), diagonal_mask()
    assert fill_cube(image, mask, model=tiny_model, config=FAST).notes == []  # the blob peaks below upper
    row = 20
    beside = np.nonzero(mask[0, row])[0].max() + 1  # the first known pixel right of the trail in this row
    image.data[1, row, beside] = 5.0  # above r's upper limit 1.5
    result = fill_cube(image, mask, model=tiny_model, config=FAST)
    notes = result.notes
    assert any(note.startswith("1 known pixels beside the mask exceed") and "r 1.5" in note for note in notes)
    from galgen.flows.fill import clipping
    from galgen.flows.inpaint_notes import clipping_note

    # filled pixels at the cap, each missing at least the known neighbour's excess over it (5 - 1.5 = 3.5 in r)
    capped = result.data[:3].copy()
    capped[1][mask[1]] = 1.5
    note = clipping_note(clipping(image.data[:3], mask[:3], model=tiny_model, filled=capped))
    count = int(mask[1].sum())
    at_cap = int((mask[:3] & (capped >= np.array([1.0, 1.5, 2.0])[:, None, None] * (1 - 1e-5))).sum())
    assert f"{at_cap} filled pixels sit at the cap" in note and at_cap >= count
    assert f"g 0, r {count * 3.5:.3g}, z 0 nanomaggy" in note  # only r has a bright neighbour to measure by
    below = clipping_note(clipping(image.data[:3], mask[:3], model=tiny_model, filled=np.minimum(capped, 0.5)))
    assert below.endswith("; no filled pixel reached the cap") and "missing" not in below


@pytest.fixture(scope="module")
def conditional_model(tmp_path_factory):
    """The tiny model conditioned on mag_r and r_e, with labels that change its output.

    Untrained, its zero-initialised layers (the label MLP's last, each residual block's second
    convolution, the head) would hide the labels: those are random here.
    """
    from tiny_model import CONDITIONS

    config = dataclasses.replace(TINY, conditions=len(CONDITIONS))
    torch.manual_seed(0)
    net = UNet(config)
    for p in net.condition.parameters():
        p.data.normal_(0, 0.3)
    for p in net.parameters():
        if not p.data.any():
            p.data.normal_(0, 0.05)
    metadata = {"kind": MODEL_KIND, "unet": config.to_dict(), "schedule": "linear", "timesteps": 1000, "loss": "l2",
                "normalizer": NORMALIZER, "bands": "grz", "pixel_scale": 0.262, "unit": "nanomaggy", "step": 1,
                "conditions": CONDITIONS}
    path = save_weights(tmp_path_factory.mktemp("c") / "conditional.safetensors", net.state_dict(), metadata)
    return load_model(path, device="cpu")


def test_a_conditional_model_is_told_the_labels_measured_around_the_mask(conditional_model, tiny_model):
    from galgen.conditioning import measured
    from galgen.conditioning import labels_of

    image = galaxy((3, 16, 16), seed=3)
    mask = np.zeros((1, 3, 16, 16), dtype=bool)
    mask[:, :, 7:10, :] = True  # a trail 3 px wide through the core
    truth = measured(conditional_model.conditions, image.data[None], bands="grz", pixel_scale=0.262)
    told = labels_of(conditional_model, image.data[None], unknown=mask)
    assert np.isfinite(truth).all() and told.shape == (1, 2)
    # the thin-plate fill carries the core across the trail: the magnitude within 0.06 of the unmasked
    # galaxy's (0.037 here; astropy's kernel average gave 0.13 fainter, and with the trail as background it
    # is 0.46 fainter), the radius within 2 % (kernel average: 4 %)
    assert abs(told[0, 0] - truth[0, 0]) < 0.06 and abs(told[0, 1] / truth[0, 1] - 1) < 0.02
    holed = image.data.copy()
    holed[mask[0]] = np.nan
    blind = measured(conditional_model.conditions, holed[None], bands="grz", pixel_scale=0.262)
    assert blind[0, 0] - truth[0, 0] > 0.3
    # outside the training range: as measured (the model clips them, and the note says so); an
    # unconditional model is told nothing
    brighter = Cube(data=image.data * 100, bands=image.bands, wcs=image.wcs, unit=image.unit)
    told_bright = labels_of(conditional_model, brighter.data[None], unknown=mask)
    assert told_bright[0, 0] == pytest.approx(told[0, 0] - 5.0, abs=0.01)  # 100x: 5 mag brighter, not clipped
    fainter = Cube(data=image.data * 0.1, bands=image.bands, wcs=image.wcs, unit=image.unit)
    told_faint = labels_of(conditional_model, fainter.data[None], unknown=mask)
    assert told_faint[0, 0] == pytest.approx(told[0, 0] + 2.5, abs=0.01)  # 0.1x: 2.5 mag fainter, not clipped
    assert told_faint[0, 0] > conditional_model.conditions[0].max
    faint_fill = fill_cube(fainter, mask[0], model=conditional_model, config=FAST)
    assert any(note.startswith("the galaxy's labels, measured around the mask by galgen's photometry (mag_r")
               and "beyond the training range, so not told to the model, which ran unconditionally there: mag_r"
               in note for note in faint_fill.notes), faint_fill.notes
    # a galaxy beyond the range is filled as the unconditional model fills it, not told clipped labels
    nothing = np.full((1, len(conditional_model.conditions)), np.nan)
    unconditional = fill_stamps(fainter.data[None], mask, model=conditional_model, config=FAST, labels=nothing)
    np.testing.assert_allclose(faint_fill.data, unconditional[0], rtol=1e-3, atol=1e-5)
    clipped = fill_stamps(fainter.data[None], mask, model=conditional_model, config=FAST, labels=told_faint)
    assert not np.allclose(faint_fill.data, clipped[0], rtol=1e-3, atol=1e-5)
    # a galaxy brighter than the training galaxies is filled scaled down (`flux_scales`): the model is
    # told the labels of what it fills, 2.5 log10 S fainter
    from galgen.flows.fill import flux_scales

    brighter = Cube(data=image.data * 100, bands=image.bands, wcs=image.wcs, unit=image.unit)
    scale = float(flux_scales(conditional_model, brighter.data[None], mask)[0])
    notes = fill_cube(brighter, mask[0], model=conditional_model, config=FAST).notes
    assert notes[0].startswith("1 of 1 tiles held known pixels brighter than the model's training galaxies"), notes
    assert f"mag_r {told_bright[0, 0] + 2.5 * np.log10(scale):.3g}" in notes[1], notes
    assert labels_of(tiny_model, image.data[None], unknown=mask) is None
    # the fill uses them, and says so (filled at its own flux: scaled down, this blob is told a magnitude beyond
    # the range and filled unconditionally)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("galgen.flows.fill.PEAK_FRACTION", np.inf)
        result = fill_cube(image, mask[0], model=conditional_model, config=FAST)
        assert any("told the galaxy's own labels" in note and "mag_r" in note for note in result.notes), result.notes
        stamps = fill_stamps(image.data[None], mask, model=conditional_model, config=FAST)
    np.testing.assert_allclose(stamps[0], result.data, rtol=1e-3, atol=1e-5)  # one batch or another: float32 kernels differ by rounding (AVX2)


def test_a_std_written_for_labels_beyond_the_training_range_is_called_too_small(conditional_model, monkeypatch):
    from galgen.conditioning import labels_of

    monkeypatch.setattr("galgen.flows.fill.PEAK_FRACTION", np.inf)  # filled at its own flux, told its own labels
    image = galaxy((3, 16, 16), seed=3)
    mask = np.zeros((3, 16, 16), dtype=bool)
    mask[:, 7:10, :] = True
    two = dataclasses.replace(FAST, draws=2)
    inside = labels_of(conditional_model, image.data[None], unknown=mask[None])
    assert not any(c.min > v or v > c.max for c, v in zip(conditional_model.conditions, inside[0]))
    plain = fill_cube(image, mask, model=conditional_model, config=two).notes
    assert not any("STD may be too small" in note for note in plain), plain
    fainter = Cube(data=image.data * 0.1, bands=image.bands, wcs=image.wcs, unit=image.unit)  # 2.5 mag beyond
    notes = fill_cube(fainter, mask, model=conditional_model, config=two).notes
    assert any(note.startswith("the STD may be too small where the labels lie beyond the training range (1 of 1 tiles)")
               and "43 / 68 %" in note for note in notes), notes
    # one draw writes no STD, so nothing is said of it
    assert not any("STD" in note for note in fill_cube(fainter, mask, model=conditional_model, config=FAST).notes)


def test_stamps_can_be_told_their_labels(conditional_model, tiny_model):
    from galgen.conditioning import labels_of, scaled
    from galgen.flows.fill import flux_scales

    image = galaxy((3, 16, 16), seed=3)
    mask = np.zeros((1, 3, 16, 16), dtype=bool)
    mask[:, :, 7:10, :] = True
    measured_labels = labels_of(conditional_model, image.data[None], unknown=mask)
    with pytest.MonkeyPatch.context() as patch:  # filled at its own flux, so told labels within the range
        patch.setattr("galgen.flows.fill.PEAK_FRACTION", np.inf)
        default = fill_stamps(image.data[None], mask, model=conditional_model, config=FAST)
        # told the labels it would have measured, the fill is the default one; told others, it is not
        told = fill_stamps(image.data[None], mask, model=conditional_model, config=FAST, labels=measured_labels)
        np.testing.assert_array_equal(told, default)
        other = fill_stamps(image.data[None], mask, model=conditional_model, config=FAST, labels=measured_labels + 1.0)
        assert not np.array_equal(other[mask], default[mask])
    # a stamp filled at 1/S of its flux is told magnitudes 2.5 log10 S fainter, its size unchanged
    # (conditions: mag_r, r_e), as it is told when the labels are measured
    bright = image.data[None] * 100
    scale = flux_scales(conditional_model, bright, mask)
    assert scale[0] > 1
    shifted = scaled(conditional_model, measured_labels - 5.0 * np.array([1.0, 0.0]), scale)
    assert shifted[0, 0] == pytest.approx(measured_labels[0, 0] - 5.0 + 2.5 * np.log10(scale[0]))
    assert shifted[0, 1] == measured_labels[0, 1]
    np.testing.assert_allclose(shifted, labels_of(conditional_model, bright / scale[0], unknown=mask), rtol=1e-4)
    assert scaled(tiny_model, measured_labels, scale) is None


def test_guidance_steers_a_conditional_fill_and_is_refused_when_negative(conditional_model, tiny_model, monkeypatch):
    monkeypatch.setattr("galgen.flows.fill.PEAK_FRACTION", np.inf)  # filled at its own flux, told labels within the range
    model = conditional_model
    x, sigma = torch.randn(1, 3, 16, 16), torch.ones(1)
    labels = torch.tensor([[1.0, -1.0]])
    assert not torch.equal(model.denoise(x, sigma, labels=labels), model.denoise(x, sigma, labels=-labels))
    image = galaxy((3, 16, 16), seed=3)
    mask = np.zeros((3, 16, 16), dtype=bool)
    mask[:, 7:10, :] = True
    plain = fill_cube(image, mask, model=model, config=FAST)
    guided = fill_cube(image, mask, model=model, config=dataclasses.replace(FAST, guidance=2.0))
    assert not np.array_equal(plain.data[mask], guided.data[mask])
    assert np.array_equal(plain.data[~mask], guided.data[~mask])
    # an unconditional model has nothing to be guided by: the same fill
    assert np.array_equal(fill_cube(image, mask, model=tiny_model, config=FAST).data,
                          fill_cube(image, mask, model=tiny_model, config=dataclasses.replace(FAST, guidance=2.0)).data)
    for bad in (-1.0, float("nan")):
        with pytest.raises(InputError, match="guidance"):
            InpaintConfig(guidance=bad)


def test_a_wave_of_many_tiles_is_split_so_that_memory_stays_flat(tiny_model):
    from galgen.flows.fill import CPU_WINDOWS

    image = galaxy((3, 200, 200))
    y, x = np.mgrid[0:200, 0:200]
    mask = np.broadcast_to(np.hypot(y - 100, x - 100) < 90, image.shape)  # a hole over most of the image
    config = InpaintConfig(draws=4)
    planned = plan(image, mask, model=tiny_model, config=config)
    whole = waves(planned.tiles, size=16)
    assert max(len(w) for w in whole) * 4 > CPU_WINDOWS  # unsplit, a wave would exceed a call's windows
    assert all(len(batch) * 4 <= CPU_WINDOWS for batch in planned.waves)
    assert sorted(t for batch in planned.waves for t in batch) == list(range(len(planned.tiles)))
    wave_of = {t: w for w, group in enumerate(whole) for t in group}
    assert all(len({wave_of[t] for t in batch}) == 1 for batch in planned.waves)  # each part of one wave


def test_stamps_above_the_upper_truncation_are_filled_scaled_down(tiny_model):
    from galgen.flows.fill import PEAK_FRACTION, flux_scales

    upper = np.array([1.0, 1.5, 2.0])  # the tiny model's truncation (times its factors of 1)
    stamps = np.zeros((5, 3, 16, 16), dtype=np.float32)
    masks = np.zeros((5, 1, 16, 16), dtype=bool)
    masks[:, :, 7:9, :] = True
    stamps[0, :, 4:7, 4:7] = 0.9 * PEAK_FRACTION * upper[:, None, None]  # as bright as the training galaxies: as before
    stamps[1, 1, 4:7, 4:7] = 3 * 1.5  # a core at 3x r's truncation
    stamps[2, 2, 4, 4] = 5 * PEAK_FRACTION * 2.0  # a lone hot pixel: its 3 x 3 mean is 5/9 of the limit
    stamps[3, 1, 7:9, 4:7] = 10 * 1.5  # under the mask: unknown, so no reason to scale
    stamps[4, 0, 10:13, 4:7] = 2 * PEAK_FRACTION  # twice the limit in g
    np.testing.assert_allclose(flux_scales(tiny_model, stamps, masks), [1, 3 / PEAK_FRACTION, 1, 1, 2], rtol=1e-5)

    # a scaled fill is the fill of the scaled image, scaled back: it can reach above the truncation
    image = galaxy((3, 16, 16), seed=4)
    image.data *= 20  # peak 0.8 x 1.4 x 20 = 22 in z, 11x its truncation
    mask = np.broadcast_to(masks[0], image.shape)
    scale = float(flux_scales(tiny_model, image.data[None], mask[None])[0])
    assert scale > 10 / PEAK_FRACTION
    two = dataclasses.replace(FAST, draws=2)
    bright = fill_cube(image, mask, model=tiny_model, config=two)
    faint = fill_cube(Cube(data=image.data / scale, bands="grz", wcs=image.wcs), mask, model=tiny_model, config=two)
    assert bright.std[mask].max() > 0
    np.testing.assert_allclose(bright.data[mask], faint.data[mask] * scale, rtol=1e-4, atol=1e-5 * scale)
    # the draws of a tile filled at 1/S carry S x the sky noise: the error is at least that over sqrt(K)
    floor = np.broadcast_to(noise_rms(image.data, mask)[:, None, None] * scale / np.sqrt(2), mask.shape)
    assert (bright.std[mask] >= floor[mask] * (1 - 1e-5)).all()
    assert bright.notes[0].startswith("1 of 1 tiles held known pixels brighter than the model's training galaxies "
                                      f"(up to {scale * PEAK_FRACTION:.3g} times its upper truncation)")
    assert bright.data[mask].max() > 2.0  # above z's truncation: not capped
    assert not any("exceed" in note for note in bright.notes)  # nothing is capped at the scaled fill's cap
    assert faint.notes == []


def test_a_finer_image_is_filled_on_a_model_scale_grid_and_brought_back(tiny_model, monkeypatch):
    # a plane at half the model's pixel scale: reproject_exact puts the plane's flux per model pixel on
    # the grid (4 fine pixels each), the plane-fitting denoiser fills it, and bicubic interpolation of a
    # plane is the plane, so the masked fine pixels come back on it
    monkeypatch.setattr(tiny_model, "denoise", plane_fit)
    monkeypatch.setattr("galgen.flows.fill.PEAK_FRACTION", np.inf)
    shape = (3, 64, 72)
    y, x = np.mgrid[0:shape[1], 0:shape[2]]
    plane = ((0.2 + 0.003 * y - 0.002 * x)[None] * np.array([0.6, 1.0, 1.4])[:, None, None]).astype(np.float32)
    image = Cube(data=plane, bands="grz", wcs=make_wcs(shape[1:], pixel_scale=0.131))
    mask = diagonal_mask(shape)
    config = InpaintConfig(steps=100, jump=1, resample=1, draws=1)
    planned = plan(image, mask, model=tiny_model, config=config)
    assert planned.grid.shape == (34, 38) and planned.coarse_mask.sum() < mask.sum() / 2
    result = fill_cube(image, mask, model=tiny_model, config=config)
    assert result.notes[0].startswith("filled on a 38 x 34 px grid at the model's 0.262 arcsec (the image's 0.131")
    assert np.array_equal(result.data[~mask], plane[~mask])
    error = np.abs(result.data[mask] - plane[mask])
    assert error.max() < 3e-3 and error.mean() < 1e-3, (error.max(), error.mean())
    native = fill_cube(image, mask, model=tiny_model, config=dataclasses.replace(config, native_scale=True))
    assert native.tiles > result.tiles and "differs from the model's" in native.notes[0]


def test_a_fill_from_the_grid_is_matched_to_the_image_at_the_mask_edges():
    # the difference from the known pixels is carried in by the thin-plate fill: a fill that knows
    # nothing (zeros) becomes the thin-plate fill, a fill equal to the image stays it, and a fill one
    # constant off everywhere is moved back onto the image
    from galgen.biharmonic import biharmonic_fill
    from galgen.flows.fill import matched_at_edges

    rng = np.random.default_rng(5)
    image = rng.normal(size=(3, 40, 48)).astype(np.float32)
    mask = np.broadcast_to(diagonal_mask((3, 40, 48))[0], image.shape).copy()
    mask[2] = np.roll(mask[2], 5, axis=1)  # the z band masked elsewhere: its own thin-plate solve
    zero = matched_at_edges(np.zeros_like(image), image, mask)
    for band in range(3):
        expected = biharmonic_fill(np.where(mask[band], np.nan, image[band]), mask[band])
        np.testing.assert_allclose(zero[band], expected, atol=1e-5)
    np.testing.assert_allclose(matched_at_edges(image, image, mask), image, atol=1e-6)
    texture = rng.normal(size=image.shape).astype(np.float32)
    shifted = matched_at_edges(texture + 3.0, image, mask)
    np.testing.assert_allclose(shifted, matched_at_edges(texture, image, mask), atol=1e-4)
    assert np.array_equal(shifted[~mask], image[~mask])


def test_gradient_guidance_changes_the_fill_inside_the_mask_only(conditional_model):
    # the pull reaches masked pixels through the network's Jacobian: this model's layers are random, not zero
    image = galaxy((3, 16, 16), seed=3)
    mask = np.zeros((3, 16, 16), dtype=bool)
    mask[:, 7:10, :] = True
    plain = fill_cube(image, mask, model=conditional_model, config=dataclasses.replace(FAST, pull=0.0))
    pulled = fill_cube(image, mask, model=conditional_model, config=dataclasses.replace(FAST, pull=5.0))
    assert np.isfinite(pulled.data).all()
    assert not np.array_equal(plain.data[mask], pulled.data[mask])
    assert np.array_equal(pulled.data[~mask], image.data[~mask])
    assert pulled.nfe == plain.nfe  # network evaluations; each carries a backward pass besides
    for bad in (-1.0, float("nan")):
        with pytest.raises(InputError, match="pull"):
            InpaintConfig(pull=bad)


def test_the_model_records_a_graph_only_for_an_input_that_asks_for_gradients(tiny_model):
    x, sigma = torch.randn(2, 3, 16, 16), torch.ones(2)
    assert tiny_model.denoise(x, sigma).grad_fn is None
    out = tiny_model.denoise(x.clone().requires_grad_(True), sigma)
    assert out.requires_grad
    assert torch.equal(out.detach(), tiny_model.denoise(x, sigma))  # the same numbers either way


def test_the_std_takes_the_draws_noise_from_the_models_training_sky_when_it_records_one(tmp_path):
    image, mask = galaxy(), diagonal_mask()  # sky noise 0.01 in every band
    plain = load_model(write_tiny_model(tmp_path / "plain.safetensors"), device="cpu")
    assert plain.sky_rms is None
    np.testing.assert_allclose(draw_noise(plain, image.data, mask), 0.01, rtol=0.15)  # the image's own border
    calibration = {"factors": {"g": 2.0, "r": 1.0, "z": 1.0}}
    recorded = load_model(write_tiny_model(tmp_path / "sky.safetensors", calibration=calibration,
                                           data={"count": 4, "sky_rms": [50.0, 60.0, 70.0]}), device="cpu")
    np.testing.assert_allclose(recorded.sky_rms, [100.0, 60.0, 70.0])  # in flux units: calibration applied
    np.testing.assert_allclose(draw_noise(recorded, image.data, mask), [100.0, 60.0, 70.0])
    # a noise far above the draws' spread: the error is its share of the mean of K draws, n / sqrt(K)
    faint = Cube(data=image.data * 0.05, bands="grz", wcs=image.wcs)  # filled at its own flux (no scaling)
    result = fill_cube(faint, mask, model=recorded, config=dataclasses.replace(FAST, draws=2))
    for band, sky in enumerate([100.0, 60.0, 70.0]):
        np.testing.assert_allclose(result.std[band][mask[band]], sky / np.sqrt(2), rtol=1e-5)
