"""``lorareg takedown``: file a takedown request, follow it, and (reviewers) list and decide requests.

The forms scripts rely on (docs/web.md)::

    lorareg takedown request REF --reason likeness|character|style|license|other \\
        --claimant NAME --contact EMAIL --details TEXT --good-faith [--json]
                                                                     # prints the tracking id / {"id": …}
    lorareg takedown status ID [--json]
    lorareg takedown list [--status pending] [--json]                # reviewer token
    lorareg takedown decide ID --uphold|--reject|--more-info --reason TEXT [--all-versions]

Registry and token come from ``--registry``/``--token`` or ``LORAREG_REGISTRY``/``LORAREG_TOKEN``. Commands
parse, call :class:`lorareg.client.Client` and print; the workflow lives in
``lorareg.registry.takedown``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from lorareg.cli._output import print_json, safe_text
from lorareg.errors import InputError

DEFAULT_REGISTRY = "http://127.0.0.1:8000"

_REGISTRY = typer.Option(DEFAULT_REGISTRY, "--registry", envvar="LORAREG_REGISTRY", help="Registry URL.")
_TOKEN = typer.Option(None, "--token", envvar="LORAREG_TOKEN", help="API token (lrg_…).", show_default=False)
_JSON = typer.Option(False, "--json", help="Print JSON.")
GOOD_FAITH_STATEMENT = (
    "the information in this request is accurate, and I am the person concerned or am authorised to act "
    "for them"
)


class Reason(StrEnum):
    """Why removal is asked for (the same five the web form offers)."""

    likeness = "likeness"
    character = "character"
    style = "style"
    license = "license"
    other = "other"


takedown_app = typer.Typer(
    name="takedown",
    help="Takedown requests: file and follow one; reviewers list and decide them.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``takedown`` command group to the root app."""
    app.add_typer(takedown_app)


@takedown_app.command("request")
def request(
    ref: str = typer.Argument(..., help="The adapter version: ns/name@version (or ns/name, or a hash)."),
    reason: Reason = typer.Option(..., "--reason", help="Why it should be removed."),
    claimant: str = typer.Option(..., "--claimant", help="Your name (or the rights holder's)."),
    contact: str = typer.Option(..., "--contact", help="E-mail address for the reviewers' questions."),
    details: str = typer.Option(..., "--details", help="What is infringed, and the evidence."),
    good_faith: bool = typer.Option(
        False,
        "--good-faith",
        help="Required: affirm that the information is accurate and that you are the person concerned "
        "or act for them.",
    ),
    as_json: bool = _JSON,
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """File a takedown request against REF; print its tracking id (needs --good-faith)."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    if not good_faith:
        raise InputError(
            f"a takedown request needs the good-faith statement; re-run with --good-faith to affirm: "
            f"{GOOD_FAITH_STATEMENT}"
        )

    with Client(registry, token_for(registry, token)) as client:
        answer = client.file_takedown(
            ref,
            reason=reason.value,
            claimant=claimant,
            contact=contact,
            details=details,
            good_faith=good_faith,
        )
    if as_json:
        print_json({"id": answer["id"]})
        return
    typer.echo(safe_text(answer["id"]))
    page = f"{registry.rstrip('/')}/takedowns/{answer['id']}"  # the human status page, not the JSON
    typer.echo(f"follow it at: {safe_text(page)}", err=True)


@takedown_app.command("status")
def status(
    request_id: str = typer.Argument(..., metavar="ID", help="The tracking id (td_…)."),
    as_json: bool = _JSON,
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Show the status of a takedown request."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        answer = client.takedown_status(request_id)
    if as_json:
        print_json(answer)
        return
    typer.echo(_line(answer))
    if answer.get("public_reason"):
        typer.echo(f"  reason given: {safe_text(answer['public_reason'])}")


@takedown_app.command("list")
def list_requests(
    status: str | None = typer.Option(
        None, "--status", help="Only this status: pending, more-info, upheld, rejected."
    ),
    as_json: bool = _JSON,
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """List takedown requests, oldest first (needs a reviewer token)."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        answer = client.list_takedowns(status)
    if as_json:
        print_json(answer)
        return
    for item in answer["items"]:
        typer.echo(_line(item) + f"  by {safe_text(item.get('claimant', ''), limit=40)}")
    if not answer["items"]:
        typer.echo("no takedown requests", err=True)


@takedown_app.command("decide")
def decide(
    request_id: str = typer.Argument(..., metavar="ID", help="The tracking id (td_…)."),
    uphold: bool = typer.Option(False, "--uphold", help="Uphold: revoke the version everywhere."),
    reject: bool = typer.Option(False, "--reject", help="Reject the request."),
    more_info: bool = typer.Option(False, "--more-info", help="Ask the claimant for more information."),
    reason: str = typer.Option(..., "--reason", help="The public reason for the decision."),
    all_versions: bool = typer.Option(False, "--all-versions", help="With --uphold: revoke every version."),
    as_json: bool = _JSON,
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Decide a takedown request (needs a reviewer token)."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    chosen = [
        name for name, flag in (("uphold", uphold), ("reject", reject), ("more-info", more_info)) if flag
    ]
    if len(chosen) != 1:
        raise InputError("give exactly one of --uphold, --reject, --more-info")
    if all_versions and chosen[0] != "uphold":
        raise InputError("--all-versions goes with --uphold only")
    with Client(registry, token_for(registry, token)) as client:
        answer = client.decide_takedown(
            request_id, decision=chosen[0], reason=reason, all_versions=all_versions
        )
    if as_json:
        print_json(answer)
        return
    typer.echo(_line(answer))


def _line(item: dict[str, Any]) -> str:
    return safe_text(
        f"{item['id']}  {item['status']:9}  {item['ref']}  {item['reason']}  {item.get('created', '')}",
        limit=200,
    )
