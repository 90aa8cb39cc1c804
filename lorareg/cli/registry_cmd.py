"""Registry commands: ``publish``, ``pull``, ``search``, ``show``, ``yank``, ``unyank``.

Each command parses its options, calls :class:`lorareg.client.Client` (and ``lorareg.signing`` to
sign before publishing) and prints; all checks live in the library. The registry URL and token come from
``--registry``/``--token`` or ``LORAREG_REGISTRY``/``LORAREG_TOKEN``. Progress bars go to stderr so that
stdout carries only the result (a ref and digest, a path, or JSON).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lorareg.cli._files import read_input_file, require_file
from lorareg.cli._output import hash_rows, print_json, safe_text

if TYPE_CHECKING:
    from lorareg.client.transport import Progress

DEFAULT_REGISTRY = "http://127.0.0.1:8000"

_REGISTRY = typer.Option(DEFAULT_REGISTRY, "--registry", envvar="LORAREG_REGISTRY", help="Registry URL.")
_TOKEN = typer.Option(None, "--token", envvar="LORAREG_TOKEN", help="API token (lrg_…).", show_default=False)


def register(app: typer.Typer) -> None:
    """Add the registry commands to the root app."""
    app.command("publish")(publish)
    app.command("pull")(pull)
    app.command("search")(search)
    app.command("show")(show)
    app.command("yank")(yank)
    app.command("unyank")(unyank)


def publish(
    file: Path = typer.Argument(..., help="The .safetensors adapter."),
    manifest: Path = typer.Option(..., "--manifest", help="manifest.toml draft."),
    key: Path = typer.Option(..., "--key", help="Publisher private key (PEM)."),
    preview: list[Path] = typer.Option(  # noqa: B006 - typer reads the default, never mutates it
        [], "--preview", help="Preview image (PNG/JPEG/WebP); repeatable."
    ),
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Sign FILE with its manifest and upload it (and any previews); print name@version and the sha256."""
    from lorareg.cli.signing_cmd import load_signing_key
    from lorareg.client import Client
    from lorareg.client.credentials import token_for
    from lorareg.manifest.drafting import ManifestDraft
    from lorareg.signing.sign import sign_file

    for image in preview:  # before anything is uploaded: a typo must not leave a version without previews
        require_file(image, "preview")
    draft = ManifestDraft.from_toml(read_input_file(manifest, "manifest"))
    bundle = sign_file(file, draft, load_signing_key(key))
    with Client(registry, token_for(registry, token)) as client, _progress("uploading") as progress:
        version = client.publish(file, bundle, progress=progress)
        for image in preview:
            client.add_preview(str(version["ref"]), image)
    typer.echo(f"{safe_text(version['ref'])}")
    typer.echo(f"sha256:{safe_text(version['sha256'])}")


def pull(
    ref: str = typer.Argument(..., help="ns/name, ns/name@version, ns/name@alias, or one of the six hashes."),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Verify signature, trust, revocation, policy."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Also copy the file into this directory (required with --no-verify: the only place it goes).",
    ),
    trust: Path | None = typer.Option(
        None, "--trust", help="Trust file (default ~/.config/lorareg/trust.toml)."
    ),
    into: Path | None = typer.Option(
        None, "--into", help="Install into this UI folder (ComfyUI/A1111 loras) with the sidecars it reads."
    ),
    layout: str = typer.Option("plain", "--layout", help="With --into: comfyui, a1111 or plain."),
    force: bool = typer.Option(
        False, "--force", help="With --into: replace a different file of the same name."
    ),
    any_family: bool = typer.Option(
        False,
        "--any-family",
        help="Accept a bare ns/name resolving to a version of another base family than the newest version.",
    ),
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Download REF into the local cache, verify it, and print the local path.

    With --no-verify nothing enters the cache (it holds verified files only): the file and its signature
    file are written to --out, which is then required, and the path printed is that copy. With --into the
    verified file is installed for a UI (docs/folders.md) and the installed path is printed. A bare ns/name
    says on stderr which version it resolved to, and is refused (exit 1) when that version targets another
    base family than the adapter's newest version (revoked or yanked), unless --any-family is given.
    """
    from lorareg.client import Client
    from lorareg.client.credentials import token_for
    from lorareg.client.resolution import is_bare_name, resolve_bare_name

    if is_bare_name(ref):
        with Client(registry, token_for(registry, token)) as client:
            resolution = resolve_bare_name(client, ref, any_family=any_family)
        typer.echo(safe_text(resolution.note), err=True)
        ref = resolution.ref
    if into is not None:
        _pull_into(ref, into, layout=layout, force=force, verify=verify, trust=trust, registry=registry,
                   token=token)  # fmt: skip
        return
    store, policy = _load_trust(trust) if verify else (None, None)
    with Client(registry, token_for(registry, token)) as client, _progress("downloading") as progress:
        store = _follow_rotation(client, store, trust) if store is not None else None
        path = client.pull(
            ref,
            verify=verify,
            trust=store,
            policy=policy,
            out_dir=out,
            progress=progress,
            on_resolved=lambda detail: _say_resolved(ref, detail),
        )
    typer.echo(str(path))


def _pull_into(ref: str, into: Path, *, layout: str, force: bool, verify: bool, trust: Path | None,
               registry: str, token: str | None) -> None:  # fmt: skip
    from lorareg.client import Client
    from lorareg.client.credentials import token_for
    from lorareg.client.folders.install import LAYOUTS, install
    from lorareg.errors import InputError

    if not verify:
        raise InputError("--into installs verified adapters only; drop --no-verify")
    if layout not in LAYOUTS:
        raise InputError(f"--layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if into.exists() and not into.is_dir():
        raise InputError(f"--into {into} is not a folder")
    store, policy = _load_trust(trust)
    with Client(registry, token_for(registry, token)) as client, _progress("downloading") as progress:
        installed = install(client, ref, into, layout=layout, trust=store, policy=policy, force=force,
                            progress=progress)  # fmt: skip
    typer.echo(str(installed.path))


def search(
    query: str | None = typer.Argument(
        None, help="Words matched against name, description, trigger words, creators, tags."
    ),
    family: str | None = typer.Option(
        None, "--family", help="Base family (sd1, sdxl, sd3, flux1, flux2, …)."
    ),
    license_id: str | None = typer.Option(None, "--license", help="Licence id, e.g. CC-BY-4.0."),
    namespace: str | None = typer.Option(None, "--namespace", help="Only this namespace (a team's space)."),
    limit: int = typer.Option(20, "--limit", min=1, max=100, help="Results per page."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON."),
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Search the catalogue (active versions; yanked and revoked are hidden)."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        page = client.search(query, family=family, license=license_id, namespace=namespace, limit=limit)
    if as_json:
        print_json(page)
        return
    for item in page["items"]:
        typer.echo(_summary_line(item))
    if not page["items"]:
        typer.echo("no adapters found", err=True)


def show(
    ref: str = typer.Argument(..., help="ns/name, ns/name@version, or a hash."),
    as_json: bool = typer.Option(False, "--json", help="Print the API's JSON."),
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Show one version: manifest, hashes, status, signers."""
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        detail = client.resolve(ref)
    if as_json:
        print_json(detail)
        return
    typer.echo(_summary_line(detail))
    for label, value in _show_rows(detail):
        typer.echo(f"  {label:14} {safe_text(value)}")
    for name, value in hash_rows(detail["hashes"]):
        typer.echo(f"  {name:14} {value}")


def yank(
    ref: str = typer.Argument(..., help="ns/name@version"),
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Hide a version from search and name resolution (still pullable by exact version)."""
    _yank_or_unyank(ref, registry, token, undo=False)


def unyank(
    ref: str = typer.Argument(..., help="ns/name@version"),
    registry: str = _REGISTRY,
    token: str | None = _TOKEN,
) -> None:
    """Undo a yank."""
    _yank_or_unyank(ref, registry, token, undo=True)


def _yank_or_unyank(ref: str, registry: str, token: str | None, *, undo: bool) -> None:
    from lorareg.client import Client
    from lorareg.client.credentials import token_for

    with Client(registry, token_for(registry, token)) as client:
        detail = client.unyank(ref) if undo else client.yank(ref)
    typer.echo(f"{safe_text(detail['ref'])} {safe_text(detail['status'])}")


def _show_rows(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """What ``show``'s help promises, in text: status, base model, trigger words, consent, creators,
    licence, signers (server text: every value goes through ``safe_text`` when printed)."""
    m = detail.get("manifest") or {}
    base, consent, lic = m.get("base_model") or {}, m.get("consent") or {}, m.get("license") or {}
    status = str(detail.get("status"))
    if detail.get("revocation_reason"):
        status += f" ({detail.get('revoked_at') or 'date unknown'}: {detail['revocation_reason']})"
    licence = str(lic.get("id") or "not stated")
    terms = [
        f"commercial use {'allowed' if lic.get('commercial_use') else 'not allowed'}",
        f"derivatives {'allowed' if lic.get('derivatives') else 'not allowed'}",
        "credit required" if lic.get("attribution_required") else "no credit required",
    ]
    creators = [
        f"{c.get('name')} ({c.get('role')})" if c.get("role") else str(c.get("name"))
        for c in m.get("creators") or []
    ]
    return [
        ("status", status),
        ("base model", f"{base.get('family', '?')}" + (f" ({base['id']})" if base.get("id") else "")),
        ("trigger words", ", ".join(m.get("trigger_words") or []) or "none"),
        ("consent", f"{consent.get('subject', '?')}, {consent.get('status', '?')}"),
        ("creators", ", ".join(creators) or "not stated"),
        ("licence", f"{licence}: {', '.join(terms)}"),
        ("signers", ", ".join(str(s) for s in detail.get("signers") or []) or "none"),
    ]


def _summary_line(item: dict[str, Any]) -> str:
    status = "" if item.get("status") == "active" else f" [{item.get('status')}]"
    status += " [unreviewed]" if item.get("unreviewed") else ""
    return safe_text(
        f"{item['ref']}{status}  {item.get('family')}  {item.get('license')}  {item['sha256'][:12]}  "
        f"{item.get('description') or ''}",
        limit=160,
    )


def _load_trust(path: Path | None) -> tuple[Any, Any]:
    from lorareg.signing.trust import load_trust

    store = load_trust(path)  # default: LORAREG_TRUST or ~/.config/lorareg/trust.toml
    return store, store.policy


def _follow_rotation(client: Any, store: Any, path: Path | None) -> Any:
    """A registry key rotation announced by a chain from a trusted key: trust the new key, say so."""
    from lorareg.client.keychain import follow_rotation
    from lorareg.signing.trust import default_trust_path

    followed = follow_rotation(client, store)
    if followed.notes:
        followed.trust.save(path or default_trust_path())
        for note in followed.notes:
            typer.echo(note, err=True)
    return followed.trust


def _no_progress(done: int, total: int) -> None:
    """The progress callback when no bar is shown."""


@contextmanager
def _progress(label: str) -> Iterator[Progress]:
    """A rich progress bar on stderr; yields the ``(done, total)`` callback the client calls.

    With stderr not a terminal (scripts, pipes, CI) no bar is drawn, so rich is not even imported: its
    import is a sizeable part of the CLI's start-up.
    """
    if not sys.stderr.isatty():
        yield _no_progress
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    console = Console(stderr=True)
    with Progress(
        f"[bold]{label}[/]",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _say_resolved(ref: str, detail: Any) -> None:
    """On stderr (stdout carries only the path): which version ``ns/name@alias`` gave."""
    name, _, tail = ref.partition("@")
    if tail and tail != detail.get("version"):
        typer.echo(
            f"{safe_text(ref)} gave {safe_text(detail.get('name'))}@{safe_text(detail.get('version'))} "
            f"(sha256:{safe_text(detail.get('sha256'))})",
            err=True,
        )
