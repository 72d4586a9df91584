"""Exact k-nearest neighbours in pixel space between query images and a large reference set.

The reference set (N, D) may be a memory map far bigger than RAM (100k x 3 x 64 x 64 float32
is 5 GB): it is read once, in chunks of rows. For each chunk, squared distances
|q|^2 - 2 q.r + |r|^2 come from one float32 matrix product on data centred on the queries'
mean (centring keeps the norms small, so cancellation stays far below the gaps between
neighbours), and a running top-(k + margin) per query is kept. At the end those candidates
are re-scored exactly in float64 as sum((q - r)^2) and the best k returned, so every returned
distance is exact, and the ranking is exact unless float32 rounding (relative ~1e-6 of the
centred norms) exceeds the gap between the k-th and the (k + margin)-th neighbour.
No Python loop over images.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

DEFAULT_CHUNK_ROWS = 2048
RESCORE_MARGIN = 8          # extra float32 candidates per query re-scored exactly at the end
RESCORE_BLOCK = 2 ** 24     # float64 elements per exact re-scoring block (128 MB)


def as_rows(images) -> np.ndarray:
    """View a stack (N, ...) as rows (N, D) without copying (memmaps, and views of their rows, stay on disk)."""
    images = images if hasattr(images, "reshape") else np.asarray(images)
    return images.reshape(images.shape[0], -1)


def nearest_neighbours(queries, reference, *, k: int = 1, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                       advance: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    r"""The k reference images nearest to each query, in Euclidean pixel distance.

    Parameters
    ----------
    queries : array_like, shape (M, ...)
        Query images, flattened to D values each; held in memory (as float32).
    reference : array_like, shape (N, ...)
        Reference images with the same D; may be a ``np.memmap``, read ``chunk_rows`` at a time.
    k : int
        Neighbours per query; must not exceed N.
    chunk_rows : int
        Reference rows per chunk (memory ~ chunk_rows x D x 4 bytes plus M x chunk_rows x 4).
    advance : callable(n) or None
        Called with the number of reference rows done after each chunk.

    Returns
    -------
    indices : ndarray, int64, shape (M, k)
        Row numbers in ``reference``, nearest first (ties: lower index first).
    distances : ndarray, float64, shape (M, k)
        :math:`d = \sqrt{\sum_j (q_j - r_j)^2}` in the units of the pixel values, computed
        exactly in float64 for every returned pair.
    """
    q = np.ascontiguousarray(as_rows(queries), dtype=np.float32)
    ref = as_rows(reference)
    n, m = ref.shape[0], q.shape[0]
    if ref.shape[1] != q.shape[1]:
        raise ValueError(f"queries have {q.shape[1]} values per image, the reference {ref.shape[1]}")
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in 1..{n} (the reference size), got {k}")
    centre = q.mean(axis=0, dtype=np.float64).astype(np.float32)
    qc = q - centre
    q_norm = np.einsum("ij,ij->i", qc, qc)
    keep = min(n, k + RESCORE_MARGIN)
    cand_d2 = np.full((m, keep), np.inf, dtype=np.float32)
    cand_i = np.zeros((m, keep), dtype=np.int64)
    for start in range(0, n, chunk_rows):
        rc = np.subtract(ref[start:start + chunk_rows], centre, dtype=np.float32)  # one pass, centred
        approx_d2, cols = _screen(qc, q_norm, rc, keep)
        cand_d2, cand_i = _merge(cand_d2, cand_i, approx_d2, cols + start, keep)
        if advance is not None:
            advance(len(rc))
    exact = _exact_d2(q, ref, cand_i)
    best_d2, best_i = _smallest(exact, cand_i, k)
    return best_i, np.sqrt(best_d2)


def _screen(qc, q_norm, rc, keep):
    """float32 squared distances and chunk row numbers (M, keep') of each query's ``keep`` nearest."""
    approx = rc @ qc.T                          # (rows, M): one BLAS call for the whole chunk
    approx *= -2.0
    approx += np.einsum("ij,ij->i", rc, rc)[:, None]
    approx += q_norm[None, :]
    approx = approx.T
    if keep >= approx.shape[1]:
        cols = np.broadcast_to(np.arange(approx.shape[1]), approx.shape)
    else:
        cols = np.argpartition(approx, keep - 1, axis=1)[:, :keep]
    return np.take_along_axis(approx, cols, axis=1), cols


def _exact_d2(q, ref, cand):
    """Exact float64 squared distances between each query and its candidate reference rows, (M, keep)."""
    m, keep = cand.shape
    out = np.empty((m, keep))
    step = max(1, RESCORE_BLOCK // (keep * q.shape[1]))
    for lo in range(0, m, step):   # a loop over blocks of queries, only to bound memory
        rows = np.asarray(ref[cand[lo:lo + step].ravel()], dtype=np.float64).reshape(-1, keep, q.shape[1])
        diff = rows - q[lo:lo + step, None, :].astype(np.float64)
        out[lo:lo + step] = np.einsum("mkd,mkd->mk", diff, diff)
    return out


def _merge(best_d2, best_i, new_d2, new_i, k):
    """Keep the k smallest of the running best and this chunk's candidates."""
    return _smallest(np.concatenate([best_d2, new_d2], axis=1), np.concatenate([best_i, new_i], axis=1), k)


def _smallest(d2, idx, k):
    """The k smallest squared distances per row with their indices, sorted, ties by lower index."""
    order = np.lexsort((idx, d2), axis=1)[:, :k]
    return np.take_along_axis(d2, order, axis=1), np.take_along_axis(idx, order, axis=1)
