"""``lorareg webhook``: register webhooks, list them, read their delivery logs, redeliver.

The forms scripts rely on (docs/studio.md)::

    lorareg webhook add URL --event version.published [--event …] [--namespace NS] [--json]
    lorareg webhook list [--json]
    lorareg webhook delete ID
    lorareg webhook deliveries ID [--json]
    lorareg webhook redeliver ID DELIVERY_ID

Admin tokens register hooks for every namespace; publisher tokens only with ``--namespace`` of their own.
``add`` prints the secret once: keep it to verify the ``X-Lorareg-Signature`` header.
"""

from __future__ import annotations

from typing import Any

import typer

from lorareg.cli._output import print_json, safe_text

DEFAULT_REGISTRY = "http://127.0.0.1:8000"

_REGISTRY = typer.Option(DEFAULT_REGISTRY, "--registry", envvar="LORAREG_REGISTRY", help="Registry URL.")
_TOKEN = typer.Option(None, "--token", envvar="LORAREG_TOKEN", help="API token (lrg_…).", show_default=False)
_JSON = typer.Option(False, "--json", help="Print JSON.")

webhook_app = typer.Typer(
    name="webhook", help="Webhooks: add, list, delete, deliveries, redeliver.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    """Add the ``webhook`` command group to the root app."""
    app.add_typer(webhook_app)


@webhook_app.command("add")
def add(
    url: str = typer.Argument(..., help="Where deliveries are POSTed (http or https)."),
    event: list[str] = typer.Option(  # noqa: B006 - typer reads the default, never mutates it
        [],
        "--event",
        help="Event type (repeatable): version.published, version.yanked, version.revoked, "
        "takedown.filed, takedown.decided, alias.moved.",
    ),
    namespace: str | None = typer.Option(None, "--namespace", help="Only this namespace's events."),
    as_json: bool = _JSON,
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Register URL for the given events; prints the hook id and its secret (shown once)."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        hook = client.add_webhook(url, list(event), namespace=namespace)
    if as_json:
        print_json(hook)
        return
    typer.echo(f"{safe_text(hook['id'])}  {safe_text(hook['url'])}")
    typer.echo(f"secret: {safe_text(hook['secret'])}  (shown once: keep it to verify signatures)")


@webhook_app.command("list")
def list_hooks(as_json: bool = _JSON, registry: str = _REGISTRY, token: str | None = _TOKEN) -> None:
    """The webhooks this token may manage."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        answer = client.webhooks()
    if as_json:
        print_json(answer)
        return
    for hook in answer.get("webhooks", []):
        scope = hook.get("namespace") or "all namespaces"
        typer.echo(f"{safe_text(hook['id'])}  {safe_text(hook['url'])}  [{safe_text(scope)}]  "
                   f"{safe_text(' '.join(hook.get('events', [])))}")  # fmt: skip


@webhook_app.command("delete")
def delete(
    hook_id: str = typer.Argument(..., help="The hook id."),
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Delete a webhook: no new deliveries are queued for it."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        hook = client.delete_webhook(hook_id)
    typer.echo(f"{safe_text(hook['id'])} deleted")


@webhook_app.command("deliveries")
def deliveries(
    hook_id: str = typer.Argument(..., help="The hook id."),
    as_json: bool = _JSON,
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """A webhook's delivery log, newest first: status, attempts and the last HTTP status code."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        answer = client.webhook_deliveries(hook_id)
    if as_json:
        print_json(answer)
        return
    for item in answer.get("deliveries", []):
        typer.echo(_delivery_line(item))


@webhook_app.command("redeliver")
def redeliver(
    hook_id: str = typer.Argument(..., help="The hook id."),
    delivery_id: int = typer.Argument(..., help="The delivery to send again."),
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Queue a delivery's event again (as a new delivery, due now)."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        item = client.redeliver(hook_id, delivery_id)
    typer.echo(_delivery_line(item))


def _delivery_line(item: dict[str, Any]) -> str:
    return (
        f"{safe_text(item.get('id'))}  {safe_text(item.get('event'))}  {safe_text(item.get('status'))}  "
        f"attempts={safe_text(item.get('attempts'))}  last_status={safe_text(item.get('last_status'))}"
    )
