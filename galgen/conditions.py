"""What a conditional model is conditioned on: named labels with units, ranges and normalisation.

A condition is one per-galaxy label (``mag_r``, ``r_e``, ``q``, ``g_r``...) taken from a dataset's
labels or a catalogue. A colour ``a_b`` that is not a column of its own is derived as
``mag_a - mag_b``. The network sees each value normalised, ``(v - median) / scale`` with the
training set's median and robust spread; the names, units, ranges and normalisation are stored
in the weights file (metadata key ``conditions``) so that requests are checked and normalised
the same way at sampling time. Requests outside a condition's training range are refused:
a conditional model does not extrapolate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import numpy as np

from galgen.errors import InputError

MAD_SCALE = 1.4826  # MAD -> standard deviation for a Gaussian


@dataclass(frozen=True)
class Condition:
    """One label a model is conditioned on, as stored in its weights file."""

    name: str
    unit: str  # "" for a dimensionless label
    min: float  # the training set's range of the label
    median: float
    max: float
    scale: float  # the network sees (value - median) / scale

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Condition":
        return cls(name=str(d["name"]), unit=str(d.get("unit", "")), min=float(d["min"]), median=float(d["median"]),
                   max=float(d["max"]), scale=float(d["scale"]))


def parse_names(text: str) -> list[str]:
    """``"mag_r,r_e,q,g_r"`` -> the names, each once, in order; InputError when empty or repeated."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or len({n.lower() for n in names}) != len(names):
        raise InputError(f"conditions {text!r}: give distinct label names separated by commas, e.g. mag_r,r_e,q,g_r",
                         options="condition")
    return names


def derive(columns: Mapping[str, np.ndarray], units: Mapping[str, str], name: str, *,
           where: str = "the labels") -> tuple[np.ndarray, str]:
    """The values and unit of label ``name``: a column (case-insensitive), or the colour mag_a - mag_b."""
    folded = {k.lower(): k for k in columns}
    if name.lower() in folded:
        key = folded[name.lower()]
        values = np.asarray(columns[key])
        if values.dtype.kind not in "biuf" or values.ndim != 1:
            raise InputError(f"{where}: column {key!r} is not a number per galaxy")
        return values.astype(np.float64), str(units.get(key, ""))
    a, sep, b = name.partition("_")
    mags = (folded.get(f"mag_{a}".lower()), folded.get(f"mag_{b}".lower()))
    if sep and a and b and None not in mags:
        return np.asarray(columns[mags[0]], dtype=np.float64) - np.asarray(columns[mags[1]], dtype=np.float64), "mag"
    raise InputError(f"{where} have no label {name!r} (they have: {', '.join(columns)}; a colour a_b needs "
                     f"mag_a and mag_b)")


def fit(names: Sequence[str], values: np.ndarray, units: Sequence[str]) -> list[Condition]:
    """Conditions from the training values (N, K); NaN entries are ignored. InputError if a label is constant."""
    conditions = []
    for k, name in enumerate(names):
        column = np.asarray(values[:, k], dtype=np.float64)
        column = column[np.isfinite(column)]
        if column.size < 2:
            raise InputError(f"label {name!r} is known for {column.size} training galaxies; it cannot condition a model")
        median = float(np.median(column))
        scale = MAD_SCALE * float(np.median(np.abs(column - median)))
        if not scale > 0:
            scale = float(column.std())
        if not scale > 0:
            raise InputError(f"label {name!r} has the same value for every training galaxy")
        conditions.append(Condition(name=name, unit=units[k], min=float(column.min()), median=median,
                                    max=float(column.max()), scale=scale))
    return conditions


def normalise(conditions: Sequence[Condition], values: np.ndarray) -> np.ndarray:
    """(N, K) values in the conditions' units -> what the network sees, float32 (NaN stays NaN)."""
    values = np.asarray(values, dtype=np.float64)
    centre = np.array([c.median for c in conditions])
    scale = np.array([c.scale for c in conditions])
    return ((values - centre) / scale).astype(np.float32)


def clip(conditions: Sequence[Condition], values: np.ndarray) -> np.ndarray:
    """(N, K) values clipped to each condition's training range (the nearest thing the model knows; NaN stays)."""
    values = np.asarray(values, dtype=np.float64)
    return np.clip(values, [c.min for c in conditions], [c.max for c in conditions])


def beyond(conditions: Sequence[Condition], values: np.ndarray) -> str:
    """'' or a clause for a note saying which measured labels (N, K) lie beyond the training range and
    were clipped, e.g. "; beyond the training range, so clipped to it: mag_r 12.5 (range 15-19.5) ...".
    Rows with a NaN (the unconditional ones) are not counted; with several rows, how many and the worst."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    rows = values[np.isfinite(values).all(axis=1)]
    parts = []
    for k, c in enumerate(conditions):
        out = (rows[:, k] < c.min) | (rows[:, k] > c.max)
        if out.any():
            worst = rows[out, k][np.argmax(np.abs(rows[out, k] - c.median))]
            where = f" in {int(out.sum())} of {len(rows)} windows, up to" if len(rows) > 1 else ""
            parts.append(f"{c.name}{where} {worst:.3g} (range {c.min:.3g}-{c.max:.3g})")
    if not parts:
        return ""
    return (f"; beyond the training range, so clipped to it: {', '.join(parts)} (the model never saw such a "
            "galaxy: expect a poorer result)")


def outside(conditions: Sequence[Condition], values: np.ndarray) -> list[tuple[int, str, float]]:
    """(row, name, value) of every requested value that is not finite or lies outside its training range."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    found = []
    for k, c in enumerate(conditions):
        bad = ~((values[:, k] >= c.min) & (values[:, k] <= c.max))
        found.extend((int(row), c.name, float(values[row, k])) for row in np.flatnonzero(bad))
    return sorted(found)


def measured(conditions: Sequence[Condition], flux: np.ndarray, *, bands: str, pixel_scale) -> np.ndarray:
    """The conditions measured on images (N, C, H, W) in flux by galgen's photometry, (N, K) in their units.

    For a conditional model that has no request to follow (inpainting, domain transfer): the
    galaxy's own magnitude, size, shape and colour tell the network what it is filling. Values are
    as measured, also beyond a condition's training range (`LoadedModel.conditioned` clips them to
    it, and the flows say so: see `clip` and `beyond`); a row with any label that cannot be
    measured (no positive flux) is NaN: the unconditional model.
    """
    from galgen.metrics.labels import label_units, measure_labels

    flux = np.asarray(flux, dtype=np.float32)
    columns = measure_labels(flux, bands=bands, pixel_scale=pixel_scale)
    units = label_units(bands)
    try:
        values = np.stack([derive(columns, units, c.name, where="the measured labels")[0] for c in conditions], axis=1)
    except InputError:  # a label galgen's photometry does not measure (a catalogue's redshift, say)
        return np.full((len(flux), len(conditions)), np.nan)
    values[~np.isfinite(values).all(axis=1)] = np.nan
    return values


def parse_request(text: str) -> dict[str, float]:
    """``"mag_r=17.5,r_e=1.2"`` -> {"mag_r": 17.5, "r_e": 1.2}; InputError on anything else."""
    request = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not name.strip() or number is None or name.strip() in request:
            raise InputError(f"condition {text!r}: expected name=value pairs like mag_r=17.5,r_e=1.2",
                             options="condition")
        request[name.strip()] = number
    if not request:
        raise InputError("condition is empty: expected name=value pairs like mag_r=17.5,r_e=1.2", options="condition")
    return request


def describe(conditions: Sequence[Condition]) -> list[dict]:
    """What `galgen info` lists for each condition: name, unit and training range."""
    return [{"name": c.name, "unit": c.unit, "min": c.min, "median": c.median, "max": c.max} for c in conditions]
