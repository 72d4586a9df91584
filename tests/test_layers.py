"""The layout as tests: who may import whom, and that library code never prints or names a CLI flag.

The CLI calls one flow; the flows (galgen.flows) call the model, the engine and cube.py; nothing
below a flow knows a flow exists; only the CLI talks to the terminal (galgen.console).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "galgen"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
ERRORS = {"InputError", "RuntimeFailure", "GalgenError", "NotAnImage", "TrainingDiverged", "NonFiniteWeights"}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        yield name, ast.parse(path.read_text())


def imports(tree) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def uses(tree, prefix: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for name in imports(tree))


ALL = list(modules())


@pytest.mark.parametrize("name, tree", ALL, ids=[name for name, _ in ALL])
def test_only_the_cli_talks_to_the_terminal(name, tree):
    if name in ("galgen.cli", "galgen.cli_errors", "galgen.console"):
        return
    assert not uses(tree, "galgen.console") and not uses(tree, "rich"), name
    prints = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
    assert not prints, f"{name} prints at lines {prints}"


@pytest.mark.parametrize("name, tree", ALL, ids=[name for name, _ in ALL])
def test_nothing_below_a_flow_knows_a_flow_exists(name, tree):
    if name in ("galgen.cli", "galgen") or name.startswith("galgen.flows"):
        return
    assert not uses(tree, "galgen.flows"), name
    if name.startswith(("galgen.engine", "galgen.metrics")):
        assert not uses(tree, "galgen.model"), name


@pytest.mark.parametrize("name, tree", ALL, ids=[name for name, _ in ALL])
def test_library_errors_never_name_a_cli_flag(name, tree):
    if name in ("galgen.cli", "galgen.cli_errors"):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ERRORS:
            for text in ast.walk(node):
                if isinstance(text, ast.Constant) and isinstance(text.value, str):
                    assert not FLAG.search(text.value), f"{name}:{node.lineno}: {text.value!r}"


def test_an_error_names_its_options_as_keywords_and_the_cli_as_flags():
    from galgen.cli_errors import flag
    from galgen.errors import InputError

    exc = InputError("output already exists", path="out.fits", options=("overwrite", "mask_nans"))
    assert str(exc) == "out.fits: output already exists (see overwrite, mask_nans)"
    assert exc.text(flag) == "out.fits: output already exists (see --overwrite, --mask-nans)"
    assert str(InputError("plain")) == "plain" and InputError("plain").text(flag) == "plain"


def test_a_stage_announces_itself_then_advances():
    from galgen.progress import stage

    calls = []
    advance = stage(lambda *args, **fields: calls.append((args, fields)), "reading", 3)
    advance()
    advance(2, loss=0.5)
    assert calls == [(("reading", 0, 3), {}), (("reading", 1, 3), {}), (("reading", 2, 3), {"loss": 0.5})]
    stage(None, "quiet", 1)(5)  # no callback: nothing happens, nothing fails
