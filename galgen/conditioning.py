"""The one home of labels: what a conditional model is asked and what it is told.

A condition is one per-galaxy label (``mag_r``, ``r_e``, ``q``, ``g_r``...) taken from a dataset's
labels or a catalogue. A colour ``a_b`` that is not a column of its own is derived as
``mag_a - mag_b``. The network sees each value normalised, ``(v - median) / scale`` with the
training set's median and robust spread; the names, units, ranges and normalisation are stored
in the weights file (metadata key ``conditions``) so that requests are checked and normalised
the same way at sampling time.

Asked (`ask`, for `sample`): a catalogue's rows (one mock per row), one request for every mock,
labels drawn from the training rows the model keeps, or nothing (the unconditional branch).
Requests outside a condition's training range are refused unless the caller extrapolates.

Told (`labels_of`, for `inpaint` and `desify`): the galaxy's own labels measured by galgen's
photometry, scaled with the flux a stamp is filled at (`scaled`), clipped to the training range by
`LoadedModel.conditioned`, and named in one sentence (`told_note`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from galgen.errors import InputError
from galgen.normalize import robust_sigma
from galgen.progress import Progress, stage

if TYPE_CHECKING:
    from galgen.io.catalog import Catalog
    from galgen.model import LoadedModel


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
    def from_dict(cls, d: Mapping, *, path=None) -> "Condition":
        """Inverse of to_dict, every field checked (a weights file's metadata): InputError naming ``path``.

        ``name`` a non-empty string, ``unit`` a string, ``min <= median <= max`` finite numbers, ``scale`` > 0.
        """
        if not isinstance(d, Mapping) or not isinstance(d.get("name"), str) or not d["name"]:
            raise InputError(f"condition {d!r} has no name", path=path)
        name = d["name"]
        if not isinstance(d.get("unit", ""), str):
            raise InputError(f"condition {name!r}: unit {d['unit']!r} is not a string", path=path)
        for key in ("min", "median", "max", "scale"):
            value = d.get(key)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)):
                raise InputError(f"condition {name!r}: {key} {value!r} is not a finite number", path=path)
        if not d["min"] <= d["median"] <= d["max"]:
            raise InputError(f"condition {name!r}: its range min {d['min']:g}, median {d['median']:g}, max "
                             f"{d['max']:g} is not in order", path=path)
        if not d["scale"] > 0:
            raise InputError(f"condition {name!r}: scale {d['scale']:g} must be positive", path=path)
        return cls(name=name, unit=d.get("unit", ""), min=float(d["min"]), median=float(d["median"]),
                   max=float(d["max"]), scale=float(d["scale"]))


def parse_names(text: str) -> list[str]:
    """``"mag_r,r_e,q,g_r"`` -> the names, each once, in order; InputError when empty or repeated."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or len({n.lower() for n in names}) != len(names):
        raise InputError(f"conditions {text!r}: give distinct label names separated by commas, e.g. mag_r,r_e,q,g_r",
                         options="condition")
    return names


def default_conditions(names: Sequence[str], bands) -> tuple[str, ...]:
    """What `train` conditions on when not told: of the labels ``names``, the size band's magnitude, ``r_e``,
    ``q`` and the colours of adjacent bands (a colour where both magnitudes are labels), in that order.

    For the labels `prep --labels measure` writes on grz that is mag_r, r_e, q, g_r, r_z: the bundled
    recipe's mag_r, r_e, q, g_r and the second colour. Other labels (a catalogue's redshift) only when named.
    """
    from galgen.metrics.labels import colour_name, size_band

    have = {n.lower() for n in names}
    wanted = [f"mag_{size_band(bands)}", "r_e", "q"]
    wanted = [n for n in wanted if n.lower() in have]
    wanted += [colour_name(a, b) for a, b in zip(bands, bands[1:])
               if colour_name(a, b).lower() in have or {f"mag_{a}".lower(), f"mag_{b}".lower()} <= have]
    return tuple(wanted)


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
        scale = robust_sigma(column)
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


def beyond(conditions: Sequence[Condition], values: np.ndarray, *, then: str = "so clipped to it") -> str:
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
    return (f"; beyond the training range, {then}: {', '.join(parts)} (the model never saw such a "
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
    """``"mag_r=17.5,r_e=1.2"`` -> {"mag_r": 17.5, "r_e": 1.2}; InputError on anything else, a name given twice
    (``mag_r=17,MAG_R=18``: names ignore case) included."""
    request = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        name, sep, value = item.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = None
        if not sep or not name.strip() or number is None:
            raise InputError(f"condition {text!r}: expected name=value pairs like mag_r=17.5,r_e=1.2",
                             options="condition")
        twice = next((k for k in request if k.lower() == name.strip().lower()), None)
        if twice is not None:
            raise InputError(f"condition {text!r} gives {twice} twice (label names ignore case): expected distinct "
                             "name=value pairs like mag_r=17.5,r_e=1.2", options="condition")
        request[name.strip()] = number
    if not request:
        raise InputError("condition is empty: expected name=value pairs like mag_r=17.5,r_e=1.2", options="condition")
    return request


def describe(conditions: Sequence[Condition]) -> list[dict]:
    """What `galgen info` lists for each condition: name, unit and training range."""
    return [{"name": c.name, "unit": c.unit, "min": c.min, "median": c.median, "max": c.max} for c in conditions]


# ----------------------------------------------------------------------------- asked: what a mock is drawn with


@dataclass
class Requests:
    """What a conditional run asks for: values (N, K) in the model's condition order, row ids, notes.

    ``drawn``: the rows were drawn from the training set's labels (`draw_requests`), so measuring
    the mocks against them checks nothing the user asked for.
    """

    values: np.ndarray
    ids: list[str]
    notes: list[str]
    drawn: bool = False

    def config_fields(self) -> dict:
        """SampleConfig's count, labels and ids for these requests."""
        return {"count": len(self.values), "labels": tuple(tuple(float(v) for v in row) for row in self.values),
                "ids": tuple(self.ids)}


LABEL_STREAM = 0x1ABE15  # the label rows of a run are drawn from the generator of (seed, LABEL_STREAM)
CHECK_CHUNK = 512  # mocks read and measured at a time by check_requests


def check_choice(*, catalog, request, count, unconditional: bool) -> None:
    """The ways of asking exclude each other: a catalogue or a request, and unconditional with neither.
    An InputError naming the options otherwise; without a catalogue the count must be given."""
    if catalog is not None and request is not None:
        raise InputError("give a catalogue or a request, not both", options=("catalog", "condition"))
    if unconditional and (catalog is not None or request is not None):
        raise InputError("unconditional draws take no labels: give it without a catalogue or a request",
                         options=("unconditional", "catalog", "condition"))
    if count is None and catalog is None:
        raise InputError("say how many mocks (or give a catalogue: one mock per row)", options=("count", "catalog"))


def ask(model: "LoadedModel", *, catalog: "Catalog | None" = None, request: Mapping[str, float] | None = None,
        count: int | None = None, seed: int = 0, id_column: str | None = None, extrapolate: bool = False,
        unconditional: bool = False) -> Requests | None:
    """What each mock of a `sample` run is drawn with, or None (an unconditional model or branch).

    ``catalog`` (`io.catalog.read_catalog`): one mock per row (``count``, when given, must be the row count);
    ``request``: the same labels for every one of ``count`` mocks; neither: for a conditional model,
    labels drawn from its training rows (`draw_requests`) unless ``unconditional``.
    """
    check_choice(catalog=catalog, request=request, count=count, unconditional=unconditional)
    if catalog is not None:
        if count is not None and count != len(catalog):
            raise InputError(f"{count} mocks asked for but the catalogue has {len(catalog)} rows (one mock per row; "
                             "leave the count out)", path=catalog.path, options="count")
        return plan_requests(model, catalog=catalog, id_column=id_column, extrapolate=extrapolate)
    if request is not None:
        return plan_requests(model, request=dict(request), count=count, extrapolate=extrapolate)
    if model.conditions and not unconditional:
        return draw_requests(model, count=count, seed=seed)
    return None


def plan_requests(model: "LoadedModel", *, catalog=None, request: dict | None = None, count: int | None = None,
                  id_column: str | None = None, extrapolate: bool = False) -> Requests:
    """The labels each mock is drawn with: a catalogue's rows (one mock per row) or one request ``count`` times.

    A condition the catalogue or request lacks takes its training median (said in ``notes``); a
    catalogue that gives none of them, or a request naming one the model does not take, is an InputError; a
    catalogue column in another unit than its condition's is converted (`catalog_values`). A value outside a
    condition's training range is an InputError naming the row (a conditional model is not trusted to
    extrapolate), unless ``extrapolate``: then the row is drawn as asked, its header lists the labels beyond
    the range (``outside``) and ``notes`` counts such rows. NaN is never drawn.
    """
    conditions = model.conditions
    if not conditions:
        raise InputError("the model is not conditional: it takes no labels (see 'galgen info')", path=model.path)
    names = ", ".join(f"{c.name} [{c.unit}]" if c.unit else c.name for c in conditions)
    notes, where = [], "the request"
    if catalog is not None:
        where = str(catalog.path)
        rows = len(catalog)
        found = {c.name: catalog.find(c.name) for c in conditions if catalog.find(c.name)}
        if not found:
            raise InputError(f"the catalogue gives none of the model's conditions: it has columns "
                             f"{', '.join(catalog.columns)}; the model takes {names}", path=where)
        columns = {c.name: catalog_values(catalog, found[c.name], c, notes=notes)
                   for c in conditions if c.name in found}
        ids = catalog.row_ids(id_column)
    else:
        unknown = [k for k in request if k.lower() not in {c.name.lower() for c in conditions}]
        if unknown:
            raise InputError(f"the model takes no label {unknown[0]!r} (it takes {names})", path=model.path,
                             options="condition")
        rows = count or 1
        lookup = {k.lower(): v for k, v in request.items()}
        columns = {c.name: np.full(rows, lookup[c.name.lower()]) for c in conditions if c.name.lower() in lookup}
        ids = [str(r) for r in range(rows)]
    values = np.empty((rows, len(conditions)))
    for k, c in enumerate(conditions):
        if c.name in columns:
            column = np.asarray(columns[c.name])
            if column.dtype.kind not in "biuf":
                raise InputError(f"column {c.name!r} is not numeric", path=where)
            values[:, k] = column
        else:
            values[:, k] = c.median
            notes.append(f"{where} gives no {c.name}: every mock takes the training median, {c.median:.4g}"
                         f"{' ' + c.unit if c.unit else ''}")
    bad = outside(conditions, values)
    if extrapolate and bad:
        if not np.isfinite(values).all():
            bad = [b for b in bad if not np.isfinite(b[2])]
        else:
            notes.append(f"{len({b[0] for b in bad})} of {rows} rows lie outside the training range and are drawn "
                         "anyway: each such mock lists the labels beyond the range in its header (GGOUTSID)")
            bad = []
    if bad:
        row, name, value = bad[0]
        c = next(c for c in conditions if c.name == name)
        more = f" ({len(bad) - 1} more values are outside too)" if len(bad) > 1 else ""
        raise InputError(f"row {ids[row]}: {name} = {value:g} lies outside the model's training range "
                         f"[{c.min:.4g}, {c.max:.4g}]; a conditional model is not trusted to extrapolate{more}",
                         path=where, options="extrapolate")
    return Requests(values=values, ids=ids, notes=notes)


def catalog_values(catalog: "Catalog", column: str, condition: Condition, *, notes: list[str]) -> np.ndarray:
    """Catalogue ``column``'s values in ``condition``'s unit: one number per row, converted with astropy.units from
    the column's unit (a CSV header's ``[unit]``, a FITS TUNIT) where one is given and differs (``r_e [deg]`` ->
    arcsec, said in ``notes``). A column without a unit is taken to be in the condition's unit; AB magnitudes
    are the ``mag`` of galgen's labels. InputError (naming the file) for a column of text or of several values
    per row, and for a unit that cannot be converted (or that astropy does not know) to the condition's."""
    values = np.asarray(catalog.columns[column])
    if values.ndim != 1:
        per_row = " x ".join(str(n) for n in values.shape[1:])
        raise InputError(f"column {column!r} holds {per_row} values per row; the condition {condition.name} "
                         "takes one number per galaxy", path=catalog.path)
    if values.dtype.kind not in "biuf":
        raise InputError(f"column {column!r} is not numeric", path=catalog.path)
    values = values.astype(np.float64)
    given, wanted = str(catalog.units.get(column, "") or "").strip(), condition.unit.strip()
    if not given or given.lower() == wanted.lower():
        return values
    import astropy.units as u

    refused = (f"column {column!r} is in {given!r}, which does not convert to the {condition.name} unit of the "
               f"model, {wanted or 'none (a plain number)'!r}")
    try:
        source, target = u.Unit(given), u.Unit(wanted)
    except ValueError:
        raise InputError(f"{refused} (astropy does not know {given!r})", path=catalog.path) from None
    if wanted == "mag" and getattr(source, "physical_unit", None) == u.AB:
        return values  # an AB magnitude is what galgen's photometry measures (22.5 - 2.5 log10 nanomaggies)
    try:
        converted = (values * source).to_value(target)
    except u.UnitsError:
        raise InputError(refused, path=catalog.path) from None
    if source != target:
        notes.append(f"{catalog.path}: column {column} converted from {given} to {wanted or 'a plain number'}")
    return np.asarray(converted, dtype=np.float64)


def draw_requests(model: "LoadedModel", *, count: int, seed: int) -> Requests | None:
    """Labels for ``count`` mocks drawn from the training set's label rows that the model keeps, or None.

    Mock i takes row ``k_i`` of `LoadedModel.label_table`, the k_i drawn uniformly (with replacement)
    from a generator of (seed, LABEL_STREAM), so mock i's labels depend on the seed and i alone (not
    on the count, batch or shard) and the run's labels follow the training set's joint distribution
    of magnitude, size, shape and colour. None when the model keeps no table (unconditional, or
    trained before tables were kept).
    """
    table = model.label_table()
    if table is None:
        return None
    rows = np.random.default_rng([seed, LABEL_STREAM]).integers(0, len(table), size=count)
    return Requests(values=table[rows], ids=[f"train:{k}" for k in rows], drawn=True,
                    notes=[f"labels drawn from the model's {len(table)} training label rows (the training set's "
                           "distribution); the row of each mock is in its header (GGCATID)"])


def check_requests(model: "LoadedModel", paths: list[Path], requested, *,
                   on_progress: Progress | None = None) -> list[dict]:
    """Requested against measured, per condition, over the mocks ``paths`` (galgen.metrics.labels).

    Per label: the number of mocks measured, the median requested value, the median and the
    median absolute value of measured - requested (for r_e the median ratio measured / requested
    too) and the robust scatter (`normalize.robust_sigma`) of the difference. Labels galgen's
    photometry does not measure are listed with ``measured: false``.
    """
    from galgen.io.cube import read_cube
    from galgen.metrics.labels import label_units, measure_labels

    requested = np.asarray(requested, dtype=np.float64)
    measurable = label_units(model.bands)
    advance = stage(on_progress, "measure", len(paths))
    parts = []
    for start in range(0, len(paths), CHECK_CHUNK):  # memory stays flat however many mocks
        flux = np.stack([read_cube(p).data for p in paths[start : start + CHECK_CHUNK]])
        parts.append(measure_labels(flux, bands=model.bands, pixel_scale=model.pixel_scale or np.nan, advance=advance))
    found = {name: np.concatenate([part[name] for part in parts]) for name in measurable}
    table = []
    for k, c in enumerate(model.conditions):
        row = {"name": c.name, "unit": c.unit, "requested_median": float(np.median(requested[:, k])),
               "measured": c.name in measurable}
        if c.name in measurable:
            got = found[c.name]
            ok = np.isfinite(got)
            diff = got[ok] - requested[ok, k]
            row.update(count=int(ok.sum()), median_difference=_median(diff), median_absolute=_median(np.abs(diff)),
                       scatter=robust_sigma(diff) if diff.size else None)
            if c.name == "r_e":
                row["median_ratio"] = _median(got[ok] / requested[ok, k])
        table.append(row)
    return table


def _median(values) -> float | None:
    return float(np.median(values)) if len(values) else None


# ----------------------------------------------------------------------------- told: what a fill is conditioned on


def labels_of(model: "LoadedModel", flux: np.ndarray, *, unknown: np.ndarray | None = None,
              pixel_scale: float | None = None) -> np.ndarray | None:
    """What a conditional model is told about galaxies it did not choose: their own labels (N, K).

    ``flux`` (N, C, H, W) in the model's bands and unit; ``unknown`` (broadcastable to it), pixels whose
    value is not known (an inpainting mask). Those are first filled classically
    (`biharmonic.biharmonic_fill`, which carries a core's peak across a trail), so a trail across the
    core does not make the galaxy look fainter: told the fainter labels that a kernel average gives,
    the model filled cores 2 % dark. Then `measured` (galgen's photometry) at ``pixel_scale`` (default:
    the model's). NaN rows are the unconditional model; None for an unconditional model or without a
    pixel scale.
    """
    scale = pixel_scale or model.pixel_scale
    if not model.conditions or not scale:
        return None
    flux = np.asarray(flux, dtype=np.float32)
    if unknown is not None:
        from galgen.biharmonic import biharmonic_fill

        holes = np.broadcast_to(unknown, flux.shape)
        flux = np.stack([[biharmonic_fill(plane, hole) if hole.any() and not hole.all() else plane
                          for plane, hole in zip(np.where(stamp_holes, np.nan, stamp), stamp_holes)]
                         for stamp, stamp_holes in zip(flux, holes)])
    return measured(model.conditions, flux, bands=model.bands, pixel_scale=scale)


def unconditional_beyond(conditions: Sequence[Condition], values: np.ndarray | None) -> np.ndarray | None:
    """Measured labels (N, K) with every row that lies beyond the training range in some condition made NaN
    (the unconditional model); None stays None. Inpainting tells the model a galaxy it never saw nothing rather
    than the clipped labels of another: on such galaxies of the populations it never saw the fill is more
    accurate so (docs/inpainting.md, "Galaxies the model never saw")."""
    if values is None:
        return None
    values = np.array(values, dtype=np.float64, copy=True)
    rows = sorted({row for row, _, value in outside(conditions, values) if np.isfinite(value)})
    values[rows] = np.nan
    return values


def scaled(model: "LoadedModel", labels: np.ndarray, scales: np.ndarray) -> np.ndarray | None:
    """Labels (N, K) of stamps as given, for the stamps divided by ``scales`` (N,): magnitudes
    (``mag_*``) 2.5 log10 S fainter, sizes, shapes and colours unchanged; None for an unconditional model."""
    if not model.conditions:
        return None
    labels = np.array(labels, dtype=np.float64, copy=True).reshape(len(scales), len(model.conditions))
    for column, condition in enumerate(model.conditions):
        if condition.name.startswith("mag_"):
            labels[:, column] += 2.5 * np.log10(scales)
    return labels


def told_note(conditions: Sequence[Condition], told: np.ndarray, *, where: str, parts: str = "windows",
              unconditional_beyond: bool = False) -> str:
    """The sentence naming what a conditional model was told: ``told`` (N, K) rows measured ``where`` (e.g.
    "around the mask"), NaN rows unconditional; for several rows, how many ``parts`` there were. Labels
    beyond the training range are named (`beyond`): clipped to it, or with ``unconditional_beyond`` not told
    at all (`unconditional_beyond`, the rows run unconditionally)."""
    told = np.atleast_2d(np.asarray(told, dtype=np.float64))
    then = "so not told to the model, which ran unconditionally there" if unconditional_beyond else "so clipped to it"
    if len(told) == 1:
        if not np.isfinite(told[0]).all():
            return f"no measurable galaxy {where}; the conditional model ran unconditionally"
        values = ", ".join(f"{c.name} {v:.3g}" for c, v in zip(conditions, told[0]))
        outcome = beyond(conditions, told, then=then)
        if unconditional_beyond and outcome:
            return f"the galaxy's labels, measured {where} by galgen's photometry ({values}), lie{outcome[1:]}"
        return (f"the conditional model was told the galaxy's own labels, measured {where} by galgen's photometry: "
                f"{values}{outcome}")
    unconditional = int(sum(not np.isfinite(row).all() for row in told))
    return (f"the conditional model was told the labels measured {where} in each of {len(told)} {parts} "
            f"({unconditional} without a measurable galaxy ran unconditionally){beyond(conditions, told, then=then)}")
