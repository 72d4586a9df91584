"""One file per band: a survey's per-band inputs, matched into galaxies and read onto one grid.

Archives deliver one file per band (JWST NIRCam F115W ... F444W, HSC-G ... HSC-Y, Euclid VIS, Rubin
ugrizy). `galgen prep` takes them as a template with ``{band}`` in it, ``'stamps/{band}/*.fits'`` (a
folder per band) or ``'cutouts/*_{band}.fits'``, or as a directory that holds a folder per band. A
band's files are what the template gives with ``{band}`` replaced by the band's name (as given, else in
lower or upper case). A galaxy's files are matched by name: below the template's fixed folder, their
paths with the band's name (a whole word, any case) put back as ``{band}`` are the same
(``stamps/F115W/gal1.fits`` and ``stamps/F150W/gal1.fits``; ``gal1_f115w.fits`` and ``gal1_f150w.fits``).

Each band is read alone, converted to nanomaggies (galgen.io.units), its pixels of zero weight masked
(an IVAR, WHT or ERR extension: galgen.io.cube.NOISE_EXTNAMES), and resampled with reproject onto the
first band's grid when its WCS differs (`align_plane`).
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from galgen.bands import Bands, parse_bands
from galgen.errors import InputError
from galgen.io.cube import Cube, image_centre, read_cube, read_noise_map, same_grid
from galgen.io.inputs import expand_inputs
from galgen.io.units import BandUnit, StatedUnits, in_nanomaggies

BAND = "{band}"


@dataclass(frozen=True)
class BandSet:
    """One galaxy's files, one per band in the order of the bands, None where it has none."""

    name: str  # their common path, {band} in place of the band's name (the first band's, matched by sky)
    files: tuple[Path | None, ...]
    radius: float | None = None  # arcsec, when the files were matched by sky position

    @property
    def path(self) -> Path:
        """The first band's file (the first there is): the galaxy's name in tables and catalogue matches."""
        return next(p for p in self.files if p is not None)


def band_template(item, bands) -> str | None:
    """The template an input stands for: itself when it holds ``{band}``, ``DIR/{band}`` for a directory that
    holds a folder for every band; None otherwise."""
    text = str(item)
    if BAND in text:
        return text
    folder = Path(text)
    if folder.is_dir() and all(any((folder / v).is_dir() for v in _spellings(b)) for b in Bands(bands)):
        return str(folder / BAND)
    return None


def prep_inputs(items: Sequence, *, bands, match: str = "name", radius: float = 1.0) -> list:
    """What prep reads: when an input is per-band (a {band} template or a folder of band folders), the galaxies the
    inputs hold (`match_galaxies`: then every input must be per-band); else their FITS files (galgen.io.inputs)."""
    bands = parse_bands(bands)
    if any(band_template(item, bands) for item in items):
        return match_galaxies(items, bands=bands, match=match, radius=radius)
    return expand_inputs(items)


def match_galaxies(items: Sequence, *, bands, match: str = "name", radius: float = 1.0) -> list[BandSet]:
    """Every galaxy that per-band inputs (templates or folders of band folders) hold, sorted by name.

    ``match`` "name": a galaxy's files share their path with the band's name put back as {band}; "sky": a
    file belongs to the first band's file whose image centre lies within ``radius`` arcsec of its own.
    InputError naming the input when one is not per-band, when a band's template matches no file, or when two
    files of one band match the same galaxy. A galaxy without a file in some band is kept with None there
    (prep skips it and says why).
    """
    bands = Bands(bands)
    if match not in ("name", "sky") or not radius > 0:
        raise InputError(f"band files match by name or by sky within a positive radius, not {match!r} within "
                         f"{radius:g} arcsec", options=("band_match", "match_radius"))
    found = []  # (band index, path, name key) of every file
    for item in items:
        template = band_template(item, bands)
        if template is None:
            raise InputError(f"not a per-band input: give a template with {BAND} in it (stamps/{BAND}/*.fits) or a "
                             "directory holding a folder per band", path=item)
        root = _root(template)
        for b, band in enumerate(bands):
            word = re.compile(rf"(?<![A-Za-z0-9]){re.escape(band)}(?![A-Za-z0-9])", re.IGNORECASE)
            for path in _band_files(template, band):
                text = str(path)
                cut = len(root) if text.startswith(root) else 0
                found.append((b, path, text[:cut] + word.sub(BAND, text[cut:])))
    keys = [key for _, _, key in found] if match == "name" else _sky_keys(found, radius=radius)
    galaxies: dict[str, list] = {}
    for (b, path, _), key in zip(found, keys):
        files = galaxies.setdefault(key, [None] * len(bands))
        if files[b] is not None:
            raise InputError(f"band {bands[b]}: {files[b]} and {path} are the same galaxy's", path=path)
        files[b] = path
    return [BandSet(name=name, files=tuple(files), radius=None if match == "name" else radius)
            for name, files in sorted(galaxies.items())]


def _sky_keys(found: list, *, radius: float) -> list[str]:
    """Each file's galaxy by sky position: the name of the first band's file whose image centre lies within
    ``radius`` arcsec of its own (its own name when none does)."""
    from galgen.io.catalog import nearest_on_sky

    centres = np.array([image_centre(path) or (np.nan, np.nan) for _, path, _ in found], dtype=np.float64)
    first = [i for i, (b, _, _) in enumerate(found) if b == 0]
    nearest = nearest_on_sky(centres[first, 0], centres[first, 1], centres[:, 0], centres[:, 1], radius=radius)
    return [found[first[n]][2] if n >= 0 else key for n, (_, _, key) in zip(nearest, found)]


def _spellings(band: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys((band, band.lower(), band.upper())))


def _band_files(template: str, band: str) -> list[Path]:
    """The files ``template`` gives for ``band`` (its name as given, else in lower or upper case)."""
    for spelling in _spellings(band):
        pattern = template.replace(BAND, spelling)
        if Path(pattern).exists() or (glob.has_magic(pattern) and glob.glob(pattern)):
            return expand_inputs([pattern])
    raise InputError(f"band {band}: {template.replace(BAND, band)} matches no file", path=template)


def _root(template: str) -> str:
    """The template's fixed folder (before {band} and any wildcard), spelt as pathlib spells paths."""
    head = template.split(BAND, 1)[0]
    magic = re.search(r"[*?\[]", head)
    head = head[: magic.start()] if magic else head
    head = head[: head.rfind("/") + 1]
    if not head:
        return ""
    root = str(Path(head))
    return root if root.endswith("/") else root + "/"


def read_galaxy(galaxy: BandSet, *, bands, stated: StatedUnits = StatedUnits()
                ) -> tuple[Cube, np.ndarray | None, tuple[BandUnit, ...]]:
    """One galaxy's band files -> (cube in nanomaggies on the first band's grid, sigma, each band's unit).

    ``sigma`` (C, H, W) is the per-pixel noise in nanomaggies from IVAR, VARIANCE or ERR extensions, NaN where no
    file gives it and for bands that were resampled; None when no band gives it. Pixels of zero weight
    (IVAR or WHT 0, ERR not finite or 0) are masked. InputError naming the file for a missing band, a
    file that is not one 2-D image, or a unit galgen cannot read (galgen.io.units).
    """
    bands = Bands(bands)
    planes, sigmas, units = [], [], []
    for band, path in zip(bands, galaxy.files):
        if path is None:
            how = (f"{galaxy.name.replace(BAND, band)}, the band's name in any case" if galaxy.radius is None
                   else f"none within {galaxy.radius:g} arcsec")
            raise InputError(f"no {band} file ({how})", path=galaxy.path)
        plane = read_cube(path, name=band, unit_default="")
        if plane.shape[0] != 1:
            raise InputError(f"expected a 2-D single-band image, got {plane.shape[0]} planes", path=path)
        plane, (unit,) = in_nanomaggies(plane, stated=stated, path=path)
        sigma = _noise(plane, path, factor=unit.factor)
        planes.append(plane)
        sigmas.append(sigma)
        units.append(unit)
    cube = stack_planes(planes, method="auto")
    if all(s is None for s in sigmas):
        return cube, None, tuple(units)
    sigma = np.full(cube.shape, np.nan, dtype=np.float32)
    for i, (plane, s) in enumerate(zip(planes, sigmas)):
        if s is not None and same_grid(plane, planes[0]):
            sigma[i] = s
    return cube, sigma, tuple(units)


def _noise(plane: Cube, path: Path, *, factor: float) -> np.ndarray | None:
    """The plane's noise sigma (nanomaggies) from its IVAR, VARIANCE or ERR extension; masks its pixels of zero
    weight."""
    found = read_noise_map(path)
    if found is None:
        return None
    kind, values = found
    if values.shape != plane.shape:
        raise InputError(f"noise extension ({kind}) has shape {values.shape}, the image {plane.shape}", path=path)
    bad = ~np.isfinite(values) | (values <= 0)
    plane.mask = bad if plane.mask is None else plane.mask | bad
    if kind == "weight":  # a drizzle weight is relative: it marks the pixels without data, not the noise
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma = {"ivar": 1.0 / np.sqrt(values[0]), "variance": np.sqrt(values[0]), "sigma": values[0]}[kind]
    return np.where(bad[0], np.nan, sigma * factor).astype(np.float32)


def read_band_files(paths: Sequence, *, bands=None, method: str = "interp") -> Cube:
    """Read one 2-D image per band and align them on the grid of the first file (`stack_planes`).

    ``bands`` gives one name per file when the headers do not name them. Units are kept as the files
    give them (they must agree); `read_galaxy` is prep's reader, which converts them.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise InputError("no band files given")
    bands = None if bands is None else Bands(bands)
    if bands is not None and len(bands) != len(paths):
        raise InputError(f"{len(paths)} band files but bands={bands!r}")
    planes = [read_cube(p, bands=None if bands is None else bands[i]) for i, p in enumerate(paths)]
    for plane, p in zip(planes, paths):
        if plane.shape[0] != 1:
            raise InputError(f"expected a 2-D single-band image, got {plane.shape[0]} planes", path=p)
    return stack_planes(planes, method=method)


def stack_planes(planes: Sequence[Cube], *, method: str = "interp") -> Cube:
    """One-band cubes (their ``path`` set) -> one cube on the first one's grid (`align_plane`); pixels with no
    input coverage are NaN and masked. InputError when band names repeat or the units disagree."""
    names = Bands(name for plane in planes for name in plane.bands)
    if len(set(names)) != len(names):
        raise InputError(f"band names repeat across the files: {names!r}")
    ref = planes[0]
    units = {c.unit for c in planes}
    if len(units) > 1:
        raise InputError(f"band files disagree on the flux unit: {sorted(units)}")
    data = np.empty((len(planes), *ref.shape[1:]), dtype=np.float32)
    mask = np.zeros(data.shape, dtype=bool)
    for i, plane in enumerate(planes):
        data[i], mask[i] = align_plane(plane, ref, method=method)
    return Cube(data=data, bands=names, wcs=ref.wcs, unit=ref.unit, mask=mask if mask.any() else None,
                header=ref.header, path=ref.path)


def align_plane(plane: Cube, ref: Cube, *, method: str) -> tuple[np.ndarray, np.ndarray]:
    """One band's pixels (flux per pixel) on the reference grid: (flux, mask).

    ``method`` "interp": bilinear interpolation (reproject_interp); "exact": the flux-conserving overlap of
    pixels (reproject_exact); "auto": interp when the pixel scales agree within 1 % (a shift or a rotation),
    exact when they differ. The resampled values are multiplied by the ratio of pixel areas (reference /
    input), so that a flux per pixel stays one.
    """
    data = plane.data[0]
    mask = plane.mask[0] if plane.mask is not None else np.zeros(data.shape, dtype=bool)
    if same_grid(plane, ref):
        return data, mask
    if plane.wcs is None or ref.wcs is None:
        raise InputError(f"cannot align: shape {plane.shape[1:]} vs {ref.shape[1:]} and no WCS to resample with",
                         path=plane.path)
    from reproject import reproject_exact, reproject_interp

    if method == "auto":
        method = "interp" if abs(plane.pixel_scale / ref.pixel_scale - 1.0) <= 0.01 else "exact"
    source = np.where(mask, np.nan, data)
    if method == "interp":
        out, footprint = reproject_interp((source, plane.wcs), ref.wcs, shape_out=ref.shape[1:], order="bilinear")
    elif method == "exact":
        out, footprint = reproject_exact((source, plane.wcs), ref.wcs, shape_out=ref.shape[1:])
    else:
        raise InputError(f"unknown resampling method {method!r} (interp, exact or auto)")
    area_ratio = (ref.pixel_scale / plane.pixel_scale) ** 2  # flux per pixel scales with pixel area
    out = (out * area_ratio).astype(np.float32)
    bad = ~np.isfinite(out) | (footprint == 0)
    return out, bad
