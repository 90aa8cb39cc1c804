"""JSON request bodies: the one reader every route that takes JSON uses (takedowns, aliases, webhooks).

A JSON body is read only with ``Content-Type: application/json``: a browser sends that type cross-site only
after a CORS preflight, which this server never grants, so a hostile page's form post is refused (403)
before a byte is read. The body is read capped (413 past ``cap``), parsed strictly into a pydantic model
(400 naming the first few problems), and refused when any string in it holds a NUL.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from lorareg.errors import ForbiddenError, InputError
from lorareg.server.guard import refuse_nul
from lorareg.server.streaming import read_capped

_M = TypeVar("_M", bound=BaseModel)
_SHOWN_PROBLEMS = 5


async def read_json(request: Request, model: type[_M], *, cap: int) -> _M:
    """The body parsed into ``model``; 403 for another content type, 413 past ``cap``, 400 for bad JSON."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise ForbiddenError(
            f"this endpoint takes Content-Type application/json, not {content_type or 'none'!r} "
            "(cross-site form posts are refused)"
        )
    raw = await read_capped(request, cap=cap)
    try:
        parsed = model.model_validate_json(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in e.errors()[:_SHOWN_PROBLEMS]
        )
        raise InputError(f"invalid request body: {problems}") from e
    refuse_nul(parsed.model_dump(), where="request body")
    return parsed
