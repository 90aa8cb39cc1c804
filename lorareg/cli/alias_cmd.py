"""``lorareg alias``: pipeline aliases such as ``ns/name@prod``.

The forms scripts rely on (docs/registry.md)::

    lorareg alias set NS/NAME ALIAS VERSION [--json]     # publisher of NS or admin token
    lorareg alias list NS/NAME [--json]
    lorareg alias delete NS/NAME ALIAS [--json]

Registry and token come from ``--registry``/``--token`` or ``LORAREG_REGISTRY``/``LORAREG_TOKEN``. Every
other command that takes a reference accepts ``ns/name@alias`` (``pull``, ``show``, the loader); the
rules and the signed, logged moves live in ``lorareg.registry.aliases``.
"""

from __future__ import annotations

from typing import Any

import typer

from lorareg.cli._output import print_json, safe_text

DEFAULT_REGISTRY = "http://127.0.0.1:8000"

_REGISTRY = typer.Option(DEFAULT_REGISTRY, "--registry", envvar="LORAREG_REGISTRY", help="Registry URL.")
_TOKEN = typer.Option(None, "--token", envvar="LORAREG_TOKEN", help="API token (lrg_…).", show_default=False)
_JSON = typer.Option(False, "--json", help="Print JSON.")

alias_app = typer.Typer(
    name="alias",
    help="Pipeline aliases (ns/name@prod): set, list, delete.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``alias`` command group to the root app."""
    app.add_typer(alias_app)


@alias_app.command("set")
def set_alias(
    name: str = typer.Argument(..., help="The adapter, ns/name."),
    alias: str = typer.Argument(..., help="The alias, e.g. prod (a-z, 0-9, '-'; starts with a letter)."),
    version: str = typer.Argument(..., help="The exact version it should name, e.g. 2.1.0."),
    as_json: bool = _JSON,
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Point NAME@ALIAS at VERSION (signed by the registry and recorded in its transparency log)."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        record = client.set_alias(_checked(name), alias, version)
    _print(record, as_json)


@alias_app.command("list")
def list_aliases(
    name: str = typer.Argument(..., help="The adapter, ns/name."),
    as_json: bool = _JSON,
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """List NAME's aliases and the versions they name."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        answer = client.aliases(_checked(name))
    if as_json:
        print_json(answer)
        return
    for record in answer.get("aliases", []):
        _print(record, False)


@alias_app.command("delete")
def delete_alias(
    name: str = typer.Argument(..., help="The adapter, ns/name."),
    alias: str = typer.Argument(..., help="The alias to remove."),
    as_json: bool = _JSON,
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Remove NAME@ALIAS (the deletion is signed and logged too); prints what it named."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        record = client.delete_alias(_checked(name), alias)
    _print(record, as_json)


def _checked(name: str) -> str:
    """Refuse a malformed name before any request (it becomes part of a URL path)."""
    from lorareg.manifest.ids import check_name

    return check_name(name.strip(), "adapter name")


def _print(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(record)
        return
    typer.echo(
        f"{safe_text(record.get('name'))}@{safe_text(record.get('alias'))} -> "
        f"{safe_text(record.get('version'))}"
        f"  (moved by {safe_text(record.get('moved_by'))}, log entry {safe_text(record.get('tlog_index'))})"
    )
