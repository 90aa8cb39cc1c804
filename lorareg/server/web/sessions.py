"""Reviewer sessions and CSRF protection for the web UI; all state in the database.

Sign-in takes a reviewer's API token once, from a form body (never a URL), checks it with
:meth:`Registry.authenticate` and its ``review`` scope (403 for other roles), and answers with a fresh random
session cookie: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the site is reached over https. Only the
SHA-256 of the cookie is stored (``web_sessions``), so a database dump holds no usable session; any earlier
session of that browser is deleted at sign-in (rotation defeats session fixation). Each request re-checks
the token behind the session, so revoking the token signs the reviewer out everywhere at once.

CSRF: every form carries a token. A signed-in reviewer's forms carry the session's own token (synchronizer
pattern, stored with the session); anonymous forms (the takedown form) use a double-submit cookie, which a
cross-site page can neither read nor set. Additionally a request whose ``Origin`` header names another site
is refused. A POST without a matching token is answered 403.

Deliberately not here: routes and HTML (``routes.py``), the session rows (``lorareg.registry.web_sessions``),
takedown logic, or any state in process memory.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request, Response

from lorareg.errors import ForbiddenError
from lorareg.registry import Principal, Registry, web_sessions

SESSION_COOKIE = "lorareg_session"
CSRF_COOKIE = "lorareg_csrf"
CSRF_FIELD = "csrf_token"
SESSION_LIFETIME = web_sessions.SESSION_LIFETIME
CSRF_BYTES = web_sessions.CSRF_BYTES
CSRF_COOKIE_MAX_AGE_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class ReviewerSession:
    """A signed-in reviewer: the principal of the token they signed in with, and the session's CSRF token."""

    principal: Principal
    csrf: str
    expires: datetime


def sign_in(registry: Registry, secret: str, *, previous_cookie: str | None) -> tuple[str, ReviewerSession]:
    """Start a session for a reviewer token; return ``(cookie value, session)``.

    Raises:
        AuthError: the token is malformed, unknown, expired or revoked.
        ForbiddenError: the token has no ``review`` scope.
    """
    principal = registry.authenticate(secret.strip())
    principal.require("review")
    cookie, stored = web_sessions.start_session(registry.db, principal, previous_cookie=previous_cookie)
    return cookie, ReviewerSession(stored.principal, stored.csrf, stored.expires)


def sign_out(registry: Registry, request: Request) -> None:
    """Delete the request's session row, if any (the caller also clears the cookie)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        web_sessions.end_session(registry.db, cookie)


def current_session(registry: Registry, request: Request) -> ReviewerSession | None:
    """The signed-in reviewer of this request, or None (no cookie, unknown, expired, token gone)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    stored = web_sessions.find_session(registry.db, cookie) if cookie else None
    if stored is None or not stored.principal.allows("review"):
        return None
    return ReviewerSession(stored.principal, stored.csrf, stored.expires)


def set_session_cookie(response: Response, value: str, *, secure: bool) -> None:
    """The session cookie: HttpOnly, SameSite=Lax, Secure under https, for the whole site."""
    max_age = int(SESSION_LIFETIME.total_seconds())
    response.set_cookie(
        SESSION_COOKIE, value, max_age=max_age, httponly=True, samesite="lax", secure=secure, path="/"
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)


def is_secure(request: Request, public_url: str | None) -> bool:
    """Whether the browser reaches us over https (directly, via the proxy's scheme, or per public URL)."""
    return request.url.scheme == "https" or bool(public_url and public_url.startswith("https://"))


def csrf_token(request: Request, reviewer: ReviewerSession | None) -> tuple[str, bool]:
    """The token to put in this page's forms, and whether the anonymous CSRF cookie must be (re)set."""
    if reviewer is not None:
        return reviewer.csrf, False
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and len(existing) <= 2 * CSRF_BYTES:
        return existing, False
    return secrets.token_urlsafe(CSRF_BYTES), True


def set_csrf_cookie(response: Response, value: str, *, secure: bool) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        value,
        max_age=CSRF_COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )


def check_csrf(
    request: Request, submitted: str | None, reviewer: ReviewerSession | None, *, public_url: str | None
) -> None:
    """Refuse (403) a form POST whose token does not match, or that comes from another origin.

    The own origin is the request's, or ``public_url``'s behind a proxy that terminates TLS.

    Raises:
        ForbiddenError: missing or wrong CSRF token, or a foreign ``Origin``.
    """
    check_origin(request, public_url=public_url)
    expected = reviewer.csrf if reviewer is not None else request.cookies.get(CSRF_COOKIE)
    if not submitted or not expected or not hmac.compare_digest(submitted.encode(), expected.encode()):
        raise ForbiddenError("the form's CSRF token is missing or does not match; reload the page and retry")


def check_origin(request: Request, *, public_url: str | None) -> None:
    """Refuse (403) a POST whose ``Origin`` is another site's; it needs no body, so it runs first."""
    origin = request.headers.get("origin")
    allowed = {_own_origin(request), _origin_of(public_url)}
    if origin is not None and origin.rstrip("/") not in allowed:
        raise ForbiddenError(f"cross-site form post refused: Origin {origin[:100]!r} is not this site")


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _origin_of(url: str | None) -> str:
    if not url:
        return ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
