"""Namespaces, publisher keys, users and API tokens in the database (the admin side of the registry).

Token rules (format, hashing, scopes) are in ``auth.py``; this module stores and looks them up. A token is
revoked by setting ``revoked_at`` in the database, so every replica refuses it on its next request.
``last_used`` is written at most once a minute per token, so authenticating stays a read on busy servers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lorareg.errors import AuthError, ConflictError, InputError, NotFoundError
from lorareg.manifest.ids import check_namespace
from lorareg.registry import auth
from lorareg.registry.db import Database, Namespace, NamespaceMember, PublisherKey, Token, User, utcnow
from lorareg.registry.records import IssuedToken, PublisherKeyRecord, TokenRecord, UserRecord
from lorareg.signing.keys import load_public_key

LAST_USED_RESOLUTION = timedelta(minutes=1)  # last_used is refreshed at most this often
MAX_USER_NAME_CHARS = 100


def add_publisher(db: Database, namespace: str, public_pem: str) -> PublisherKeyRecord:
    """Create the namespace if new and register the key for it; the same key twice is a no-op."""
    check_namespace(namespace)
    key = load_public_key(public_pem.encode("utf-8"))
    now = utcnow()
    with db.write() as session:
        if session.get(Namespace, namespace) is None:
            session.add(Namespace(name=namespace, created=now))
        row = session.exec(
            select(PublisherKey).where(
                col(PublisherKey.namespace) == namespace, col(PublisherKey.keyid) == key.key_id
            )
        ).first()
        if row is None:
            row = PublisherKey(namespace=namespace, keyid=key.key_id, public_pem=key.pem.decode(), added=now)
            session.add(row)
        return key_record(row)


def publisher_keys(session: Session, namespace: str) -> list[PublisherKeyRecord]:
    rows = session.exec(
        select(PublisherKey).where(col(PublisherKey.namespace) == namespace).order_by(col(PublisherKey.id))
    )
    return [key_record(r) for r in rows]


def create_token(
    db: Database,
    *,
    role: str,
    namespace: str | None,
    scopes: tuple[str, ...] | None,
    expires: datetime | None,
    user: str | None,
) -> IssuedToken:
    """Store a new token's hash and return the secret once."""
    chosen = auth.scopes_for(role, scopes)
    token_id, secret, digest = auth.new_token()
    with db.write() as session:
        if role == "publisher" and namespace is None and not team_namespaces(session, user):
            raise InputError(
                "a publisher token needs --namespace (or --user of a namespace member: it then acts in "
                "that user's namespaces)"
            )
        if namespace is not None and session.get(Namespace, namespace) is None:
            raise InputError(f"namespace {namespace!r} is not registered; add it with: admin publisher add")
        if user is not None and session.get(User, user) is None:
            raise InputError(f"user {user!r} does not exist; add it with: admin user add")
        row = Token(
            token_id=token_id,
            secret_sha256=digest,
            role=role,
            scopes=" ".join(chosen),
            namespace=namespace,
            user=user,
            created=utcnow(),
            expires=expires,
        )
        session.add(row)
        return IssuedToken(token_id, secret, _token_record(row))


def revoke_token(db: Database, token_id: str) -> TokenRecord:
    with db.write() as session:
        row = session.get(Token, token_id)
        if row is None:
            raise NotFoundError(f"token {token_id} does not exist")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            session.add(row)
        return _token_record(row)


def list_tokens(session: Session) -> list[TokenRecord]:
    rows = session.exec(select(Token).order_by(sa.desc(col(Token.created)), col(Token.token_id)))
    return [_token_record(r) for r in rows]


def authenticate(db: Database, secret: str, *, now: datetime) -> auth.Principal:
    """Look the token up by id, compare hashes in constant time, refuse expired or revoked ones."""
    token_id = auth.split_token(secret)
    with db.read() as session:
        row = session.get(Token, token_id)
        teams = team_namespaces(session, row.user) if row is not None else frozenset()
    if row is None or not auth.secret_matches(secret, row.secret_sha256):
        raise AuthError("unknown token")
    auth.check_usable(token_id=token_id, expires=row.expires, revoked_at=row.revoked_at, now=now)
    if row.last_used is None or now - row.last_used >= LAST_USED_RESOLUTION:
        with db.write() as session:
            session.execute(sa.update(Token).where(col(Token.token_id) == token_id).values(last_used=now))
    return auth.Principal(token_id, row.role, frozenset(row.scopes.split()), row.namespace, row.user, teams)


def team_namespaces(session: Session, user: str | None) -> frozenset[str]:
    """The namespaces ``user`` is a member of (any role); empty for a token without a user."""
    if user is None:
        return frozenset()
    rows = session.exec(select(col(NamespaceMember.namespace)).where(col(NamespaceMember.user) == user))
    return frozenset(rows)


def add_user(db: Database, name: str, *, role: str) -> UserRecord:
    auth.scopes_for(role)  # validates the role
    if not name.strip() or len(name) > MAX_USER_NAME_CHARS or not name.isprintable():
        raise InputError(f"bad user name {name[:40]!r}: 1-{MAX_USER_NAME_CHARS} printable characters")
    row = User(name=name, role=role, created=utcnow())
    try:
        with db.write() as session:
            session.add(row)
    except IntegrityError as e:
        raise ConflictError(f"user {name!r} already exists") from e
    return UserRecord(row.name, row.role, row.created)


def list_users(session: Session) -> list[UserRecord]:
    return [
        UserRecord(r.name, r.role, r.created) for r in session.exec(select(User).order_by(col(User.name)))
    ]


def key_record(row: PublisherKey) -> PublisherKeyRecord:
    """The record of a key row (also used by ``keyrevoking`` callers)."""
    return PublisherKeyRecord(
        row.namespace, row.keyid, row.public_pem, row.added, row.retired, row.compromised_since
    )


def _token_record(row: Token) -> TokenRecord:
    return TokenRecord(
        token_id=row.token_id,
        role=row.role,
        scopes=tuple(row.scopes.split()),
        namespace=row.namespace,
        user=row.user,
        created=row.created,
        expires=row.expires,
        revoked_at=row.revoked_at,
        last_used=row.last_used,
    )
