"""The sha256 of a file: what output headers cite for their inputs and their model. Standard library only."""

from __future__ import annotations

import hashlib


def file_sha256(path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
