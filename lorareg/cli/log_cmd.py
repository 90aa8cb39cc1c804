"""``lorareg log``: monitor a registry's transparency log.

::

    lorareg log verify [--registry URL] [--trust FILE] [--json]
    lorareg log watch --registry URL --state DIR [--interval SECONDS] [--polls N] [--trust FILE] [--json]

``verify`` replays the whole log once (``lorareg.client.monitor``); ``watch`` does it every ``--interval``
seconds, keeping its checkpoints in ``--state`` (a cron job passes ``--polls 1``). Both exit 0 when the log
and the API agree, 1 on any inconsistency (a split view or rollback, a root that does not match, a
version served without a log entry …), 2 on bad input, 4 when the registry cannot be reached. The registry
key comes from the trust file (``lorareg trust add-registry``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lorareg.cli._output import print_json, safe_text
from lorareg.errors import InputError

if TYPE_CHECKING:
    from lorareg.client.monitor import MonitorReport
    from lorareg.signing.keys import PublicKey

DEFAULT_REGISTRY = "http://127.0.0.1:8000"

_TRUST = typer.Option(None, "--trust", help="Trust file (default ~/.config/lorareg/trust.toml).")
_JSON = typer.Option(False, "--json", help="Print JSON (one object per poll).")

log_app = typer.Typer(
    name="log",
    help="The transparency log: replay and verify it, or watch it for inconsistencies.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``log`` command group to the root app."""
    app.add_typer(log_app)


@log_app.command("verify")
def verify(
    registry: str = typer.Option(
        DEFAULT_REGISTRY, "--registry", envvar="LORAREG_REGISTRY", help="Registry URL."
    ),
    trust: Path | None = _TRUST,
    as_json: bool = _JSON,
) -> None:
    """Replay the whole log: recompute the root, and check it against everything the API serves."""
    from lorareg.client import Client
    from lorareg.client.checkpoints import CheckpointStore
    from lorareg.client.credentials import token_for
    from lorareg.client.monitor import verify_log

    keys = _registry_keys(trust)
    with Client(registry, token_for(registry)) as client:
        report = verify_log(client, CheckpointStore(client.cache.root), keys=keys)
    _print(report, as_json=as_json)
    if not report.ok:
        raise typer.Exit(1)


@log_app.command("watch")
def watch(
    registry: str = typer.Option(..., "--registry", envvar="LORAREG_REGISTRY", help="Registry URL."),
    state: Path = typer.Option(..., "--state", help="Directory for the checkpoints this monitor keeps."),
    interval: float = typer.Option(60.0, "--interval", help="Seconds between polls."),
    polls: int | None = typer.Option(None, "--polls", help="Stop after N polls (default: until a problem)."),
    trust: Path | None = _TRUST,
    as_json: bool = _JSON,
) -> None:
    """Poll the log; keep every checkpoint; exit 1 on the first inconsistency."""
    from lorareg.client import Client
    from lorareg.client.checkpoints import CheckpointStore
    from lorareg.client.credentials import token_for
    from lorareg.client.monitor import watch as watch_log

    if interval < 0 or (polls is not None and polls < 1):
        raise InputError("--interval must be >= 0 and --polls >= 1")
    keys = _registry_keys(trust)
    with Client(registry, token_for(registry), cache_dir=state) as client:
        report = watch_log(
            client,
            CheckpointStore(state),
            keys=keys,
            interval_s=interval,
            polls=polls,
            report=lambda r: _print(r, as_json=as_json),
        )
    if not report.ok:
        raise typer.Exit(1)


def _registry_keys(trust: Path | None) -> list[PublicKey]:
    from lorareg.signing.trust import load_trust

    keys = load_trust(trust).registry_keys()
    if not keys:
        raise InputError("the trust file has no registry key: add one with `lorareg trust add-registry`")
    return keys


def _print(report: MonitorReport, *, as_json: bool) -> None:
    if as_json:
        print_json(report.to_json())
        return
    head = report.checkpoint
    verdict = "consistent" if report.ok else f"{len(report.problems)} problem(s)"
    typer.echo(
        f"{safe_text(report.registry)}: log {safe_text(head.origin)} of {head.size} entries, root "
        f"{head.root_hash.hex()[:16]}…; {report.versions} versions, {report.revoked} revoked digests: "
        f"{verdict}"
    )
    for problem in report.problems:
        typer.echo(f"  - {safe_text(problem)}")
