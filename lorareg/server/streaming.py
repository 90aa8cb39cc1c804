"""Streaming bodies in and out of the server without holding a blob in memory.

Uploads: :func:`capped_body` reads ``request.stream()`` and coalesces the ASGI pieces (often 64 KiB) into
chunks of ``chunk_bytes``, refusing with 413 as soon as ``Content-Length`` or the running count passes the
cap. :func:`run_with_body` hands those chunks to a *synchronous* consumer (the registry service, which
writes and hashes on disk) running in a worker thread, so disk I/O and hashing never block the event loop
and the service needs no async code. A client that hangs up mid-body surfaces as :class:`InputError` inside
the consumer's iterator, so the service's own abort path runs. A body that stops arriving for the app's
``body_timeout_s`` ends in 408 the same way; ``run_with_body`` takes the uploads' own thread limiter
(``upload_limits.py``) so stalled uploads never hold the threads that other routes run on.

Downloads: :func:`parse_range` interprets a single-range ``Range`` header (RFC 9110 §14). It deliberately
does not support multi-range requests (answered with the whole body, as the RFC allows), and it does not
read the store itself; the route wires the store's ``open_range`` into a streaming response.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from starlette.requests import ClientDisconnect, Request

from lorareg.errors import BodyTimeoutError, InputError, PayloadTooLargeError
from lorareg.server.config import DEFAULT_BODY_TIMEOUT_S

T = TypeVar("T")

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$", re.ASCII)
_MAX_POSITION_DIGITS = 18  # 10^18 bytes is past any blob; longer numbers are never converted


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A satisfiable byte range: ``start`` inclusive, ``end`` exclusive."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self, size: int) -> str:
        """The ``Content-Range`` value of a 206 answer."""
        return f"bytes {self.start}-{self.end - 1}/{size}"


class RangeNotSatisfiable(Exception):  # noqa: N818 - control flow inside this package, never leaves a route
    """The range starts past the end of the blob: the route answers 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """Parse a ``Range`` header against a blob of ``size`` bytes.

    Returns:
        ``None`` for "send the whole body" (no header, a syntax we ignore, several ranges, or a range
        that covers everything), else the :class:`ByteRange` to send.

    Raises:
        RangeNotSatisfiable: the range lies wholly beyond the blob (HTTP 416).
    """
    if not header:
        return None
    match = _RANGE_RE.match(header.strip())
    if match is None:
        return None  # RFC 9110: a server MAY ignore a Range it does not understand
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        suffix = _position(last)
        if suffix == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - suffix), size) if suffix < size else None
    start = _position(first)
    if last and _position(last) < start:
        return None  # RFC 9110 §14.1.1: last < first is invalid syntax, so the Range is ignored (200)
    end = size if not last else min(_position(last) + 1, size)
    if start >= size:
        raise RangeNotSatisfiable(header)
    return None if (start == 0 and end == size) else ByteRange(start, end)


def _position(digits: str) -> int:
    """A byte position; one of more digits than any blob size needs reads as "past any end" (no huge int)."""
    return int(digits) if len(digits) <= _MAX_POSITION_DIGITS else 10**_MAX_POSITION_DIGITS


def check_content_length(request: Request, *, cap: int) -> None:
    """Refuse with 413 before reading when the declared length already passes ``cap``."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError as e:
        raise InputError(f"Content-Length must be an integer; got {declared!r}") from e
    if length > cap:
        raise PayloadTooLargeError(f"body of {length} bytes exceeds the limit of {cap} bytes")


async def capped_body(
    request: Request, *, cap: int, chunk_bytes: int, timeout_s: float | None = None
) -> AsyncIterator[bytes]:
    """Yield the request body in chunks of about ``chunk_bytes``; 413 once the count passes ``cap``.

    ``timeout_s`` (default: the app's ``body_timeout_s``) bounds the wait for each next piece: a client
    that stalls or trickles slower than that gets 408, and whatever it held (an upload slot, a thread,
    a pending blob) is released.
    """
    check_content_length(request, cap=cap)
    wait = body_timeout(request) if timeout_s is None else timeout_s
    buffer = bytearray()
    seen = 0
    pieces = request.stream().__aiter__()
    try:
        while True:
            try:
                with anyio.fail_after(wait):
                    piece = await pieces.__anext__()
            except StopAsyncIteration:
                break
            except TimeoutError as e:
                raise BodyTimeoutError(
                    f"the request body stalled: nothing arrived for {wait:g} s after {seen} bytes"
                ) from e
            seen += len(piece)
            if seen > cap:
                raise PayloadTooLargeError(f"body exceeds the limit of {cap} bytes (read {seen} so far)")
            buffer += piece
            if len(buffer) >= chunk_bytes:
                yield bytes(buffer)
                buffer.clear()
    except ClientDisconnect as e:
        raise InputError(f"client disconnected after {seen} bytes of the body") from e
    if buffer:
        yield bytes(buffer)


async def read_capped(request: Request, *, cap: int) -> bytes:
    """Read a small body whole (a signed bundle, a form), refusing with 413 past ``cap`` bytes."""
    parts = [chunk async for chunk in capped_body(request, cap=cap, chunk_bytes=cap)]
    return b"".join(parts)


def body_timeout(request: Request) -> float:
    """The app's longest wait for the next piece of a body (``Settings.body_timeout_s``)."""
    settings = getattr(request.app.state, "settings", None)
    return float(getattr(settings, "body_timeout_s", DEFAULT_BODY_TIMEOUT_S))


async def run_with_body(
    consume: Callable[[Iterator[bytes]], T],
    body: AsyncIterator[bytes],
    *,
    limiter: anyio.CapacityLimiter | None = None,
) -> T:
    """Run ``consume(chunks)`` in a worker thread, feeding it ``body`` from the event loop.

    Each ``next()`` in the worker awaits one chunk on the loop, so at most one chunk is in flight and
    memory stays flat. Exceptions raised while reading (413, disconnect) are raised inside ``consume``'s
    loop, where its cleanup (abort the pending blob) runs, and then propagate to the route.
    """

    def chunks() -> Iterator[bytes]:
        while True:
            try:
                chunk = anyio.from_thread.run(_next_or_none, body)
            except StopAsyncIteration:
                return
            if chunk is None:
                return
            yield chunk

    try:
        return await anyio.to_thread.run_sync(consume, chunks(), limiter=limiter)
    finally:
        await _close(body)


async def _next_or_none(body: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await body.__anext__()
    except StopAsyncIteration:
        return None


async def _close(body: AsyncIterator[bytes]) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()
