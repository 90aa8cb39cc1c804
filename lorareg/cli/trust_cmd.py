"""CLI ``lorareg trust …``: add, list and remove trusted keys, and show the policy of the trust file.

Commands parse, call :mod:`lorareg.signing.trust`, print. ``add-registry`` is the one that touches the
network: it fetches ``URL/api/v1/keys``, shows each key's fingerprint and asks before trusting it; it never
prompts when stdin is not a terminal (``--yes`` is then required, after checking the fingerprint out of band).
The trust file is ``--trust``, else ``$LORAREG_TRUST``, else ``~/.config/lorareg/trust.toml``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lorareg.cli._output import print_json, safe_text
from lorareg.errors import InputError, RemoteError

if TYPE_CHECKING:
    from lorareg.signing.trust import TrustStore

KEYS_PATH = "/api/v1/keys"
FETCH_TIMEOUT_S = 10.0

_TRUST_HELP = "Trust file (default: $LORAREG_TRUST or ~/.config/lorareg/trust.toml)."

trust_app = typer.Typer(
    name="trust",
    help="Manage the trust file: trusted publisher and registry keys, and the policy.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``trust`` command group to the root app."""
    app.add_typer(trust_app, name="trust")


@trust_app.command("add")
def add(
    key_file: Path = typer.Argument(..., metavar="KEY.pub", help="The publisher's public key (PEM)."),
    role: str = typer.Option("publisher", "--role", help="publisher or registry."),
    namespace: str | None = typer.Option(None, "--namespace", help="The namespace a publisher key may sign."),
    label: str | None = typer.Option(None, "--label", help="A name for the key (default: the file name)."),
    trust: Path | None = typer.Option(None, "--trust", help=_TRUST_HELP),
) -> None:
    """Trust a public key: a publisher for one namespace, or a registry."""
    from lorareg.signing.keys import load_public_key, read_key_file

    public_key = load_public_key(read_key_file(key_file))
    path, store = _load_or_empty(trust)
    updated = store.with_key(public_key, label=label or key_file.stem, role=role, namespace=namespace)
    _save_and_report(path, store, updated, public_key.key_id, role)


@trust_app.command("add-registry")
def add_registry(
    url: str = typer.Argument(..., help="The registry's base URL, e.g. https://lorareg.example."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Trust the keys without asking (check them first)."),
    label: str | None = typer.Option(None, "--label", help="A name for the key (default: the URL)."),
    trust: Path | None = typer.Option(None, "--trust", help=_TRUST_HELP),
) -> None:
    """Fetch a registry's keys (URL/api/v1/keys), show their fingerprints, trust them once confirmed."""
    from lorareg.manifest.fields import url as url_check
    from lorareg.signing.trust import parse_registry_keys

    base = url_check(max_chars=2048)(url.rstrip("/"), "URL")
    if base.startswith("http://"):
        typer.echo(
            "warning: plain http; compare the fingerprints below with the registry's operator", err=True
        )
    keys = parse_registry_keys(_fetch(base + KEYS_PATH))
    for key in keys:
        typer.echo(f"registry key {key.key_id}")
    _confirm(len(keys), yes=yes)
    path, store = _load_or_empty(trust)
    updated = store
    for key in keys:
        updated = updated.with_key(key, label=label or base, role="registry", namespace=None)
    _save_and_report(path, store, updated, ", ".join(k.key_id for k in keys), "registry")


@trust_app.command("list")
def list_keys(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    trust: Path | None = typer.Option(None, "--trust", help=_TRUST_HELP),
) -> None:
    """List the trusted keys."""
    path, store = _load(trust)
    if as_json:
        print_json({"trust_file": str(path), "keys": [k.to_json() for k in store.keys()]})
        return
    if not store.keys():
        typer.echo(f"no trusted keys in {safe_text(path)}")
    for key in store.keys():
        scope = f"namespace {key.namespace}" if key.namespace else "all namespaces"
        typer.echo(f"{key.keyid}  {key.role:<9}  {scope:<24}  {safe_text(key.label, limit=60)}")


@trust_app.command("remove")
def remove(
    keyid: str = typer.Argument(..., help="The key id (or a unique prefix of at least 8 hex digits)."),
    trust: Path | None = typer.Option(None, "--trust", help=_TRUST_HELP),
) -> None:
    """Stop trusting a key."""
    path, store = _load(trust)
    gone = store.find(keyid)
    store.without_key(gone.keyid).save(path)
    typer.echo(f"removed {gone.role} key {gone.keyid} ({safe_text(gone.label)}) from {safe_text(path)}")


@trust_app.command("policy")
def policy(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    trust: Path | None = typer.Option(None, "--trust", help=_TRUST_HELP),
) -> None:
    """Show the policy of the trust file (edit the file's \\[policy] table to change it)."""
    from lorareg.signing.policy import DEFAULT_MAX_ADAPTERS, DEFAULT_MAX_WEIGHT

    path, store = _load(trust)
    settings = store.policy.to_json()
    if as_json:
        print_json(settings)
        return
    unset = {
        "max_adapters": f"unset (warn above {DEFAULT_MAX_ADAPTERS})",
        "max_weight": f"unset (warn above {DEFAULT_MAX_WEIGHT:g})",
        "max_revocation_age": "unset (the list's own expiry applies)",
    }
    typer.echo(f"policy of {safe_text(path)}")
    for name, value in settings.items():
        shown = unset[name] if value is None else _show_setting(value)
        typer.echo(f"  {name} = {safe_text(shown)}")


def _show_setting(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _path(trust: Path | None) -> Path:
    from lorareg.signing.trust import default_trust_path

    return trust if trust is not None else default_trust_path()


def _load(trust: Path | None) -> tuple[Path, TrustStore]:
    from lorareg.signing.trust import load_trust

    path = _path(trust)
    return path, load_trust(path)


def _load_or_empty(trust: Path | None) -> tuple[Path, TrustStore]:
    """The trust file, or an empty store with the default policy when none exists yet (``add`` creates it)."""
    from lorareg.signing.trust import TrustStore

    path = _path(trust)
    return (path, TrustStore.empty()) if not path.exists() else _load(path)


def _save_and_report(path: Path, before: TrustStore, after: TrustStore, keyids: str, role: str) -> None:
    if after == before:
        typer.echo(f"already trusted: {role} key {keyids} in {safe_text(path)}")
        return
    after.save(path)
    typer.echo(f"trusted {role} key {keyids} in {safe_text(path)}")


def _confirm(count: int, *, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(
            "not trusting registry keys without confirmation: stdin is not a terminal; compare the "
            "fingerprint(s) above with the registry's operator, then re-run with --yes"
        )
    noun = "this key" if count == 1 else f"these {count} keys"
    if not typer.confirm(f"Trust {noun} as a registry?", default=False):
        raise InputError("not trusted: declined at the prompt")


def _fetch(url: str) -> bytes:
    """GET ``url`` (no redirects), refusing answers over the keys-answer cap while they stream."""
    import httpx

    from lorareg.signing.trust import MAX_KEYS_ANSWER_BYTES

    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_S, follow_redirects=False) as response:
            if response.status_code != 200:
                status = response.status_code
                raise RemoteError(f"GET {url} answered HTTP {status}; expected 200", status=status)
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_KEYS_ANSWER_BYTES:
                    raise RemoteError(f"GET {url}: answer is over {MAX_KEYS_ANSWER_BYTES} bytes")
            return bytes(body)
    except httpx.HTTPError as e:
        raise RemoteError(f"GET {url} failed: {e}") from e
