"""Optional dependencies: a missing one is one line that names the extra to install (exit 2).

``pip install 'galgen[sim]'`` brings GalSim (`galgen simulate`); ``galgen[morph]`` brings
statmorph, photutils and scikit-image (`galgen sgd --morphology`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from galgen.errors import InputError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise InputError saying that ``purpose`` needs ``galgen[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"{purpose} needs {module.split('.')[0]}, which is not installed: "
                         f"pip install 'galgen[{extra}]'") from None
