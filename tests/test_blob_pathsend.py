"""Whole blobs leave by sendfile: the route asks for ``http.response.pathsend`` and ``lorareg serve``'s
uvicorn protocol answers it, with h11's framing kept honest (issue 18, item 1: the built-in route made cheap).

The route is driven through the real app with an ASGI scope that offers the extension; the protocol is
driven by real uvicorn over loopback with a raw socket client, so a body longer or shorter than its
``Content-Length`` is seen as the bytes on the wire, not as what an HTTP library makes of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from lorareg.server.blob_stream import PATHSEND
from lorareg.server.pathsend import UVICORN_OPTIONS
from tests.fixtures.server import LiveServer

FILE_BYTES = 3 * 2**20 + 17  # more than one socket buffer, not a round number


def test_whole_blob_is_handed_to_the_server_by_path_and_a_range_is_streamed(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", "1.0.0")
    with live_server.client(token) as client:
        client.publish(path, bundle)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    whole = _asgi_get(live_server.app, f"/api/v1/blobs/sha256/{digest}", {})
    assert whole[0]["status"] == 200
    assert (b"content-length", str(path.stat().st_size).encode()) in whole[0]["headers"]
    assert whole[1]["type"] == PATHSEND
    assert Path(whole[1]["path"]).read_bytes() == path.read_bytes()  # the stored blob file itself
    ranged = _asgi_get(live_server.app, f"/api/v1/blobs/sha256/{digest}", {b"range": b"bytes=0-9"})
    assert ranged[0]["status"] == 206
    assert [m["type"] for m in ranged[1:]] == ["http.response.body"] * (len(ranged) - 1)
    assert b"".join(m.get("body", b"") for m in ranged[1:]) == path.read_bytes()[:10]


def test_pathsend_sends_the_file_and_the_connection_serves_the_next_request(tmp_path: Path) -> None:
    data = _file(tmp_path, FILE_BYTES)
    with _uvicorn(_app(data, content_length=len(data.read_bytes()))) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for method in ("GET", "HEAD", "GET"):  # keep-alive across a pathsend: h11's state is consistent
            connection.request(method, "/")
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert body == (data.read_bytes() if method == "GET" else b"")
        connection.close()


def test_pathsend_without_content_length_is_sent_in_chunks(tmp_path: Path) -> None:
    data = _file(tmp_path, 200_000)
    with _uvicorn(_app(data, content_length=None)) as port:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.getheader("transfer-encoding") == "chunked"
        assert response.read() == data.read_bytes()


@pytest.mark.parametrize(
    "declared", [1000, FILE_BYTES + 1], ids=["file-longer-than-promised", "file-shorter"]
)
def test_a_file_that_does_not_match_its_content_length_is_cut_never_overrun(
    tmp_path: Path, declared: int
) -> None:
    data = _file(tmp_path, FILE_BYTES)
    with _uvicorn(_app(data, content_length=declared)) as port:
        received = _raw_get(port)
    head, _, body = received.partition(b"\r\n\r\n")
    assert f"content-length: {declared}".encode() in head.lower()
    assert len(body) < declared  # the connection closed short: a client's digest check refuses it


def test_a_client_that_leaves_mid_file_does_not_hurt_the_server(tmp_path: Path) -> None:
    data = _file(tmp_path, 64 * 2**20)
    with _uvicorn(_app(data, content_length=64 * 2**20)) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(65536)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        time.sleep(0.2)  # reset while the server is still sending
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("HEAD", "/")
        assert connection.getresponse().status == 200


def _file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    return path


def _app(path: Path, *, content_length: int | None) -> Any:
    """An ASGI app that answers every request with ``path`` by ``pathsend`` (when offered)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        assert PATHSEND in scope.get("extensions", {}), "uvicorn under UVICORN_OPTIONS offers pathsend"
        headers = [(b"content-length", str(content_length).encode())] if content_length is not None else []
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": PATHSEND, "path": str(path)})

    return app


@contextlib.contextmanager
def _uvicorn(app: Any) -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(app, log_level="critical", lifespan="off", **UVICORN_OPTIONS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _raw_get(port: int) -> bytes:
    """Everything the server sends for one GET, until it closes the connection (or 5 s pass)."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(1 << 20):
                chunks.append(chunk)
    return b"".join(chunks)


def _asgi_get(app: Any, path: str, headers: dict[bytes, bytes]) -> list[dict[str, Any]]:
    """The messages ``app`` sends for a GET whose scope offers ``pathsend``."""
    sent: list[dict[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "extensions": {PATHSEND: {}},
        "state": {},
    }

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client stays: nothing arrives until the response is done
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_the_access_log_counts_the_bytes_a_pathsend_sent(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", "1.0.0")
    with live_server.client(token) as client:
        client.publish(path, bundle)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with caplog.at_level(logging.INFO, logger="lorareg.access"):
        answer = httpx.get(f"{live_server.url}/api/v1/blobs/sha256/{digest}", timeout=10)
        assert answer.content == path.read_bytes()
        deadline = time.monotonic() + 5  # the server thread logs once the app returned, after the answer
        while not (lines := [r.getMessage() for r in caplog.records if digest in r.getMessage()]):
            assert time.monotonic() < deadline, "no access-log line"
            time.sleep(0.02)
    assert lines[-1].endswith(f"out={path.stat().st_size}")
