"""Nearest neighbours: exact against brute force, across chunk boundaries, on memmaps."""

from __future__ import annotations

import numpy as np
import pytest

from galgen.metrics.neighbours import nearest_neighbours


def brute_force(queries, reference, k):
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = reference.reshape(len(reference), -1).astype(np.float64)
    d2 = ((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return order, np.sqrt(np.take_along_axis(d2, order, axis=1))


@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("chunk_rows", [1, 7, 64, 1000])
def test_exact_against_brute_force(k, chunk_rows):
    rng = np.random.default_rng(k * 1000 + chunk_rows)
    # image-like: a large common offset (normalised sky near -0.9) and small differences,
    # the case where |a|^2 - 2ab + |b|^2 cancels badly without care
    reference = (-0.9 + 0.05 * rng.normal(size=(200, 3, 8, 8))).astype(np.float32)
    queries = (-0.9 + 0.05 * rng.normal(size=(13, 3, 8, 8))).astype(np.float32)
    idx, dist = nearest_neighbours(queries, reference, k=k, chunk_rows=chunk_rows)
    want_idx, want_dist = brute_force(queries, reference, k)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(dist, want_dist, rtol=1e-12, atol=1e-12)


def test_planted_copies_are_found_at_exact_distance(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "reference.npy"
    reference = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(300, 3, 16, 16))
    reference[:] = rng.uniform(-1, 1, reference.shape)
    reference.flush()
    reference = np.load(path, mmap_mode="r")
    queries = np.array(reference[[5, 299, 128]])
    queries[2, 0, 0, 0] += 0.25  # one pixel changed: distance exactly 0.25
    seen = []
    idx, dist = nearest_neighbours(queries, reference, k=2, chunk_rows=64, advance=seen.append)
    assert idx[:, 0].tolist() == [5, 299, 128]
    assert dist[:2, 0].tolist() == [0.0, 0.0]
    assert dist[2, 0] == pytest.approx(0.25, abs=1e-7)
    assert (dist[:, 1] > 1.0).all() and sum(seen) == 300


def test_ties_are_broken_by_lower_index():
    reference = np.zeros((6, 4), np.float32)
    idx, dist = nearest_neighbours(np.zeros((1, 4), np.float32), reference, k=4, chunk_rows=4)
    assert idx.tolist() == [[0, 1, 2, 3]] and dist.tolist() == [[0.0] * 4]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="k must"):
        nearest_neighbours(np.zeros((1, 4)), np.zeros((3, 4)), k=4)
    with pytest.raises(ValueError, match="values per image"):
        nearest_neighbours(np.zeros((1, 5)), np.zeros((3, 4)))
