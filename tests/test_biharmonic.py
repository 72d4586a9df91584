"""The classical smoothest-surface fill (galgen.biharmonic): known answers."""

from __future__ import annotations

import numpy as np
import pytest

from galgen.biharmonic import biharmonic_fill

YY, XX = np.mgrid[:64, :64].astype(float)
TRAIL = np.abs((YY - 30) - 0.5 * (XX - 31)) < 2.0  # 4 px wide, across the whole stamp, edges included


def test_a_plane_is_filled_exactly_wherever_the_mask_reaches():
    plane = 3.0 + XX - 0.5 * YY
    corners = np.zeros((64, 64), bool)
    corners[:3, :5] = corners[-4:, -2:] = corners[0, -1] = corners[-1, 0] = True
    for mask in (TRAIL, corners, TRAIL | corners):
        filled = biharmonic_fill(np.where(mask, np.nan, plane), mask)
        np.testing.assert_allclose(filled, plane, atol=1e-10)


def test_a_trail_across_a_peak_is_filled_near_the_peak_height():
    # a kernel average (or any harmonic fill) stays below the trail's edges; thin-plate carries the curvature
    peak = np.exp(-((XX - 31.3) ** 2 + (YY - 30.2) ** 2) / (2 * 3.0**2))
    filled = biharmonic_fill(np.where(TRAIL, np.nan, peak), TRAIL)
    edge = peak[~TRAIL & (np.abs((YY - 30) - 0.5 * (XX - 31)) < 3.0)].max()
    assert filled[TRAIL].max() > edge + 0.05  # above everything known beside the trail
    assert np.abs(filled - peak)[TRAIL].max() < 0.08 and filled[TRAIL].max() == pytest.approx(peak[TRAIL].max(), abs=0.08)
    np.testing.assert_array_equal(filled[~TRAIL], peak[~TRAIL])  # known pixels untouched


def test_planes_are_solved_together_as_one_by_one_and_edge_cases():
    rng = np.random.default_rng(0)
    cube = rng.normal(size=(3, 64, 64))
    together = biharmonic_fill(cube, TRAIL)
    for band in range(3):
        np.testing.assert_allclose(together[band], biharmonic_fill(cube[band], TRAIL), atol=1e-12)
    np.testing.assert_array_equal(biharmonic_fill(cube, np.zeros((64, 64), bool)), cube)
    with pytest.raises(ValueError, match="every pixel is masked"):
        biharmonic_fill(cube, np.ones((64, 64), bool))


def test_the_rows_next_to_the_holes_give_the_solve_over_every_row():
    # the fill builds only the second differences that touch a hole; the full energy gives the same answer
    from scipy.sparse.linalg import spsolve

    from galgen.biharmonic import second_differences

    rng = np.random.default_rng(3)
    plane = rng.normal(size=(12, 9))
    mask = rng.random((12, 9)) < 0.3
    mask[0, 0] = mask[-1, 3] = mask[5, -1] = True  # a corner and both kinds of border
    energy = (lambda d2: (d2.T @ d2).tocsc())(second_differences(mask.shape))
    holes, known = np.flatnonzero(mask), np.flatnonzero(~mask)
    expected = plane.ravel().copy()
    expected[holes] = spsolve(energy[holes][:, holes], -(energy[holes][:, known] @ plane.ravel()[known]))
    np.testing.assert_allclose(biharmonic_fill(plane, mask).ravel(), expected, atol=1e-10)
    assert second_differences((12, 9), mask).shape == (int(mask.sum()), 108)  # one row per centre
