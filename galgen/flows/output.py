"""What every flow does with what it made: its output directory, its provenance, its FITS file.

One builder of provenance for all flows: the run's own fields (seed, sampler, steps, ...) next to
the loaded model's (`LoadedModel.provenance`: weights sha256, normaliser, calibration, bf16,
device), and the model's flux line in HISTORY, so every output says the same things the same way.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

from galgen.errors import InputError


def output_directory(out_dir) -> Path:
    """Create ``out_dir`` if needed, check a file can be made in it, and sweep a killed run's temporaries."""
    from galgen.io.atomic import DIRECTORY_ROOM, check_path_length, probe_directory, sweep_stale

    check_path_length(out_dir, room=DIRECTORY_ROOM)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output directory ({exc.strerror or exc})", path=out_dir) from None
    probe_directory(out_dir)
    sweep_stale(out_dir)
    return out_dir


def write_output(cube, path, *, model, command: str, inputs: Sequence = (), history: Sequence[str] = (),
                 extra_hdus: Sequence = (), **fields) -> Path:
    """Write ``cube`` to ``path`` (atomically) with the provenance of a run of ``model`` (`made_by`)."""
    from galgen.io.write import write_cube

    return write_cube(cube, path, extra_hdus=list(extra_hdus),
                      **made_by(model, command=command, inputs=inputs, history=history, **fields))


def made_by(model, *, command: str, inputs: Sequence = (), history: Sequence[str] = (), **fields) -> dict:
    """`write_cube`'s ``provenance`` and ``history`` for an output of a run of ``model``.

    ``fields`` are the run's own provenance keys; HISTORY gets ``history`` and then the model's
    line on how flux was made. Plain data: it travels to a helper process that writes the file.
    """
    from galgen.io.provenance import make_provenance

    return {"provenance": make_provenance(command=command, inputs=list(inputs), **model.provenance(), **fields),
            "history": [*history, model.flux_history()]}


def write_mock(path: Path, data, *, bands: str, unit: str, wcs: str | None, provenance: dict, history: list,
               backend: str = "auto") -> Path:
    """Write one image (`galgen.io.write.write_cube`, ``backend`` its writer), here or in a helper process
    (`galgen.io.writers`: this module imports no torch); ``wcs``: its header as a string, parsed once per process."""
    from galgen.io.cube import Cube
    from galgen.io.write import write_cube

    return write_cube(Cube(data=data, bands=bands, wcs=_parsed_wcs(wcs), unit=unit), path, provenance=provenance,
                      history=history, backend=backend)


@functools.lru_cache(maxsize=4)
def _parsed_wcs(header: str | None):
    """The WCS of a header string, parsed once per process (every mock of a run shares it)."""
    if header is None:
        return None
    from astropy.io import fits
    from astropy.wcs import WCS

    return WCS(fits.Header.fromstring(header))


def check_preview(path) -> None:
    """A preview PNG may be replaced only when galgen made it; checked before any work."""
    if path is not None:
        from galgen.io.atomic import check_output
        from galgen.preview import is_galgen_figure

        check_output(path, overwrite=True, suffixes=(".png",), made_by_galgen=is_galgen_figure)
