"""The CLI's side of ``lorareg login``: the OAuth 2.0 device authorization grant (RFC 8628).

1. :func:`request_code` — ``POST /api/v1/device/code`` (§3.1): the codes, the page to open, the lifetime and
   the polling interval. A relative ``verification_uri`` (a registry without ``LORAREG_PUBLIC_URL``) is
   joined to the registry URL the CLI already uses.
2. The person opens the page, signs in and approves (§3.3) — nothing for this module to do.
3. :func:`poll_for_token` — ``POST /api/v1/device/token`` (§3.4) no more often than ``interval``;
   ``slow_down`` adds 5 s for good (§3.5); ``access_denied`` and ``expired_token`` end it
   (:class:`LoginRefusedError`, exit 1); the code's own lifetime ends it too, without another request.

Answers are read capped (:data:`MAX_ANSWER_BYTES`) and checked for shape before use; the token is handed
back to the caller, never printed. Deliberately not here: storing the token (``credentials.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import httpx

from lorareg.errors import AuthError, RemoteError

CLIENT_ID = "lorareg-cli"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP_S = 5
MAX_ANSWER_BYTES = 64 * 2**10
REQUEST_TIMEOUT_S = 30.0
MAX_INTERVAL_S = 300  # a registry asking for more is not honoured beyond this
MAX_LIFETIME_S = 3600


class LoginRefusedError(AuthError):
    """The sign-in was denied in the browser, or its code expired: a refusal (exit 1), not bad input."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """The registry's answer to ``POST /api/v1/device/code``, with absolute page URLs."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int
    interval: int


@dataclass(frozen=True, slots=True)
class LoginToken:
    """The token ``lorareg login`` received: its secret, expiry and role (``scope``)."""

    token: str = field(repr=False)
    expires_at: datetime
    role: str


def request_code(http: httpx.Client, registry_url: str, *, scope: str | None = None) -> DeviceCode:
    """Ask the registry for a device code (RFC 8628 §3.1-3.2).

    Raises:
        AuthError: the registry refused the request (its ``error_description``).
        RemoteError: network failure, or an answer that is not the §3.2 shape.
    """
    form = {"client_id": CLIENT_ID} | ({"scope": scope} if scope else {})
    status, answer = _post(http, "/api/v1/device/code", form)
    if status != 200:
        raise AuthError(f"the registry refused to start a sign-in: {_describe(answer, status)}")
    base = registry_url.rstrip("/") + "/"
    try:
        page = urljoin(base, _text(answer, "verification_uri"))
        complete = answer.get("verification_uri_complete")
        return DeviceCode(
            device_code=_text(answer, "device_code"),
            user_code=_text(answer, "user_code"),
            verification_uri=page,
            verification_uri_complete=urljoin(base, complete) if isinstance(complete, str) else page,
            expires_in=min(_number(answer, "expires_in"), MAX_LIFETIME_S),
            interval=min(max(_number(answer, "interval", default=5), 1), MAX_INTERVAL_S),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise RemoteError(f"the registry's device code answer is malformed: {e}") from e


def poll_for_token(
    http: httpx.Client,
    code: DeviceCode,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> LoginToken:
    """Poll until the person approves (the token), denies or the code expires (RFC 8628 §3.4-3.5).

    Raises:
        LoginRefusedError: ``access_denied`` or ``expired_token``, or the code's lifetime passed.
        AuthError / RemoteError: another refusal, or the registry failed.
    """
    form = {"grant_type": GRANT_TYPE, "device_code": code.device_code, "client_id": CLIENT_ID}
    interval, deadline = code.interval, clock() + code.expires_in
    while True:
        sleep(interval)
        if clock() > deadline:
            raise LoginRefusedError("the code expired before it was approved; run lorareg login again")
        status, answer = _post(http, "/api/v1/device/token", form)
        if status == 200:
            return _token(answer)
        error = answer.get("error") if isinstance(answer, dict) else None
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = min(interval + SLOW_DOWN_STEP_S, MAX_INTERVAL_S)
            continue
        if error == "access_denied":
            raise LoginRefusedError("the sign-in was denied in the browser")
        if error == "expired_token":
            raise LoginRefusedError("the code expired before it was approved; run lorareg login again")
        raise AuthError(f"the registry refused the sign-in: {_describe(answer, status)}")


def revoke(http: httpx.Client, token: str) -> None:
    """Ask the registry to revoke ``token`` (RFC 7009; ``lorareg logout``)."""
    status, answer = _post(http, "/api/v1/tokens/revoke", {"token": token})
    if status != 200:
        raise RemoteError(f"the registry did not revoke the token: {_describe(answer, status)}")


def http_client(registry_url: str) -> httpx.Client:
    """An httpx client for the registry: no redirects followed, bounded timeouts."""
    return httpx.Client(
        base_url=registry_url.rstrip("/"),
        timeout=REQUEST_TIMEOUT_S,
        follow_redirects=False,
        headers={"User-Agent": "lorareg-client", "Accept": "application/json"},
    )


# -- internals ----------------------------------------------------------------------------------------
def _post(http: httpx.Client, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """POST a form; the status and the JSON object answered (empty when the body is not one)."""
    try:
        with http.stream("POST", path, data=form) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise RemoteError(f"the registry's answer to {path} is over {MAX_ANSWER_BYTES} bytes")
            status = response.status_code
    except httpx.HTTPError as e:
        raise RemoteError(f"POST {http.base_url}{path} failed: {type(e).__name__}: {e}") from e
    if status >= 500:
        raise RemoteError(f"registry answered {status} to {path}")
    try:
        data = json.loads(bytes(body))
    except ValueError:
        data = None
    return status, data if isinstance(data, dict) else {}


def _token(answer: dict[str, Any]) -> LoginToken:
    try:
        if _text(answer, "token_type").lower() != "bearer":
            raise ValueError("token_type is not Bearer")
        lifetime = _number(answer, "expires_in")
        return LoginToken(
            _text(answer, "access_token"),
            datetime.now(UTC) + timedelta(seconds=lifetime),
            _text(answer, "scope"),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise RemoteError(f"the registry's token answer is malformed: {e}") from e


def _text(answer: dict[str, Any], key: str) -> str:
    value = answer[key]
    if not isinstance(value, str) or not value or len(value) > 2000:
        raise ValueError(f"{key} is not a short string")
    return value


def _number(answer: dict[str, Any], key: str, *, default: int | None = None) -> int:
    value = answer.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{key} is not a positive integer")
    return value


def _describe(answer: dict[str, Any], status: int) -> str:
    error, text = answer.get("error"), answer.get("error_description")
    if isinstance(error, dict):  # the API's own error shape (e.g. a 401 from an older registry)
        return str(error.get("message", status))[:300]
    return f"{str(error or status)[:60]}: {str(text or '')[:240]}".rstrip(": ")
