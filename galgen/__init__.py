"""galgen: realistic galaxy images from denoising diffusion models, from and into FITS files.

The public Python API is imported lazily so that ``import galgen`` (and ``galgen --help``)
stays fast and never pulls in torch.
"""

__version__ = "0.1.0"

_PUBLIC = {
    "Cube": "galgen.cube",
    "read_cube": "galgen.cube",
    "write_cube": "galgen.cube",
}


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'galgen' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_PUBLIC])
