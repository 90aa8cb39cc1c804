"""Blob downloads over real HTTP: HEAD, single ranges (206/416), ETag/304, and 451 for revoked digests."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.fixtures.server import LiveServer


@pytest.fixture
def stored(live_server: LiveServer) -> tuple[LiveServer, bytes, str]:
    """A server holding one published adapter; returns (server, file bytes, blob URL)."""
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", "1.0.0")
    with live_server.client(token) as client:
        client.publish(path, bundle)
    data = path.read_bytes()
    return live_server, data, f"{live_server.url}/api/v1/blobs/sha256/{hashlib.sha256(data).hexdigest()}"


RANGES = [
    # (Range header, expected status, slice of the file expected as body (start, stop) or None for 416)
    ("bytes=0-9", 206, (0, 10)),
    ("bytes=10-", 206, (10, None)),
    ("bytes=-16", 206, (-16, None)),
    ("bytes=5-5", 206, (5, 6)),
    ("bytes=100-999999999", 206, (100, None)),  # end past the file is clamped
    ("bytes=0-", 200, (0, None)),  # the whole file is a plain 200
    ("bytes=0-3,8-9", 200, (0, None)),  # multi-range is not supported: whole body, as RFC 9110 allows
    ("items=0-3", 200, (0, None)),  # unknown unit: ignored
    ("bytes=999999999-", 416, None),
    ("bytes=-0", 416, None),
]


@pytest.mark.parametrize(("header", "status", "span"), RANGES, ids=[r[0] for r in RANGES])
def test_range_requests(
    stored: tuple[LiveServer, bytes, str], header: str, status: int, span: tuple | None
) -> None:
    _, data, url = stored
    response = httpx.get(url, headers={"Range": header})
    assert response.status_code == status
    if span is None:
        assert response.headers["content-range"] == f"bytes */{len(data)}"
        assert response.json()["error"]["code"] == "range_not_satisfiable"
        return
    expected = data[span[0] : span[1]]
    assert response.content == expected
    assert int(response.headers["content-length"]) == len(expected)
    if status == 206:
        start = span[0] % len(data)
        assert response.headers["content-range"] == f"bytes {start}-{start + len(expected) - 1}/{len(data)}"


def test_head_gives_length_etag_and_no_body(stored: tuple[LiveServer, bytes, str]) -> None:
    _, data, url = stored
    response = httpx.head(url)
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == len(data)
    assert response.headers["etag"] == f'"sha256:{hashlib.sha256(data).hexdigest()}"'
    assert response.headers["accept-ranges"] == "bytes"


def test_matching_etag_answers_304_and_stale_if_range_sends_everything(
    stored: tuple[LiveServer, bytes, str],
) -> None:
    _, data, url = stored
    etag = httpx.head(url).headers["etag"]
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
    stale = httpx.get(url, headers={"Range": "bytes=0-9", "If-Range": '"sha256:00"'})
    assert stale.status_code == 200 and stale.content == data


def test_revoked_blob_is_451_with_the_public_reason(stored: tuple[LiveServer, bytes, str]) -> None:
    server, data, url = stored
    reviewer = server.registry.authenticate(server.token("reviewer"))
    server.registry.revoke(
        hashlib.sha256(data).hexdigest(), reason="likeness without consent", principal=reviewer
    )
    for method in ("GET", "HEAD"):
        response = httpx.request(method, url)
        assert response.status_code == 451
    body = httpx.get(url).json()["error"]
    assert body["code"] == "revoked" and "likeness without consent" in body["message"]


def test_unknown_and_malformed_digests(live_server: LiveServer) -> None:
    base = f"{live_server.url}/api/v1/blobs/sha256/"
    assert httpx.get(base + "0" * 64).status_code == 404
    assert httpx.get(base + "not-a-digest").status_code == 400
