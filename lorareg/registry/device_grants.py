"""``lorareg login``: lorareg as the authorization server of the OAuth 2.0 device grant (RFC 8628).

Why lorareg and not the identity provider: many IdPs (and the one the tests run) have no device
authorization endpoint, and what the CLI needs is a short-lived *lorareg* token anyway. So the CLI asks
lorareg for a code (:meth:`DeviceGrants.begin`, RFC 8628 §3.1-3.2), a person signed in to the web UI —
through single sign-on or a token — approves it (:meth:`DeviceGrants.decide`, §3.3), and the CLI's poll
receives a token minted for the approving account (:meth:`DeviceGrants.poll`, §3.4-3.5). It works with every
IdP, and whatever the IdP's groups map to is what the token may do.

Security, in one place:

- Only SHA-256 digests of the device code (256 random bits) and of the user code are stored; both are
  looked up by digest, so a database dump gives neither, and no comparison of secrets happens in Python.
- User codes are 8 characters from :data:`USER_CODE_ALPHABET` (20 consonants: no vowels, so no words; no
  look-alike digits; RFC 8628 §6.1), about 34.5 bits. Wrong entries count per account
  (:data:`MAX_WRONG_CODES` per :data:`WRONG_CODE_WINDOW`, in ``rate_limit_hits``), and at most
  :data:`MAX_PENDING_GRANTS` grants are pending at once: an attacker's chance to hit a live code within a
  grant's lifetime is at most 5 x 1000 / 20^8 ≈ 2e-7 per account and window. One network address may
  start :data:`MAX_CODES_PER_CLIENT` grants per lifetime, so no single host fills the pending bound.
- The token is minted in the transaction of the poll that hands it out, under a row lock (``FOR UPDATE`` on
  PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so two concurrent polls cannot both receive it, and no
  token secret is ever stored. Later polls get ``invalid_grant``.
- The minted token's role is the one asked for (``scope``) or the approver's, never wider: its scopes must
  be a subset of the approver's, and it keeps the approver's namespace and user (so teams apply).
- Polling faster than the interval answers ``slow_down`` and adds 5 s to the interval (§3.5).

Deliberately not here: HTTP, forms and OAuth JSON shapes (``server/api/device.py``, ``server/web/device.py``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lorareg.errors import AuthError, ForbiddenError, InputError, NotFoundError, RateLimitedError
from lorareg.registry import auth
from lorareg.registry.db import DeviceGrant, RateLimitHit, Token, utcnow
from lorareg.registry.service import Registry

CLIENT_IDS = ("lorareg-cli",)  # public clients allowed to ask (RFC 8628 §3.1 client_id)
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # RFC 8628 §6.1: no vowels, no digits
USER_CODE_CHARS = 8
DEVICE_CODE_BYTES = 32  # 256 random bits
DEFAULT_LIFETIME = timedelta(minutes=10)  # expires_in of a grant
DEFAULT_INTERVAL_S = 5  # the least number of seconds between two polls
SLOW_DOWN_STEP_S = 5  # RFC 8628 §3.5: each slow_down adds 5 s
MAX_INTERVAL_S = 60
MAX_PENDING_GRANTS = 1000  # grants not yet expired, over the whole registry
MAX_WRONG_CODES = 5  # wrong user codes per account per window
WRONG_CODE_WINDOW = timedelta(minutes=10)
DEFAULT_TOKEN_TTL = timedelta(hours=12)  # LORAREG_LOGIN_TOKEN_TTL
RATE_LIMIT_BUCKET = "device-user-code"
CODE_BUCKET = "device-code"  # grants started per client address
MAX_CODES_PER_CLIENT = 30  # per DEFAULT_LIFETIME: a studio NAT of busy people, not a flood
_CLEANUP_AGE = timedelta(days=1)  # decided or expired grants are kept this long (a late poll's answer)
_USER_CODE_RE = re.compile(rf"^[{USER_CODE_ALPHABET}]{{{USER_CODE_CHARS}}}$")


class GrantError(InputError):
    """A device-grant request refused with an RFC 8628 / RFC 6749 error code (``.oauth_error``)."""

    def __init__(self, oauth_error: str, message: str) -> None:
        super().__init__(message)
        self.oauth_error = oauth_error


@dataclass(frozen=True, slots=True)
class NewGrant:
    """What ``POST /api/v1/device/code`` answers (RFC 8628 §3.2), before URLs are added."""

    device_code: str
    user_code: str  # shown as XXXX-XXXX
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class GrantView:
    """A grant as the approval page shows it: who asks, for what, since when, and its state."""

    user_code: str
    client_id: str
    scope: str | None
    status: str
    created: datetime
    expires: datetime


@dataclass(frozen=True, slots=True)
class IssuedLogin:
    """The token a successful poll hands out, once (RFC 8628 §3.5 / RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    expires: datetime
    scope: str  # the token's role


class DeviceGrants:
    """Device authorization grants of one registry (see the module docstring)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def begin(
        self,
        *,
        client_id: str,
        scope: str | None,
        lifetime: timedelta = DEFAULT_LIFETIME,
        interval_s: int = DEFAULT_INTERVAL_S,
        client: str = "unknown",
    ) -> NewGrant:
        """Store a new pending grant; return its codes (the only time they exist in clear).

        ``client`` is the caller's network address: each may start :data:`MAX_CODES_PER_CLIENT` grants
        per :data:`DEFAULT_LIFETIME`, so one host cannot fill the :data:`MAX_PENDING_GRANTS` alone.

        Raises:
            GrantError: ``invalid_client`` (unknown client), ``invalid_scope`` (not a role).
            RateLimitedError: the address started too many, or too many grants are pending already.
        """
        if client_id not in CLIENT_IDS:
            raise GrantError("invalid_client", f"unknown client_id {client_id[:40]!r}; expected lorareg-cli")
        if scope is not None and scope not in auth.ROLES:
            raise GrantError("invalid_scope", f"scope must be one role of {', '.join(auth.ROLES)}")
        device_code = secrets.token_urlsafe(DEVICE_CODE_BYTES)
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_CHARS))
        now = utcnow()
        with self.registry.db.write() as session:
            _prune(session, now)
            address = hashlib.sha256(client.encode("utf-8")).hexdigest()
            if _hits(session, CODE_BUCKET, address, since=now - DEFAULT_LIFETIME) >= MAX_CODES_PER_CLIENT:
                raise RateLimitedError("this address started too many sign-ins; wait ten minutes")
            session.add(RateLimitHit(bucket=CODE_BUCKET, client=address, at=now))
            pending = session.execute(
                sa.select(sa.func.count()).select_from(DeviceGrant).where(col(DeviceGrant.expires) > now)
            ).scalar_one()
            if pending >= MAX_PENDING_GRANTS:
                raise RateLimitedError(
                    "too many sign-ins are waiting for approval; try again in a few minutes"
                )
            session.add(
                DeviceGrant(
                    device_sha256=_digest(device_code),
                    user_sha256=_digest(user_code),
                    client_id=client_id,
                    scope=scope,
                    status="pending",
                    created=now,
                    expires=now + lifetime,
                    interval_s=interval_s,
                )
            )
        shown = f"{user_code[:4]}-{user_code[4:]}"
        return NewGrant(device_code, shown, int(lifetime.total_seconds()), interval_s)

    def find(self, user_code: str, *, principal: auth.Principal) -> GrantView:
        """The pending grant of ``user_code`` for the approval page; a wrong code counts against the account.

        Raises:
            InputError: the text cannot be a user code (not counted: a typo of length or alphabet).
            NotFoundError: no pending grant has that code (counted).
            RateLimitedError: the account entered :data:`MAX_WRONG_CODES` wrong codes in the window.
        """
        code = normalize_user_code(user_code)
        with self.registry.db.write() as session:
            row = _pending(session, code, principal, now=utcnow())
            view = _view(row, code) if row is not None else None
        return _found(view)

    def decide(
        self,
        user_code: str,
        *,
        approve: bool,
        principal: auth.Principal,
        token_ttl: timedelta = DEFAULT_TOKEN_TTL,
    ) -> GrantView:
        """Approve or deny the pending grant of ``user_code`` as ``principal`` (the signed-in person).

        Approval records the role, scopes, namespace and user the token will carry (never wider than the
        principal's) and its lifetime; the token itself is minted by the poll that hands it out.

        Raises:
            NotFoundError / RateLimitedError: as :meth:`find`.
            ForbiddenError: the role asked for is wider than the approver's (deny it instead).
        """
        code = normalize_user_code(user_code)
        now = utcnow()
        with self.registry.db.write() as session:
            row = _pending(session, code, principal, now=now)
            if row is not None:
                _record_decision(row, approve=approve, principal=principal, ttl=token_ttl, now=now)
                session.add(row)
            view = _view(row, code) if row is not None else None
        return _found(view)

    def poll(self, device_code: str, *, client_id: str) -> IssuedLogin:
        """One poll of the CLI (RFC 8628 §3.4): the token once approved, else the §3.5 error.

        The grant's row is locked for the poll, and ``last_poll``/``interval_s`` are committed even when
        the answer is an error, so ``slow_down`` really slows the client down.

        Raises:
            GrantError: ``authorization_pending``, ``slow_down``, ``access_denied``, ``expired_token``,
                ``invalid_grant`` (unknown code, or the token was handed out already), ``invalid_client``.
        """
        now = utcnow()
        with self.registry.db.write() as session:
            row = _locked(session, col(DeviceGrant.device_sha256) == _digest(device_code[:200]))
            outcome = _poll_outcome(row, client_id=client_id, now=now)
            if row is not None and outcome is None:
                issued = _issue(session, row, now=now)
            elif row is not None:
                session.add(row)
        if outcome is not None:
            raise outcome
        return issued

    def revoke_presented(self, secret: str) -> bool:
        """Revoke the token ``secret`` (possession is the authority: RFC 7009 §2.1); False if unknown."""
        try:
            token_id = auth.split_token(secret)
        except AuthError:
            return False
        with self.registry.db.write() as session:
            row = session.get(Token, token_id)
            if row is None or not auth.secret_matches(secret, row.secret_sha256):
                return False
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                session.add(row)
            return True


def normalize_user_code(text: str) -> str:
    """``bcdf-ghjk`` → ``BCDFGHJK``: case, dashes and spaces do not matter on entry (RFC 8628 §6.1).

    Raises:
        InputError: not 8 letters of :data:`USER_CODE_ALPHABET` once normalised.
    """
    code = "".join(text[:40].split()).replace("-", "").upper()
    if not _USER_CODE_RE.match(code):
        raise InputError("a code is 8 letters shown as XXXX-XXXX (no vowels); check what the terminal shows")
    return code


def granted_role(principal: auth.Principal, wanted: str | None) -> tuple[str, tuple[str, ...]]:
    """The role and scopes a login token gets: ``wanted`` (default: the approver's), never wider.

    Raises:
        ForbiddenError: ``wanted``'s scopes are not all held by the approver.
    """
    if wanted is None or wanted == principal.role:
        return principal.role, tuple(sorted(principal.scopes))
    held = set(auth.ROLE_SCOPES["admin"]) if "admin" in principal.scopes else set(principal.scopes)
    held.add(auth.VIEWER_SCOPE)
    needed = set(auth.ROLE_SCOPES[wanted])
    if not needed <= held or (wanted == "publisher" and principal.namespace is None and not principal.teams):
        raise ForbiddenError(
            f"the CLI asks for the {wanted} role, which is wider than yours ({principal.role}); deny it"
        )
    return wanted, auth.ROLE_SCOPES[wanted]


# -- internals ----------------------------------------------------------------------------------------
def _pending(session: Session, code: str, principal: auth.Principal, *, now: datetime) -> DeviceGrant | None:
    """The live pending grant of ``code`` (row-locked), or None after counting a wrong entry.

    Raises:
        RateLimitedError: the account is locked out (checked before the lookup, so a locked-out
            account learns nothing about any code).
    """
    key = _account_key(principal)
    wrong = _hits(session, RATE_LIMIT_BUCKET, key, since=now - WRONG_CODE_WINDOW)
    if wrong >= MAX_WRONG_CODES:
        minutes = int(WRONG_CODE_WINDOW.total_seconds() // 60)
        raise RateLimitedError(
            f"{wrong} wrong codes entered in the last {minutes} minutes; wait, then enter the code again"
        )
    row = _locked(session, col(DeviceGrant.user_sha256) == _digest(code))
    if row is None or row.status != "pending" or row.expires <= now:
        session.add(RateLimitHit(bucket=RATE_LIMIT_BUCKET, client=key, at=now))
        return None
    return row


def _hits(session: Session, bucket: str, key: str, *, since: datetime) -> int:
    """How many hits ``key`` has in ``bucket`` since ``since``; older ones are deleted on the way."""
    mine = (col(RateLimitHit.bucket) == bucket, col(RateLimitHit.client) == key)
    session.execute(sa.delete(RateLimitHit).where(*mine, col(RateLimitHit.at) < since))
    count = session.execute(sa.select(sa.func.count()).select_from(RateLimitHit).where(*mine)).scalar_one()
    return int(count)


def _found(view: GrantView | None) -> GrantView:
    if view is None:
        raise NotFoundError("no sign-in is waiting with that code (it may have expired); check the terminal")
    return view


def _record_decision(
    row: DeviceGrant, *, approve: bool, principal: auth.Principal, ttl: timedelta, now: datetime
) -> None:
    """Deny, or approve with what the token may carry (ForbiddenError when asked for more than held)."""
    row.decided_at, row.approver = now, _who(principal)
    if not approve:
        row.status = "denied"
        return
    role, scopes = granted_role(principal, row.scope)
    row.status = "approved"
    row.grant_role, row.grant_scopes = role, " ".join(scopes)
    row.grant_namespace = principal.namespace if role in ("publisher", principal.role) else None
    row.grant_user = principal.user
    row.token_ttl_s = max(1, int(ttl.total_seconds()))


def _poll_outcome(row: DeviceGrant | None, *, client_id: str, now: datetime) -> GrantError | None:
    """The §3.5 error this poll gets (updating the row's ``last_poll``/``interval_s``), or None: issue."""
    if row is None or row.status == "issued":
        return GrantError("invalid_grant", "unknown device_code, or its token was handed out already")
    if row.client_id != client_id:
        return GrantError("invalid_client", "this device_code was issued to another client_id")
    if row.expires <= now:
        return GrantError("expired_token", "the code expired before it was used; run lorareg login again")
    if row.status == "denied":
        return GrantError("access_denied", "the sign-in was denied in the browser")
    too_fast = row.last_poll is not None and now - row.last_poll < timedelta(seconds=row.interval_s)
    row.last_poll = now
    if too_fast:
        row.interval_s = min(row.interval_s + SLOW_DOWN_STEP_S, MAX_INTERVAL_S)
        return GrantError("slow_down", f"polling too fast; wait {row.interval_s} s between polls")
    if row.status == "pending":
        return GrantError("authorization_pending", "waiting for the sign-in to be approved in the browser")
    return None


def _issue(session: Session, row: DeviceGrant, *, now: datetime) -> IssuedLogin:
    """Mint the token in the poll's transaction and mark the grant issued (exactly once)."""
    ttl = timedelta(seconds=row.token_ttl_s or int(DEFAULT_TOKEN_TTL.total_seconds()))
    role = row.grant_role or auth.VIEWER_SCOPE
    token_id, secret, digest = auth.new_token()
    expires = now + ttl
    session.add(
        Token(
            token_id=token_id,
            secret_sha256=digest,
            role=role,
            scopes=row.grant_scopes or auth.VIEWER_SCOPE,
            namespace=row.grant_namespace,
            user=row.grant_user,
            created=now,
            expires=expires,
        )
    )
    row.status, row.token_id = "issued", token_id
    session.add(row)
    return IssuedLogin(secret, int(ttl.total_seconds()), expires, role)


def _locked(session: Session, condition: sa.ColumnElement[bool]) -> DeviceGrant | None:
    """The grant matching ``condition``, locked for this transaction (PostgreSQL ``FOR UPDATE``; SQLite's
    write transactions are ``BEGIN IMMEDIATE`` and so already exclusive)."""
    return session.exec(select(DeviceGrant).where(condition).with_for_update()).first()


def _prune(session: Session, now: datetime) -> None:
    """Delete grants expired for a day (a late poll still gets ``expired_token`` until then)."""
    session.execute(sa.delete(DeviceGrant).where(col(DeviceGrant.expires) < now - _CLEANUP_AGE))


def _view(row: DeviceGrant, code: str) -> GrantView:
    shown = f"{code[:4]}-{code[4:]}"
    return GrantView(shown, row.client_id, row.scope, row.status, row.created, row.expires)


def _who(principal: auth.Principal) -> str:
    return principal.user or f"token:{principal.token_id}"


def _account_key(principal: auth.Principal) -> str:
    """Wrong codes count per account (the user, else the token), so a new session does not reset them."""
    return hashlib.sha256(_who(principal).encode("utf-8")).hexdigest()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()
