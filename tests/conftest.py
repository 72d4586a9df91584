"""Shared test helpers: where the real data lies, and the FITS standard's own validator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# One intra-op thread per test process (and the subprocesses it starts): pytest -n 2 already fills
# both cores, and oversubscribed OpenMP threads spin-wait, making torch steps up to 20x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
DECALS = SHARED_DATA / "decals-grz"


def fitsverify(path) -> tuple[int, int, str]:
    """Run Debian's ``fitsverify`` on one file: (warnings, errors, full report).

    Skips the calling test when the tool is missing, unless GALGEN_REQUIRE_FITSVERIFY=1
    (set by .ci/run), where a missing validator is a failure.
    """
    exe = shutil.which("fitsverify")
    if exe is None:
        if os.environ.get("GALGEN_REQUIRE_FITSVERIFY"):
            pytest.fail("fitsverify is not installed (apt-get install fitsverify)")
        pytest.skip("fitsverify is not installed (apt-get install fitsverify)")
    report = subprocess.run([exe, str(path)], capture_output=True, text=True).stdout
    match = re.search(r"\*\*\*\*\s+Verification found (\d+) warning\(s\) and (\d+) error\(s\)", report)
    if match is None:
        raise AssertionError(f"unexpected fitsverify report:\n{report}")
    return int(match.group(1)), int(match.group(2)), report


def assert_fitsverify_clean(path) -> None:
    warnings, errors, report = fitsverify(path)
    assert (warnings, errors) == (0, 0), report


@pytest.fixture
def decals_dir() -> Path:
    """The real DECaLS cutouts in ../shared/data; skips cleanly where they are absent."""
    if not DECALS.is_dir():
        pytest.skip(f"real data not present ({DECALS})")
    return DECALS


def pytest_collection_modifyitems(config, items):
    """Tests that read ../shared/data carry the ``realdata`` marker (``-m "not realdata"`` leaves them out)."""
    for item in items:
        if "decals_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """The tiny unconditional model (tests/tiny_model.py); a test module may define its own."""
    from tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="module")
def conditional_file(tmp_path_factory):
    """The tiny model conditioned on tiny_model.CONDITIONS."""
    from tiny_model import CONDITIONS, make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("conditional") / "cond.safetensors", conditions=CONDITIONS)
