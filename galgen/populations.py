"""Load a population of galaxies for the metrics: one flux array ``(N, C, H, W)`` from many inputs.

A population is either FITS cubes (files, directories, globs, ``@list.txt``; read through
galgen.io.cube) or a prepared DATASET directory (``images.npy`` + ``dataset.json``), mapped back
from ``[-1, 1]`` to flux with the dataset's own normaliser. Stamps of different sizes are
centre-cropped to the smallest, so the target pixel ``(W // 2, H // 2)`` stays the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from galgen.bands import Bands
from galgen.io.regrid import centre_crop
from galgen.errors import InputError, NotAnImage
from galgen.progress import Progress, stage

DATASET_MANIFEST = "dataset.json"
CHUNK_STAMPS = 1024


@dataclass
class Population:
    """Galaxies stacked for measurement."""

    flux: np.ndarray  # float32 (N, C, H, W), native byte order, NaN = missing pixel
    bands: Bands  # one name per plane (galgen.bands)
    pixel_scale: float | None  # arcsec/pixel of the first image with a celestial WCS, None if none had one
    unit: str  # flux unit, e.g. "nanomaggy"
    paths: list[Path]  # the files read (or the dataset directory)
    notes: list[str] = field(default_factory=list)  # what was done to make the stack (crops, masks)
    pixel_scales: np.ndarray | None = None  # float64 (N,) arcsec/pixel per image, NaN where unknown

    def __len__(self) -> int:
        return self.flux.shape[0]


def is_dataset(path) -> bool:
    """True for a prepared dataset directory (it holds ``dataset.json``)."""
    from galgen.io.inputs import refuse_special_file

    if str(path).startswith("@"):
        return False
    refuse_special_file(path)  # a path too long for the system is an InputError here, not an OSError
    return Path(path).is_dir() and (Path(path) / DATASET_MANIFEST).is_file()


def load_population(items: Sequence, *, label: str = "images", on_progress: Progress | None = None) -> Population:
    """Read every galaxy named by ``items`` into one float32 stack.

    ``items`` is what the user typed: FITS files, directories, globs, ``@list.txt`` files, or a
    single dataset directory. Masked pixels become NaN. Raises InputError naming the file
    that cannot be read, or whose bands or unit disagree with the first file's.
    """
    return _load_resolved(resolve_inputs(items), label=label, on_progress=on_progress)


def resolve_inputs(items: Sequence) -> Path | list[Path]:
    """A dataset directory, or the list of FITS files ``items`` name (InputError if any matches nothing)."""
    items = [items] if isinstance(items, (str, Path)) else list(items)
    if len(items) == 1 and is_dataset(items[0]):
        return Path(items[0])
    from galgen.io.inputs import expand_inputs

    return expand_inputs(items)


def _load_resolved(source: Path | list[Path], *, label: str, on_progress: Progress | None) -> Population:
    if isinstance(source, Path):
        return _load_dataset(source, label=label, on_progress=on_progress)
    return _load_cubes(source, label=label, on_progress=on_progress)


def _read_one(path: Path):
    from galgen.io.cube import read_cube

    try:
        cube = read_cube(path)
    except InputError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(f"cannot read as a FITS cube ({exc})", path=path) from None
    data = np.asarray(cube.data, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if cube.mask is not None and np.any(cube.mask):
        data = np.where(cube.mask, np.float32(np.nan), data)
    return cube, data


def _load_cubes(paths: list[Path], *, label: str, on_progress: Progress | None) -> Population:
    first = None
    stamps: list[np.ndarray] = []
    shape = None
    cropped = False
    scales: list[float] = []
    tables: list[Path] = []
    advance = stage(on_progress, f"reading {label}", len(paths))
    for path in paths:
        try:
            cube, data = _read_one(path)
        except NotAnImage:
            # a catalogue beside the cubes (simulate's truth.fits): not a galaxy, skip it
            tables.append(path)
            advance(1)
            continue
        if first is None:
            first = cube
        elif (cube.bands, cube.unit) != (first.bands, first.unit):
            raise InputError(
                f"bands/unit {cube.bands!r}/{cube.unit!r} differ from {first.path or paths[0]}'s "
                f"{first.bands!r}/{first.unit!r}",
                path=path,
            )
        scales.append(np.nan if cube.pixel_scale is None else float(cube.pixel_scale))
        smallest = data.shape[-2:] if shape is None else (min(shape[0], data.shape[-2]), min(shape[1], data.shape[-1]))
        cropped |= shape is not None and tuple(data.shape[-2:]) != tuple(shape)
        if shape is not None and smallest != shape:
            # crop what is held so far when a smaller stamp turns up: memory stays near the final size
            stamps = [np.ascontiguousarray(centre_crop(s, smallest)) for s in stamps]
        shape = smallest
        stamps.append(np.ascontiguousarray(centre_crop(data, shape)))
        advance(1)
    if not stamps:
        raise InputError(f"no galaxy images among the {len(paths)} {label} files (only tables)", path=paths[0])
    notes = [f"{label}: skipped {len(tables)} file(s) holding no image: {', '.join(p.name for p in tables[:3])}"] if tables else []
    if cropped:
        notes.append(f"{label}: stamps of different sizes centre-cropped to {shape[1]}x{shape[0]} px")
    flux = np.empty((len(stamps), stamps[0].shape[0], *shape), dtype=np.float32)
    for i in range(len(stamps)):
        flux[i] = stamps[i]
        stamps[i] = None  # free as we go
    distinct = sorted({round(v, 4) for v in scales if np.isfinite(v)})
    if len(distinct) > 1:
        notes.append(
            f"{label}: pixel scales differ ({', '.join(map(str, distinct))} arcsec/px): apertures are in pixels, "
            "sizes in arcsec use each image's own scale"
        )
    masked = int(np.isnan(flux).any(axis=(1, 2, 3)).sum())
    if masked:
        notes.append(f"{label}: {masked} images have masked or NaN pixels (ignored by the metrics)")
    return Population(
        flux=flux,
        bands=first.bands,
        pixel_scale=next((v for v in scales if np.isfinite(v)), None),
        pixel_scales=np.array(scales, dtype=np.float64),
        unit=first.unit,
        paths=[p for p in paths if p not in set(tables)],
        notes=notes,
    )


def _load_dataset(path: Path, *, label: str, on_progress: Progress | None) -> Population:
    from galgen.dataset import open_dataset

    dataset = open_dataset(path)
    images = dataset.images
    flux = np.empty(images.shape, dtype=np.float32)
    advance = stage(on_progress, f"reading {label}", images.shape[0])
    for start in range(0, images.shape[0], CHUNK_STAMPS):
        stop = min(start + CHUNK_STAMPS, images.shape[0])
        flux[start:stop] = dataset.normalizer.inverse(np.asarray(images[start:stop], dtype=np.float32))
        advance(stop - start)
    meta = dataset.meta
    scale = meta.get("pixel_scale")
    return Population(
        flux=flux,
        bands=Bands(meta.get("bands") or dataset.normalizer.bands),
        pixel_scale=None if scale is None else float(scale),
        pixel_scales=np.full(images.shape[0], np.nan if scale is None else float(scale)),
        unit=str(meta.get("unit", "nanomaggy")),
        paths=[path],
        notes=[f"{label}: prepared dataset, flux outside the normaliser's range was clipped at prep time"],
    )


def load_pair(real_items, mock_items, *, on_progress: Progress | None = None) -> tuple[Population, Population]:
    """Load a real and a mock population that can be compared pixel for pixel.

    Both must share bands and unit (InputError otherwise); when their stamp sizes differ, both
    are centre-cropped to the common size, with a note.
    """
    real_source, mock_source = resolve_inputs(real_items), resolve_inputs(mock_items)  # fail before reading
    real = _load_resolved(real_source, label="real", on_progress=on_progress)
    mock = _load_resolved(mock_source, label="mock", on_progress=on_progress)
    if real.bands != mock.bands:
        raise InputError(f"mock bands {mock.bands!r} differ from the real bands {real.bands!r}", path=mock.paths[0])
    if real.unit != mock.unit:
        raise InputError(f"mock unit {mock.unit!r} differs from the real unit {real.unit!r}", path=mock.paths[0])
    shape = tuple(min(a, b) for a, b in zip(real.flux.shape[-2:], mock.flux.shape[-2:]))
    for population in (real, mock):
        if population.flux.shape[-2:] != shape:
            population.flux = np.ascontiguousarray(centre_crop(population.flux, shape))
            population.notes.append(f"{population.paths[0]}: centre-cropped to {shape[1]}x{shape[0]} px to match")
    if real.pixel_scale and mock.pixel_scale and abs(real.pixel_scale / mock.pixel_scale - 1) > 0.01:
        real.notes.append(f"pixel scales differ: real {real.pixel_scale:.4g}, mock {mock.pixel_scale:.4g} arcsec/px")
    return real, mock
