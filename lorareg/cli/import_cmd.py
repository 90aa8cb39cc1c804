"""CLI: ``lorareg import DIR`` — bring a folder of adapters (with their UI sidecars) into lorareg.

Parses, calls :mod:`lorareg.client.folders` and prints: a final table (imported / duplicate / refused /
needs review and why), or the report as JSON with ``--json``. ``--out DRAFTS`` writes one draft manifest per
adapter and the report; ``--publish --namespace NS --key K`` signs and publishes (resumable). Exit 0, or 1
when a publish was refused; a missing folder 3, bad options 2, an unreachable registry 4.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lorareg.cli._output import print_json, safe_text
from lorareg.cli.registry_cmd import _REGISTRY, _TOKEN

if TYPE_CHECKING:
    from lorareg.client.folders.importing import ImportReport

HASH_CACHE_NAME = "folder-hashes.json"  # in the client cache dir, shared with `lorareg audit`


def register(app: typer.Typer) -> None:
    """Add ``import`` to the root app."""
    app.command("import")(import_library)


def import_library(
    directory: Path = typer.Argument(
        ..., help="The folder tree to import (symlinks out of it are not followed)."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write draft manifests (TOML) and the report here."),
    publish: bool = typer.Option(
        False, "--publish", help="Sign and publish the drafts (needs --namespace, --key)."
    ),
    namespace: str | None = typer.Option(None, "--namespace", help="Your publisher namespace."),
    key: Path | None = typer.Option(None, "--key", help="Publisher private key (PEM)."),
    version: str = typer.Option("1.0.0", "--version", help="Version given to every imported adapter."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Import DIR: facts, hashes and sidecar claims per adapter; draft manifests; optionally publish."""
    from lorareg.client.cache import default_cache_dir
    from lorareg.client.folders.hashcache import HashCache
    from lorareg.client.folders.importing import scan_library, write_drafts
    from lorareg.errors import InputError
    from lorareg.manifest import SemVer, check_namespace

    if publish and (namespace is None or key is None):
        raise InputError("--publish needs --namespace NS and --key KEY")
    if namespace is not None:
        check_namespace(namespace, "--namespace")
    SemVer.parse(version, "--version")
    cache = HashCache(default_cache_dir() / HASH_CACHE_NAME)
    report = scan_library(directory, namespace=namespace or "local", version=version, cache=cache)
    if publish:
        assert key is not None
        _publish(report, key=key, registry=registry, token=token)
    if out is not None:
        write_drafts(report, out)
    if as_json:
        print_json(report.to_json())
    else:
        _print_table(report)
    if any(e.published == "failed" for e in report.entries):
        raise typer.Exit(1)


def _publish(report: ImportReport, *, key: Path, registry: str, token: str | None) -> None:
    from lorareg.cli.signing_cmd import load_signing_key
    from lorareg.client import Client
    from lorareg.client.credentials import token_for
    from lorareg.client.folders.publishing import publish_import

    signer = load_signing_key(key)
    with Client(registry, token_for(registry, token)) as client:
        if not sys.stderr.isatty():
            publish_import(report, client=client, key=signer)
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress

        with Progress("[bold]publishing[/]", BarColumn(), MofNCompleteColumn(),
                      console=Console(stderr=True), transient=True) as bar:  # fmt: skip
            task = bar.add_task("publishing", total=len(report.entries))
            publish_import(report, client=client, key=signer, step=lambda _e: bar.advance(task))


def _print_table(report: ImportReport) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"import of {safe_text(report.root)}")
    for column in ("adapter", "status", "why / where"):
        table.add_column(column)
    for entry in report.entries:
        status = entry.published or ("needs review" if entry.review else "imported")
        why = "; ".join(entry.review) or ""
        if len(entry.paths) > 1:
            why = f"{why}; also at {len(entry.paths) - 1} more path(s)".lstrip("; ")
        why = "; ".join([why, *entry.problems]).strip("; ")
        table.add_row(
            Text(safe_text(entry.ref or entry.manifest.ref)), status, Text(safe_text(why, limit=200))
        )
    for path, reason in report.refused:
        table.add_row(Text(safe_text(path.name)), "refused", Text(safe_text(reason, limit=200)))
    Console(soft_wrap=False).print(table)
    counts = report.counts()
    typer.echo(", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()))
