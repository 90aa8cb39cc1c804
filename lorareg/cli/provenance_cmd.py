"""``lorareg provenance IMAGE.png``: which adapters an image says made it, and what became of them since.

Reads the image's ``lorareg`` and ``parameters`` chunks (written by ``lorareg.save_image``); with a
registry (``--registry`` or ``LORAREG_REGISTRY``) asks it for each adapter's current status by the
recorded ``name@version``, cross-checked against the SHA-256 (active, yanked or revoked since when and why;
``mismatch`` when the registry's bytes for that ref are not the image's). Offline it reports what the
image claims, and says so: an image's chunks are unsigned text anyone can write.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lorareg.cli._output import print_json, safe_text

if TYPE_CHECKING:
    from lorareg.images.provenance import AdapterStatus


def register(app: typer.Typer) -> None:
    """Add ``provenance`` to the root app."""
    app.command("provenance")(provenance)


def provenance(
    image: Path = typer.Argument(..., help="A PNG written by lorareg.save_image (or any A1111 PNG)."),
    registry: str | None = typer.Option(
        None, "--registry", envvar="LORAREG_REGISTRY", help="Registry URL to ask for current status."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Report the adapters an image claims and, with a registry, their current status."""
    from lorareg.errors import NotFoundError
    from lorareg.images.provenance import current_status, read_provenance

    if not image.is_file():  # a missing file is "not found" (3) in every command, not bad input
        raise NotFoundError(f"no such file: {safe_text(image)}")
    claimed = read_provenance(image)
    statuses = None
    if registry:
        from lorareg.client import Client
        from lorareg.client.credentials import token_for

        with Client(registry, token_for(registry)) as client:
            statuses = current_status(claimed, client.resolve)
    rows = [_row(use.to_json(), None) for use in claimed.adapters]
    if statuses is not None:
        rows = [_row(s.adapter.to_json(), s) for s in statuses]
    if as_json:
        print_json(
            {"image": str(image), "registry": registry, "adapters": rows, "parameters": claimed.parameters}
        )
        return
    _print_human(image, registry, rows, claimed.parameters)


def _row(use: dict[str, Any], status: AdapterStatus | None) -> dict[str, Any]:
    row = dict(use)
    row["status"] = status.status if status else "unchecked"
    row["status_reason"] = status.reason if status else None
    row["revoked_at"] = status.revoked_at if status else None
    row["yanked_at"] = status.yanked_at if status else None
    row["registry_ref"] = status.registry_ref if status else None
    row["mismatch"] = status.mismatch if status else None
    return row


def _print_human(
    image: Path, registry: str | None, rows: list[dict[str, Any]], parameters: str | None
) -> None:
    typer.echo(f"{safe_text(image)}: {len(rows)} lorareg adapter(s)")
    if not rows and parameters:
        typer.echo("  no lorareg chunk; A1111 parameters: " + safe_text(parameters, limit=200))
    for row in rows:
        status = _status_text(row)
        typer.echo(f"  {safe_text(row['ref'])}  weight {row['weight']:g}  {status}")
        typer.echo(f"    sha256 {safe_text(row['sha256'])}  licence {safe_text(row['license'] or '-')}")
        if row["creators"]:
            typer.echo("    creators: " + ", ".join(safe_text(c) for c in row["creators"]))
        if row["mismatch"]:
            typer.echo("    mismatch: " + safe_text(row["mismatch"]))
    if registry is None and rows:
        typer.echo("(offline: statuses are what the image claims; pass --registry to check them)")


def _status_text(row: dict[str, Any]) -> str:
    """``revoked since 2025-01-02T03:04:05Z (takedown: likeness)``; times and reasons are server text."""
    text = str(row["status"])
    since = row["revoked_at"] if row["status"] == "revoked" else row["yanked_at"]
    if since and row["status"] in ("revoked", "yanked"):
        text += f" since {safe_text(since)}"
    if row["registry_ref"] and row["registry_ref"] != row["ref"]:
        text += f" as {safe_text(row['registry_ref'])}"
    return text + (f" ({safe_text(row['status_reason'])})" if row["status_reason"] else "")
