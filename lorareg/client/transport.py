"""HTTP to a lorareg registry: the plumbing every :class:`~lorareg.client.Client` request goes through.

Idempotent requests (GET, HEAD, the content-addressed blob PUT) are retried with exponential backoff on
transient failures (connection errors, 502/503/504). Every answer's body is read capped and against a
deadline (``lorareg.client.limits``), so a hostile or broken server can neither fill memory nor hold a
command forever. Error answers become the matching :class:`~lorareg.errors.LoraregError` again (404 →
``NotFoundError``, 409 → ``ConflictError``, 451 → ``GoneError`` …), network failures ``RemoteError``.

Deliberately not here: what any endpoint means (``api_client.py``) or what a pull checks (``pull.py``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Self

import httpx

from lorareg import errors
from lorareg.client.limits import MIN_RATE_BYTES_S, SocketWatchdog, TransferDeadline, read_capped
from lorareg.errors import LoraregError, RemoteError

if TYPE_CHECKING:
    import ssl

    from lorareg.client.download_http import OpenBody

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

DEFAULT_TIMEOUT_S = 30.0  # connect/read/write timeout of one request
CONNECT_TIMEOUT_S = 10.0
MAX_ATTEMPTS = 4  # tries of an idempotent request (1 + 3 retries)
BACKOFF_BASE_S = 0.25  # first retry delay; doubles each time
MAX_JSON_BYTES = 16 * 2**20  # an API answer larger than this is refused (streamed: never buffered whole)

_RETRY_STATUS = frozenset({502, 503, 504})
_ERRORS_BY_CODE: dict[str, type[LoraregError]] = {
    cls.code: cls
    for cls in (
        errors.InputError,
        errors.PayloadTooLargeError,
        errors.UnprocessableError,
        errors.VerificationError,
        errors.IncompatibleAdapterError,
        errors.AuthError,
        errors.ForbiddenError,
        errors.NotFoundError,
        errors.ConflictError,
        errors.GoneError,
        errors.RateLimitedError,
    )
}
_ERRORS_BY_STATUS: dict[int, type[LoraregError]] = {
    400: errors.InputError,
    401: errors.AuthError,
    403: errors.ForbiddenError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    422: errors.UnprocessableError,
    429: errors.RateLimitedError,
    451: errors.GoneError,
}


class Transport:
    """Requests to one registry (retried, capped, mapped to errors); a context manager that closes them."""

    def __init__(
        self,
        registry_url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        from lorareg.client.download_http import direct_allowed

        self.registry_url = registry_url.rstrip("/")
        headers = {"User-Agent": "lorareg-client", "Accept-Encoding": "identity"}  # bodies are capped as sent
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._timeout = timeout
        self._watchdog = SocketWatchdog()
        self._direct_blobs = transport is None and direct_allowed(self.registry_url)
        self._http = httpx.Client(
            base_url=self.registry_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
            transport=transport,
            follow_redirects=False,
            verify=_tls_settings(self.registry_url) if self._direct_blobs else True,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, url, **kwargs)  # capped at MAX_JSON_BYTES as it streams
        try:
            data = response.json()
        except ValueError as e:
            raise RemoteError(
                f"registry answered {url} with non-JSON ({e})", status=response.status_code
            ) from e
        if not isinstance(data, dict):
            raise RemoteError(f"registry answered {url} with JSON {type(data).__name__}; expected an object")
        return data

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        content_factory: Callable[[], Iterator[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        allow: frozenset[int] | set[int] = frozenset(),
        cap: int = MAX_JSON_BYTES,
        upload_bytes: int = 0,
    ) -> httpx.Response:
        """Send one request with retries (idempotent ones only) and map error answers to LoraregError.

        The answer's body is streamed into a buffer capped at ``cap`` bytes, under a
        :class:`~lorareg.client.limits.TransferDeadline` (``lorareg.client.limits``).
        """
        retry_all = method in ("GET", "HEAD") if idempotent is None else idempotent
        for attempt in range(1, MAX_ATTEMPTS + 1):
            body = content_factory() if content_factory is not None else content
            try:
                response = self._send(
                    method, url, params=params, content=body, headers=headers, cap=cap, upload=upload_bytes
                )
            except httpx.TransportError as e:
                if attempt < MAX_ATTEMPTS and (retry_all or isinstance(e, httpx.ConnectError)):
                    time.sleep(BACKOFF_BASE_S * 2 ** (attempt - 1))
                    continue
                raise RemoteError(f"{method} {self.registry_url}{url} failed: {type(e).__name__}: {e}") from e
            if response.status_code in _RETRY_STATUS and retry_all and attempt < MAX_ATTEMPTS:
                time.sleep(BACKOFF_BASE_S * 2 ** (attempt - 1))
                continue
            if response.status_code not in allow:
                raise_for(response)
            return response
        raise AssertionError("unreachable: the loop returns or raises")

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        content: bytes | Iterator[bytes] | None,
        headers: Mapping[str, str] | None,
        cap: int,
        upload: int,
    ) -> httpx.Response:
        """One request; the answer's body read capped and in time, returned as a complete response.

        The answer must start (status and headers) within the grace period plus the upload's ``upload``
        bytes (or ``content``) at the minimum rate, else the watchdog cuts the connection.
        """
        deadline = TransferDeadline(grace_s=self._timeout)
        try:
            request = self._http.build_request(
                method,
                url,
                params=params,
                content=content,
                headers=headers,
                extensions={"trace": self._watchdog.trace},
            )
        except httpx.InvalidURL as e:  # a NUL or other character no URL may hold
            raise RemoteError(f"cannot request {url!r}: {e}") from e
        sending = upload or (len(content) if isinstance(content, bytes) else 0)
        with self._watchdog.armed(deadline.latest(sending)) as cut:
            try:
                streamed = self._http.send(request, stream=True)
            except httpx.TransportError as e:
                if cut.is_set():
                    raise RemoteError(
                        f"{method} {url}: the registry did not answer within {self._timeout:g} s "
                        f"(plus the upload at {MIN_RATE_BYTES_S // 1024} KiB/s)"
                    ) from e
                raise
        try:
            # A HEAD answer's Content-Length is the blob's size, and it has no body to read.
            what = f"{method} {url}"
            reading = TransferDeadline(grace_s=self._timeout)  # the body's own clock: the upload is over
            data = b"" if method == "HEAD" else read_capped(streamed, cap=cap, deadline=reading, what=what)
        finally:
            streamed.close()
        return httpx.Response(streamed.status_code, headers=streamed.headers, content=data, request=request)

    def _blob_opener(self, path: str, *, give_up_at: float) -> OpenBody:
        """Blob GETs via ``http.client`` where allowed (big reads; ``lorareg.client.download_http``), else
        httpx.

        ``give_up_at`` cuts a direct connection that is still open at the download's deadline.
        """
        from lorareg.client.download_http import open_direct, open_httpx

        fixed = {**self._headers, "Accept-Encoding": "identity"}  # the stored bytes, never re-encoded
        if self._direct_blobs:
            url = self.registry_url + path
            return lambda extra: open_direct(
                url, {**fixed, **extra}, timeout=self._timeout, give_up_at=give_up_at
            )
        return lambda extra: open_httpx(self._http, path, {**fixed, **extra})


def _tls_settings(registry_url: str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a registry reached without a proxy: the default (CA bundle) for https.

    A plain-http registry reached directly never uses TLS (every request is relative to it and redirects
    are not followed), so it gets a client context with no CA loaded: that skips loading the CA bundle,
    about 35 ms of every command's start, and any TLS use would fail verification rather than pass.
    """
    if not registry_url.startswith("http://"):
        return True
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode CERT_REQUIRED, check_hostname: fail closed


def raise_for(response: httpx.Response) -> None:
    """Raise the LoraregError that matches an error answer; return for 1xx-3xx."""
    status = response.status_code
    if status < 400:
        return
    code, message = _error_body(response)
    cls = _ERRORS_BY_CODE.get(code or "") or _ERRORS_BY_STATUS.get(status)
    if status >= 500 or cls is None:
        raise RemoteError(f"registry answered {status}: {message}", status=status, remote_code=code)
    if issubclass(cls, (errors.VerificationError, errors.IncompatibleAdapterError)):
        raise cls(message.split("; "))
    raise cls(message)


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    try:
        if not response.is_closed:
            response.read()
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError, httpx.HTTPError):
        return None, f"HTTP {response.status_code} {response.reason_phrase}".strip()
