"""The galgen error family.

The library raises these; the CLI turns each into one line on stderr and an exit code
(2: the input or the usage is wrong, 1: the work itself failed). ``GALGEN_DEBUG=1``
shows the traceback instead.
"""


class GalgenError(Exception):
    """Base class: a failure the user can act on, described in one line."""

    exit_code = 1


class InputError(GalgenError):
    """A file or an argument is unusable: unreadable, truncated, wrong shape, out of range."""

    exit_code = 2

    def __init__(self, message: str, *, path=None):
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class NotAnImage(InputError):
    """A readable FITS file that holds no image (a catalogue table, say); loaders may skip it."""


class RuntimeFailure(GalgenError):
    """The inputs were fine but the work failed (out of memory, no GPU, interrupted)."""

    exit_code = 1
