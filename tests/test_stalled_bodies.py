"""Attack: slow and stalled request bodies against a live uvicorn, over real sockets.

One publisher token once held ~40 uploads open (``Content-Length: 10000000``, 2 KiB sent, then idle); they
took every worker thread, so every synchronous route — ``/healthz`` included — froze, and no stalled upload
ever ended. An anonymous 143 MiB urlencoded POST to ``/takedowns`` was parsed before its CSRF check. Now
uploads are capped per token and in total (429), run on their own threads, end with 408 when their body
stops arriving, and form bodies are capped before they are parsed.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from lorareg.demo.samples import sample_adapter_bytes
from tests.fixtures.registry import make_publisher
from tests.fixtures.server import LiveServer

BODY_TIMEOUT_S = 2
DECLARED = 10_000_000
DIGEST = "ab" * 32


def _open(server: LiveServer, head: str, body: bytes = b"x" * 2048) -> socket.socket:
    """Send a request head and the first bytes of its body, then leave the socket idle."""
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=30)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    return sock


def _stalled_upload(server: LiveServer, token: str, digest: str = DIGEST) -> socket.socket:
    head = (
        f"PUT /api/v1/blobs/sha256/{digest} HTTP/1.1\nHost: x\nAuthorization: Bearer {token}\n"
        f"Content-Type: application/octet-stream\nContent-Length: {DECLARED}\n"
    )
    return _open(server, head)


def _status(sock: socket.socket, *, within: float) -> int | None:
    """The status of the answer on ``sock`` if one arrives within ``within`` seconds, else None."""
    sock.settimeout(within)
    try:
        first = sock.recv(64)
    except TimeoutError:
        return None
    return int(first.split(b" ", 2)[1]) if first.startswith(b"HTTP/1.1 ") else None


def _wait_uploads(server: LiveServer, count: int) -> None:
    """Until the server holds ``count`` upload slots (its handlers ran), at most 10 s."""
    deadline = time.monotonic() + 10
    while server.app.state.upload_slots.in_progress != count:
        assert time.monotonic() < deadline, server.app.state.upload_slots.in_progress
        time.sleep(0.02)


def _quick(server: LiveServer, path: str) -> float:
    started = time.monotonic()
    answer = httpx.get(server.url + path, timeout=10)
    assert answer.status_code == 200, (path, answer.status_code)
    return time.monotonic() - started


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for sock in held:
        with contextlib.suppress(OSError):
            sock.close()


def test_stalled_uploads_are_capped_per_token_and_in_total_while_reads_stay_fast(
    live_server_factory: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    server = live_server_factory(body_timeout_s=60, max_concurrent_uploads=3, max_uploads_per_token=2)
    first, second, third = (make_publisher(server.registry, ns).secret for ns in ("acme", "bravo", "carol"))
    for _ in range(2):
        sockets.append(_stalled_upload(server, first))
    _wait_uploads(server, 2)
    assert _status(_stalled_upload(server, first), within=5) == 429  # the token's third
    sockets.append(_stalled_upload(server, second))
    _wait_uploads(server, 3)
    assert _status(_stalled_upload(server, third), within=5) == 429  # the process's fourth
    for path in ("/healthz", "/api/v1/adapters", "/", "/review/sign-in", "/api/v1/keys"):
        assert _quick(server, path) < 2.0
    assert all(_status(s, within=0.1) is None for s in sockets)  # still waiting on their bodies


def test_forty_stalled_uploads_leave_the_shared_threads_to_health_checks(
    live_server_factory: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    server = live_server_factory(body_timeout_s=60, max_concurrent_uploads=48, max_uploads_per_token=48)
    token = make_publisher(server.registry, "acme").secret
    for _ in range(44):
        sockets.append(_stalled_upload(server, token))
    _wait_uploads(server, 44)
    assert all(_status(s, within=0.05) is None for s in sockets)  # all 44 are in progress
    timings = [_quick(server, path) for path in ("/healthz", "/api/v1/adapters", "/", "/healthz")]
    assert max(timings) < 2.0, timings


def test_a_stalled_upload_ends_with_408_and_frees_its_slot(
    live_server_factory: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    server = live_server_factory(
        body_timeout_s=BODY_TIMEOUT_S, max_concurrent_uploads=4, max_uploads_per_token=1
    )
    token = make_publisher(server.registry, "acme").secret
    stalled = _stalled_upload(server, token)
    sockets.append(stalled)
    _wait_uploads(server, 1)
    assert _status(_stalled_upload(server, token), within=5) == 429
    assert _status(stalled, within=BODY_TIMEOUT_S + 5) == 408
    data = sample_adapter_bytes("sdxl", seed=7)
    digest = hashlib.sha256(data).hexdigest()
    answer = httpx.put(
        f"{server.url}/api/v1/blobs/sha256/{digest}",
        content=data,
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text  # the slot came back
    assert not list((server.data_dir).rglob("*.part"))


def test_a_trickled_anonymous_takedown_body_ends_with_408(
    live_server_factory: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    server = live_server_factory(body_timeout_s=BODY_TIMEOUT_S)
    head = "POST /api/v1/takedowns HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 5000\n"
    sock = _open(server, head, b'{"ref": "')
    sockets.append(sock)
    assert _status(sock, within=BODY_TIMEOUT_S + 5) == 408
    assert _quick(server, "/healthz") < 2.0


def test_a_huge_anonymous_form_post_is_refused_before_it_is_read_or_parsed(
    live_server_factory: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    server = live_server_factory()
    declared = 143 * 2**20
    head = (
        "POST /takedowns HTTP/1.1\nHost: x\nContent-Type: application/x-www-form-urlencoded\n"
        f"Content-Length: {declared}\n"
    )
    sock = _open(server, head, b"details=" + b"x" * 4096)
    sockets.append(sock)
    assert _status(sock, within=5) == 413  # answered without waiting for the 143 MiB

    chunked = "POST /takedowns HTTP/1.1\nHost: x\nContent-Type: application/x-www-form-urlencoded\n"
    chunked += "Transfer-Encoding: chunked\n"
    piece = b"x" * 16384
    body = b"".join(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for _ in range(8))  # 128 KiB, no end
    sock = _open(server, chunked, body)
    sockets.append(sock)
    assert _status(sock, within=5) == 413  # the running count passed the cap


def test_a_foreign_origin_form_post_is_refused_before_its_body_is_read(
    live_server_factory: Callable[..., LiveServer], sockets: list[socket.socket]
) -> None:
    server = live_server_factory(body_timeout_s=60)
    head = (
        "POST /takedowns HTTP/1.1\nHost: x\nOrigin: https://evil.example\n"
        "Content-Type: application/x-www-form-urlencoded\nContent-Length: 60000\n"
    )
    sock = _open(server, head, b"a=b")
    sockets.append(sock)
    assert _status(sock, within=5) == 403
