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
from typing import cast

import typer

from lorareg import __version__
from lorareg.cli import (
    admin_cmd,
    alias_cmd,
    audit_cmd,
    fingerprint_cmd,
    import_cmd,
    inspect_cmd,
    log_cmd,
    login_cmd,
    provenance_cmd,
    registry_cmd,
    sample_cmd,
    serve_cmd,
    signing_cmd,
    takedown_cmd,
    trust_cmd,
    webhook_cmd,
)
from lorareg.cli._coerce import install as _install_plain_coercion
from lorareg.cli._help import install as _install_plain_help
from lorareg.cli._output import error_line
from lorareg.errors import LoraregError

_install_plain_coercion()  # str/Path values without pydantic: see lorareg/cli/_coerce.py
_install_plain_help()  # --help without <bool>/<str> tags: see lorareg/cli/_help.py
# httpx imports its own command line (httpx._main: click, rich, pygments; ~35 ms) whenever those are
# installed, and falls back to a stub when that import fails. This process never runs httpx's CLI, so
# the import is blocked here (a None entry makes it fail) before any command imports httpx.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def _root_app() -> typer.Typer:
    """The root app's settings, shared by the full app and :func:`_app_for`'s one-command app."""
    return typer.Typer(
        name="lorareg",
        help="Registry and provenance for LoRA adapters: "
        "inspect, sign, verify, publish, pull, search, serve.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


app = _root_app()

USAGE_EXIT_CODE = 2  # DESIGN.md: bad input or usage
ABORT_EXIT_CODE = 1  # click's own code for an aborted prompt
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as shells report it

_NO_ARGS_IS_HELP = "NoArgsIsHelpError"  # matched by name, as typer does: its module path is private
# click's ClickException, the base of every usage error: typer.TyperException where typer vendors click
# (0.2x), click's own class before; found through the public typer.BadParameter either way.
_CLICK_ERROR = cast(
    "type[Exception]", next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
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
    fingerprint_cmd,
    import_cmd,
    audit_cmd,
    sample_cmd,
    log_cmd,
    alias_cmd,
    webhook_cmd,
    login_cmd,
):
    _module.register(app)


def main() -> None:
    """Run the CLI; turn every error into one line on stderr and the documented exit code.

    click runs with ``standalone_mode=False`` so that its usage errors (unknown option, missing argument,
    bad value) reach this function instead of being drawn as a multi-line box: they become one
    ``error:`` line with a ``Try '… --help'`` hint and exit 2, like any other bad input. ``--help``,
    ``--version`` and a bare ``lorareg`` (which prints the help) behave exactly as click makes them.
    """
    try:
        code = _app_for(sys.argv[1:])(standalone_mode=False)
    except LoraregError as e:
        if _debug:
            import traceback  # only with --debug

            traceback.print_exc()
        error_line(str(e))
        sys.exit(e.exit_code)
    except _CLICK_ERROR as e:  # UsageError, BadParameter, NoSuchOption, MissingParameter, …
        if type(e).__name__ != _NO_ARGS_IS_HELP:  # that one's help text is already printed
            error_line(_usage_message(e))
        sys.exit(USAGE_EXIT_CODE)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        error_line("aborted")
        sys.exit(ABORT_EXIT_CODE)
    except KeyboardInterrupt:
        error_line("interrupted")
        sys.exit(INTERRUPTED_EXIT_CODE)
    sys.exit(code if isinstance(code, int) else 0)


def _app_for(args: list[str]) -> typer.Typer:
    """The root app holding only the top-level command ``args`` names, else the full app.

    typer turns every registered command into a click command (signatures, type hints, options) before it
    runs any: ~50 commands, ~15 ms of a ``lorareg verify``'s start-up. A one-command root app with the same
    settings and the same root options parses, runs and prints help exactly as the full app does for that
    command; anything else (``--help``, ``--version``, a group such as ``trust``, an unknown name) gets
    the full app.
    """
    position = 0
    while position < len(args) and args[position] in _ROOT_FLAGS:
        position += 1
    if position >= len(args):
        return app
    chosen = [info for info in app.registered_commands if info.name == args[position]]
    if not chosen:
        return app
    single = _root_app()
    single.registered_callback = app.registered_callback
    single.registered_commands = chosen
    return single


_ROOT_FLAGS = frozenset({"--debug"})  # the root options that take no value and do not exit (see _root)


def _usage_message(error: Exception) -> str:
    """click's message on one line, with the help hint of the command it came from."""
    message = " ".join(getattr(error, "format_message", error.__str__)().split()).rstrip(".")
    ctx = getattr(error, "ctx", None)
    if ctx is None:
        return message
    return f"{message}. Try '{ctx.command_path} --help'"
