"""The web UI: server-rendered jinja2 pages over the same service calls as the JSON API.

Pages: the catalogue ``/``, adapter pages ``/adapters/ns/name[/VERSION]``, "check an image" ``/check``
(``image_check.py``), the takedown form (on every
adapter page) and its status page ``/takedowns/{id}``, reviewer sign-in, the review queue ``/review`` and a
decision page per request. Each page links its JSON twin under ``/api/v1``. ``create_app`` includes
``router`` and adds the ``MIDDLEWARE`` listed here.

Security, in one place: jinja2 autoescapes every template (``autoescape=True`` for all names, so a
template can never opt out by its file extension); :class:`SecurityHeadersMiddleware` sends a
Content-Security-Policy that allows scripts and styles from this origin only (the one script is a static
file); every form POST is CSRF-checked (``sessions.py``) and answered 403 without a valid token; review
pages need a reviewer session; tokens travel only in form bodies and headers, never URLs. Errors on pages
render ``error.html`` with the error's status instead of JSON.

Deliberately not here: decisions about takedowns, revocation or images (the services), and formatting
(``web_views.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lorareg.errors import ForbiddenError, InputError, LoraregError, NotFoundError, PayloadTooLargeError
from lorareg.registry import (
    DECISIONS,
    GOOD_FAITH_STATEMENT,
    REASONS,
    STATUSES,
    Previews,
    Registry,
    Takedowns,
    VersionRecord,
)
from lorareg.server.api import takedowns as takedown_api
from lorareg.server.deps import RegistryDep, SettingsDep, bearer_token
from lorareg.server.guard import refuse_nul
from lorareg.server.streaming import read_capped
from lorareg.server.web import image_check, sessions
from lorareg.server.web import views as web_views
from lorareg.server.web.sessions import ReviewerSession

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_FILES = {"style.css": "text/css; charset=utf-8", "copy.js": "text/javascript; charset=utf-8"}
STATIC_MAX_AGE_S = 3600
MAX_FORM_BYTES = 64 * 2**10  # the takedown form (10,000 characters of details, urlencoded) fits easily
MAX_FORM_FIELDS = 32
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_FORM_OVERHEAD_BYTES = 64 * 2**10  # multipart boundaries, headers and the CSRF field around an upload
_CHECK_FORM_FIELDS = 4  # the image-check form has the CSRF token and the file


class _HtmlErrorRoute(APIRoute):
    """A route whose LoraregErrors (and bad parameters) render ``error.html`` rather than JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def render_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except LoraregError as e:
                return _error_page(request, e.http_status, e.message)
            except RequestValidationError:
                return _error_page(request, 400, "the page was asked for with invalid parameters")

        return render_errors


router = APIRouter()


def _no_token_in_url(request: Request) -> None:
    """Refuse a page request that carries a token in its query string (it has leaked already)."""
    bearer_token(request)


pages = APIRouter(
    route_class=_HtmlErrorRoute, include_in_schema=False, dependencies=[Depends(_no_token_in_url)]
)
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# -- catalogue and adapter pages -------------------------------------------------------------------------
@pages.get("/")
def catalogue(request: Request, registry: RegistryDep) -> Response:
    view = web_views.catalogue_view(registry, dict(request.query_params))
    status = 400 if view["error"] else 200  # a bad filter is the API's 400, shown on the page
    return render(request, registry, "catalogue.html", view, title="Catalogue", status=status)


@pages.get("/adapters/{namespace}/{adapter}")
def adapter_latest(namespace: str, adapter: str, request: Request, registry: RegistryDep) -> Response:
    name = f"{namespace}/{adapter}"
    found = registry.get_adapter(name)
    latest = found.latest or found.versions[0]  # only yanked or revoked versions: the newest of them
    return _adapter_page(request, registry, registry.get_version(name, latest.version))


@pages.get("/adapters/{namespace}/{adapter}/{version}")
def adapter_version(
    namespace: str, adapter: str, version: str, request: Request, registry: RegistryDep
) -> Response:
    return _adapter_page(request, registry, registry.get_version(f"{namespace}/{adapter}", version))


@pages.get("/previews/{sha256}")
def preview_image(sha256: str, registry: RegistryDep) -> Response:
    media_type, chunks = Previews(registry).open(sha256)
    headers = {"Cache-Control": "public, max-age=86400"}  # nosniff comes with the security headers
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


@pages.get("/static/{filename}")
def static_file(filename: str) -> Response:
    if filename not in STATIC_FILES:
        raise NotFoundError(f"no static file {filename[:60]!r}")
    body = (TEMPLATE_DIR / "static" / filename).read_bytes()
    headers = {"Cache-Control": f"public, max-age={STATIC_MAX_AGE_S}"}
    return Response(body, media_type=STATIC_FILES[filename], headers=headers)


# -- check an image -----------------------------------------------------------------------------------
@pages.get("/check")
def check_image_page(request: Request, registry: RegistryDep) -> Response:
    context = {"result": None, "max_bytes": image_check.MAX_CHECK_BYTES}
    return render(request, registry, "check_image.html", context, title="Check an image")


@pages.post("/check")
async def check_image(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    """Read the dropped image's claims; nothing is stored (see ``image_check``)."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():  # a chunked body has no length to cap before it is parsed: browsers send one
        raise InputError("the image upload needs a Content-Length header; refused unread")
    if int(declared) > image_check.MAX_CHECK_BYTES + _FORM_OVERHEAD_BYTES:
        raise PayloadTooLargeError(f"the image is over {image_check.MAX_CHECK_BYTES} bytes; refused unread")
    form = await _checked_form(request, registry, settings.public_url, upload=True)
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise InputError("choose an image file (PNG, JPEG or WebP) to check")
    data = await upload.read(image_check.MAX_CHECK_BYTES + 1)
    await upload.close()
    result = await run_in_threadpool(image_check.check_image, registry, data)
    context = {
        "result": result,
        "filename": upload.filename or "image",
        "max_bytes": image_check.MAX_CHECK_BYTES,
    }
    return render(request, registry, "check_image.html", context, title="Check an image")


# -- takedown requests --------------------------------------------------------------------------------
@pages.post("/takedowns")
async def file_takedown(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    form = await _checked_form(request, registry, settings.public_url)
    record = await run_in_threadpool(
        Takedowns(registry).file,
        ref=_field(form, "ref"),
        reason=_field(form, "reason"),
        claimant=_field(form, "claimant"),
        contact=_field(form, "contact"),
        details=_field(form, "details"),
        good_faith=form.get("good_faith") == "yes",
        client=takedown_api.client_address(request),
    )
    return RedirectResponse(f"/takedowns/{record.id}", status_code=303)


@pages.get("/takedowns/{request_id}")
def takedown_status_page(request_id: str, request: Request, registry: RegistryDep) -> Response:
    record = Takedowns(registry).get(request_id)
    context = {"td": record, "json_url": f"/api/v1/takedowns/{record.id}"}
    return render(request, registry, "takedown_status.html", context, title=f"Takedown {record.id}")


# -- review --------------------------------------------------------------------------------------------
@pages.get("/review/sign-in")
def sign_in_page(request: Request, registry: RegistryDep) -> Response:
    return render(request, registry, "sign_in.html", {}, title="Reviewer sign-in")


@pages.post("/review/sign-in")
async def sign_in(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    form = await _checked_form(request, registry, settings.public_url)
    previous = request.cookies.get(sessions.SESSION_COOKIE)
    cookie, _ = await run_in_threadpool(
        sessions.sign_in, registry, _field(form, "token"), previous_cookie=previous
    )
    response = RedirectResponse("/review", status_code=303)
    sessions.set_session_cookie(response, cookie, secure=sessions.is_secure(request, settings.public_url))
    return response


@pages.post("/review/sign-out")
async def sign_out(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    await _checked_form(request, registry, settings.public_url)
    sessions.sign_out(registry, request)
    response = RedirectResponse("/", status_code=303)
    sessions.clear_session_cookie(response, secure=sessions.is_secure(request, settings.public_url))
    return response


@pages.get("/review")
def review_queue(request: Request, registry: RegistryDep, status: str = "open") -> Response:
    reviewer = sessions.current_session(registry, request)
    if reviewer is None:
        return RedirectResponse("/review/sign-in", status_code=303)
    takedowns = Takedowns(registry)
    chosen = status if status in STATUSES else None
    items = takedowns.list_requests(principal=reviewer.principal, status=chosen)
    if status == "open":
        items = [r for r in items if r.is_open]
    context = {
        "items": items,
        "status": status,
        "statuses": ("open", *STATUSES, "all"),
        "events": takedowns.events(principal=reviewer.principal)[:50],
        "json_url": "/api/v1/takedowns",
    }
    return render(request, registry, "review_queue.html", context, title="Review queue", reviewer=reviewer)


@pages.get("/review/{request_id}")
def review_request(request_id: str, request: Request, registry: RegistryDep) -> Response:
    reviewer = _require_reviewer(registry, request)
    takedowns = Takedowns(registry)
    record = takedowns.get(request_id)
    context = {
        "td": record,
        "events": takedowns.events(principal=reviewer.principal, request_id=record.id),
        "decisions": list(DECISIONS),
        "target_url": web_views.adapter_url(record.name, record.version),
        "json_url": f"/api/v1/takedowns/{record.id}",
        "reuploads": web_views.possible_reuploads(registry, record.name, record.version),
    }
    return render(
        request, registry, "review_decision.html", context, title=f"Decide {record.id}", reviewer=reviewer
    )


@pages.post("/review/{request_id}")
async def decide(request_id: str, request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    reviewer = _require_reviewer(registry, request)
    form = await _checked_form(request, registry, settings.public_url, reviewer=reviewer)
    await run_in_threadpool(
        Takedowns(registry).decide,
        request_id,
        decision=_field(form, "decision"),
        reason=_field(form, "reason"),
        principal=reviewer.principal,
        all_versions=form.get("all_versions") == "yes",
    )
    return RedirectResponse(f"/review/{request_id}", status_code=303)


# -- rendering ------------------------------------------------------------------------------------------
def render(
    request: Request,
    registry: Registry,
    template: str,
    context: dict[str, Any],
    *,
    title: str,
    status: int = 200,
    reviewer: ReviewerSession | None = None,
) -> HTMLResponse:
    """Render a page; every page gets the reviewer (if signed in) and a CSRF token for its forms."""
    reviewer = reviewer or sessions.current_session(registry, request)
    csrf, new_cookie = sessions.csrf_token(request, reviewer)
    html = _env.get_template(template).render(
        **context, title=title, reviewer=reviewer, csrf=csrf, csrf_field=sessions.CSRF_FIELD
    )
    response = HTMLResponse(html, status_code=status)
    if reviewer is not None:
        response.headers["Cache-Control"] = "no-store"
    if new_cookie:
        settings = request.app.state.settings
        sessions.set_csrf_cookie(response, csrf, secure=sessions.is_secure(request, settings.public_url))
    return response


class SecurityHeadersMiddleware:
    """Adds the Content-Security-Policy and companion headers to every HTTP response (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(k.encode(), v.encode()) for k, v in _security_headers()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _security_headers() -> Iterator[tuple[str, str]]:
    yield "content-security-policy", CONTENT_SECURITY_POLICY
    yield "x-content-type-options", "nosniff"
    yield "x-frame-options", "DENY"
    yield "referrer-policy", "same-origin"


def _adapter_page(request: Request, registry: Registry, record: VersionRecord) -> Response:
    settings = request.app.state.settings
    own_url = (settings.public_url or str(request.base_url)).rstrip("/")
    view = web_views.adapter_view(registry, record, registry_url=own_url)
    view |= {"reasons": list(REASONS.items()), "good_faith_statement": GOOD_FAITH_STATEMENT}
    return render(request, registry, "adapter.html", view, title=f"{record.name}@{record.version}")


def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    registry: Registry = request.app.state.registry
    context = {"status": status, "message": message, "phrase": _phrase(status)}
    return render(request, registry, "error.html", context, title=_phrase(status), status=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The HTML error page, for the app's handler answering a browser outside the page routes (404s)."""
    return _error_page(request, status, message)


def _phrase(status: int) -> str:
    """``Not found``, ``Bad request``…: the page's title says what happened, in words."""
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase.capitalize()
    except ValueError:
        return "Error"


def _require_reviewer(registry: Registry, request: Request) -> ReviewerSession:
    reviewer = sessions.current_session(registry, request)
    if reviewer is None:
        raise ForbiddenError("reviewer pages need a reviewer session: sign in at /review/sign-in")
    return reviewer


async def _checked_form(
    request: Request,
    registry: Registry,
    public_url: str | None,
    *,
    reviewer: ReviewerSession | None = None,
    upload: bool = False,
) -> FormData:
    """The POSTed form, after its CSRF token was checked (403 otherwise).

    Order matters for an anonymous visitor: the ``Origin`` is checked before any byte is read, and the
    body is capped (413 past :data:`MAX_FORM_BYTES`) and timed before it is parsed, so a huge or stalled
    POST costs neither memory nor a parse. ``upload``: the one multipart form (check an image), whose
    declared length the route has capped; one file and a few fields at most, files spooled to disk.
    """
    sessions.check_origin(request, public_url=public_url)
    if upload:
        form = await request.form(max_files=1, max_fields=_CHECK_FORM_FIELDS)
    else:
        form = await _small_form(request)
    reviewer = reviewer or sessions.current_session(registry, request)
    submitted = form.get(sessions.CSRF_FIELD)
    sessions.check_csrf(
        request, submitted if isinstance(submitted, str) else None, reviewer, public_url=public_url
    )
    refuse_nul([(k, v) for k, v in form.multi_items() if isinstance(v, str)], where="form")
    return form


async def _small_form(request: Request) -> FormData:
    """An urlencoded form body of at most :data:`MAX_FORM_BYTES`, parsed only once it was read whole."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return FormData()  # unread: our pages post urlencoded, so the CSRF check refuses it (403)
    raw = await read_capped(request, cap=MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError("the form body is not valid urlencoded UTF-8") from e
    return FormData(list(pairs))


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        raise InputError(f"the form field {name!r} is missing")
    return value


router.include_router(pages)
MIDDLEWARE = (SecurityHeadersMiddleware,)  # added by create_app with this router
