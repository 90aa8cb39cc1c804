"""Read access as a setting: with ``LORAREG_READ=signed-in`` every request needs a token or a session.

A studio's internal catalogue must not leak to whoever reaches the server. This gate is one pure ASGI
middleware in front of every route, so a route added later is private by default: only the short
allow-list below is reachable without credentials, and a test walks the OpenAPI document and every page
to prove it. Allowed anonymously, because a pipeline or a claimant must always reach them:

- ``GET /api/v1/revocations`` — the signed revocation list (pipelines must always learn of takedowns) and
  ``GET /api/v1/keys`` (public keys only: what verifies that list);
- filing a takedown (``POST /api/v1/takedowns``, ``POST /takedowns``, the ``/takedown`` form) and its
  status (``/api/v1/takedowns/{id}``, ``/takedowns/{id}``): whoever has a request's link may follow it;
- signing in (``/sign-in``, ``/review/sign-in``), the SSO callbacks (``/auth/…``), static assets and
  ``/healthz``;
- ``lorareg login``'s device-grant endpoints (``POST /api/v1/device/code``, ``/api/v1/device/token``) and
  token revocation (``POST /api/v1/tokens/revoke``): the CLI has no token before, and holds the one it
  revokes. The approval page ``/device`` is *not* open: it needs a session, so it redirects to sign-in.

Credentials: a bearer token (any role; every role implies the ``viewer`` scope) or a web session cookie.
Without them the API answers 401 (JSON error, ``WWW-Authenticate: Bearer``) and pages redirect (303) to
``/sign-in?next=…``. A bad token is refused here too, never downgraded to anonymous. With ``public``
(the default) the gate passes everything through untouched.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lorareg.errors import AuthError
from lorareg.registry import VIEWER_SCOPE, Registry, web_sessions

SESSION_COOKIE = "lorareg_session"  # the web UI's session cookie (server/web/sessions.py)
SIGN_IN_PATH = "/sign-in"
_READ = frozenset({"GET", "HEAD"})
_READ_POST = frozenset({"GET", "HEAD", "POST"})
_POST = frozenset({"POST"})
OPEN_ROUTES: tuple[tuple[frozenset[str], re.Pattern[str]], ...] = (
    (_READ, re.compile(r"/healthz")),
    (_READ, re.compile(r"/api/v1/revocations")),
    (_READ, re.compile(r"/api/v1/keys")),
    (_POST, re.compile(r"/api/v1/takedowns")),
    (_READ, re.compile(r"/api/v1/takedowns/(?!audit$)[A-Za-z0-9_-]+")),
    (_POST, re.compile(r"/takedowns")),
    (_READ_POST, re.compile(r"/takedown")),
    (_READ, re.compile(r"/takedowns/[A-Za-z0-9_-]+")),
    (_READ_POST, re.compile(r"/sign-in")),
    (_READ_POST, re.compile(r"/review/sign-in")),
    (_POST, re.compile(r"/review/sign-out")),
    (_READ_POST, re.compile(r"/auth/[a-z-]+(/[a-z-]+)?")),
    (_READ, re.compile(r"/static/[A-Za-z0-9._-]+")),
    (_POST, re.compile(r"/api/v1/device/(code|token)")),  # lorareg login: the CLI has no token yet
    (_POST, re.compile(r"/api/v1/tokens/revoke")),  # possession of the token in the body is the authority
)


def is_open(method: str, path: str) -> bool:
    """True when ``method path`` is on the anonymous allow-list of the module docstring."""
    return any(method in methods and pattern.fullmatch(path) for methods, pattern in OPEN_ROUTES)


class ReadAccessMiddleware:
    """Refuses anonymous requests outside :data:`OPEN_ROUTES` when the app's settings say ``signed-in``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["app"].state.settings.read != "signed-in":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if is_open(request.method, request.url.path) or await _signed_in(request):
            await self.app(scope, receive, send)
            return
        await _refusal(request)(scope, receive, send)


async def _signed_in(request: Request) -> bool:
    """A usable bearer token or web session with the ``viewer`` scope (every role has it)."""
    registry: Registry = request.app.state.registry
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return False
        try:
            principal = await run_in_threadpool(registry.authenticate, secret.strip())
        except AuthError:
            return False
        return principal.allows(VIEWER_SCOPE)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return False
    stored = await run_in_threadpool(web_sessions.find_session, registry.db, cookie)
    return stored is not None and stored.principal.allows(VIEWER_SCOPE)


def _refusal(request: Request) -> Response:
    path = request.url.path
    if path.startswith("/api/") or request.method not in _READ:
        return JSONResponse(
            {
                "error": {
                    "code": AuthError.code,
                    "message": "this registry is private: sign in or send a token",
                }
            },
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="lorareg"'},
        )
    target = path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{SIGN_IN_PATH}?next={quote(target, safe='')}", status_code=303)
