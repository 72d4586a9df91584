"""What every flow does with what it made: its output directory, its provenance, its FITS file.

One builder of provenance for all flows: the run's own fields (seed, sampler, steps, ...) next to
the loaded model's (`LoadedModel.provenance`: weights sha256, normaliser, calibration, bf16,
device), and the model's flux line in HISTORY, so every output says the same things the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from galgen.errors import InputError


def output_directory(out_dir) -> Path:
    """Create ``out_dir`` if needed, check a file can be made in it, and sweep a killed run's temporaries."""
    from galgen.atomic import probe_directory, sweep_stale

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
    """Write ``cube`` to ``path`` (atomically) with the provenance of a run of ``model``.

    ``fields`` are the run's own provenance keys; HISTORY gets ``history`` and then the model's
    line on how flux was made.
    """
    from galgen.cube import write_cube
    from galgen.provenance import make_provenance

    provenance = make_provenance(command=command, inputs=list(inputs), **model.provenance(), **fields)
    return write_cube(cube, path, provenance=provenance, history=[*history, model.flux_history()],
                      extra_hdus=list(extra_hdus))


def check_preview(path) -> None:
    """A preview PNG may be replaced only when galgen made it; checked before any work."""
    if path is not None:
        from galgen.atomic import check_output
        from galgen.preview import is_galgen_figure

        check_output(path, overwrite=True, suffixes=(".png",), made_by_galgen=is_galgen_figure)
