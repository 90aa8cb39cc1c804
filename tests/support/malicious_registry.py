"""A malicious registry for the client's tests: a real HTTP server on loopback in front of a real registry.

:class:`MaliciousRegistry` forwards every request to an honest upstream (a ``live_server``) and then lies
the way a compromised registry, or a man in the middle on plain http, would, according to its ``attack``:

- ``announce-huge-size``: ``resolve`` says the blob has 300 MiB;
- ``announce-huge-length``: the blob answer announces ``Content-Length`` 300 MiB and keeps sending;
- ``more-bytes``: the blob answer has no length and sends 64 MiB past the real bytes;
- ``trickle-blob`` / ``trickle-json`` / ``trickle-headers``: one byte every ``trickle_s`` seconds (of the
  blob, of the ``resolve`` answer, of the ``resolve`` answer's status line and headers);
- ``drop``: the blob answer stops halfway through what was asked, on every connection;
- ``oversized-json`` / ``oversized-json-announced``: a 256 MiB ``resolve`` answer, streamed without a
  length or announced with one; ``oversized-signature``, ``oversized-revocations`` likewise;
- ``traversal-version``, ``traversal-name``, ``nul-version``, ``newline-digest``, ``traversal-digest``,
  ``boolean-size``: a ``resolve``/search answer with that field replaced; ``missing-fields``: resolve,
  search and takedown answers without the fields the CLI prints;
- ``wrong-content``: the blob's bytes with one byte changed.

It records the bytes it sent for each blob request (``blob_bytes_sent``), so a test can see how much the
client took before it stopped. Everything runs on loopback; nothing is mocked.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

MiB = 2**20
HUGE_BYTES = 300 * MiB
OVERSIZED_JSON_BYTES = 256 * MiB
EXTRA_BYTES = 64 * MiB
_PIECE = 64 * 2**10

ATTACKS = (
    "honest", "announce-huge-size", "announce-huge-length", "more-bytes", "trickle-blob", "trickle-json",
    "trickle-headers",
    "drop", "oversized-json", "oversized-json-announced", "oversized-signature", "oversized-revocations",
    "traversal-version", "traversal-name", "nul-version", "newline-digest", "traversal-digest",
    "boolean-size", "missing-fields", "wrong-content",
)  # fmt: skip
_FIELD_LIES: dict[str, tuple[str, Any]] = {
    "traversal-version": ("version", "1.0.0/../../../../escape"),
    "traversal-name": ("name", "acme/../../../escape"),
    "nul-version": ("version", "1.0.0\x00"),
    "newline-digest": ("sha256", None),  # the real digest plus "\n"
    "traversal-digest": ("sha256", "../../../../../../../../escape" + "0" * 34),
    "boolean-size": ("size", True),
}


@dataclass
class MaliciousRegistry:
    """The server's URL, the upstream it lies about, and what it did."""

    url: str
    upstream: str
    attack: str = "honest"
    trickle_s: float = 0.05
    blob_bytes_sent: list[int] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def start_malicious_registry(upstream: str) -> tuple[MaliciousRegistry, ThreadingHTTPServer]:
    """Serve on a free loopback port in a daemon thread; the caller shuts the server down."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    state = MaliciousRegistry(f"http://127.0.0.1:{server.server_address[1]}", upstream)
    server.state = state  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return state, server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one answer per connection: a body without a length ends at close

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: the tests assert on the client, not on this log."""

    @property
    def state(self) -> MaliciousRegistry:
        return self.server.state  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _answer(self) -> None:
        attack, path = self.state.attack, self.path
        if path.startswith("/api/v1/blobs/"):
            return self._blob(attack)
        if path.startswith("/api/v1/resolve") and attack in ("oversized-json", "oversized-json-announced"):
            return self._flood(announced=attack.endswith("announced"))
        if path.endswith("/signature") and attack == "oversized-signature":
            return self._flood(announced=False)
        if path.startswith("/api/v1/revocations") and attack == "oversized-revocations":
            return self._flood(announced=False)
        if path.startswith("/api/v1/resolve") and attack == "trickle-headers":
            return self._trickle_headers()
        if path.startswith("/api/v1/takedowns") and attack == "missing-fields":
            return self._send(200, {"Content-Type": "application/json"}, b'{"items": [{}]}')
        status, headers, body = self._upstream()
        if path.startswith(("/api/v1/resolve", "/api/v1/adapters?")) and status == 200:
            body = _lie_in_json(body, attack, is_page="items" in json.loads(body))
        if path.startswith("/api/v1/resolve") and attack == "trickle-json":
            return self._trickle(status, headers, body)
        self._send(status, headers, body)

    def _blob(self, attack: str) -> None:
        status, headers, body = self._upstream()
        if status not in (200, 206):
            return self._send(status, headers, body)
        if attack == "wrong-content":
            body = body[:-1] + bytes([body[-1] ^ 0x01])
        if attack == "announce-huge-length":
            return self._stream(status, {**headers, "Content-Length": str(HUGE_BYTES)}, _endless(body))
        if attack == "more-bytes":
            headers.pop("Content-Length", None)
            return self._stream(status, headers, _then_zeros(body, EXTRA_BYTES))
        if attack == "trickle-blob":
            return self._trickle(status, headers, body)
        if attack == "drop":
            return self._stream(status, headers, iter([body[: len(body) // 2]]))
        self._stream(status, headers, iter([body]))

    def _upstream(self) -> tuple[int, dict[str, str], bytes]:
        forwarded = {k: v for k, v in self.headers.items() if k.lower() in ("range", "authorization")}
        answer = httpx.get(self.state.upstream + self.path, headers=forwarded, timeout=10.0)
        keep = ("content-type", "content-range", "accept-ranges")
        headers = {k: v for k, v in answer.headers.items() if k.lower() in keep}
        headers["Content-Length"] = str(len(answer.content))
        return answer.status_code, headers, answer.content

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self._stream(status, {**headers, "Content-Length": str(len(body))}, iter([body]))

    def _stream(self, status: int, headers: dict[str, str], pieces: Iterator[bytes]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        sent = 0
        for piece in pieces:
            if self.state.stop.is_set():
                break
            self.wfile.write(piece)
            sent += len(piece)
            if self.path.startswith("/api/v1/blobs/"):
                self._record(sent)

    def _record(self, sent: int) -> None:
        log = self.state.blob_bytes_sent
        if getattr(self, "_slot", None) is None:
            self._slot = len(log)
            log.append(0)
        log[self._slot] = sent

    def _trickle(self, status: int, headers: dict[str, str], body: bytes) -> None:
        def pieces() -> Iterator[bytes]:
            for i in range(len(body)):
                time.sleep(self.state.trickle_s)
                yield body[i : i + 1]

        self._stream(status, {**headers, "Content-Length": str(len(body))}, pieces())

    def _trickle_headers(self) -> None:
        """A status line and headers that never end, one byte at a time."""
        for byte in b"HTTP/1.0 200 OK\r\n" + b"X-Padding: " + b"x" * 100_000:
            if self.state.stop.is_set():
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(self.state.trickle_s)

    def _flood(self, *, announced: bool) -> None:
        headers = {"Content-Type": "application/json"}
        if announced:
            headers["Content-Length"] = str(OVERSIZED_JSON_BYTES)
        self._stream(200, headers, _json_flood())


def _lie_in_json(body: bytes, attack: str, *, is_page: bool) -> bytes:
    data = json.loads(body)
    targets = data["items"] if is_page else [data]
    for item in targets:
        if attack == "missing-fields":
            item.clear()
        elif attack in _FIELD_LIES:
            name, value = _FIELD_LIES[attack]
            item[name] = item["sha256"] + "\n" if value is None else value
        elif attack == "announce-huge-size":
            item["size"] = HUGE_BYTES
    return json.dumps(data).encode()


def _endless(body: bytes) -> Iterator[bytes]:
    yield body
    zeros = bytes(_PIECE)
    for _ in range(HUGE_BYTES // _PIECE):
        yield zeros


def _then_zeros(body: bytes, extra: int) -> Iterator[bytes]:
    yield body
    zeros = bytes(_PIECE)
    for _ in range(extra // _PIECE):
        yield zeros


def _json_flood() -> Iterator[bytes]:
    """A JSON object of :data:`OVERSIZED_JSON_BYTES` bytes, made as it is sent (never held whole)."""
    head, tail, piece = b'{"padding": "', b'"}', b"x" * MiB
    yield head
    for _ in range((OVERSIZED_JSON_BYTES - len(head) - len(tail)) // MiB):
        yield piece
    yield tail
