"""The optional comparisons of `galgen sgd` beyond photometry: morphology, memorisation, FID.

Each takes the two flux stacks the SGD already loaded and returns a result with ``to_dict()``,
so the CLI only adds keys to its JSON summary and tables to its output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from galgen.errors import InputError
from galgen.metrics.population import SGDConfig, SGDResult, compare_properties
from galgen.stack import centre_crop


def compare_morphology(real: np.ndarray, mock: np.ndarray, *, bands: str, config: SGDConfig, unit: str,
                       workers: int = 1, on_progress: Callable[[int], None] | None = None) -> SGDResult:
    """Wasserstein-1 per morphology statistic (statmorph; Lotz et al. 2004, Conselice 2003).

    Every galaxy is measured (``metrics.morphology.measure_stack``, galaxies flagged bad dropped)
    and the two tables are compared exactly as the SGD's photometry: same mode, bootstrap
    intervals and real-vs-real baseline. The "SGD" row of the result is the sum over statistics.
    """
    from galgen.metrics.morphology import MorphologyConfig, measure_stack, morphology_units, usable_values

    require_morphology()
    morph = MorphologyConfig()
    if morph.band not in bands:
        raise InputError(f"morphology is measured in the {morph.band} band, absent from bands {bands!r}")
    tables = [usable_values(measure_stack(stack, bands=bands, config=morph, workers=workers, progress=on_progress))
              for stack in (real, mock)]
    result = compare_properties(*tables, units=morphology_units(morph, flux_unit=unit), config=config)
    result.notes.append(f"morphology: statmorph in the {morph.band} band; galaxies flagged bad are left out")
    return result


def require_morphology() -> None:
    """InputError naming the ``morph`` extra unless statmorph and photutils import."""
    from galgen.extras import require

    for module in ("statmorph", "photutils.segmentation"):
        require(module, extra="morph", purpose="galgen sgd --morphology")


def check_sgd_outputs(*, plot=None, train=None, fid_weights=None, morphology: bool = False) -> None:
    """Everything `galgen sgd` will write or read besides the populations, checked before they are measured."""
    from galgen.atomic import check_output

    if plot is not None:
        from galgen.metrics.population import PLOT_SUFFIXES
        from galgen.preview import is_galgen_figure

        check_output(plot, overwrite=True, suffixes=PLOT_SUFFIXES, made_by_galgen=is_galgen_figure)
    if train is not None:
        from galgen.dataset import open_dataset

        open_dataset(train)
    if fid_weights is not None and not Path(fid_weights).is_file():
        raise InputError("no such Inception weights file", path=fid_weights)
    if morphology:
        require_morphology()


def check_memorisation(dataset, real: np.ndarray, mock: np.ndarray, *,
                       on_progress: Callable[[int], None] | None = None):
    """Nearest-training-image distances of the mocks against held-out real galaxies (two-models test).

    ``dataset`` is the prepared training set; both stacks are centre-cropped to its size and
    normalised with its normaliser, so distances are in the space the model was trained in.
    The real galaxies must not be part of the training set, or the test means nothing.
    """
    from galgen.dataset import open_dataset
    from galgen.metrics.memorization import memorisation_report

    train = open_dataset(dataset)
    size = train.size
    for name, stack in (("real", real), ("mock", mock)):
        if min(stack.shape[-2:]) < size:
            raise InputError(f"{name} stamps ({stack.shape[-1]} px) are smaller than the training set's ({size} px)",
                             path=dataset)
    if len(train.bands) != real.shape[1]:
        raise InputError(f"training set bands {train.bands!r} differ from the galaxies' {real.shape[1]} bands",
                         path=dataset)

    def normalised(stack):
        return np.nan_to_num(train.normalizer.forward(centre_crop(stack, (size, size))), nan=0.0)

    return memorisation_report(normalised(mock), train.images, normalised(real), progress=on_progress)


def compare_fid(real: np.ndarray, mock: np.ndarray, *, weights=None,
                on_progress: Callable[[int], None] | None = None):
    """FID from a local TorchScript Inception file, or a result that says it was skipped."""
    from galgen.fid import fid

    return fid(real, mock, weights=weights, progress=on_progress)
