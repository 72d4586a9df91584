import subprocess
import sys

from typer.testing import CliRunner

from galgen.cli import app

COMMANDS = ["prep", "train", "sample", "inpaint", "desify", "sgd", "calibrate", "simulate", "info"]


def test_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_help_does_not_import_torch():
    code = "import sys; from galgen.cli import app; assert 'torch' not in sys.modules, 'torch imported'; " \
           "assert 'astropy' not in sys.modules, 'astropy imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_version_subprocess():
    out = subprocess.run([sys.executable, "-m", "galgen", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("galgen ")
