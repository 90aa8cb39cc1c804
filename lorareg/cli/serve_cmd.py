"""``lorareg serve``: run the registry (API and web UI) with uvicorn, optionally seeding the demo catalogue.

The command builds settings (flags over ``LORAREG_*`` variables, read only by ``server/config.py``), opens
the registry — which creates the registry signing key on first start, creates the schema in an empty
database and refuses one at another schema revision ("run 'lorareg admin migrate'") —, collects upload
leftovers older than ``LORAREG_GC_GRACE_S``, seeds the demo when asked, prints the URL (and demo tokens) and
hands the app to uvicorn. No registry logic lives here.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from lorareg.registry import Registry

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the root app."""
    app.command("serve")(serve)


def serve(
    data: Path | None = typer.Option(
        None,
        "--data",
        help="Data directory (database, blobs, registry key). Default: LORAREG_HOME or ./lorareg-data.",
    ),
    host: str = typer.Option(DEFAULT_HOST, "--host", help="Interface to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", min=1, max=65535, help="TCP port."),
    demo: bool = typer.Option(
        False, "--demo", help="Seed (idempotently) a catalogue of signed sample adapters."
    ),
    read: str | None = typer.Option(
        None,
        "--read",
        help="Who may read: public, or signed-in (every read needs a token or a session). "
        "Default: LORAREG_READ or public.",
        show_default=False,
    ),
) -> None:
    """Run the registry server; print its URL (and, with --demo, a reviewer and an admin token)."""
    import uvicorn

    from lorareg.server.app import create_app, open_registry_for
    from lorareg.server.config import check_read_mode, settings_from_env
    from lorareg.server.pathsend import UVICORN_OPTIONS

    settings = settings_from_env().with_overrides(
        home=data, read=check_read_mode(read, "--read") if read is not None else None
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    registry = open_registry_for(settings)
    collected = registry.collect_garbage(older_than_s=settings.gc_grace_s)
    if collected.temporary_uploads or collected.unpublished_blobs:
        typer.echo(
            f"start-up gc: removed {collected.temporary_uploads} temporary upload(s), "
            f"{collected.unpublished_blobs} unpublished blob(s)"
        )
    url = f"http://{host}:{port}"
    if demo:
        _seed_and_print(registry, settings.home, url)
    keys = registry.keys()
    typer.echo(f"lorareg registry at {url}  (data: {settings.home}, read: {settings.read})")
    for key in keys:
        typer.echo(f"registry key id: {key['keyid']}  (trust it: lorareg trust add-registry {url})")
    sys.stdout.flush()
    _configure_logging()
    uvicorn.run(
        create_app(settings, registry=registry),
        host=host,
        port=port,
        access_log=False,
        log_level="info",
        proxy_headers=False,  # the app honours forwarded headers itself, from LORAREG_TRUSTED_PROXIES only
        **UVICORN_OPTIONS,  # blobs sent with sendfile (docs/deployment.md, "Without a proxy")
    )


def _seed_and_print(registry: Registry, home: Path, url: str) -> None:
    from lorareg.demo.catalogue import seed_demo

    seed = seed_demo(registry, home)
    typer.echo(f"demo catalogue: {seed.published} adapters published now, {seed.existing} already there")
    typer.echo(f"reviewer token: {seed.reviewer_token}")
    typer.echo(f"admin token:    {seed.admin_token}")
    for namespace, token in sorted(seed.publisher_tokens.items()):
        typer.echo(f"publisher token ({namespace}): {token}")
    typer.echo(f"try: lorareg search --registry {url}")


def _configure_logging() -> None:
    """One access-log line per request on stderr (uvicorn's own access log is off: ours omits queries)."""
    import logging  # only the server logs: not imported by every other command

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    for name in ("lorareg.access", "lorareg.server"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
