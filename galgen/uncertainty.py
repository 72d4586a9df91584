"""The STD a K-draw fill writes: the error of the fill about the noise-free flux, from the draws' spread.

Each draw is a plausible *observation* of the masked pixels: a sample of the noise-free flux given
the known pixels (posterior spread s) plus sky noise of RMS n, independent between draws. The fill
is their mean, so it misses the noise-free flux by

    var(fill - truth) = s^2 (1 + 1/K) + n^2 / K = v (1 + 1/K) - n^2,   v = s^2 + n^2,

where v is the variance of one draw: the truth is one more sample of the posterior, and the mean
keeps 1/K of the noise. The draws' plain spread sqrt(v) overstates that error where the noise
dominates (faint pixels: by up to sqrt(K)) and, estimated from K values, is itself a poor number
(K - 1 degrees of freedom: a 1-STD band around the mean of 4 covers 56 % of a calibrated
posterior, not 68 %). So v is pooled over the masked pixels within a couple of pixels (Gaussian
weights; the posterior spread varies on the scale of the PSF, the noise not at all), then the
formula above is applied, floored at n^2 / K (s^2 >= 0). docs/inpainting.md has the coverage it gives.
Never imports torch.
"""

from __future__ import annotations

import numpy as np

POOL_WIDTH = 1.5  # pixels: Gaussian sigma of the pooling of the draws' variance over the masked pixels


def fill_error(variance: np.ndarray, mask: np.ndarray, noise: np.ndarray, *, draws: int,
               width: float = POOL_WIDTH) -> np.ndarray:
    """Standard error of the mean of ``draws`` fills about the noise-free flux, (..., H, W); 0 outside ``mask``.

    ``variance``: the draws' per-pixel variance (ddof 1); ``mask``: the filled pixels (broadcast to it);
    ``noise``: the RMS of the noise each draw carries, broadcast to it (flux units).
    """
    from scipy.ndimage import gaussian_filter

    if draws < 2:
        raise ValueError(f"an error from the spread needs two draws or more, got {draws}")
    variance = np.asarray(variance, dtype=np.float32)
    inside = np.broadcast_to(mask, variance.shape)
    noise2 = np.broadcast_to(np.square(np.asarray(noise, dtype=np.float32)), variance.shape)
    out = np.zeros(variance.shape, dtype=np.float32)
    if not inside.any():
        return out
    # only the box around the mask, widened by the pooling's reach: memory follows the mask, not the image
    reach = int(np.ceil(4 * width)) + 1
    ys, xs = np.nonzero(inside.reshape(-1, *inside.shape[-2:]).any(axis=0))
    box = (..., slice(max(ys.min() - reach, 0), ys.max() + reach + 1), slice(max(xs.min() - reach, 0), xs.max() + reach + 1))
    weight = inside[box].astype(np.float32)
    sigma = (0,) * (variance.ndim - 2) + (width, width)
    pooled = gaussian_filter(variance[box] * weight, sigma, mode="constant") / np.maximum(
        gaussian_filter(weight, sigma, mode="constant"), 1e-12)
    error2 = np.maximum(pooled * (1 + 1 / draws) - noise2[box], noise2[box] / draws)
    out[box] = np.where(inside[box], np.sqrt(error2), 0.0)
    return out


def noise_rms(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per-band RMS of the sky noise of a (C, H, W) image from its known border pixels (C,), 0 where unknown.

    The sigma-clipped RMS of the frame of border pixels (`metrics.photometry.border_background`),
    leaving out the masked ones: the noise a fill's draws carry when the model matches the image.
    """
    from galgen.metrics.photometry import border_background

    known = np.where(np.broadcast_to(mask, image.shape), np.nan, np.asarray(image, dtype=np.float64))
    return np.nan_to_num(border_background(known)[1], nan=0.0)
