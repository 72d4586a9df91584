"""Memorisation test: are the mocks closer to the training images than unseen real galaxies are?

Following the "two-models" framework (galaxy imaging with generative models), a model that
generalises draws mocks whose distance to the nearest training image is distributed like that
of held-out real galaxies; a model that memorises produces mocks that sit on top of training
images. All distances are Euclidean in the normalised pixel space the model was trained in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
from scipy import stats

from galgen.errors import InputError
from galgen.metrics.neighbours import DEFAULT_CHUNK_ROWS, nearest_neighbours

COPY_FACTOR = 0.5        # a near-copy is closer than this times the real 1st-percentile distance
ALARM_P_VALUE = 1e-3     # one-sided binomial test on the fraction of mocks below the real 5th percentile


@dataclass
class MemorisationReport:
    """Summary of mock-to-train against real-to-train nearest-neighbour distances."""

    n_mock: int
    n_real: int
    n_train: int
    median_mock_to_train: float
    median_real_to_train: float
    real_p1: float                   # 1st percentile of real-to-train distances
    real_p5: float                   # 5th percentile of real-to-train distances
    frac_mock_below_p1: float        # ~0.01 when the model generalises
    frac_mock_below_p5: float        # ~0.05 when the model generalises
    binomial_p_value: float          # P(at least this many below p5 | no memorisation)
    ks_statistic: float              # two-sample Kolmogorov-Smirnov, mock vs real distances
    ks_p_value: float
    near_copies: int                 # mocks closer than COPY_FACTOR x real_p1
    near_copy_indices: list          # their mock indices (at most 100, closest first)
    verdict: str

    def to_dict(self) -> dict:
        return asdict(self)


def nearest_training_distance(images, train, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                              advance: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each image's nearest training image, in normalised pixel units."""
    idx, dist = nearest_neighbours(images, train, k=1, chunk_rows=chunk_rows, advance=advance)
    return dist[:, 0], idx[:, 0]


def memorisation_report(mocks, train, held_out, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                        advance: Callable[[int], None] | None = None) -> MemorisationReport:
    r"""Compare mock-to-train with held-out-real-to-train nearest-neighbour distances.

    Parameters
    ----------
    mocks : array_like, shape (M, C, H, W)
        Generated images, already mapped into the model's normalised space ([-1, 1]).
    train : array_like, shape (N, C, H, W)
        The training images in the same space (a memmap is fine; read in chunks).
    held_out : array_like, shape (R, C, H, W)
        Real images the model never saw, same space. Needs R >= 20 for the percentiles.
    advance : callable(n) or None
        Called with training rows done (the training set is read once).

    Returns
    -------
    MemorisationReport
        With :math:`d_i = \min_j \lVert x_i - t_j \rVert_2`: medians of both distance sets,
        the fractions of mocks below the real 1st and 5th percentiles (expected 0.01 and 0.05
        without memorisation), a one-sided binomial p-value for the 5 % fraction, the
        two-sample KS statistic, the near-copies (:math:`d < 0.5\,p_1^{real}`) and a verdict.
    """
    if len(held_out) < 20:
        raise InputError(f"the memorisation check needs at least 20 held-out real images, got {len(held_out)}")
    # one pass over the (possibly huge) training set for both query sets
    queries = np.concatenate([np.asarray(mocks, np.float32), np.asarray(held_out, np.float32)])
    distances, _ = nearest_training_distance(queries, train, chunk_rows=chunk_rows, advance=advance)
    return summarise_distances(distances[:len(mocks)], distances[len(mocks):], n_train=len(train))


def summarise_distances(d_mock: np.ndarray, d_real: np.ndarray, *, n_train: int) -> MemorisationReport:
    """The statistics and verdict of :func:`memorisation_report` from the two distance sets."""
    d_mock, d_real = np.asarray(d_mock, np.float64), np.asarray(d_real, np.float64)
    p1, p5 = np.percentile(d_real, [1, 5])
    below_p5 = int(np.sum(d_mock < p5))
    binom_p = float(stats.binomtest(below_p5, len(d_mock), 0.05, alternative="greater").pvalue)
    ks = stats.ks_2samp(d_mock, d_real)
    copies = np.flatnonzero(d_mock < COPY_FACTOR * p1)
    copies = copies[np.argsort(d_mock[copies], kind="stable")]
    report = MemorisationReport(
        n_mock=len(d_mock), n_real=len(d_real), n_train=int(n_train),
        median_mock_to_train=float(np.median(d_mock)), median_real_to_train=float(np.median(d_real)),
        real_p1=float(p1), real_p5=float(p5),
        frac_mock_below_p1=float(np.mean(d_mock < p1)), frac_mock_below_p5=below_p5 / len(d_mock),
        binomial_p_value=binom_p, ks_statistic=float(ks.statistic), ks_p_value=float(ks.pvalue),
        near_copies=int(copies.size), near_copy_indices=copies[:100].tolist(), verdict="")
    report.verdict = verdict(report)
    return report


def verdict(report: MemorisationReport) -> str:
    """One line an astronomer can read: near-copies, a population drift towards the training set, or neither."""
    if report.near_copies:
        first = ", ".join(str(i) for i in report.near_copy_indices[:5])
        return (f"{report.near_copies} of {report.n_mock} mocks are near-copies of training images "
                f"(closer than {COPY_FACTOR} x the real 1st-percentile distance; e.g. mocks {first})")
    if report.binomial_p_value < ALARM_P_VALUE:
        return (f"possible memorisation: {100 * report.frac_mock_below_p5:.1f}% of mocks lie closer to the "
                f"training set than 95% of unseen real galaxies (expected 5%, p = {report.binomial_p_value:.2g})")
    return (f"no sign of memorisation: {100 * report.frac_mock_below_p5:.1f}% of mocks closer than the real "
            f"5th percentile (expected 5%); median distance mock {report.median_mock_to_train:.3g} "
            f"vs real {report.median_real_to_train:.3g}")
