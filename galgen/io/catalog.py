"""Catalogue tables (a FITS binary table or a CSV file) and the matching of their rows to cutouts.

A catalogue gives per-galaxy values: labels for `galgen prep --labels`, requests for
`galgen sample --catalog`. Column names are kept as written; look-ups ignore case (two names that differ
only in case are refused). A CSV file is UTF-8 text, comma-separated; a header line without commas that holds
semicolons or tabs is split on those instead. A CSV header may carry a unit in brackets (``r_e [arcsec]``); a
FITS column carries its TUNIT.

Rows are matched to cutouts in one of three ways (`MatchRule`):
- ``name[:COLUMN]``: the column (default ``file``) holds each cutout's file name (the directory
  part of either side is ignored);
- ``id:COLUMN``: the column's value equals the cutout's header keyword of the same name, or,
  when the header lacks it, the file name without its suffixes (``12345.fits`` is id 12345);
- ``sky[:RA,DEC]``: the columns (default ``ra``, ``dec``, degrees) lie within a radius of the
  cutout's centre on the sky (its WCS at the centre pixel); the nearest row wins.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from galgen.errors import InputError

CSV_SUFFIXES = (".csv",)
CSV_DELIMITERS = (",", ";", "\t")  # a CSV header without commas but with one of the others is split on it
TABLE_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz") + CSV_SUFFIXES
ID_COLUMNS = ("id", "objid", "name", "file")  # a catalogue's first such column names its rows
_UNIT_IN_HEADER = re.compile(r"^(?P<name>.*?)\s*\[(?P<unit>[^\]]*)\]\s*$")


@dataclass
class Catalog:
    """A table read into memory: columns by name (numbers as float64 where they parse), their units."""

    path: Path
    columns: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def find(self, name: str) -> str | None:
        """The column's name as written, looked up without regard to case (None when absent)."""
        if name in self.columns:
            return name
        folded = {k.lower(): k for k in self.columns}
        return folded.get(name.lower())

    def column(self, name: str) -> np.ndarray:
        """A column by name (case-insensitive); InputError naming the columns there are."""
        found = self.find(name)
        if found is None:
            raise InputError(f"catalogue has no column {name!r} (it has: {', '.join(self.columns)})", path=self.path)
        return self.columns[found]

    def numeric(self) -> list[str]:
        """Names of the one-dimensional numeric columns."""
        return [k for k, v in self.columns.items() if v.ndim == 1 and v.dtype.kind in "biuf"]

    def row_ids(self, column: str | None = None) -> list[str]:
        """The name of each row: the values of ``column``, else of the first of ID_COLUMNS the table has, as
        text (`id_text`), else the row numbers."""
        key = column or next((k for k in ID_COLUMNS if self.find(k)), None)
        return [id_text(v) for v in self.column(key)] if key else [str(r) for r in range(len(self))]


def read_catalog(path) -> Catalog:
    """Read a FITS binary table or a CSV file; InputError naming the file when it is unusable or empty."""
    from galgen.io.inputs import refuse_special_file

    path = Path(path)
    name = path.name.lower()
    if not name.endswith(TABLE_SUFFIXES):
        raise InputError(f"a catalogue must be a FITS table or a CSV file ({', '.join(TABLE_SUFFIXES)})", path=path)
    refuse_special_file(path)
    if name.endswith(CSV_SUFFIXES):
        catalog = _read_csv(path)
    else:
        from galgen.io.cube import read_table

        units: dict[str, str] = {}
        columns = read_table(path, units=units)
        catalog = Catalog(path=path, columns=columns, units=units)
        if len({n.lower() for n in columns}) != len(columns):
            raise InputError("table names a column twice (column names ignore case)", path=path)
    if not catalog.columns or len(catalog) == 0:
        raise InputError("catalogue has no rows", path=path)
    return catalog


def _read_csv(path: Path) -> Catalog:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            text = handle.read()
        rows = list(csv.reader(text.splitlines(), delimiter=csv_delimiter(text)))
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except UnicodeDecodeError as exc:
        line = exc.object[:exc.start].count(b"\n") + 1
        raise InputError(f"not a readable CSV file: line {line} holds bytes that are not UTF-8 text; save it as UTF-8",
                         path=path) from None
    except (OSError, csv.Error) as exc:
        raise InputError(f"not a readable CSV file ({exc})", path=path) from None
    rows = [r for r in rows if r and any(cell.strip() for cell in r)]
    if not rows:
        return Catalog(path=path, columns={})
    header, body = [cell.strip() for cell in rows[0]], rows[1:]
    names, units = [], {}
    for cell in header:
        match = _UNIT_IN_HEADER.match(cell)
        column = match["name"] if match else cell
        if not column:
            raise InputError("CSV header has an empty column name", path=path)
        names.append(column)
        units[column] = match["unit"].strip() if match else ""
    if len({n.lower() for n in names}) != len(names):
        raise InputError("CSV header names a column twice", path=path)
    for line, row in enumerate(body, start=2):
        if len(row) != len(names):
            raise InputError(f"line {line} has {len(row)} fields, the header {len(names)}", path=path)
    columns = {n: _parse_column([row[i].strip() for row in body]) for i, n in enumerate(names)}
    return Catalog(path=path, columns=columns, units=units)


def csv_delimiter(text: str) -> str:
    """The field separator of a CSV file's text: a comma, unless its header (first non-blank line) holds none and
    does hold semicolons or tabs (a European spreadsheet's export, a tab-separated table): then the commoner."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    if "," in header:
        return ","
    counts = {d: header.count(d) for d in CSV_DELIMITERS if d != ","}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _parse_column(cells: list[str]) -> np.ndarray:
    """Numbers as float64 (empty cells and nan: NaN), else strings."""
    try:
        return np.array([float(c) if c else math.nan for c in cells], dtype=np.float64)
    except ValueError:
        return np.array(cells, dtype=str)


# ----------------------------------------------------------------------------- matching


@dataclass(frozen=True)
class MatchRule:
    """How catalogue rows find their cutouts (see the module docstring)."""

    kind: str  # "name", "id" or "sky"
    columns: tuple[str, ...]  # name: (file column,), id: (id column,), sky: (ra, dec)
    radius: float = 1.0  # sky: arcsec

    @classmethod
    def parse(cls, text: str, *, radius: float = 1.0) -> "MatchRule":
        """``name``, ``name:COLUMN``, ``id:COLUMN``, ``sky`` or ``sky:RA,DEC``; InputError otherwise."""
        kind, _, rest = text.partition(":")
        kind = kind.strip().lower()
        given = tuple(c.strip() for c in rest.split(",")) if rest.strip() else ()
        if kind == "name" and len(given) <= 1:
            return cls("name", given or ("file",))
        if kind == "id" and len(given) == 1:
            return cls("id", given)
        if kind == "sky" and len(given) in (0, 2):
            if not radius > 0:
                raise InputError(f"the match radius must be positive, got {radius} arcsec")
            return cls("sky", given or ("ra", "dec"), radius=float(radius))
        raise InputError(f"match {text!r}: use name[:COLUMN], id:COLUMN or sky[:RA,DEC]", options="match")

    def describe(self) -> str:
        if self.kind == "sky":
            return f"sky position ({', '.join(self.columns)}) within {self.radius:g} arcsec"
        return f"{self.kind} (column {self.columns[0]})"


@dataclass(frozen=True)
class CutoutKey:
    """What a cutout offers for matching: its path, an id keyword's value, its centre on the sky."""

    path: str
    header_id: str | None = None  # the value of the id rule's header keyword, if the header has it
    ra: float | None = None  # degrees, the centre pixel's position (None without a celestial WCS)
    dec: float | None = None


def match_rows(catalog: Catalog, cutouts: Sequence[CutoutKey], rule: MatchRule) -> np.ndarray:
    """For each cutout, the index of its catalogue row, or -1 when none matches.

    A name or id that two rows share is an InputError (the match would be a guess); by sky, each
    cutout takes the nearest row within the radius.
    """
    if rule.kind == "sky":
        return _match_sky(catalog, cutouts, rule)
    values = catalog.column(rule.columns[0])
    keys = [_name_key(v) if rule.kind == "name" else id_text(v) for v in values]
    index: dict[str, int] = {}
    for row, key in enumerate(keys):
        if key in index:
            raise InputError(f"catalogue column {rule.columns[0]!r} holds {key!r} twice (rows {index[key]} and "
                             f"{row}); matching needs unique values", path=catalog.path)
        index[key] = row
    found = np.full(len(cutouts), -1, dtype=np.int64)
    for i, cutout in enumerate(cutouts):
        if rule.kind == "name":
            key = _name_key(cutout.path)
        else:
            key = id_text(cutout.header_id) if cutout.header_id is not None else _stem(cutout.path)
        found[i] = index.get(key, -1)
    return found


def _name_key(value) -> str:
    return Path(str(value).strip()).name


def _stem(path: str) -> str:
    name = Path(path).name
    for suffix in sorted(TABLE_SUFFIXES + (".fits.fz", ".fz"), key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def id_text(value) -> str:
    """IDs compare as text; integral numbers lose a trailing .0 (a CSV reads 12345 as 12345.0)."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value).strip()


def _match_sky(catalog: Catalog, cutouts: Sequence[CutoutKey], rule: MatchRule) -> np.ndarray:
    ra = [np.nan if c.ra is None else c.ra for c in cutouts]
    dec = [np.nan if c.dec is None else c.dec for c in cutouts]
    return nearest_on_sky(catalog.column(rule.columns[0]), catalog.column(rule.columns[1]), ra, dec,
                          radius=rule.radius)


def nearest_on_sky(ra, dec, to_ra, to_dec, *, radius: float) -> np.ndarray:
    """For each position (``to_ra``, ``to_dec``) the index of the nearest (``ra``, ``dec``) within ``radius``
    arcsec, else -1; degrees, NaN for a position that is unknown."""
    def unit(a, d):
        a, d = np.radians(np.asarray(a, dtype=np.float64)), np.radians(np.asarray(d, dtype=np.float64))
        return np.stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)], axis=-1).reshape(-1, 3)

    rows, queries = unit(ra, dec), unit(to_ra, to_dec)
    limit = 2 * math.sin(math.radians(radius / 3600.0) / 2)  # chord of the radius on the unit sphere
    found = np.full(len(queries), -1, dtype=np.int64)
    finite, asked = np.isfinite(rows).all(axis=1), np.isfinite(queries).all(axis=1)
    if not finite.any() or not asked.any():
        return found
    from scipy.spatial import cKDTree

    distance, nearest = cKDTree(rows[finite]).query(queries[asked])
    hit = distance <= limit
    found[np.flatnonzero(asked)[hit]] = np.flatnonzero(finite)[nearest[hit]]
    return found
