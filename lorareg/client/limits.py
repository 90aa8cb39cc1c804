"""Bounds on what a registry can make the client do: how long a transfer may take and how much it may send.

A malicious or compromised registry (or a man in the middle on plain http) controls every byte and every
pause of its answers. httpx's and ``http.client``'s timeouts apply to one read, so a server trickling one
byte every few seconds never trips them. Here every transfer carries a :class:`TransferDeadline`: after a
grace period (the per-read timeout), it must keep an average of at least :data:`MIN_RATE_BYTES_S`, so a
transfer of N bytes ends within ``grace + N / MIN_RATE_BYTES_S`` seconds whatever the server does. And
every answer body is read as a stream into a buffer that refuses to grow past its cap
(:func:`read_capped`), before anything is parsed: an announced ``Content-Length`` over the cap is refused
at once, and a body that runs past it is cut off there.

The status line and headers come before any byte count, so a :class:`SocketWatchdog` bounds them: it
knows the sockets the client's httpx pool opened (httpcore's ``trace`` extension) and shuts them down
when an answer has not started by its deadline (the grace period, plus the upload at the minimum rate).
``http.client`` blob downloads get the same from ``lorareg.client.download_http``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import httpx

from lorareg.errors import RemoteError

MIN_RATE_BYTES_S = 32 * 2**10  # the slowest average a transfer may keep after its grace period
MAX_ERROR_BODY_BYTES = 64 * 2**10  # of an error answer, read for its message; the rest is dropped


class TransferDeadline:
    """The time a transfer may take so far: ``grace_s`` plus the bytes received at the minimum rate."""

    def __init__(self, *, grace_s: float, min_rate: float = MIN_RATE_BYTES_S) -> None:
        self.grace_s = grace_s
        self.min_rate = min_rate
        self.started = time.monotonic()

    def latest(self, expected: int) -> float:
        """The ``time.monotonic()`` by which a transfer of ``expected`` bytes must be complete.

        A read that blocks until its buffer is full (``http.client``) sees no byte counts on the way, so
        the downloader also arms a watchdog that cuts the connection at this time.
        """
        return self.started + self.grace_s + expected / self.min_rate

    def check(self, received: int, *, what: str) -> None:
        """Raise when the transfer is slower than allowed after ``received`` bytes.

        Raises:
            RemoteError: naming the transfer, the bytes received, the time taken and the minimum rate.
        """
        elapsed = time.monotonic() - self.started
        if elapsed > self.grace_s + received / self.min_rate:
            raise RemoteError(
                f"{what} is too slow: {received} bytes in {elapsed:.1f} s; after {self.grace_s:g} s a "
                f"transfer must average at least {self.min_rate / 1024:g} KiB/s"
            )


def read_capped(response: httpx.Response, *, cap: int, deadline: TransferDeadline, what: str) -> bytes:
    """Read a streamed answer's body, refusing more than ``cap`` bytes and a transfer below the minimum rate.

    Error answers (status 400 and above) are read up to :data:`MAX_ERROR_BODY_BYTES` and cut there
    instead: their message is a courtesy, never worth a refusal of its own.

    Raises:
        RemoteError: the body is announced or turns out larger than ``cap``, arrives too slowly, or the
            server encodes it although the client asked for the identity encoding.
        httpx.TransportError: the connection failed mid-body (the caller may retry).
    """
    truncate = response.status_code >= 400
    limit = min(cap, MAX_ERROR_BODY_BYTES) if truncate else cap
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise RemoteError(
            f"{what}: the registry sent a {encoding!r}-encoded answer; the client asked for none"
        )
    announced = response.headers.get("content-length", "")
    if not truncate and announced.isdigit() and int(announced) > cap:
        raise RemoteError(f"{what}: the registry announces {announced} bytes; the cap is {cap}")
    body = bytearray()
    for piece in _pieces(response):
        body += piece
        if len(body) > limit:
            if truncate:
                return bytes(body[:limit])
            raise RemoteError(f"{what}: the registry sent more than the {cap}-byte cap")
        deadline.check(len(body), what=what)
    return bytes(body)


def _pieces(response: httpx.Response) -> Iterable[bytes]:
    """The body as it arrives; in one piece when a transport already read it (an in-memory one)."""
    try:
        return [response.content]
    except httpx.ResponseNotRead:
        return response.iter_raw()


class SocketWatchdog:
    """Cuts the sockets of one httpx client when an answer is late; pass :meth:`trace` as the ``trace``
    extension of every request so that each new connection's socket is known."""

    def __init__(self) -> None:
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._lock = threading.Lock()

    def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's trace hook: remember the socket of each new connection."""
        if event == "connection.connect_tcp.complete":
            sock = info["return_value"].get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sockets.add(sock)

    @contextlib.contextmanager
    def armed(self, at: float) -> Iterator[threading.Event]:
        """Within the block, shut every known socket down at ``time.monotonic() == at``; yields an event
        that is set if that happened (a transport error then means "too slow", not "try again")."""
        fired = threading.Event()
        timer = threading.Timer(max(0.0, at - time.monotonic()), self._cut, args=(fired,))
        timer.daemon = True
        timer.start()
        try:
            yield fired
        finally:
            timer.cancel()

    def _cut(self, fired: threading.Event) -> None:
        fired.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
