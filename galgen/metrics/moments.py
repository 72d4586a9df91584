"""Running mean, standard deviation and covariance over batches, in constant memory.

One accumulator for the two places galgen needs it: the per-pixel mean and spread of inpainting
draws (an uncertainty map) and the mean and covariance of Inception features (FID). Sums are
taken about a fixed shift (the first batch's mean) so that neither the variance nor the
covariance loses its digits to cancellation when values sit far from zero. Never imports torch.
"""

from __future__ import annotations

import numpy as np


class RunningMoments:
    r"""Moments of samples added batch by batch along axis 0, in float64.

    With shift :math:`s` (the first batch's mean) and :math:`c_i = x_i - s`, it keeps
    :math:`n`, :math:`\sum c_i` and :math:`\sum c_i^2` per element (or :math:`\sum c_i c_i^T` for
    vectors with ``covariance=True``); then :math:`\bar x = s + \sum c_i / n` and the unbiased
    variance is :math:`(\sum c_i^2 - n (\bar x - s)^2) / (n - 1)`.
    """

    def __init__(self, *, covariance: bool = False) -> None:
        self.covariance = covariance  # keep the full (D, D) product of (N, D) samples
        self.count = 0
        self._shift = self._sum = self._squares = None

    def add(self, batch) -> None:
        """Fold one batch (N, ...) into the sums; with ``covariance`` it must be (N, D)."""
        batch = np.asarray(batch, dtype=np.float64)
        if self.covariance and batch.ndim != 2:
            raise ValueError(f"feature vectors must be (B, D), got {batch.shape}")
        if self._shift is None:
            self._shift = batch.mean(axis=0)
            self._sum = np.zeros_like(self._shift)
            self._squares = np.zeros((batch.shape[1],) * 2) if self.covariance else np.zeros_like(self._shift)
        centred = batch - self._shift
        self._sum += centred.sum(axis=0)
        self._squares += centred.T @ centred if self.covariance else (centred * centred).sum(axis=0)
        self.count += batch.shape[0]

    @property
    def mean(self) -> np.ndarray:
        """Sample mean of everything added."""
        return self._shift + self._sum / self.count

    @property
    def std(self) -> np.ndarray:
        """Per-element sample standard deviation (ddof 1; zero for a single sample)."""
        if self.count < 2:
            return np.zeros_like(self._shift)
        offset = self._sum / self.count
        squares = np.diag(self._squares) if self.covariance else self._squares
        return np.sqrt(np.maximum(squares - self.count * offset**2, 0.0) / (self.count - 1))

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, unbiased covariance) of feature vectors added with ``covariance=True``; needs two or more."""
        if not self.covariance:
            raise ValueError("this accumulator keeps no covariance (RunningMoments(covariance=True))")
        if self.count < 2:
            raise ValueError("need at least two feature vectors")
        offset = self._sum / self.count
        return self.mean, (self._squares - self.count * np.outer(offset, offset)) / (self.count - 1)
