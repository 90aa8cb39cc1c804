"""Checks at the edge for values that would otherwise reach the database or an integer conversion raw.

PostgreSQL refuses a NUL character in any text value (the driver raises, the route would answer 500)
while SQLite stores it, so the same request behaves differently per backend; integers above the columns'
32-bit range overflow in the driver. Both are refused here, once, before any route runs:

- :class:`InputGuardMiddleware` answers 400 for a NUL in the decoded path or in the query string (raw or
  ``%00``), so no route and no page ever sees one;
- :func:`refuse_nul` walks a parsed JSON or form body (strings, lists, dicts) for the same;
- :data:`MAX_DB_INT` bounds every integer parameter (log indexes, tree sizes, cursor ids);
- a token-like query parameter (``?api_key=``, ``?token=`` …) is refused on every route, public ones
  included: the token has leaked into logs already and its owner should learn it now;
- :func:`public_link` builds the URLs the server hands out from ``LORAREG_PUBLIC_URL`` or relative, never
  from the client-chosen ``Host`` header.

Deliberately not here: what a valid name, version or digest looks like (the service checks those).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from lorareg.errors import InputError
from lorareg.server.errors import error_response

TOKEN_QUERY_NAMES = frozenset({"token", "access_token", "api_key", "apikey", "auth"})
MAX_DB_INT = 2**31 - 1  # PostgreSQL's INTEGER; every id and log index column is one

_NUL_ESCAPES = (b"%00", b"\x00")


class InputGuardMiddleware:
    """Refuse (400) a request whose path or query carries a NUL, or whose query carries a token (ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = _url_problem(scope)
            if problem is not None:
                await error_response(400, "bad_input", problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _url_problem(scope: Scope) -> str | None:
    """Why the request's URL is refused (a NUL, a token in the query), or None."""
    path = str(scope.get("path", ""))
    raw_path = scope.get("raw_path") or b""
    if "\x00" in path or b"%00" in raw_path:
        return "the URL path contains a NUL character"
    query = bytes(scope.get("query_string", b"")).lower()
    if any(escape in query for escape in _NUL_ESCAPES):
        return "the query string contains a NUL character"
    names = {name.strip().lower() for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
    if names & TOKEN_QUERY_NAMES:
        return "tokens are accepted only in the Authorization header, never in the URL; revoke it"
    return None


def refuse_nul(value: Any, *, where: str = "body") -> None:
    """Raise :class:`InputError` when a string anywhere in ``value`` (nested lists/dicts) holds a NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            raise InputError(f"the {where} contains a NUL character")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            refuse_nul(key, where=where)
            refuse_nul(item, where=where)
    elif isinstance(value, list | tuple):
        for item in value:
            refuse_nul(item, where=where)


def public_link(public_url: str | None, path: str) -> str:
    """``path`` under the configured public URL, or as it is (relative): never from the ``Host`` header."""
    return f"{public_url.rstrip('/')}{path}" if public_url else path
