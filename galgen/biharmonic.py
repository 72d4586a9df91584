"""A classical fill of masked pixels: the smoothest surface through the known ones (numpy, scipy).

The masked values minimise the summed squared discrete second differences over the stamp (the
Laplacian inside, second differences along the border), with the known pixels held fixed: the
variational form of the biharmonic equation (thin-plate interpolation, like scikit-image's
``inpaint_biharmonic``). Unlike a kernel average or a harmonic fill, whose values never exceed
their surroundings, it carries a profile's curvature across the gap, so a trail across a galaxy's
peak is filled near the peak's height. Planes are reproduced exactly, wherever the mask reaches.
"""

from __future__ import annotations

import numpy as np


def second_differences(shape: tuple[int, int]):
    """Sparse rows of discrete second differences over an (H, W) grid, every one zero on a plane.

    Inside, the 5-point Laplacian; along the border rows and columns, the second difference along
    the border; at each corner, the twist ``u00 - u01 - u10 + u11``. Every pixel, corners included,
    sits in some row, so a fill is defined wherever the mask reaches.
    """
    from scipy import sparse

    h, w = shape
    i = np.arange(h * w).reshape(h, w)
    stencils = [  # (weight, pixel index arrays of the same shape): one row per element
        [(-4.0, i[1:-1, 1:-1]), (1.0, i[:-2, 1:-1]), (1.0, i[2:, 1:-1]), (1.0, i[1:-1, :-2]), (1.0, i[1:-1, 2:])],
    ]
    for row in (i[0], i[-1]):
        stencils.append([(-2.0, row[1:-1]), (1.0, row[:-2]), (1.0, row[2:])])
    for col in (i[:, 0], i[:, -1]):
        stencils.append([(-2.0, col[1:-1]), (1.0, col[:-2]), (1.0, col[2:])])
    corners = [(i[0, 0], i[0, 1], i[1, 0], i[1, 1]), (i[0, -1], i[0, -2], i[1, -1], i[1, -2]),
               (i[-1, 0], i[-1, 1], i[-2, 0], i[-2, 1]), (i[-1, -1], i[-1, -2], i[-2, -1], i[-2, -2])]
    stencils.append([(weight, np.array([c[k] for c in corners])) for k, weight in enumerate((1.0, -1.0, -1.0, 1.0))])
    rows, cols, values, start = [], [], [], 0
    for stencil in stencils:
        count = stencil[0][1].size
        for weight, pixels in stencil:
            rows.append(start + np.arange(count)), cols.append(pixels.ravel()), values.append(np.full(count, weight))
        start += count
    return sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(start, h * w))


def biharmonic_fill(planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``planes`` (..., H, W) with the pixels where ``mask`` (H, W) is True replaced by the smoothest fill.

    Values under the mask are ignored (NaN allowed). The same mask holds for every plane; planes
    are solved together with one factorisation. Returns float64.
    """
    from scipy.sparse.linalg import splu

    planes = np.asarray(planes, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    out = planes.copy()
    if not mask.any():
        return out
    if mask.all():
        raise ValueError("nothing is known: every pixel is masked")
    shape = mask.shape
    d2 = second_differences(shape)
    energy = (d2.T @ d2).tocsc()
    holes, known = np.flatnonzero(mask), np.flatnonzero(~mask)
    flat = out.reshape(-1, shape[0] * shape[1])
    rhs = -(energy[holes][:, known] @ flat[:, known].T)
    flat[:, holes] = splu(energy[holes][:, holes].tocsc()).solve(np.asarray(rhs)).T
    return out
