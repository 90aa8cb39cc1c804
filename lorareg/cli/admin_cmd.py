"""``lorareg admin …``: publishers, tokens, users, schema migration and garbage collection, acting on the
data directory (and the configured database and store) directly.

No server is needed: the commands open the same registry the server would (``--data``, else
``LORAREG_HOME``, else ``./lorareg-data``; PostgreSQL/S3 from the ``LORAREG_*`` settings) and call the
service's admin functions. The exact forms are a contract for scripts (``docs/registry.md``); ``--json``
prints ``{"token": "lrg_…", …}``. A token's secret is printed once and never stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from lorareg.cli._output import print_json, safe_text

if TYPE_CHECKING:
    from lorareg.registry import Registry

_DATA_HELP = "Data directory (database, blobs, registry key). Default: LORAREG_HOME or ./lorareg-data."
_ROLES_HELP = "admin, reviewer, publisher or viewer (read-only, for a private catalogue)"

admin_app = typer.Typer(
    help="Manage publishers, API tokens and users (acts on the data directory).", no_args_is_help=True
)
publisher_app = typer.Typer(help="Register publisher namespaces and keys.", no_args_is_help=True)
token_app = typer.Typer(help="Create, revoke and list API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Add and list users.", no_args_is_help=True)
admin_app.add_typer(publisher_app, name="publisher")
admin_app.add_typer(token_app, name="token")
admin_app.add_typer(user_app, name="user")
registry_key_app = typer.Typer(help="The registry's own signing key.", no_args_is_help=True)
admin_app.add_typer(registry_key_app, name="registry-key")

DataOption = typer.Option(None, "--data", help=_DATA_HELP)
JsonOption = typer.Option(False, "--json", help="Print JSON.")


def register(app: typer.Typer) -> None:
    """Add ``admin`` to the root app."""
    app.add_typer(admin_app, name="admin")


@publisher_app.command("add")
def publisher_add(
    namespace: str = typer.Argument(..., help="Namespace the key may publish into (e.g. acme)."),
    key: Path = typer.Option(..., "--key", help="The publisher's public key (PEM, P-256)."),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Register NAMESPACE and a publisher key for it; print a publish token for that namespace."""
    from lorareg.signing.keys import read_key_file

    registry = _open(data)
    record = registry.add_publisher(namespace, read_key_file(key).decode("utf-8", "replace"))
    issued = registry.create_token(role="publisher", namespace=namespace)
    if as_json:
        print_json(
            {
                "token": issued.secret,
                "token_id": issued.token_id,
                "namespace": namespace,
                "keyid": record.keyid,
            }
        )
        return
    typer.echo(f"namespace {safe_text(namespace)}: key {record.keyid} registered")
    typer.echo(f"publish token (shown once; id {issued.token_id}):")
    typer.echo(issued.secret)


@publisher_app.command("retire-key")
def publisher_retire_key(
    namespace: str = typer.Argument(..., help="The namespace the key publishes into."),
    keyid: str = typer.Argument(..., help="The key id (or a prefix of at least 8 hex characters)."),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Rotation: KEYID can no longer publish into NAMESPACE; versions it signed stay valid."""
    record = _open(data).retire_publisher_key(namespace, keyid)
    if as_json:
        print_json(record.to_json())
        return
    typer.echo(f"namespace {safe_text(namespace)}: key {record.keyid} retired; what it signed stays valid")


@publisher_app.command("revoke-key")
def publisher_revoke_key(
    namespace: str = typer.Argument(..., help="The namespace the key publishes into."),
    keyid: str = typer.Argument(..., help="The key id (or a prefix of at least 8 hex characters)."),
    compromised_since: str = typer.Option(
        ..., "--compromised-since", help="ISO 8601 time with zone, e.g. 2026-05-01T00:00:00Z."
    ),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Compromise: retire KEYID and revoke every version it signed logged at or after the cutoff."""
    from lorareg.errors import InputError

    try:
        since = datetime.fromisoformat(compromised_since.strip().replace("Z", "+00:00"))
    except ValueError as e:
        raise InputError(f"--compromised-since {compromised_since!r} is not an ISO 8601 time") from e
    record, hit = _open(data).revoke_publisher_key(namespace, keyid, compromised_since=since)
    if as_json:
        print_json({"key": record.to_json(), "revoked": [v.summary.ref for v in hit]})
        return
    typer.echo(f"namespace {safe_text(namespace)}: key {record.keyid} revoked, compromised since {since}")
    for version in hit:
        typer.echo(f"  revoked {safe_text(version.summary.ref)} (publisher key compromised)")
    if not hit:
        typer.echo("  no version it signed was logged after the cutoff")


@registry_key_app.command("rotate")
def registry_key_rotate(data: Path | None = DataOption, as_json: bool = JsonOption) -> None:
    """Replace the registry key: a key-set document signed by the old and the new key announces it."""
    from lorareg.server.config import settings_from_env

    settings = settings_from_env().with_overrides(home=data)
    if settings.registry_key:
        from lorareg.errors import InputError

        raise InputError(
            "the registry key is in an HSM (LORAREG_REGISTRY_KEY): rotation writes key files; "
            "see docs/trust.md for rotating a token key"
        )
    key_file = settings.registry_key_file or settings.home / "registry.key"
    password = settings.registry_key_password.encode() if settings.registry_key_password else None
    old, new = _open(data).rotate_key(key_file, password=password)
    if as_json:
        print_json({"old_keyid": old, "new_keyid": new, "key_file": str(key_file)})
        return
    typer.echo(f"registry key rotated: {old} -> {new}")
    typer.echo(f"the new key is {key_file}; the old one was kept as {key_file.name}.{old[:16]}.retired")
    typer.echo("restart every replica; clients that trust the old key follow the chain on their next pull")


@token_app.command("create")
def token_create(
    role: str = typer.Option(..., "--role", help=_ROLES_HELP),
    namespace: str | None = typer.Option(
        None, "--namespace", help="Namespace (required for publisher tokens)."
    ),
    expires: str | None = typer.Option(
        None, "--expires", help="Lifetime such as 30d, 12h, 2w (default: none)."
    ),
    user: str | None = typer.Option(None, "--user", help="User the token belongs to."),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Create an API token and print it (once)."""
    from lorareg.registry import parse_duration

    until = None if expires is None else datetime.now(UTC) + parse_duration(expires)
    issued = _open(data).create_token(role=role, namespace=namespace, expires=until, user=user)
    expiry = None if until is None else issued.record.to_json()["expires"]
    if as_json:
        print_json({"token": issued.secret, "token_id": issued.token_id, "role": role, "expires": expiry})
        return
    typer.echo(f"{role} token {issued.token_id} (expires: {expiry or 'never'}; shown once):")
    typer.echo(issued.secret)


@token_app.command("revoke")
def token_revoke(
    token_id: str = typer.Argument(..., help="The token's id (from token list), not the secret."),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Revoke a token at once."""
    record = _open(data).revoke_token(token_id)
    if as_json:
        print_json(record.to_json())
        return
    typer.echo(f"token {record.token_id} revoked")


@token_app.command("list")
def token_list(data: Path | None = DataOption, as_json: bool = JsonOption) -> None:
    """List tokens (ids, roles, scopes, namespaces, expiry, revocation; never secrets)."""
    records = _open(data).list_tokens()
    if as_json:
        print_json({"tokens": [r.to_json() for r in records]})
        return
    for r in records:
        j = r.to_json()
        state = "revoked" if r.revoked_at else ("expires " + j["expires"] if r.expires else "no expiry")
        scope = ",".join(r.scopes)
        typer.echo(f"{r.token_id}  {r.role:<9} {safe_text(r.namespace or '-'):<16} {scope:<24} {state}")


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Option(..., "--role", help=_ROLES_HELP),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Add a user with a role."""
    record = _open(data).add_user(name, role=role)
    if as_json:
        print_json(record.to_json())
        return
    typer.echo(f"user {safe_text(record.name)} added ({record.role})")


@user_app.command("list")
def user_list(data: Path | None = DataOption, as_json: bool = JsonOption) -> None:
    """List users."""
    records = _open(data).list_users()
    if as_json:
        print_json({"users": [r.to_json() for r in records]})
        return
    for r in records:
        typer.echo(f"{safe_text(r.name)}  {r.role}")


@admin_app.command("migrate")
def migrate(data: Path | None = DataOption, as_json: bool = JsonOption) -> None:
    """Upgrade the database schema to this lorareg's version (LORAREG_DATABASE_URL, else --data's SQLite).

    Run it once per upgrade, from one machine, after a backup; replicas that start on an older schema
    refuse to run until it is done. Concurrent runs on PostgreSQL wait for each other.
    """
    from lorareg.registry import current_schema_revision, default_database_url, upgrade_schema
    from lorareg.server.config import settings_from_env

    settings = settings_from_env().with_overrides(home=data)
    settings.home.mkdir(parents=True, exist_ok=True)
    url = settings.database_url or default_database_url(settings.home)
    before = current_schema_revision(url)
    after = upgrade_schema(url)
    if as_json:
        print_json({"from": before, "to": after})
        return
    if before == after:
        typer.echo(f"database schema already at rev {after} (current)")
    else:
        typer.echo(f"database schema upgraded from rev {before or 'none'} to {after}")


@admin_app.command("gc")
def gc(
    older_than: str = typer.Option(
        "1d", "--older-than", help="Spare leftovers younger than this (e.g. 1d, 12h, 30m, 0s)."
    ),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Collect what crashed or abandoned uploads left: temp uploads and blobs never published.

    Keep the grace period longer than any upload takes: a younger leftover may be another replica's
    upload in progress. ``serve`` runs the same collection at start-up (LORAREG_GC_GRACE_S, default 1 day).
    """
    from lorareg.registry import parse_duration

    grace = parse_duration(older_than).total_seconds()
    report = _open(data).collect_garbage(older_than_s=grace)
    if as_json:
        print_json(report.to_json())
        return
    typer.echo(
        f"removed {report.temporary_uploads} temporary upload(s) and "
        f"{report.unpublished_blobs} unpublished blob(s) older than {older_than}"
    )


def _open(data: Path | None) -> Registry:
    """The registry the server would open for these settings (``--data`` wins over ``LORAREG_HOME``)."""
    from lorareg.server.app import open_registry_for
    from lorareg.server.config import settings_from_env

    return open_registry_for(settings_from_env().with_overrides(home=data))


namespace_app = typer.Typer(help="Namespaces as teams: owners and members.", no_args_is_help=True)
member_app = typer.Typer(help="Add, remove and list a namespace's members.", no_args_is_help=True)
admin_app.add_typer(namespace_app, name="namespace")
namespace_app.add_typer(member_app, name="member")


@namespace_app.command("add")
def namespace_add(
    namespace: str = typer.Argument(..., help="The team's namespace, e.g. vfx."),
    owner: list[str] = typer.Option(
        ..., "--owner", help="A user who owns it (repeatable; see: admin user add)."
    ),  # noqa: B008
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Create NAMESPACE for a team, with its owners as members."""
    from lorareg.registry import Teams

    members = Teams(_open(data)).add_namespace(namespace, owners=list(owner))
    _print_members(members, as_json)


@namespace_app.command("list")
def namespace_list(data: Path | None = DataOption, as_json: bool = JsonOption) -> None:
    """Every namespace."""
    from lorareg.registry import Teams

    names = Teams(_open(data)).namespaces()
    if as_json:
        print_json({"namespaces": names})
        return
    for name in names:
        typer.echo(safe_text(name))


@member_app.command("add")
def member_add(
    namespace: str = typer.Argument(..., help="The namespace."),
    user: str = typer.Argument(..., help="The user (see: admin user add)."),
    role: str = typer.Option("publisher", "--role", help="owner or publisher."),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Add USER to NAMESPACE (or change its role); the user's tokens may then act there."""
    from lorareg.registry import Teams

    _print_members([Teams(_open(data)).add_member(namespace, user, role=role)], as_json)


@member_app.command("remove")
def member_remove(
    namespace: str = typer.Argument(..., help="The namespace."),
    user: str = typer.Argument(..., help="The member to remove."),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """Remove USER from NAMESPACE; its tokens stop acting there at once."""
    from lorareg.registry import Teams

    _print_members([Teams(_open(data)).remove_member(namespace, user)], as_json)


@member_app.command("list")
def member_list(
    namespace: str = typer.Argument(..., help="The namespace."),
    data: Path | None = DataOption,
    as_json: bool = JsonOption,
) -> None:
    """NAMESPACE's members, owners first."""
    from lorareg.registry import Teams

    _print_members(Teams(_open(data)).members(namespace), as_json)


def _print_members(members: list[Any], as_json: bool) -> None:
    if as_json:
        print_json({"members": [m.to_json() for m in members]})
        return
    for m in members:
        typer.echo(f"{safe_text(m.namespace)}  {safe_text(m.user)}  {safe_text(m.role)}")
