"""Pages of a private catalogue: sign-in for any role (``/sign-in``) and the standalone takedown form.

With ``LORAREG_READ=signed-in`` (``server/read_access.py``) every other page redirects here. Sign-in takes
an API token of any role once, from a form body, checks it (every role implies the ``viewer`` scope) and
answers with a fresh session cookie exactly as reviewer sign-in does (``sessions.py``: HttpOnly,
SameSite=Lax, Secure under https, earlier session of the browser deleted). ``next`` is followed only when
it is a path on this site, so the page cannot be used as an open redirect.

``/takedown`` is the takedown form on its own page: on a private registry a claimant cannot see adapter
pages, and the form must stay open to them.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from lorareg.registry import GOOD_FAITH_STATEMENT, REASONS, VIEWER_SCOPE, Registry, web_sessions
from lorareg.server.deps import RegistryDep, SettingsDep
from lorareg.server.web import sessions
from lorareg.server.web.routes import render

router = APIRouter(include_in_schema=False)


@router.get("/sign-in")
def sign_in_page(request: Request, registry: RegistryDep, next: str = "/") -> Response:  # noqa: A002
    context = {"next": local_path(next), "sso": sso_link(request)}
    return render(request, registry, "sign_in_viewer.html", context, title="Sign in")


@router.post("/sign-in")
async def sign_in(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    form = await request.form()
    submitted, token, target = (form.get(k) for k in (sessions.CSRF_FIELD, "token", "next"))
    sessions.check_csrf(
        request, submitted if isinstance(submitted, str) else None, None, public_url=settings.public_url
    )
    cookie = await run_in_threadpool(
        start_viewer_session,
        registry,
        token if isinstance(token, str) else "",
        previous_cookie=request.cookies.get(sessions.SESSION_COOKIE),
    )
    response = RedirectResponse(local_path(target if isinstance(target, str) else "/"), status_code=303)
    sessions.set_session_cookie(response, cookie, secure=sessions.is_secure(request, settings.public_url))
    return response


@router.get("/takedown")
def takedown_form(request: Request, registry: RegistryDep, ref: str = "") -> Response:
    context = {
        "ref": ref[:200],
        "reasons": list(REASONS.items()),
        "good_faith_statement": GOOD_FAITH_STATEMENT,
    }
    return render(request, registry, "takedown_form.html", context, title="Takedown request")


def start_viewer_session(registry: Registry, secret: str, *, previous_cookie: str | None) -> str:
    """A new web session for a token of any role; returns the cookie value.

    Raises:
        AuthError: the token is malformed, unknown, expired or revoked.
    """
    principal = registry.authenticate(secret.strip())
    principal.require(VIEWER_SCOPE)
    cookie, _ = web_sessions.start_session(registry.db, principal, previous_cookie=previous_cookie)
    return cookie


def local_path(target: str) -> str:
    """``target`` if it is a path on this site (``/…`` but not ``//…`` or ``/\\…``), else ``/``."""
    if target.startswith("/") and not target.startswith(("//", "/\\")) and "\n" not in target:
        return target
    return "/"


def sso_link(request: Request) -> str | None:
    """The single sign-on entry point when the server is configured for one (else None)."""
    settings = request.app.state.settings
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return None
    target = request.query_params.get("next", "/")
    return f"/auth/oidc/login?next={quote(local_path(target), safe='')}"
