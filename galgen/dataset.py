"""The on-disk training set: a directory holding images.npy and dataset.json.

``images.npy`` is a plain NumPy array, float32, shape ``(N, C, H, W)``, values in ``[-1, 1]``,
so that training memory-maps it (``np.load(..., mmap_mode="r")``) however large it is.
``dataset.json`` says what the numbers mean: bands, size, pixel scale, unit, the normaliser
that maps them back to flux, how it was chosen, what was skipped and the provenance.
``sources.jsonl`` says where every row came from, one line per image, so that a dataset
of 300k cutouts neither writes nor opens one huge JSON document. ``labels.npy`` (optional) holds
per-galaxy labels, float64 ``(N, K)``, NaN where unknown; ``dataset.json``'s ``labels`` names
them, with their units, where they came from and which cutouts no catalogue row matched.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from galgen.io.atomic import as_galgen_error, check_output, output_mode, sweep_stale, temp_path
from galgen.io.inputs import refuse_special_file
from galgen.errors import InputError
from galgen.normalize import Normalizer

IMAGES_NAME = "images.npy"
META_NAME = "dataset.json"
SOURCES_NAME = "sources.jsonl"  # one JSON object per line; line i describes image i
LABELS_NAME = "labels.npy"  # optional: (N, K) float64 per-galaxy labels, NaN where unknown
FORMAT_NAME = "galgen-dataset"
FORMAT_VERSION = 1


@dataclass
class Dataset:
    """A training set opened for reading: images stay on disk, memory-mapped."""

    images: np.ndarray  # memmap, float32, (N, C, H, W), values in [-1, 1]
    meta: dict  # the parsed dataset.json
    normalizer: Normalizer  # maps images back to flux: normalizer.inverse(images[i])
    path: Path | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def bands(self):
        """The band of each plane (galgen.bands.Bands)."""
        return self.normalizer.bands

    @property
    def size(self) -> int:
        return int(self.images.shape[-1])

    @property
    def label_info(self) -> dict | None:
        """dataset.json's ``labels`` (names, units, source, unmatched), None for a dataset without labels."""
        return self.meta.get("labels")

    def labels(self) -> tuple[dict[str, np.ndarray], dict[str, str]]:
        """The labels as name -> (N,) values (memory-mapped) and name -> unit; InputError when there are none."""
        info = self.label_info
        if not info:
            raise InputError("dataset has no labels ('galgen prep' attaches them from a catalogue or measures them)", path=self.path)
        refuse_special_file(self.path / LABELS_NAME)
        try:
            table = np.load(self.path / LABELS_NAME, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {LABELS_NAME} ({exc})", path=self.path) from None
        names = list(info["names"])
        if table.shape != (len(self), len(names)):
            raise InputError(f"{LABELS_NAME} holds {table.shape}, expected ({len(self)}, {len(names)})", path=self.path)
        return {n: table[:, k] for k, n in enumerate(names)}, dict(zip(names, info["units"]))

    def nearest(self, flux: np.ndarray, *, k: int, advance=None) -> tuple[np.ndarray, np.ndarray]:
        r"""The k images nearest to each of ``flux`` (N, C, H, W), in this dataset's normalised pixel space.

        The flux is normalised with the dataset's own normaliser (``x = 2 (clip(f) - lo) / (A - lo) - 1``,
        so both sides are in the same [-1, 1] units) and compared with every memory-mapped image by
        galgen.metrics.neighbours.nearest_neighbours (exact, chunked; :math:`d = \sqrt{\sum (q - r)^2}`
        over all C x H x W values). Returns (indices, distances), each (N, k); ``advance(n)`` counts rows.
        """
        from galgen.metrics.neighbours import nearest_neighbours

        if flux.shape[1:] != self.images.shape[1:]:
            raise InputError(f"images are {flux.shape[1:]}, the dataset's {self.images.shape[1:]}", path=self.path)
        return nearest_neighbours(self.normalizer.forward(flux), self.images, k=k, advance=advance)

    def source_paths(self, rows) -> dict[int, str]:
        """The source file of each wanted row, read from sources.jsonl in one streaming pass."""
        rows = {int(r) for r in rows}
        if not rows or self.path is None or not (self.path / SOURCES_NAME).is_file():
            return {}
        found: dict[int, str] = {}
        for row, record in enumerate(self.sources()):
            if row in rows and record.get("path"):
                found[row] = str(record["path"])
            if row >= max(rows):
                break
        return found

    def sources(self) -> Iterator[dict]:
        """Where each image came from, in row order (path, bytes, mtime, pixel scale, statistics)."""
        if self.path is None:
            return
        refuse_special_file(self.path / SOURCES_NAME)
        try:
            handle = open(self.path / SOURCES_NAME)
        except OSError as exc:
            raise InputError(f"cannot read {SOURCES_NAME} ({exc.strerror})", path=self.path) from None
        with handle:
            for line in handle:
                yield json.loads(line)


def open_dataset(path) -> Dataset:
    """Open a dataset directory written by ``galgen prep``; InputError if it is missing or corrupt."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("no such dataset directory (make one with 'galgen prep')", path=path)
    meta = read_meta(path)
    refuse_special_file(path / IMAGES_NAME)
    try:
        images = np.load(path / IMAGES_NAME, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise InputError(f"dataset has no {IMAGES_NAME}", path=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"corrupt {IMAGES_NAME} ({exc})", path=path) from None
    normalizer = Normalizer.from_dict(meta.get("normalizer", {}), path=path / META_NAME)
    expected = (meta.get("count"), len(normalizer.bands), meta.get("size"), meta.get("size"))
    if images.dtype != np.float32 or images.shape != expected:
        raise InputError(
            f"{IMAGES_NAME} holds {images.dtype} {images.shape}, dataset.json promises float32 {expected}",
            path=path,
        )
    return Dataset(images=images, meta=meta, normalizer=normalizer, path=path)


def read_meta(path) -> dict:
    """The parsed dataset.json of a dataset directory (InputError if absent, unreadable or foreign)."""
    meta_path = Path(path) / META_NAME
    refuse_special_file(meta_path)
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise InputError(f"not a dataset: no {META_NAME}", path=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"corrupt {META_NAME} ({exc})", path=path) from None
    except RecursionError:
        raise InputError(f"corrupt {META_NAME} (nested too deeply)", path=path) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise InputError(f"{META_NAME} is not a galgen dataset description", path=path)
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(
            f"dataset format version {meta['format_version']} is newer than this galgen understands", path=path
        )
    return meta


def write_images(directory, shape: tuple[int, int, int, int], blocks: Iterable[np.ndarray]) -> Path:
    """Stream ``blocks`` of rows (each ``(n, C, H, W)``) into images.npy, float32, in order.

    Plain sequential writes rather than a writable memmap: dirty memmap pages stay in the
    writer's resident set until the map closes, so RSS would grow with the dataset.
    """
    target = Path(directory) / IMAGES_NAME
    written = 0
    with open(target, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)})
        for block in blocks:
            block = np.ascontiguousarray(block, dtype="<f4")
            if block.shape[1:] != tuple(shape[1:]):
                raise ValueError(f"image block of shape {block.shape} does not fit {shape}")
            block.tofile(handle)
            written += block.shape[0]
    if written != shape[0]:
        raise ValueError(f"wrote {written} images, expected {shape[0]}")
    return target


def write_meta(directory, meta: dict) -> Path:
    """Write dataset.json (adding the format name and version); plain JSON types only, NaN refused."""
    target = Path(directory) / META_NAME
    full = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **meta}
    target.write_text(json.dumps(full, indent=1, allow_nan=False) + "\n")
    return target


def is_galgen_dataset(path) -> bool:
    """Whether ``path`` is a directory that ``galgen prep`` wrote (its dataset.json says so)."""
    try:
        read_meta(path)
    except InputError:
        return False
    return True


@contextmanager
def dataset_directory(path, *, overwrite: bool = False, inputs: Sequence = ()) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it becomes ``path`` only if the block succeeds.

    Nothing half-written is ever visible under the final name: on any error the temporary
    directory is removed. An existing ``path`` is replaced only with ``overwrite``, only when it
    is a galgen dataset, and never when it is, or holds, one of ``inputs``.
    """
    path = Path(path)
    check_output(path, overwrite=overwrite, made_by_galgen=is_galgen_dataset, directory=True)
    if path.exists():
        inside = _input_inside(path, inputs)
        if inside is not None:
            raise InputError(f"output holds the input {inside}; it is never replaced", path=path)
    parent = path.parent if str(path.parent) else Path(".")
    sweep_stale(parent)
    work = temp_path(path)
    work.mkdir()
    try:
        yield work
        output_mode(work)
        if path.exists():
            # move the old one aside first so that a failed rename leaves it untouched
            old = temp_path(path)
            os.replace(path, old)
            os.replace(work, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, path)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise as_galgen_error(exc, path) from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _input_inside(directory: Path, inputs: Sequence) -> Path | None:
    """The first of ``inputs`` that is ``directory`` or lies beneath it, else None."""
    root = directory.resolve()
    for item in inputs:
        resolved = Path(item).resolve()
        if resolved == root or root in resolved.parents:
            return Path(item)
    return None
