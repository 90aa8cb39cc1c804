"""Single sign-on, the registry's half: pending logins, the group → role map, and the session it ends in.

The OpenID Connect protocol itself (redirects, code exchange, ID-token checks) is the server's
(``server/web/sso.py``); this module keeps what must survive between the redirect and the callback — on
any replica — and turns a verified identity into a lorareg session:

- :meth:`SsoLogins.begin` stores a pending login (``state`` hashed, ``nonce``, PKCE verifier, where to go
  next) for :data:`LOGIN_LIFETIME`; :meth:`SsoLogins.finish` deletes and returns it, so a ``state`` works
  once (a replayed callback finds nothing).
- :class:`RoleMap` maps the IdP's groups to one lorareg role: ``viewer``, ``publisher`` of a namespace,
  ``reviewer`` or ``admin`` (the highest granted wins). No mapped group means no access (403).
- :meth:`SsoLogins.sign_in` records the user (``sso:<name>``), mints a token that expires with the session
  and starts the web session with it (``web_sessions``: HttpOnly cookie, rotated). Machines keep using
  tokens; nothing here replaces them.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col

from lorareg.errors import AuthError, ForbiddenError, InputError
from lorareg.manifest.ids import check_namespace
from lorareg.registry import web_sessions
from lorareg.registry.db import Namespace, OidcLogin, User, utcnow
from lorareg.registry.service import Registry

LOGIN_LIFETIME = timedelta(minutes=10)  # the IdP round trip must finish within this
ROLE_RANK = {"viewer": 1, "publisher": 2, "reviewer": 3, "admin": 4}
MAX_USER_CHARS = 100


@dataclass(frozen=True, slots=True)
class RoleGrant:
    role: str
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class RoleMap:
    """``group=role[:namespace]`` pairs, e.g. ``staff=viewer;vfx=publisher:vfx;trust=reviewer;ops=admin``."""

    entries: tuple[tuple[str, RoleGrant], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> RoleMap:
        """Parse ``LORAREG_OIDC_ROLES``; InputError naming the bad entry."""
        entries = []
        for raw in (text or "").split(";"):
            if not raw.strip():
                continue
            group, eq, target = raw.strip().partition("=")
            role, _, namespace = target.strip().partition(":")
            if (
                not eq
                or not group.strip()
                or role not in ROLE_RANK
                or (role == "publisher") != bool(namespace)
            ):
                raise InputError(
                    f"LORAREG_OIDC_ROLES entry {raw.strip()[:80]!r}: expected GROUP=viewer|reviewer|admin "
                    "or GROUP=publisher:NAMESPACE"
                )
            entries.append(
                (group.strip(), RoleGrant(role, check_namespace(namespace) if namespace else None))
            )
        return cls(tuple(entries))

    def grant_for(self, groups: list[str]) -> RoleGrant | None:
        """The highest role any of ``groups`` maps to (None: no mapped group)."""
        granted = [grant for group, grant in self.entries if group in groups]
        return max(granted, key=lambda g: ROLE_RANK[g.role], default=None)


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str
    nonce: str
    verifier: str
    next_path: str


class SsoLogins:
    """Pending single sign-ons and the sessions they end in (see the module docstring)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def begin(self, *, next_path: str) -> PendingLogin:
        """A fresh ``state``, ``nonce`` and PKCE verifier (RFC 7636: 43+ chars), kept for the callback."""
        pending = PendingLogin(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48), next_path
        )
        now = utcnow()
        with self.registry.db.write() as session:
            session.execute(sa.delete(OidcLogin).where(col(OidcLogin.expires) < now))  # prune abandoned ones
            session.add(
                OidcLogin(
                    state_sha256=_digest(pending.state),
                    nonce=pending.nonce,
                    verifier=pending.verifier,
                    next_path=next_path,
                    expires=now + LOGIN_LIFETIME,
                )
            )
        return pending

    def finish(self, state: str) -> PendingLogin:
        """The pending login of ``state``, deleted as it is returned. AuthError: unknown, used or expired."""
        with self.registry.db.write() as session:
            row = session.get(OidcLogin, _digest(state))
            if row is None:
                raise AuthError("sign-in state is unknown or was already used; start the sign-in again")
            session.delete(row)
            if row.expires <= utcnow():
                raise AuthError("sign-in took too long; start it again")
            return PendingLogin(state, row.nonce, row.verifier, row.next_path)

    def sign_in(self, *, username: str, grant: RoleGrant, previous_cookie: str | None) -> str:
        """Record the user, mint a session-long token for the granted role, start a session; the cookie.

        Raises ForbiddenError: a publisher grant for a namespace that is not registered.
        """
        name = f"sso:{username}"[:MAX_USER_CHARS]
        with self.registry.db.write() as session:
            if grant.namespace is not None and session.get(Namespace, grant.namespace) is None:
                raise ForbiddenError(
                    f"your group maps to namespace {grant.namespace}, which is not registered"
                )
            user = session.get(User, name)
            if user is None:
                session.add(User(name=name, role=grant.role, created=utcnow()))
            elif user.role != grant.role:
                user.role = grant.role  # the IdP's groups are the truth at every sign-in
                session.add(user)
        issued = self.registry.create_token(
            role=grant.role,
            namespace=grant.namespace,
            user=name,
            expires=utcnow() + web_sessions.SESSION_LIFETIME,
        )
        principal = self.registry.authenticate(issued.secret)
        cookie, _ = web_sessions.start_session(self.registry.db, principal, previous_cookie=previous_cookie)
        return cookie


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
