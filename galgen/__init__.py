"""galgen: realistic galaxy images from denoising diffusion models, from and into FITS files.

The public Python API is imported lazily so that ``import galgen`` (and ``galgen --help``)
stays fast and never pulls in torch. The commands without a name here are modules with a
``run``: ``galgen.sgd.run``, ``galgen.calibrate.run``, ``galgen.simulate.simulate``.
"""

__version__ = "0.1.0"

_PUBLIC = {
    # FITS cubes and provenance
    "Cube": ("galgen.io.cube", "Cube"),
    "read_cube": ("galgen.io.cube", "read_cube"),
    "read_band_files": ("galgen.io.bandfiles", "read_band_files"),
    "write_cube": ("galgen.io.write", "write_cube"),
    "read_table": ("galgen.io.cube", "read_table"),
    "write_table": ("galgen.io.write", "write_table"),
    "make_wcs": ("galgen.io.cube", "make_wcs"),
    "read_provenance": ("galgen.io.cube", "read_provenance"),
    "make_provenance": ("galgen.io.provenance", "make_provenance"),
    # data preparation and ground truth
    "Normalizer": ("galgen.normalize", "Normalizer"),
    "open_dataset": ("galgen.dataset", "open_dataset"),
    "prep_dataset": ("galgen.prep", "prep_dataset"),
    "PrepConfig": ("galgen.prep", "PrepConfig"),
    "draw_galaxy": ("galgen.galaxies", "draw_galaxy"),
    "load_population": ("galgen.populations", "load_population"),
    # the model and its flows: each run(...) writes files and returns a result with to_dict()
    "load_model": ("galgen.model", "load_model"),
    "train": ("galgen.flows.train", "run"),
    "sample": ("galgen.flows.sample", "run"),
    "SampleConfig": ("galgen.flows.sample", "SampleConfig"),
    "inpaint": ("galgen.flows.inpaint", "run"),
    "fill_cube": ("galgen.flows.fill", "fill_cube"),
    "InpaintConfig": ("galgen.flows.inpaint", "InpaintConfig"),
    "desify": ("galgen.flows.desify", "run"),
    "DesifyConfig": ("galgen.flows.desify", "DesifyConfig"),
    # population metrics
    "synthetic_galaxy_distance": ("galgen.metrics.population", "synthetic_galaxy_distance"),
    "SGDConfig": ("galgen.metrics.population", "SGDConfig"),
}


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        module, attribute = _PUBLIC[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'galgen' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])
