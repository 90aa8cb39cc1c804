"""Web-UI sessions in the database: start, find and end a reviewer's session (rows of ``web_sessions``).

Only the SHA-256 of a session cookie is stored, so a database dump holds no usable session. Starting a
session deletes expired rows and the browser's previous session (rotation defeats session fixation).
Finding one re-checks the token behind it, so revoking the token ends every session it opened.

Deliberately not here: cookies, CSRF and HTTP (``lorareg.server.web.sessions``), which call these functions.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col

from lorareg.errors import AuthError
from lorareg.registry.accounts import team_namespaces
from lorareg.registry.auth import Principal, check_usable
from lorareg.registry.db import Database, Token, WebSession, utcnow

SESSION_LIFETIME = timedelta(hours=8)  # a reviewer signs in again after a working day
SESSION_BYTES = 32  # random bytes in a session cookie (256 bits)
CSRF_BYTES = 32  # random bytes in a CSRF token


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A live session: the principal of the token behind it, its CSRF token and when it ends."""

    principal: Principal
    csrf: str
    expires: datetime


def start_session(
    db: Database, principal: Principal, *, previous_cookie: str | None
) -> tuple[str, StoredSession]:
    """Store a new session for ``principal``; return ``(cookie value, session)``."""
    now = utcnow()
    cookie = secrets.token_urlsafe(SESSION_BYTES)
    row = WebSession(
        id_sha256=_digest(cookie),
        token_id=principal.token_id,
        csrf=secrets.token_urlsafe(CSRF_BYTES),
        created=now,
        expires=now + SESSION_LIFETIME,
    )
    with db.write() as session:
        doomed = [col(WebSession.expires) < now]
        if previous_cookie:
            doomed.append(col(WebSession.id_sha256) == _digest(previous_cookie))
        session.execute(sa.delete(WebSession).where(sa.or_(*doomed)))
        session.add(row)
    return cookie, StoredSession(principal, row.csrf, row.expires)


def end_session(db: Database, cookie: str) -> None:
    """Delete the session of ``cookie`` (no error when there is none)."""
    with db.write() as session:
        session.execute(sa.delete(WebSession).where(col(WebSession.id_sha256) == _digest(cookie)))


def find_session(db: Database, cookie: str) -> StoredSession | None:
    """The live session of ``cookie``, or None (unknown, expired, or its token expired or revoked)."""
    if len(cookie) > 2 * SESSION_BYTES:
        return None
    now = utcnow()
    with db.read() as session:
        row = session.get(WebSession, _digest(cookie))
        token = session.get(Token, row.token_id) if row is not None else None
        teams = team_namespaces(session, token.user) if token is not None else frozenset()
    if row is None or token is None or row.expires <= now:
        return None
    try:
        check_usable(token_id=token.token_id, expires=token.expires, revoked_at=token.revoked_at, now=now)
    except AuthError:
        return None
    principal = Principal(
        token.token_id, token.role, frozenset(token.scopes.split()), token.namespace, token.user, teams
    )
    return StoredSession(principal, row.csrf, row.expires)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
