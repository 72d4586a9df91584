"""The galgen error family.

The library raises these; the CLI turns each into one line on stderr and an exit code
(2: the input or the usage is wrong, 1: the work itself failed). ``GALGEN_DEBUG=1``
shows the traceback instead. A missing optional dependency (`require`) is an InputError that names the
extra to install: ``galgen[sim]`` brings GalSim, ``galgen[morph]`` statmorph, photutils and scikit-image.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class GalgenError(Exception):
    """Base class: a failure the user can act on, described in one line.

    ``options`` name the settings (Python keywords) that would fix it; the text says them as
    keywords, the CLI as its flags (`text`), so library messages never name a CLI flag.
    """

    exit_code = 1

    def __init__(self, message: str = "", *, path=None, options: tuple[str, ...] | str = ()):
        self.path = None if path is None else str(path)
        self.message = message
        self.options = (options,) if isinstance(options, str) else tuple(options)
        super().__init__(self.text())

    def text(self, option_name=lambda name: name) -> str:
        """The one-line message, the options spelled by ``option_name`` (the CLI passes its flag spelling)."""
        hint = f" (see {', '.join(option_name(o) for o in self.options)})" if self.options else ""
        return f"{self.path}: {self.message}{hint}" if self.path else f"{self.message}{hint}"


class InputError(GalgenError):
    """A file or an argument is unusable: unreadable, truncated, wrong shape, out of range."""

    exit_code = 2


class NotAnImage(InputError):
    """A readable FITS file that holds no image (a catalogue table, say); loaders may skip it."""


class RuntimeFailure(GalgenError):
    """The inputs were fine but the work failed (out of memory, no GPU, interrupted)."""

    exit_code = 1


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise InputError saying that ``purpose`` needs ``galgen[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{purpose} needs {module.split('.')[0]}, which is not installed: "
                         f"pip install 'galgen[{extra}]'") from None
