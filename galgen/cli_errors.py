"""How the command line reports what goes wrong: one line on stderr, the error's exit code, no traceback.

Usage errors (a bad flag, an empty path, a number that is not finite) exit with 2 before any work; library
errors (`galgen.errors`) with their own code; anything unexpected with 1 (GALGEN_DEBUG=1 shows the traceback).
"""

from __future__ import annotations

import functools
import os
import sys

import typer
from typer.core import TyperGroup

from galgen.errors import GalgenError, InputError


class OneLineErrors(TyperGroup):
    """The command group, with usage errors as one line on stderr and exit code 2 (no panel)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        # typer's click (bundled in newer typer, click itself in older) is reached through typer's names
        click_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_error as exc:
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
                typer.echo(ctx.get_help(), err=True)
                sys.exit(exc.exit_code)
            message = " ".join(line.strip() for line in exc.format_message().splitlines() if line.strip())
            typer.echo(f"{ctx.command_path if ctx else 'galgen'}: error: {message}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("galgen: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def resolve_command(self, ctx, args):
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None:
            refuse_empty_paths(command, ctx, rest)
        return name, command, rest


def refuse_empty_paths(command, ctx, args) -> None:
    """A usage error for an empty path (``-o ''``), which parsing would turn into ``.``, the current directory."""
    import typing

    try:
        hints = typing.get_type_hints(command.callback)
        ctx = command.context_class(command, info_name=command.name, parent=ctx)
        given, _, _ = command.make_parser(ctx).parse_args(args=list(args))
    except Exception:  # noqa: BLE001 - a malformed command line: the real parse says what is wrong
        return
    for param in command.params:
        values = given.get(param.name)
        values = values if isinstance(values, (list, tuple)) else [values]
        if "" in values and "Path" in str(hints.get(param.name)):
            flag = max(param.opts, key=len) if param.param_type_name == "option" else param.name.upper()
            raise typer.BadParameter("an empty path (it would mean the current directory)", ctx=ctx,
                                     param_hint=f"'{flag}'")


def reported(fn):
    """Turn library errors into one line on stderr and the error's exit code.

    Unexpected exceptions are reported the same way with exit code 1; set GALGEN_DEBUG=1
    to see the traceback instead.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from galgen.console import stderr

        try:
            check_finite(kwargs)
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except GalgenError as exc:
            if os.environ.get("GALGEN_DEBUG"):
                raise
            stderr.print(f"galgen {fn.__name__}: error: {exc.text(flag)}", markup=False, highlight=False)
            raise typer.Exit(exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - the last line of defence for users
            if os.environ.get("GALGEN_DEBUG"):
                raise
            message = str(exc).splitlines()[0] if str(exc) else ""
            stderr.print(
                f"galgen {fn.__name__}: internal error: {type(exc).__name__}: {message}"
                " (set GALGEN_DEBUG=1 for the traceback)",
                markup=False,
                highlight=False,
            )
            raise typer.Exit(1)

    return wrapper


def flag(name: str) -> str:
    """A library option name as this CLI's flag: mask_nans -> --mask-nans."""
    return "--" + name.replace("_", "-")


def check_finite(options: dict) -> None:
    """Every number option must be finite: NaN or infinity is a usage error, before any work."""
    import math

    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
