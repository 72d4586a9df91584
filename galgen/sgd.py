"""`galgen sgd`: the population distance between real and mock galaxies, and what goes with it.

The way of two populations: files or datasets -> `populations.load_pair` (one flux stack each)
-> `metrics.population.synthetic_galaxy_distance` (photometry, Wasserstein-1 distances, effect
sizes, intervals) and the comparisons asked for beyond it (morphology, memorisation, FID), each a
result with ``to_dict()`` -> an `SGDReport`; the figure when asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from galgen.io.regrid import centre_crop
from galgen.errors import InputError
from galgen.metrics.population import SGDConfig, SGDResult, compare_properties
from galgen.progress import Progress, stage


def compare_morphology(real: np.ndarray, mock: np.ndarray, *, bands: str, config: SGDConfig, unit: str,
                       workers: int = 1, advance: Callable[[int], None] | None = None) -> SGDResult:
    """Wasserstein-1 per morphology statistic (statmorph; Lotz et al. 2004, Conselice 2003).

    Every galaxy is measured (``metrics.morphology.measure_stack``, galaxies flagged bad dropped)
    and the two tables are compared exactly as the SGD's photometry: same mode, bootstrap
    intervals and real-vs-real baseline. The "SGD" row of the result is the sum over statistics.
    """
    from galgen.metrics.labels import size_band
    from galgen.metrics.morphology import MorphologyConfig, measure_stack, morphology_units, usable_values

    require_morphology()
    morph = MorphologyConfig(band=size_band(bands))  # r, else the middle band (as the sizes)
    tables = [usable_values(measure_stack(stack, bands=bands, config=morph, workers=workers, advance=advance))
              for stack in (real, mock)]
    result = compare_properties(*tables, units=morphology_units(morph, flux_unit=unit), config=config)
    result.notes.append(f"morphology: statmorph in the {morph.band} band; galaxies flagged bad are left out")
    return result


def require_morphology() -> None:
    """InputError naming the ``morph`` extra unless statmorph and photutils import."""
    from galgen.errors import require

    for module in ("statmorph", "photutils.segmentation"):
        require(module, extra="morph", purpose="morphology statistics")


def check_sgd_outputs(*, plot=None, train=None, fid_weights=None, morphology: bool = False) -> None:
    """Everything `galgen sgd` will write or read besides the populations, checked before they are measured."""
    from galgen.io.atomic import check_output

    if plot is not None:
        from galgen.metrics.population import PLOT_SUFFIXES
        from galgen.preview import is_galgen_figure

        check_output(plot, overwrite=True, suffixes=PLOT_SUFFIXES, made_by_galgen=is_galgen_figure)
    if train is not None:
        from galgen.dataset import open_dataset

        open_dataset(train)
    if fid_weights not in (None, "installed"):
        from galgen.io.inputs import refuse_special_file

        refuse_special_file(fid_weights)
        if not Path(fid_weights).is_file():
            raise InputError("no such Inception weights file", path=fid_weights)
    if morphology:
        require_morphology()


def check_memorisation(dataset, real: np.ndarray, mock: np.ndarray, *,
                       advance: Callable[[int], None] | None = None):
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

    return memorisation_report(normalised(mock), train.images, normalised(real), advance=advance)


def compare_fid(real: np.ndarray, mock: np.ndarray, *, weights=None, bands=None,
                advance: Callable[[int], None] | None = None):
    """FID from a local TorchScript Inception file, or a result that says it was skipped."""
    from galgen.fid import fid

    return fid(real, mock, weights=weights, bands=bands, advance=advance)


@dataclass
class Diagnostics:
    """Beside the SGD (never summed into it): the stamps' sky levels and the galaxies' axis ratios."""

    table: SGDResult  # W1, interval, floor, Cohen's d and spreads of sky_<band> and q
    sky_noise: dict[str, float]  # per band: the real set's median border RMS (the per-pixel sky noise)
    sky_off: dict[str, dict[str, float]]  # {"real" / "mock": {band: fraction of stamps whose sky is off by more}}

    @property
    def message(self) -> str:
        def fractions(name):
            return " / ".join(f"{100 * v:.1f}" for v in self.sky_off[name].values())

        bands = "/".join(self.sky_noise)
        return (f"sky level more than one sky RMS from 0 ({bands}): real {fractions('real')} %, "
                f"mock {fractions('mock')} %")

    def to_dict(self) -> dict:
        table = self.table.to_dict()
        return {"properties": table["properties"], "sky_noise": self.sky_noise, "sky_off": self.sky_off,
                "notes": table["notes"], "message": self.message}


def compare_diagnostics(real: np.ndarray, mock: np.ndarray, *, bands: str, unit: str, config: SGDConfig,
                        advance: Callable[[int], None] | None = None) -> Diagnostics:
    """Sky levels and axis ratios of both sets (`metrics.population.image_diagnostics`), compared like the SGD."""
    from galgen.metrics.population import image_diagnostics, sky_offsets

    real_table, real_rms = image_diagnostics(real, bands=bands, config=config, advance=advance)
    mock_table, _ = image_diagnostics(mock, bands=bands, config=config, advance=advance)
    noise = np.nanmedian(real_rms, axis=0)
    units = {name: ("" if name == "q" else unit) for name in real_table}
    table = compare_properties(real_table, mock_table, units=units, config=config)
    return Diagnostics(table=table, sky_noise=dict(zip(bands, map(float, noise))),
                       sky_off={"real": sky_offsets(real_table, noise), "mock": sky_offsets(mock_table, noise)})


@dataclass
class SGDReport:
    """The SGD and the comparisons asked for beside it, by name (morphology, memorisation, fid)."""

    sgd: SGDResult
    extras: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {**self.sgd.to_dict(), **{name: value.to_dict() for name, value in self.extras.items()}}


def run(real, mock, *, config: SGDConfig = SGDConfig(), plot=None, morphology: bool = False, workers: int = 1,
        train=None, fid_weights=None, c2st: bool = False, on_progress: Progress | None = None) -> SGDReport:
    """Compare two populations (each FITS cubes, a directory, a glob, @list or a dataset).

    Everything to be written or read besides the populations is checked first. ``plot``: the
    paper's figure 4; ``morphology``: statmorph statistics (``workers`` processes); ``train``: a
    training dataset for the memorisation check (``real`` must be held out from it); ``fid_weights``:
    a local TorchScript Inception file, "installed" (the 'fid' extra's file; skipped with a note
    when it is missing) or None (no FID, the default: minutes on a CPU); ``c2st``: the classifier two-sample test (galgen.c2st,
    minutes). The sky levels and axis ratios (`compare_diagnostics`) are always measured. Progress
    stages: "reading real", "reading mock", "measuring", "sky and shape", "morphology", "nearest
    training images", "classifier".
    """
    from galgen.metrics.population import synthetic_galaxy_distance
    from galgen.preview import plot_histograms
    from galgen.populations import load_pair

    from galgen.fid import installed_inception

    labels = (str(real), str(mock))
    check_sgd_outputs(plot=plot, train=train, fid_weights=fid_weights, morphology=morphology)
    weights = installed_inception() if fid_weights == "installed" else fid_weights
    real_pop, mock_pop = load_pair(real, mock, on_progress=on_progress)
    result = synthetic_galaxy_distance(
        real_pop.flux, mock_pop.flux, bands=real_pop.bands, pixel_scale=real_pop.pixel_scales,
        mock_pixel_scale=mock_pop.pixel_scales, config=config, labels=labels,
        advance=stage(on_progress, "measuring", len(real_pop) + len(mock_pop)),
    )
    result.notes[:0] = real_pop.notes + mock_pop.notes
    report = SGDReport(sgd=result)
    diagnostics = compare_diagnostics(real_pop.flux, mock_pop.flux, bands=real_pop.bands, unit=real_pop.unit,
                                      config=config,
                                      advance=stage(on_progress, "sky and shape", len(real_pop) + len(mock_pop)))
    report.extras["diagnostics"] = diagnostics
    if morphology:
        report.extras["morphology"] = compare_morphology(
            real_pop.flux, mock_pop.flux, bands=real_pop.bands, config=config, unit=real_pop.unit, workers=workers,
            advance=stage(on_progress, "morphology", len(real_pop) + len(mock_pop)))
    if train is not None:
        report.extras["memorisation"] = check_memorisation(
            train, real_pop.flux, mock_pop.flux, advance=stage(on_progress, "nearest training images", None))
    if fid_weights is None:
        from galgen.fid import FidResult

        report.extras["fid"] = FidResult(None, "FID skipped: not asked for", len(real_pop), len(mock_pop))
    else:
        counted = None if weights is None else stage(on_progress, "FID", len(real_pop) + len(mock_pop))
        report.extras["fid"] = compare_fid(real_pop.flux, mock_pop.flux, weights=weights, bands=real_pop.bands,
                                           advance=counted)
    if c2st:
        from galgen.c2st import EPOCHS, c2st as classifier_test

        n = min(len(real_pop), len(mock_pop))
        report.extras["c2st"] = classifier_test(
            real_pop.flux, mock_pop.flux, noise=list(diagnostics.sky_noise.values()), seed=config.seed,
            advance=stage(on_progress, "classifier", 2 * EPOCHS * n))
    if plot is not None:
        plot_histograms(result, plot)
    return report
