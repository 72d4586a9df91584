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


def second_differences(shape: tuple[int, int], centres: np.ndarray | None = None):
    """Sparse rows of discrete second differences over an (H, W) grid (H, W >= 2), every one zero on a plane.

    Inside, the 5-point Laplacian; along the border rows and columns, the second difference along
    the border; at each corner, the twist ``u00 - u01 - u10 + u11``. Every pixel, corners included,
    sits in some row, so a fill is defined wherever the mask reaches. One row per pixel of
    ``centres`` (boolean (H, W); every pixel by default), in raster order, so a fill needs only the
    rows centred next to its holes and its memory follows the mask, not the image.
    """
    from scipy import sparse

    h, w = shape
    y, x = np.nonzero(np.ones(shape, bool) if centres is None else centres)
    inside_y, inside_x = (y > 0) & (y < h - 1), (x > 0) & (x < w - 1)
    dy, dx = np.where(y == 0, 1, -1), np.where(x == 0, 1, -1)  # a corner's twist reaches inwards
    kinds = [  # (which rows, [(weight, row offset, column offset), ...])
        (inside_y & inside_x, [(-4.0, 0, 0), (1.0, -1, 0), (1.0, 1, 0), (1.0, 0, -1), (1.0, 0, 1)]),
        (~inside_y & inside_x, [(-2.0, 0, 0), (1.0, 0, -1), (1.0, 0, 1)]),
        (inside_y & ~inside_x, [(-2.0, 0, 0), (1.0, -1, 0), (1.0, 1, 0)]),
        (~inside_y & ~inside_x, [(1.0, 0, 0), (-1.0, 0, dx), (-1.0, dy, 0), (1.0, dy, dx)]),
    ]
    row_of = np.arange(y.size)
    rows, cols, values = [], [], []
    for which, stencil in kinds:
        for weight, oy, ox in stencil:
            oy, ox = (oy[which] if isinstance(oy, np.ndarray) else oy), (ox[which] if isinstance(ox, np.ndarray) else ox)
            rows.append(row_of[which]), cols.append((y[which] + oy) * w + x[which] + ox)
            values.append(np.full(int(which.sum()), weight))
    return sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(y.size, h * w))


def biharmonic_fill(planes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``planes`` (..., H, W) with the pixels where ``mask`` (H, W) is True replaced by the smoothest fill.

    Values under the mask are ignored (NaN allowed). The same mask holds for every plane; planes
    are solved together with one factorisation. Only the rows of second differences that touch a
    masked pixel (centred within one pixel of it) enter the solve, so time and memory grow with the
    mask, not the image. Returns float64.
    """
    from scipy.ndimage import binary_dilation
    from scipy.sparse.linalg import splu

    planes = np.asarray(planes, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    out = planes.copy()
    if not mask.any():
        return out
    if mask.all():
        raise ValueError("nothing is known: every pixel is masked")
    d2 = second_differences(mask.shape, binary_dilation(mask, np.ones((3, 3), bool)))
    holes = np.flatnonzero(mask)
    touched = np.unique(d2.indices)
    known = touched[~mask.ravel()[touched]]  # the known pixels those rows reach (within two of a hole)
    flat = out.reshape(-1, mask.size)
    on_holes = d2[:, holes]
    rhs = -(on_holes.T @ (d2[:, known] @ flat[:, known].T))
    flat[:, holes] = splu((on_holes.T @ on_holes).tocsc()).solve(np.asarray(rhs)).T
    return out
