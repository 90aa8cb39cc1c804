"""The client's HTTP plumbing with httpx's mock transport: error mapping, retries, resumable download."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from lorareg import errors
from lorareg.client import Client
from lorareg.client.download import download_resumable
from lorareg.client.download_http import open_httpx
from lorareg.demo.samples import sample_adapter_bytes

ERRORS = [
    # (status, code in the body, expected class, expected CLI exit code)
    (404, "not_found", errors.NotFoundError, 3),
    (409, "conflict", errors.ConflictError, 2),
    (451, "revoked", errors.GoneError, 1),
    (401, "unauthorized", errors.AuthError, 2),
    (403, "forbidden", errors.ForbiddenError, 2),
    (413, "too_large", errors.PayloadTooLargeError, 2),
    (422, "verification_failed", errors.VerificationError, 1),
    (422, None, errors.UnprocessableError, 2),  # no JSON body: mapped by status
    (500, "internal_error", errors.RemoteError, 4),
]


@pytest.mark.parametrize(
    ("status", "code", "expected", "exit_code"), ERRORS, ids=[f"{e[0]}-{e[1]}" for e in ERRORS]
)
def test_error_answers_become_the_matching_lorareg_error(
    status, code, expected, exit_code, tmp_path: Path
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if code is None:
            return httpx.Response(status, text="plain text")
        return httpx.Response(status, json={"error": {"code": code, "message": "server says no"}})

    with Client("http://registry.test", cache_dir=tmp_path, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(expected) as caught:
            client.resolve("acme/ink")
    assert type(caught.value) is expected
    assert caught.value.exit_code == exit_code


def test_transient_503_is_retried_for_idempotent_requests(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("lorareg.client.transport.BACKOFF_BASE_S", 0.0)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) < 3:
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "busy"}})
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    with Client("http://registry.test", cache_dir=tmp_path, transport=httpx.MockTransport(handler)) as client:
        assert client.search() == {"items": [], "next_cursor": None}
    assert calls == ["GET", "GET", "GET"]


def test_publish_post_is_not_retried_after_a_503(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("lorareg.client.transport.BACKOFF_BASE_S", 0.0)
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        return httpx.Response(503, json={"error": {"code": "unavailable", "message": "busy"}})

    with Client("http://registry.test", cache_dir=tmp_path, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(errors.RemoteError):
            client._request("POST", "/api/v1/adapters/acme/ink/versions", content=b"{}")
    assert calls == ["POST"]


def test_unreachable_registry_is_a_remote_error_with_exit_code_4(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("lorareg.client.transport.BACKOFF_BASE_S", 0.0)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with Client("http://registry.test", cache_dir=tmp_path, transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(errors.RemoteError) as caught:
            client.search()
    assert caught.value.exit_code == 4


def _chunked(data: bytes, size: int = 65536):
    return iter([data[i : i + size] for i in range(0, len(data), size)])


def _blob_server(data: bytes, *, honour_range: bool, seen: list[str | None]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        wanted = request.headers.get("range")
        seen.append(wanted)
        if wanted and honour_range:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            span = f"bytes {start}-{len(data) - 1}/{len(data)}"
            return httpx.Response(206, content=_chunked(data[start:]), headers={"Content-Range": span})
        return httpx.Response(200, content=_chunked(data))

    return httpx.MockTransport(handler)


@pytest.mark.parametrize("honour_range", [True, False], ids=["server-honours-range", "server-ignores-range"])
def test_part_file_left_by_an_earlier_run_is_resumed_and_hashed_whole(
    tmp_path: Path, honour_range: bool
) -> None:
    data = sample_adapter_bytes("flux1", seed=3)
    part = tmp_path / "blob.part"
    part.write_bytes(data[:100_000])
    seen: list[str | None] = []
    with httpx.Client(transport=_blob_server(data, honour_range=honour_range, seen=seen)) as http:
        fetched = download_resumable(
            lambda headers: open_httpx(http, "http://registry.test/blob", headers),
            part=part,
            size=len(data),
            raise_for=lambda response: None,
        )
    assert seen[0] == "bytes=100000-"
    assert fetched.digest == hashlib.sha256(data).hexdigest()
    header_end = 8 + int.from_bytes(data[:8], "little")
    assert fetched.head == data[:header_end]  # the header as hashed, kept bytes included
    assert part.read_bytes() == data


def test_server_sending_more_than_announced_is_refused(tmp_path: Path) -> None:
    data = sample_adapter_bytes("sd1", seed=3)
    with httpx.Client(transport=_blob_server(data + b"extra", honour_range=True, seen=[])) as http:
        with pytest.raises(errors.RemoteError, match="more than"):
            download_resumable(
                lambda headers: open_httpx(http, "http://registry.test/blob", headers),
                part=tmp_path / "blob.part",
                size=len(data),
                raise_for=lambda response: None,
            )


HOSTILE_BLOB_ANSWERS = [
    # (id, status, headers, body offset, message) — the client holds the first 1000 bytes already
    ("range-from-another-offset", 206, {"Content-Range": "bytes 0-{last}/{size}"}, 0, "Content-Range"),
    ("range-of-another-file-size", 206, {"Content-Range": "bytes 1000-{last}/{bigger}"}, 1000,
     "Content-Range"),
    ("announces-more-than-the-rest", 206, {"Content-Range": "bytes 1000-{last}/{size}",
                                           "Content-Length": "{bigger}"}, 1000, "announces"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "headers", "start", "message"),
    [a[1:] for a in HOSTILE_BLOB_ANSWERS],
    ids=[a[0] for a in HOSTILE_BLOB_ANSWERS],
)
def test_blob_answer_that_does_not_fit_the_request_is_refused(
    tmp_path: Path, status: int, headers: dict[str, str], start: int, message: str
) -> None:
    data = sample_adapter_bytes("sd1", seed=4)
    values = {"last": len(data) - 1, "size": len(data), "bigger": len(data) + 10}
    answer = {k: v.format(**values) for k, v in headers.items()}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=answer, content=_chunked(data[start:]))

    part = tmp_path / "blob.part"
    part.write_bytes(data[:1000])
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(errors.RemoteError, match=message):
            download_resumable(
                lambda extra: open_httpx(http, "http://registry.test/blob", extra),
                part=part,
                size=len(data),
                raise_for=lambda response: None,
            )


def test_head_of_a_blob_larger_than_the_json_cap_is_not_refused(tmp_path: Path) -> None:
    # HEAD announces the blob's size (here 3 GiB) and has no body: the answer cap does not apply to it.
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "HEAD"
        return httpx.Response(200, headers={"Content-Length": str(3 * 2**30)})

    progress: list[tuple[int, int]] = []
    with Client("http://registry.test", cache_dir=tmp_path, transport=httpx.MockTransport(handler)) as client:
        client.put_blob(
            tmp_path / "unused", sha256="ab" * 32, size=3 * 2**30, progress=lambda *a: progress.append(a)
        )
    assert progress == [(3 * 2**30, 3 * 2**30)]
