"""Blob bodies for the downloader: one ``readinto`` interface over two HTTP stacks.

``lorareg.client.download`` fills 1 MiB buffers, so it wants a body it can read *into*. httpx hands a body
out in
the 64 KiB pieces httpcore reads, each passed through h11's buffer (two copies) and three layers of Python:
for a 1 GiB pull that is 16,000 round trips, measured at 0.5 s of CPU against 0.2 s for the standard
library's ``http.client``, whose ``readinto`` fills a large buffer straight from the socket in C. Over
loopback the client's CPU is what separates a pull from ``curl``, so the blob GET, and only it, goes through
``http.client`` when nothing needs httpx:

- :func:`open_direct`: ``http``/``https`` URLs with httpx's own TLS settings (``httpx.create_ssl_context``:
  the same CA bundle and ``SSL_CERT_FILE``), used when :func:`direct_allowed` says no proxy applies;
- :class:`HttpxBody`: any httpx response, for injected transports (tests) and proxied set-ups.

Both follow redirects (a registry may answer a blob GET with 307 to a presigned object-store URL), at most
``MAX_REDIRECTS``, to http(s) only, dropping ``Authorization`` when the origin changes; the bytes are verified
as always, wherever they came from. Both raise :class:`TransferInterruptedError` when the connection fails or
drops mid-body, so the downloader can resume with ``Range``. This module moves bytes; it neither hashes nor
judges them.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Protocol
from urllib.parse import urlsplit

import httpx

MAX_ERROR_BODY_BYTES = 64 * 2**10  # of an error answer, read for its message
MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_DIRECT_SCHEMES = ("http", "https")


class TransferInterruptedError(Exception):
    """The connection failed or closed before the body was complete (transient: resume)."""


class BlobBody(Protocol):
    """An HTTP answer whose body is read into the caller's buffers."""

    status_code: int

    def header(self, name: str) -> str | None:
        """A response header (case-insensitive), or None."""
        ...

    def readinto(self, buffer: memoryview) -> int:
        """Read at most ``len(buffer)`` body bytes into it; 0 at the end of the body."""
        ...

    def error_response(self) -> httpx.Response:
        """The answer as an httpx response with its body (capped) read, for the client's error mapping."""
        ...


OpenBody = Callable[[Mapping[str, str]], AbstractContextManager[BlobBody]]


def direct_allowed(url: str) -> bool:
    """Whether :func:`open_direct` can fetch ``url``: http(s), and no proxy configured for its scheme.

    A configured proxy sends the request through httpx instead, which applies proxies and ``NO_PROXY``
    as every other request of the client does.
    """
    import urllib.request

    scheme = urlsplit(url).scheme
    if scheme not in _DIRECT_SCHEMES:
        return False
    proxies = urllib.request.getproxies()
    return not (proxies.get(scheme) or proxies.get("all"))


@contextlib.contextmanager
def open_direct(
    url: str, headers: Mapping[str, str], *, timeout: float, give_up_at: float | None = None
) -> Iterator[BlobBody]:
    """GET ``url`` with ``http.client``; yields the answer once its status line and headers are in.

    ``give_up_at`` (a ``time.monotonic()`` value) arms a watchdog that shuts the socket down then:
    ``http.client`` fills a whole buffer before it returns, so a server trickling bytes would otherwise
    hold a read for as long as it likes; the cut shows as a dropped connection.

    Raises:
        TransferInterruptedError: the connection could not be made or failed before the headers arrived.
    """
    sent = dict(headers)
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection = _connection(parts.scheme, parts.hostname or "", parts.port, timeout=timeout)
        watchdog = None
        try:
            try:
                connection.request("GET", target or "/", headers=sent)
                # The socket now, while the connection holds it: an answer that closes the connection
                # takes it over, and ``connection.sock`` becomes None.
                watchdog = _watchdog(connection.sock, give_up_at)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as e:
                raise TransferInterruptedError(f"GET {url}: {type(e).__name__}: {e}") from e
            location = response.getheader("location") if response.status in _REDIRECTS else None
            if location is None:
                yield _DirectBody(response)
                return
        finally:
            if watchdog is not None:
                watchdog.cancel()
            connection.close()
        url, sent = redirect_target(url, location, sent)
    raise TransferInterruptedError(f"GET {url}: more than {MAX_REDIRECTS} redirects")


def redirect_target(url: str, location: str, headers: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The next URL of a redirect and the headers to send there (credentials only to the same origin).

    Raises:
        TransferInterruptedError: the redirect leaves http(s).
    """
    from urllib.parse import urljoin

    following = urljoin(url, location)
    if urlsplit(following).scheme not in _DIRECT_SCHEMES:
        raise TransferInterruptedError(f"GET {url}: redirect to a non-http(s) URL refused")
    same_origin = urlsplit(following)[:2] == urlsplit(url)[:2]
    kept = {k: v for k, v in headers.items() if same_origin or k.lower() not in _CREDENTIALS}
    return following, kept


_CREDENTIALS = {"authorization", "cookie", "proxy-authorization"}


def _watchdog(sock: socket.socket | None, give_up_at: float | None) -> threading.Timer | None:
    if give_up_at is None or sock is None:
        return None
    timer = threading.Timer(max(0.0, give_up_at - time.monotonic()), _cut, args=(sock,))
    timer.daemon = True
    timer.start()
    return timer


def _cut(sock: socket.socket) -> None:
    """Shut the socket down (from the watchdog thread): a read blocked on it returns at once."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def open_httpx(client: httpx.Client, url: str, headers: Mapping[str, str]) -> Iterator[BlobBody]:
    """GET ``url`` through an httpx client (its transport, proxies and TLS) as a :class:`BlobBody`.

    Raises:
        TransferInterruptedError: the request failed before the headers arrived.
    """
    try:
        # httpx follows at most max_redirects and drops Authorization when the origin changes
        with client.stream("GET", url, headers=dict(headers), follow_redirects=True) as response:
            yield HttpxBody(response)
    except httpx.TransportError as e:
        raise TransferInterruptedError(f"GET {url}: {type(e).__name__}: {e}") from e


class HttpxBody:
    """An httpx streamed response read into buffers (the pieces httpx yields are copied in)."""

    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self._response = response
        self._pieces = response.iter_raw()
        self._rest = memoryview(b"")

    def header(self, name: str) -> str | None:
        value: str | None = self._response.headers.get(name)
        return value

    def readinto(self, buffer: memoryview) -> int:
        if not self._rest:
            try:
                self._rest = memoryview(next(self._pieces, b""))
            except httpx.TransportError as e:
                raise TransferInterruptedError(f"{type(e).__name__}: {e}") from e
        count = min(len(buffer), len(self._rest))
        buffer[:count] = self._rest[:count]
        self._rest = self._rest[count:]
        return count

    def error_response(self) -> httpx.Response:
        return self._response


class _DirectBody:
    """An ``http.client`` answer; ``readinto`` fills the whole buffer from the socket in C."""

    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status_code = response.status
        self._response = response

    def header(self, name: str) -> str | None:
        return self._response.getheader(name)

    def readinto(self, buffer: memoryview) -> int:
        try:
            return self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as e:
            raise TransferInterruptedError(f"{type(e).__name__}: {e}") from e

    def error_response(self) -> httpx.Response:
        try:
            body = self._response.read(MAX_ERROR_BODY_BYTES)
        except (OSError, http.client.HTTPException):
            body = b""
        return httpx.Response(self.status_code, headers=self._response.getheaders(), content=body)


def _connection(scheme: str, host: str, port: int | None, *, timeout: float) -> http.client.HTTPConnection:
    if scheme == "https":
        context = httpx.create_ssl_context()  # the CA bundle and SSL_CERT_FILE handling httpx uses
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=timeout)
