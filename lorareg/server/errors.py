"""The server's one exception handler: every :class:`LoraregError` becomes ``{"error": {"code", "message"}}``.

This is one of the two places where ``LoraregError`` is caught (the other is the CLI entry point). The
status is the error's own ``http_status``; FastAPI's request-validation errors become 400 ``bad_input`` in
the same shape, so clients parse exactly one error format. A browser asking for a page path that does not
exist (``Accept: text/html``, outside ``/api/``) gets the HTML error page instead, like the pages' own
errors. Anything else is a bug: it is logged with its traceback and answered 500 ``internal_error``
without details, so nothing internal leaks to a client.
"""

from __future__ import annotations

import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lorareg.errors import LoraregError, RemoteError
from lorareg.server.log_text import log_safe

_log = logging.getLogger("lorareg.server")
_HTTP_METHODS = frozenset({"get", "head", "post", "put", "patch", "delete", "options"})


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The JSON error body every route answers with."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn exceptions into the one JSON error shape."""
    app.add_exception_handler(LoraregError, _on_lorareg_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)


async def _on_lorareg_error(request: Request, exc: LoraregError) -> JSONResponse:
    status = exc.http_status
    if isinstance(exc, RemoteError):  # a server-side RemoteError is an upstream (e.g. S3) failure
        status = 502
    if status >= 500:
        _log.error(
            "%s %s failed: %s", log_safe(request.method), log_safe(request.url.path), log_safe(exc.message)
        )
    return error_response(status, exc.code, exc.message)


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return error_response(400, "bad_input", "invalid request: " + "; ".join(parts))


async def _on_http_exception(request: Request, exc: StarletteHTTPException) -> Response:
    if _wants_html(request):  # a browser on a page path gets the error page, an API client JSON
        from lorareg.server.web.routes import error_page

        return error_page(request, exc.status_code, str(exc.detail))
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
    response = error_response(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))
    if exc.status_code == 405:  # RFC 9110: say which methods the resource has (every route of the path)
        response.headers["Allow"] = ", ".join(_allowed_methods(request, exc))
    return response


def _allowed_methods(request: Request, exc: StarletteHTTPException) -> list[str]:
    """Starlette's ``Allow`` names one route's methods; add those of every documented route of the path."""
    listed = (exc.headers or {}).get("Allow", "")
    methods = {m.strip().upper() for m in listed.split(",") if m.strip()}
    for template, item in request.app.openapi().get("paths", {}).items():
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in item if m in _HTTP_METHODS}
    return sorted(methods)


def _wants_html(request: Request) -> bool:
    """A page request from a browser: outside ``/api/`` and asking for HTML (API clients never do)."""
    path = request.url.path
    return not path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("%s %s crashed", log_safe(request.method), log_safe(request.url.path), exc_info=exc)
    return error_response(500, "internal_error", "internal server error; see the server log")
