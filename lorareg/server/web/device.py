"""``/device``: where a person signed in to the web UI approves or denies a ``lorareg login`` (RFC 8628 §3.3).

``GET /device`` asks for the code the terminal shows; ``GET /device?user_code=XXXX-XXXX`` (the
``verification_uri_complete``) shows the grant — the code, the client, the role asked for, when — with
Approve and Deny buttons; ``POST /device`` records the decision. Every request needs a web session of any
role (single sign-on or token sign-in); without one the browser is sent to ``/sign-in?next=…`` and comes
back here afterwards, through the identity provider too. The decision form carries the session's own CSRF
token (synchronizer pattern) and is refused (403) without it or from another origin.

Wrong codes are counted per account (``DeviceGrants``); after five the page refuses (429) for a while.
The page shows errors in place, with the form, so a typo costs one retry, not a lost page.

Deliberately not here: grant rules and token minting (``registry/device_grants.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from lorareg.errors import InputError, LoraregError
from lorareg.registry import DeviceGrants, GrantView, Registry, web_sessions
from lorareg.server.config import Settings
from lorareg.server.deps import RegistryDep, SettingsDep
from lorareg.server.guard import refuse_nul
from lorareg.server.streaming import read_capped
from lorareg.server.web import sessions
from lorareg.server.web.routes import render

router = APIRouter(include_in_schema=False)

PAGE = "/device"
TITLE = "Sign in a command line"
MAX_FORM_BYTES = 2 * 2**10  # the CSRF token, the code and the decision


@router.get(PAGE)
async def device_page(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    user_code: str = "",
) -> Response:
    stored = await run_in_threadpool(_session, registry, request)
    if stored is None:
        return _to_sign_in(request)
    context = _context(stored, settings.login_token_ttl_s) | {"entered": user_code[:20]}
    status = 200
    if user_code:
        try:
            grant = await run_in_threadpool(
                DeviceGrants(registry).find, user_code, principal=stored.principal
            )
            context |= _grant_context(grant)
        except LoraregError as e:
            context["error"], status = e.message, e.http_status
    return render(request, registry, "device.html", context, title=TITLE, status=status)


@router.post(PAGE)
async def decide(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    stored = await run_in_threadpool(_session, registry, request)
    if stored is None:
        return _to_sign_in(request)
    context = _context(stored, settings.login_token_ttl_s)
    try:
        grant, approve = await _decide(request, registry, settings, stored)
    except LoraregError as e:
        context["error"] = e.message
        return render(request, registry, "device.html", context, title=TITLE, status=e.http_status)
    context |= _grant_context(grant) | {"outcome": "approved" if approve else "denied"}
    return render(request, registry, "device.html", context, title=TITLE)


async def _decide(
    request: Request, registry: Registry, settings: Settings, stored: web_sessions.StoredSession
) -> tuple[GrantView, bool]:
    """Check origin and CSRF (403), then record the decision; the grant and whether it was approved."""
    sessions.check_origin(request, public_url=settings.public_url)
    form = await _form(request)
    reviewer = sessions.ReviewerSession(stored.principal, stored.csrf, stored.expires)
    sessions.check_csrf(request, form.get(sessions.CSRF_FIELD), reviewer, public_url=settings.public_url)
    decision = form.get("decision")
    if decision not in ("approve", "deny"):
        raise InputError("decision must be approve or deny")
    grant = await run_in_threadpool(
        DeviceGrants(registry).decide,
        form.get("user_code", ""),
        approve=decision == "approve",
        principal=stored.principal,
        token_ttl=timedelta(seconds=settings.login_token_ttl_s),
    )
    return grant, decision == "approve"


def _session(registry: Registry, request: Request) -> web_sessions.StoredSession | None:
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    return web_sessions.find_session(registry.db, cookie) if cookie else None


def _to_sign_in(request: Request) -> Response:
    """Off to sign in (any role), and back to this very URL afterwards (``next`` is a local path)."""
    target = PAGE + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)


def _context(stored: web_sessions.StoredSession, token_ttl_s: int) -> dict[str, object]:
    principal = stored.principal
    return {
        "signed_in_as": f"{principal.user or 'token ' + principal.token_id} ({principal.role})",
        "session_csrf": stored.csrf,
        "token_ttl": _duration(token_ttl_s),
        "grant": None,
        "outcome": None,
        "error": None,
        "entered": "",
    }


def _grant_context(grant: GrantView) -> dict[str, object]:
    return {
        "grant": grant,
        "role_asked": grant.scope or "yours (the role you are signed in with)",
        "asked_at": _when(grant.created),
        "expires_at": _when(grant.expires),
    }


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


async def _form(request: Request) -> dict[str, str]:
    """The decision form (urlencoded, at most :data:`MAX_FORM_BYTES`); another media type reads as empty,
    so the CSRF check refuses it."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        return {}
    raw = await read_capped(request, cap=MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=8)
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError("the form body is not valid urlencoded UTF-8") from e
    refuse_nul(pairs, where="form")
    return dict(pairs)
