"""API tokens and principals: what a bearer token is, how it is stored, and what it allows.

A token reads ``lrg_<id>_<secret>``. Only the SHA-256 of the whole token is stored; lookup is by the public
``<id>`` part and the stored hash is then compared in constant time (``hmac.compare_digest``), so neither a
timing difference nor a database dump gives a usable token. Roles carry default scopes; a publisher token
is bound to one namespace. This module is pure (no database): the service persists the rows.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from lorareg.errors import AuthError, ForbiddenError, InputError

TOKEN_PREFIX = "lrg_"  # noqa: S105  (a public prefix, not a secret)
TOKEN_ID_HEX = 12  # hex chars of the public token id
TOKEN_SECRET_BYTES = 32  # random bytes in the secret part (256 bits)
ROLES = ("admin", "reviewer", "publisher", "viewer")
SCOPES = ("admin", "review", "publish", "yank", "viewer")
VIEWER_SCOPE = "viewer"  # read a private catalogue (LORAREG_READ=signed-in); every role implies it
ROLE_SCOPES: dict[str, tuple[str, ...]] = {
    "admin": ("admin", "review", "publish", "yank"),
    "reviewer": ("review",),
    "publisher": ("publish", "yank"),
    "viewer": ("viewer",),  # the other roles imply it (``Principal.allows``), so it is not listed there
}

_TOKEN_RE = re.compile(rf"^lrg_([0-9a-f]{{{TOKEN_ID_HEX}}})_([A-Za-z0-9_-]{{16,128}})$")
_DURATION_RE = re.compile(r"^(\d{1,6})([smhdw])$")
_DURATION_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, role, scopes and (for publishers) the one namespace it may write."""

    token_id: str
    role: str
    scopes: frozenset[str]
    namespace: str | None
    user: str | None = None
    teams: frozenset[str] = frozenset()  # namespaces whose member the token's user is (issue 14: teams)

    def allows(self, scope: str, *, namespace: str | None = None) -> bool:
        """True if the token has ``scope`` and, when a namespace is named, is bound to it or to none.

        A token bound to no namespace (admin) acts on all; a bound token only on its own. Every token may
        read (``viewer``): tokens made before the scope existed hold it implicitly.
        """
        if scope == VIEWER_SCOPE:
            return True
        if scope not in self.scopes and "admin" not in self.scopes:
            return False
        if namespace is None or namespace == self.namespace or namespace in self.teams:
            return True
        return self.namespace is None and self.role != "publisher"  # a team token acts only in its teams

    def require(self, scope: str, *, namespace: str | None = None) -> None:
        """Raise :class:`ForbiddenError` unless :meth:`allows` says yes, naming what was missing."""
        if self.allows(scope, namespace=namespace):
            return
        if scope not in self.scopes and "admin" not in self.scopes:
            raise ForbiddenError(f"token {self.token_id} (role {self.role}) lacks the {scope!r} scope")
        raise ForbiddenError(
            f"token {self.token_id} is bound to namespace {self.namespace!r}, not {namespace!r}"
        )


def new_token() -> tuple[str, str, str]:
    """Make a fresh token; return ``(token_id, secret, sha256_hex_of_secret)``. Only the hash is stored."""
    token_id = secrets.token_hex(TOKEN_ID_HEX // 2)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(TOKEN_SECRET_BYTES)}"
    return token_id, secret, hash_secret(secret)


def hash_secret(secret: str) -> str:
    """SHA-256 hex of the whole token string, the only form in which tokens are stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def split_token(secret: str) -> str:
    """Return the token id of a well-formed ``lrg_`` token, or raise :class:`AuthError` (never echoing it)."""
    match = _TOKEN_RE.match(secret.strip())
    if match is None:
        raise AuthError("malformed token: expected lrg_<12 hex>_<secret>")
    return match.group(1)


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of the presented token's hash against the stored one."""
    return hmac.compare_digest(hash_secret(secret.strip()).encode(), stored_hash.encode())


def scopes_for(role: str, scopes: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Validate ``role`` and the requested scopes; default to the role's scopes; refuse scopes above it."""
    if role not in ROLE_SCOPES:
        raise InputError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    allowed = ROLE_SCOPES[role]
    chosen = allowed if not scopes else tuple(sorted(set(scopes)))
    extra = [s for s in chosen if s not in allowed]
    if extra:
        raise InputError(f"role {role} cannot hold scopes {', '.join(extra)}; it allows {', '.join(allowed)}")
    return chosen


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``12h``, ``90m``, ``2w`` or ``45s`` into a timedelta."""
    match = _DURATION_RE.match(text.strip())
    if match is None:
        raise InputError(f"bad duration {text!r}; expected a number and one of s, m, h, d, w (e.g. 30d)")
    return timedelta(seconds=int(match.group(1)) * _DURATION_UNIT_S[match.group(2)])


def check_usable(
    *, token_id: str, expires: datetime | None, revoked_at: datetime | None, now: datetime
) -> None:
    """Refuse a revoked or expired token with :class:`AuthError` (the message names which)."""
    if revoked_at is not None:
        raise AuthError(f"token {token_id} was revoked")
    if expires is not None and expires <= now:
        raise AuthError(f"token {token_id} expired at {expires.isoformat()}")
