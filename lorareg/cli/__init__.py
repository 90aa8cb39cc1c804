"""The ``lorareg`` command line: one typer sub-app or module per noun.

Commands parse arguments, call the library and print; no logic lives here. :func:`main` is the only place
(besides the server's handler) where :class:`~lorareg.errors.LoraregError` is caught: it becomes one
``error:`` line on stderr and the exit code of ``DESIGN.md`` (0 ok, 1 refused, 2 bad input, 3 not found,
4 network/server). ``--debug`` shows the traceback as well.

Heavy imports (fastapi, httpx, cryptography backends) happen inside the commands that need them, so
``lorareg --help`` stays fast; nothing here imports torch.
"""

from __future__ import annotations

import sys
import traceback

import typer

from lorareg import __version__
from lorareg.cli import (
    admin_cmd,
    inspect_cmd,
    provenance_cmd,
    registry_cmd,
    serve_cmd,
    signing_cmd,
    takedown_cmd,
    trust_cmd,
)
from lorareg.cli._output import error_line
from lorareg.errors import LoraregError

app = typer.Typer(
    name="lorareg",
    help="Registry and provenance for LoRA adapters: inspect, sign, verify, publish, pull, search, serve.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_debug = False


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"lorareg {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Registry and provenance for LoRA adapters of image diffusion models."""
    global _debug
    _debug = debug


for _module in (
    inspect_cmd,
    signing_cmd,
    trust_cmd,
    serve_cmd,
    registry_cmd,
    admin_cmd,
    takedown_cmd,
    provenance_cmd,
):
    _module.register(app)


def main() -> None:
    """Run the CLI; turn lorareg errors into one line on stderr and the documented exit code."""
    try:
        app(standalone_mode=True)
    except LoraregError as e:
        if _debug:
            traceback.print_exc()
        error_line(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(130)
