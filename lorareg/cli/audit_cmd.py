"""CLI: ``lorareg audit DIR`` — check a folder a UI loads LoRAs from against the registry's record.

Parses, calls :mod:`lorareg.client.folders.audit` (and ``quarantine``), prints one line per file or the
report as JSON. Exit 1 when anything is revoked, a near-duplicate of a revoked version, or modified; 0
otherwise; 3 for a missing folder; 4 when the registry named cannot be reached and no revocation list is
held for it (``--registry`` omitted: offline, from the cached list, whose age is printed).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lorareg.cli._output import print_json, safe_text
from lorareg.cli.import_cmd import HASH_CACHE_NAME
from lorareg.cli.registry_cmd import _TOKEN

if TYPE_CHECKING:
    from lorareg.client.folders.audit import AuditReport


def register(app: typer.Typer) -> None:
    """Add ``audit`` to the root app."""
    app.command("audit")(audit)


def audit(
    directory: Path = typer.Argument(..., help="The folder a UI loads LoRAs from."),
    registry: str | None = typer.Option(
        None,
        "--registry",
        envvar="LORAREG_REGISTRY",
        help="Registry URL (omit: offline, cached revocations).",
    ),
    quarantine_dir: Path | None = typer.Option(
        None, "--quarantine", help="Move revoked and modified files (with sidecars) here, with a note."
    ),
    watch: float | None = typer.Option(None, "--watch", min=1, help="Re-audit every SECONDS (render nodes)."),
    runs: int = typer.Option(0, "--runs", min=0, hidden=True, help="With --watch: stop after N audits."),
    trust: Path | None = typer.Option(
        None, "--trust", help="Trust file (default ~/.config/lorareg/trust.toml)."
    ),
    rehash: bool = typer.Option(False, "--rehash", help="Ignore the hash cache; read every file again."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    token: str | None = _TOKEN,
) -> None:
    """Audit DIR: verified / known / revoked / yanked / modified / unknown / pickle, per file."""
    done = 0
    while True:
        report = _audit_once(directory, registry=registry, token=token, trust=trust,
                             quarantine_dir=quarantine_dir, rehash=rehash and done == 0)  # fmt: skip
        _print(report, as_json=as_json)
        done += 1
        if watch is None or (runs and done >= runs):
            break
        time.sleep(watch)
    if report.failed:
        raise typer.Exit(1)


def _audit_once(directory: Path, *, registry: str | None, token: str | None, trust: Path | None,
                quarantine_dir: Path | None, rehash: bool) -> AuditReport:  # fmt: skip
    from lorareg.client.cache import default_cache_dir
    from lorareg.client.folders.audit import audit_folder
    from lorareg.client.folders.hashcache import HashCache
    from lorareg.client.folders.quarantine import quarantine
    from lorareg.client.revocations import current_revocations, revocations_from
    from lorareg.signing.trust import load_trust

    store = load_trust(trust)
    max_age = store.policy.max_revocation_age
    cache = HashCache(default_cache_dir() / HASH_CACHE_NAME)
    if rehash:
        cache.clear()
    if registry is None:
        checked = current_revocations(store, max_age=max_age)
        report = audit_folder(directory, trust=store, checked=checked, client=None, cache=cache,
                              skip=quarantine_dir)  # fmt: skip
    else:
        from lorareg.client import Client
        from lorareg.client.credentials import token_for

        with Client(registry, token_for(registry, token)) as client:
            checked = revocations_from(client, store, max_age=max_age)
            report = audit_folder(directory, trust=store, checked=checked, client=client, cache=cache,
                                  skip=quarantine_dir)  # fmt: skip
    if quarantine_dir is not None:
        quarantine(report.items, root=directory, into=quarantine_dir)
    return report


def _print(report: AuditReport, *, as_json: bool) -> None:
    if as_json:
        print_json(report.to_json())
        return
    for item in report.items:
        extra = f"  {item.ref}" if item.ref else ""
        why = f"  ({item.reason})" if item.reason and item.status != "unknown" else ""
        typer.echo(safe_text(f"{item.status:15} {item.path}{extra}{why}", limit=400))
    rev = report.revocations
    if rev.get("version") is not None:
        typer.echo(f"revocation list v{rev['version']} from {rev['source']}, issued {rev['issued']} "
                   f"({_age(rev.get('age_s'))} old)", err=True)  # fmt: skip
    for note in report.notes:
        typer.echo(f"note: {safe_text(note)}", err=True)
    counts = ", ".join(f"{n} {s}" for s, n in report.counts().items()) or "no LoRA files"
    typer.echo(f"{counts}; {report.hashed} hashed, {report.from_cache} from the hash cache", err=True)


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
