"""galgen: realistic galaxy images from denoising diffusion models, from and into FITS files.

The public Python API is imported lazily so that ``import galgen`` (and ``galgen --help``)
stays fast and never pulls in torch.
"""

__version__ = "0.1.0"

_PUBLIC = {
    # FITS cubes and provenance
    "Cube": "galgen.cube",
    "read_cube": "galgen.cube",
    "read_band_files": "galgen.cube",
    "write_cube": "galgen.cube",
    "read_table": "galgen.cube",
    "write_table": "galgen.cube",
    "make_wcs": "galgen.cube",
    "read_provenance": "galgen.cube",
    "make_provenance": "galgen.provenance",
    # data preparation
    "Normalizer": "galgen.normalize",
    "open_dataset": "galgen.dataset",
    "prep_dataset": "galgen.prep",
    "PrepConfig": "galgen.prep",
    "draw_galaxy": "galgen.simulate",
    # models and what they make
    "load_model": "galgen.pipeline",
    "sample": "galgen.pipeline",
    "SampleConfig": "galgen.pipeline",
    "inpaint_cube": "galgen.repair",
    "InpaintSettings": "galgen.repair",
    "desify": "galgen.transfer",
    "DesifyConfig": "galgen.transfer",
    # population metrics
    "synthetic_galaxy_distance": "galgen.metrics.population",
    "SGDConfig": "galgen.metrics.population",
}


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'galgen' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])
