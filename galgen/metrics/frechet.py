"""The Frechet distance between two Gaussians fitted to feature vectors (the maths behind FID).

Kept free of torch: the features may come from any network; this file only sees arrays.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from galgen.metrics.moments import RunningMoments


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean vector and covariance matrix of a set of feature vectors.

    Parameters
    ----------
    features : ndarray, shape (N, D)
        One feature vector per image, N >= 2.

    Returns
    -------
    mu : ndarray, shape (D,)
        Sample mean, float64.
    sigma : ndarray, shape (D, D)
        Unbiased sample covariance (divisor N - 1), float64.
    """
    moments = RunningMoments(covariance=True)
    moments.add(features)
    return moments.statistics()


def frechet_distance(mu1, sigma1, mu2, sigma2, *, eps: float = 1e-6) -> float:
    r"""Squared Frechet (Wasserstein-2) distance between N(mu1, sigma1) and N(mu2, sigma2).

    .. math::

        d^2 = \lVert\mu_1 - \mu_2\rVert^2
              + \mathrm{Tr}\left(\Sigma_1 + \Sigma_2 - 2(\Sigma_1\Sigma_2)^{1/2}\right)

    (Dowson & Landau 1982; used as FID by Heusel et al. 2017). Units: squared feature units.

    Parameters
    ----------
    mu1, mu2 : ndarray, shape (D,)
        Means.
    sigma1, sigma2 : ndarray, shape (D, D)
        Covariance matrices (symmetric positive semi-definite).
    eps : float
        When the product is singular (fewer samples than dimensions), ``eps`` times the
        identity is added to both covariances before the square root, as is customary.

    Returns
    -------
    float
        The distance, >= 0 up to rounding; NaN never (a failed square root raises).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError("means and covariances of the two Gaussians must have matching shapes")
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = eps * np.eye(mu1.size)
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    # the product of two PSD matrices has a real square root; rounding leaves a tiny imaginary part
    if np.iscomplexobj(covmean):
        if not np.allclose(covmean.imag, 0, atol=1e-3 * max(1.0, np.abs(covmean.real).max())):
            raise ArithmeticError("the covariance product has a complex square root: covariances are not PSD")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
