"""Import rules: the engine never pulls in astropy, typer or rich; weights metadata needs no torch."""

from __future__ import annotations

import subprocess
import sys

ENGINE = ["unet", "denoiser", "train", "runtime", "weights", "schedules"]


def imported_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


def test_engine_modules_import_no_astropy_typer_or_rich():
    modules = imported_after("\n".join(f"import galgen.engine.{name}" for name in ENGINE))
    assert "torch" in modules
    assert not modules & {"astropy", "typer", "rich", "click"}


def test_reading_weights_metadata_needs_no_torch(tmp_path):
    import torch

    from galgen.engine.weights import save_weights

    path = save_weights(tmp_path / "m.safetensors", {"w": torch.zeros(2)}, {"kind": "galgen-model", "step": 4})
    modules = imported_after(
        f"from galgen.engine.weights import read_metadata\nassert read_metadata({str(path)!r})['step'] == 4"
    )
    assert "torch" not in modules and "safetensors" not in modules
