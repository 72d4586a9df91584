"""The invertible per-band flux transform, and the statistics that choose its range.

Smith et al. 2022 (section 3.1, eq. 13) clip each image to ``[0, A]`` and map that range
linearly onto ``[-1, 1]``; ``A`` is the boundary of a two-cluster k-means over every galaxy's
99.9th-percentile flux. galgen does the same per band ("linear"), and by default keeps the
negative half of the sky noise (lower limit ``-5 x`` the robust sky RMS) instead of clipping it
at 0. That clip loses every bright core above A. The "asinh" stretch loses nothing:
``y = asinh(f / b) / asinh(A / b)`` with the softening ``b`` a few sky RMS (the sky noise stays
linear, cores are compressed) and A the brightest pixel of the training set, so flux 0 (the sky)
is y = 0 and the whole dynamic range lies in [-1, 1].
The parameters travel with the dataset and then inside the model's weights file.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real

import numpy as np

from galgen.bands import Bands
from galgen.errors import InputError

# 1 / Phi^-1(3/4): turns a median absolute deviation into the standard deviation of a Gaussian
MAD_TO_SIGMA = 1.482602218505602


STRETCHES = ("linear", "asinh")
_F32_MAX, _F32_TINY = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)  # plain floats: no casts


@dataclass(frozen=True)
class Normalizer:
    """Per-band map of flux ``[lower, upper]`` into ``[-1, 1]``, clipped outside.

    Parameters
    ----------
    bands : Bands
        The band of each plane, in plane order (``"grz"``, ``"F115W,F150W"`` or a sequence of names:
        galgen.bands.Bands).
    lower, upper : tuple of float
        Per-band truncation fluxes, in the data's flux unit (nanomaggies for DESI), ``lower < upper``.
    stretch : str
        "linear" (the paper's eq. 13: ``[lower, upper]`` onto ``[-1, 1]``) or "asinh"
        (``asinh(f / b) / asinh(upper / b)``; needs ``upper > 0`` and ``-upper <= lower``).
    softening : tuple of float or None
        The asinh softening ``b`` per band (flux units, > 0); only with ``stretch="asinh"``.
    """

    bands: Bands
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    stretch: str = "linear"
    softening: tuple[float, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "bands", Bands(self.bands))
        lower = tuple(float(v) for v in self.lower)
        upper = tuple(float(v) for v in self.upper)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        if self.stretch not in STRETCHES:
            raise InputError(f"unknown stretch {self.stretch!r}; choose from {', '.join(STRETCHES)}")
        if self.stretch == "asinh":
            soft = tuple(float(v) for v in (self.softening or ()))
            object.__setattr__(self, "softening", soft)
            if len(soft) != len(self.bands) or not all(np.isfinite(b) and b > 0 for b in soft):
                raise InputError(f"asinh stretch needs one positive softening per band, got {self.softening!r}")
            if not all(hi > 0 and lo >= -hi for lo, hi in zip(lower, upper)):
                raise InputError("asinh stretch needs upper > 0 and lower >= -upper in every band")
        elif self.softening is not None:
            raise InputError("a softening belongs to the asinh stretch only")
        if not (len(self.bands) == len(lower) == len(upper)) or not self.bands:
            raise InputError(
                f"normaliser needs one lower and one upper value per band: bands {self.bands!r}, "
                f"{len(lower)} lower, {len(upper)} upper"
            )
        for band, lo, hi in zip(self.bands, lower, upper):
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise InputError(f"normaliser band {band}: lower {lo:g} must be finite and below upper {hi:g}")
            if not (max(-lo, hi, hi - lo) < _F32_MAX and np.float32(lo) < np.float32(hi)):  # runs in float32
                raise InputError(f"normaliser band {band}: the range [{lo:g}, {hi:g}] does not fit in float32")
        for band, hi, b in zip(self.bands, upper, self.softening or ()):
            if not _F32_TINY <= hi / b <= _F32_MAX:
                raise InputError(f"normaliser band {band}: upper / softening = {hi:g} / {b:g} does not fit in float32")

    def forward(self, flux: np.ndarray) -> np.ndarray:
        """Flux -> ``[-1, 1]``: ``x = 2 (clip(f, lo, A) - lo) / (A - lo) - 1``, per band (linear), or
        ``x = asinh(clip(f, lo, A) / b) / asinh(A / b)`` (asinh).

        Parameters
        ----------
        flux : ndarray, shape (..., C, H, W)
            Flux in the normaliser's unit; the band axis is third from the end.

        Returns
        -------
        ndarray
            Same shape, float32 (float64 if the input is float64). With ``lo = 0`` this is
            exactly the paper's eq. 13, ``2 max(0, min(f, A)) / A - 1``. NaN stays NaN.
        """
        flux = self._check(flux)
        lo, hi = self._limits(flux.dtype)
        if self.stretch == "asinh":
            soft = self._softening(flux.dtype)
            return np.arcsinh(np.clip(flux, lo, hi) / soft) / np.arcsinh(hi / soft)
        return 2 * (np.clip(flux, lo, hi) - lo) / (hi - lo) - 1

    def inverse(self, x: np.ndarray) -> np.ndarray:
        """``[-1, 1]`` -> flux: ``f = lo + (x + 1) (A - lo) / 2`` (linear) or ``f = b sinh(x asinh(A / b))``
        (asinh), per band; exact inside the range.

        Values outside the range are extrapolated by the same formula, not clipped, so that a
        model's overshoot stays visible.
        """
        x = self._check(x)
        lo, hi = self._limits(x.dtype)
        if self.stretch == "asinh":
            soft = self._softening(x.dtype)
            return soft * np.sinh(x * np.arcsinh(hi / soft))
        return lo + (x + 1) * (hi - lo) / 2

    @property
    def zero(self) -> np.ndarray:
        """Where flux 0 (the sky of a sky-subtracted cutout) lands, per band: (C,) float32."""
        return self.forward(np.zeros((len(self.bands), 1, 1), dtype=np.float32))[:, 0, 0]

    def to_dict(self) -> dict:
        """JSON-safe form, for dataset.json and weights metadata (the linear stretch writes what it always did)."""
        out = {"bands": str(self.bands), "lower": list(self.lower), "upper": list(self.upper)}
        if self.stretch != "linear":
            out.update(stretch=self.stretch, softening=list(self.softening))
        return out

    @classmethod
    def from_dict(cls, d: dict, *, path=None) -> "Normalizer":
        """Inverse of :meth:`to_dict`, every field checked: InputError naming ``path`` (the weights file or
        dataset.json it came from) on a malformed dict.

        ``bands`` a string (the text form of galgen.bands.Bands), ``lower``, ``upper`` (and an asinh ``softening``) lists of real numbers, one per
        band, then what the constructor checks (finite, ordered, a range float32 holds).
        """
        def malformed(why: str):
            return InputError(f"malformed normaliser: {why}", path=path)

        if not isinstance(d, dict):
            raise malformed(f"{type(d).__name__}, not a table")
        for key in ("bands", "lower", "upper"):
            if key not in d:
                raise malformed(f"no {key}")
        if not isinstance(d["bands"], str):
            raise malformed(f"bands {d['bands']!r} is not a string")
        softening = d.get("softening")
        for key, values in (("lower", d["lower"]), ("upper", d["upper"]), ("softening", softening)):
            if key == "softening" and values is None:
                continue
            if not isinstance(values, list) or not all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
                raise malformed(f"{key} {values!r} is not a list of numbers")
        if not isinstance(d.get("stretch", "linear"), str):
            raise malformed(f"stretch {d['stretch']!r} is not a name")
        try:
            return cls(bands=d["bands"], lower=tuple(d["lower"]), upper=tuple(d["upper"]),
                       stretch=d.get("stretch", "linear"), softening=None if softening is None else tuple(softening))
        except InputError as exc:
            raise InputError(exc.message, path=path, options=exc.options) from None

    def _check(self, array) -> np.ndarray:
        array = np.asarray(array)
        if array.dtype != np.float64:
            array = array.astype(np.float32, copy=False)
        if array.ndim < 3 or array.shape[-3] != len(self.bands):
            raise InputError(
                f"normaliser for bands {self.bands!r} needs (..., {len(self.bands)}, H, W), got shape {array.shape}"
            )
        return array

    def _softening(self, dtype) -> np.ndarray:
        return np.asarray(self.softening, dtype=dtype)[:, None, None]

    def _limits(self, dtype) -> tuple[np.ndarray, np.ndarray]:
        # shaped (C, 1, 1) so that they broadcast over (..., C, H, W)
        lo = np.asarray(self.lower, dtype=dtype)[:, None, None]
        hi = np.asarray(self.upper, dtype=dtype)[:, None, None]
        return lo, hi


def kmeans_boundary(values: np.ndarray) -> float:
    """Boundary of the exact two-cluster k-means of 1-D values (Lloyd 1982; Smith et al. 2022 sec. 3.1).

    In one dimension the optimal two clusters are a split of the sorted values, so every
    split point is scanned and the one with the largest between-cluster sum of squares,
    ``n1 n2 / n (m1 - m2)^2`` (equivalently the smallest within-cluster sum), is kept:
    exact, with no starting point to choose, O(n log n). The boundary is the midpoint of
    the two centroids, ``(m1 + m2) / 2``.

    Parameters
    ----------
    values : array_like
        1-D values (here: each galaxy's 99.9th-percentile flux in one band). NaNs are ignored.

    Returns
    -------
    float
        The boundary, in the values' unit. With a single distinct value there is only one
        cluster and that value is returned.
    """
    x = np.sort(np.asarray(values, dtype=np.float64).ravel())
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise InputError("k-means needs at least one finite value")
    if x[0] == x[-1]:
        return float(x[0])
    n = x.size
    n_low = np.arange(1, n)  # size of the low cluster for a split after position n_low - 1
    low_sum = np.cumsum(x)[:-1]
    mean_low = low_sum / n_low
    mean_high = (x.sum() - low_sum) / (n - n_low)
    # a split between equal values is never better than one between distinct values
    score = n_low * (n - n_low) * (mean_high - mean_low) ** 2
    score[x[:-1] == x[1:]] = -1.0
    best = int(np.argmax(score))
    return float((mean_low[best] + mean_high[best]) / 2)


def robust_sigma(values: np.ndarray, *, axis: int | None = None):
    """Standard deviation from the median absolute deviation: ``1.4826 median(|x - median(x)|)``.

    Robust to the galaxies and stars that reach into a stamp's border: up to half the
    pixels may be sources before the estimate breaks. For Gaussian noise it estimates sigma.

    Parameters
    ----------
    values : array_like
        Sky pixels (flux units). NaNs are ignored.
    axis : int, optional
        Reduce along this axis only (e.g. the pixels of each band) and return an array.

    Returns
    -------
    float or ndarray
        Sigma in the same unit; NaN if no finite value is given.
    """
    x = np.asarray(values, dtype=np.float64)
    if axis is not None:
        centre = np.nanmedian(x, axis=axis, keepdims=True)
        return MAD_TO_SIGMA * np.nanmedian(np.abs(x - centre), axis=axis)
    x = x.ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    return float(MAD_TO_SIGMA * np.median(np.abs(x - np.median(x))))
