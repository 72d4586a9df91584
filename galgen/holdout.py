"""The galaxies `train` keeps aside: a fixed part of every dataset that no model trained on it sees.

The held-out rows are the real galaxies of the memorisation check at the end of `galgen train`
(`galgen.flows.train.check_memorisation`): a model that memorises draws mocks closer to its training images than
these unseen galaxies are. They depend on the dataset's size alone (a fixed seed), so every model
trained on one dataset holds out the same galaxies, and a resumed run the ones it started with.
"""

from __future__ import annotations

import numpy as np

HOLD_OUT_FRACTION = 0.1  # of a set of at least MIN_SET images
MIN_SET = 200  # smaller sets keep every image for training (and get no memorisation check)
MAX_HELD_OUT = 1000  # enough for the 1st and 5th percentiles of the held-out distances
SEED = 20261207  # fixed: the same rows for every run on a dataset


def held_out_rows(count: int) -> np.ndarray:
    """Sorted indices of the rows held out of a dataset of ``count`` images (none below MIN_SET)."""
    if count < MIN_SET:
        return np.empty(0, dtype=np.int64)
    held = min(MAX_HELD_OUT, int(count * HOLD_OUT_FRACTION))
    return np.sort(np.random.default_rng(SEED).choice(count, held, replace=False)).astype(np.int64)


def training_rows(count: int, held: np.ndarray) -> np.ndarray:
    """Sorted indices of the rows that are not ``held``."""
    keep = np.ones(count, dtype=bool)
    keep[held] = False
    return np.flatnonzero(keep).astype(np.int64)


class Rows:
    """Rows ``index`` (sorted) of an (N, ...) array, read on demand: a memory map stays on disk."""

    def __init__(self, array, index: np.ndarray):
        self.array, self.index = array, np.asarray(index, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.index), *self.array.shape[1:])

    @property
    def dtype(self):
        return self.array.dtype

    def __len__(self) -> int:
        return len(self.index)

    def reshape(self, count: int, *shape) -> "Rows":
        """The same rows of the array reshaped to (N, *shape): ``rows.reshape(len(rows), -1)``."""
        return Rows(self.array.reshape(self.array.shape[0], *shape), self.index)

    def __getitem__(self, key):
        return self.array[self.index[key]]

    def __array__(self, dtype=None, copy=None):
        rows = np.asarray(self.array[self.index])
        return rows if dtype is None else rows.astype(dtype)
