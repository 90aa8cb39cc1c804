"""JSON routes of ``lorareg login``: the OAuth 2.0 device authorization grant (RFC 8628), lorareg as the
authorization server (why: ``registry/device_grants.py``), and token revocation (RFC 7009).

- ``POST /api/v1/device/code`` (§3.1-3.2): form ``client_id=lorareg-cli`` and an optional ``scope`` (one
  role) → ``device_code``, ``user_code`` (``XXXX-XXXX``), ``verification_uri`` (``/device``),
  ``verification_uri_complete``, ``expires_in``, ``interval``. The URLs are built from
  ``LORAREG_PUBLIC_URL`` (``guard.public_link``), never from the ``Host`` header; without it they are
  relative and the CLI joins them to the registry URL it used.
- ``POST /api/v1/device/token`` (§3.4-3.5): form ``grant_type=urn:ietf:params:oauth:grant-type:device_code``,
  ``device_code``, ``client_id`` → ``{access_token, token_type: "Bearer", expires_in, scope}`` once.
- ``POST /api/v1/tokens/revoke`` (RFC 7009): form ``token=lrg_…``; whoever holds a token may revoke it
  (``lorareg logout``). Always 200 for a well-formed request, so it says nothing about unknown tokens.

All three take ``application/x-www-form-urlencoded`` bodies of at most :data:`MAX_FORM_BYTES`, need no
credentials (also under ``LORAREG_READ=signed-in``), answer ``Cache-Control: no-store``, and answer errors
in the OAuth shape ``{"error": CODE, "error_description": TEXT}`` (RFC 6749 §5.2) — 400, or 429 when too
many grants are pending — because that is what device-flow clients parse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lorareg.errors import InputError, RateLimitedError
from lorareg.registry import DeviceGrants, GrantError
from lorareg.server.api.takedowns import client_address
from lorareg.server.deps import RegistryDep, SettingsDep
from lorareg.server.guard import public_link, refuse_nul
from lorareg.server.streaming import read_capped

router = APIRouter(tags=["login"])

DEVICE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
VERIFICATION_PATH = "/device"
MAX_FORM_BYTES = 4 * 2**10  # three short fields
MAX_FIELD_CHARS = 200
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


@router.post("/api/v1/device/code", summary="Start `lorareg login` (RFC 8628 device authorization)")
async def device_code(request: Request, registry: RegistryDep, settings: SettingsDep) -> JSONResponse:
    async def answer() -> dict[str, Any]:
        form = await _form(request, required=("client_id",), optional=("scope",))
        grant = await run_in_threadpool(
            DeviceGrants(registry).begin,
            client_id=form["client_id"],
            scope=form.get("scope") or None,
            lifetime=timedelta(seconds=settings.device_code_ttl_s),
            interval_s=settings.device_interval_s,
            client=client_address(request),
        )
        page = public_link(settings.public_url, VERIFICATION_PATH)
        return {
            "device_code": grant.device_code,
            "user_code": grant.user_code,
            "verification_uri": page,
            "verification_uri_complete": f"{page}?user_code={quote(grant.user_code)}",
            "expires_in": grant.expires_in,
            "interval": grant.interval,
        }

    return await _oauth(answer)


@router.post("/api/v1/device/token", summary="Poll for the token of `lorareg login` (RFC 8628 §3.4)")
async def device_token(request: Request, registry: RegistryDep) -> JSONResponse:
    async def answer() -> dict[str, Any]:
        form = await _form(request, required=("grant_type", "device_code", "client_id"))
        if form["grant_type"] != DEVICE_GRANT_TYPE:
            raise GrantError("unsupported_grant_type", f"grant_type must be {DEVICE_GRANT_TYPE}")
        issued = await run_in_threadpool(
            DeviceGrants(registry).poll, form["device_code"], client_id=form["client_id"]
        )
        return {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        }

    return await _oauth(answer)


@router.post("/api/v1/tokens/revoke", summary="Revoke the token in the body (RFC 7009; `lorareg logout`)")
async def revoke_token(request: Request, registry: RegistryDep) -> JSONResponse:
    async def answer() -> dict[str, Any]:
        form = await _form(request, required=("token",), optional=("token_type_hint",))
        await run_in_threadpool(DeviceGrants(registry).revoke_presented, form["token"])
        return {}

    return await _oauth(answer)


async def _oauth(answer: Callable[[], Awaitable[dict[str, Any]]]) -> JSONResponse:
    """Run ``answer``; its refusals become the OAuth error shape (RFC 6749 §5.2), never the API's."""
    try:
        return JSONResponse(await answer(), headers=_NO_STORE)
    except RateLimitedError as e:
        return _error(429, "slow_down", e.message)
    except InputError as e:  # GrantError, a bad form, an oversized body (413 is folded into 400 here)
        return _error(400, getattr(e, "oauth_error", "invalid_request"), e.message)


def _error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": code, "error_description": description}, status_code=status, headers=_NO_STORE
    )


async def _form(
    request: Request, *, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, str]:
    """The urlencoded body as a dict: each field at most once (RFC 6749 §3.1), known fields only.

    Raises:
        InputError: another media type, over :data:`MAX_FORM_BYTES`, not UTF-8, a repeated, unknown,
            over-long or missing field, or a NUL.
    """
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InputError("send the fields as application/x-www-form-urlencoded (RFC 8628 §3.1)")
    raw = await read_capped(request, cap=MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw), max_num_fields=8
        )
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError("the body is not a valid urlencoded UTF-8 form") from e
    refuse_nul(pairs, where="form")
    names = [name for name, _ in pairs]
    for name in names:
        if names.count(name) > 1 or name not in (*required, *optional):
            raise InputError(f"field {name[:40]!r} is repeated or unknown")
    form = {name: value for name, value in pairs if value}
    missing = [name for name in required if name not in form]
    if missing:
        raise InputError(f"missing field {missing[0]}")
    if any(len(value) > MAX_FIELD_CHARS for value in form.values()):
        raise InputError(f"a field is over {MAX_FIELD_CHARS} characters")
    return form
