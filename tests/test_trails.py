"""Satellite trails (galgen.trails): geometry, dash duty cycle, mask = drawn pixels, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from galgen.trails import Trail, TrailRanges, deface, random_trail, sky_rms, strip_coordinates, through, trail_mask


def principal_angle(mask: np.ndarray) -> float:
    """Direction (degrees in [0, 180), from +x towards +y) of the long axis of the True pixels."""
    y, x = np.nonzero(mask)
    cov = np.cov(np.stack([x, y]).astype(float))
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[:, np.argmax(vals)]
    return math.degrees(math.atan2(vy, vx)) % 180.0


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0, 172.0])
def test_trail_runs_in_its_direction(angle):
    mask = trail_mask((200, 200), Trail(angle=angle, offset=0.0, width=3.0, brightness=(1.0,)))
    difference = (principal_angle(mask) - angle + 90) % 180 - 90
    assert abs(difference) < 0.5


@pytest.mark.parametrize("width", [1.0, 2.5, 6.0])
def test_width_is_the_area_per_unit_length(width):
    # a strip through the centre of a disc-free square: area = width x chord; the chord at 37 degrees
    # across a 301 px square through the centre is 301 / cos(37)
    angle = 37.0
    mask = trail_mask((301, 301), Trail(angle=angle, offset=0.0, width=width, brightness=(1.0,)))
    chord = 301 / math.cos(math.radians(angle))
    assert mask.sum() / chord == pytest.approx(width, rel=0.03)


def test_offset_moves_the_strip_along_its_normal():
    trail = Trail(angle=0.0, offset=10.0, width=2.0, brightness=(1.0,))
    rows = np.nonzero(trail_mask((41, 41), trail).any(axis=1))[0]
    assert list(rows) == [30]  # centre row 20, moved +10 along the normal (+y for a trail along +x)


@pytest.mark.parametrize("duty,period", [(0.25, 20.0), (0.5, 12.0), (0.8, 31.0)])
def test_dash_duty_cycle_and_period(duty, period):
    trail = Trail(angle=0.0, offset=0.0, width=1.0, brightness=(1.0,), period=period, duty=duty, phase=3.0)
    row = trail_mask((1, 2001), trail)[0]
    assert row.mean() == pytest.approx(duty, abs=0.02)
    starts = np.nonzero(row[1:] & ~row[:-1])[0]  # a dash begins every period
    assert np.diff(starts).mean() == pytest.approx(period, abs=0.5)


def test_mask_is_exactly_the_pixels_the_trail_changed():
    image = np.random.default_rng(0).normal(0, 0.01, (3, 64, 80)).astype(np.float32)
    trail = Trail(angle=61.0, offset=-7.0, width=2.7, brightness=(0.5, 1.0, 2.0), period=15.0, duty=0.6)
    defaced, mask = deface(image, trail)
    assert mask.shape == (64, 80) and 0 < mask.sum() < mask.size
    for band, flux in enumerate(trail.brightness):
        changed = defaced[band] != image[band]
        assert np.array_equal(changed, mask)
        np.testing.assert_allclose(defaced[band][mask] - image[band][mask], flux, rtol=1e-5)


def test_random_trails_are_reproducible_from_the_seed_and_cross_the_image():
    image = np.random.default_rng(1).normal(0, [[[0.007]], [[0.013]], [[0.029]]], (3, 64, 64))
    rms = sky_rms(image)
    np.testing.assert_allclose(rms, [0.007, 0.013, 0.029], rtol=0.1)
    first = random_trail((64, 64), seed=11, rms=rms)
    assert first == random_trail((64, 64), seed=11, rms=rms)
    assert first != random_trail((64, 64), seed=12, rms=rms)
    ranges = TrailRanges()
    trails = [random_trail((64, 64), seed=s, rms=rms) for s in range(200)]
    dashed = [t for t in trails if t.period is not None]
    assert 0.3 < len(dashed) / len(trails) < 0.7
    for t in trails:
        assert ranges.width[0] <= t.width <= ranges.width[1] and 0 <= t.angle < 180
        assert trail_mask((64, 64), t).sum() > 0  # every trail crosses the image
        level = np.array(t.brightness) / rms
        assert (level >= ranges.brightness[0] / 1.5 - 1e-9).all() and (level <= ranges.brightness[1] * 1.5 + 1e-9).all()


def test_strip_coordinates_of_the_centre_are_zero():
    along, across = strip_coordinates((5, 7), angle=45.0, offset=0.0)
    assert along[2, 3] == 0 and across[2, 3] == 0


def test_bad_trails_are_rejected():
    with pytest.raises(ValueError, match="width"):
        Trail(angle=0, offset=0, width=0, brightness=(1.0,))
    with pytest.raises(ValueError, match="duty"):
        Trail(angle=0, offset=0, width=1, brightness=(1.0,), period=5, duty=0)
    with pytest.raises(ValueError, match="bands"):
        deface(np.zeros((2, 4, 4)), Trail(angle=0, offset=0, width=1, brightness=(1.0,)))


@pytest.mark.parametrize("angle", [0.0, 33.0, 90.0, 151.0])
@pytest.mark.parametrize("period", [None, 12.0])
def test_a_trail_moved_through_a_point_runs_through_it_with_a_lit_dash(angle, period):
    trail = Trail(angle=angle, offset=9.0, width=1.2, brightness=(1.0,), period=period, duty=0.3, phase=5.0)
    for x, y in [(40, 22), (10, 50), (3, 7)]:
        moved = through(trail, (64, 64), (x, y))
        assert (moved.angle, moved.width, moved.period, moved.duty) == (angle, 1.2, period, 0.3)
        _, across = strip_coordinates((64, 64), angle=angle, offset=moved.offset)
        assert abs(across[y, x]) < 1e-9
        assert trail_mask((64, 64), moved)[y, x]
