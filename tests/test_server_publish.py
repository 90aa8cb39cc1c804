"""Publishing over real HTTP (uvicorn on loopback): the happy path and every refusal of the shared design."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import httpx
import pytest

from lorareg.errors import AuthError, ConflictError, ForbiddenError, NotFoundError, PayloadTooLargeError
from lorareg.signing.keys import generate
from tests.fixtures.server import LiveServer


def _blob_files(server: LiveServer) -> list[Path]:
    return [p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()]


def _put(server: LiveServer, token: str, digest: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.put(
        f"{server.url}/api/v1/blobs/sha256/{digest}",
        content=body,
        headers={"Authorization": f"Bearer {token}", **headers},
    )


def test_publish_search_pull_verify_round_trip(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/pixel-art", "1.0.0", family="sdxl")
    with live_server.client(token) as client:
        published = client.publish(path, bundle)
        assert published["ref"] == "acme/pixel-art@1.0.0"
        assert published["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert len(published["signers"]) == 2  # publisher + registry countersignature
        found = client.search("pixel")
        assert [item["ref"] for item in found["items"]] == ["acme/pixel-art@1.0.0"]
        trust, policy = live_server.trust(require_registry_signature=True)
        pulled = client.pull("acme/pixel-art", trust=trust, policy=policy)
    assert pulled.read_bytes() == path.read_bytes()
    assert pulled.with_name(pulled.name + ".sig").is_file()

    from lorareg.adapter.hashing import hash_file
    from lorareg.adapter.inspect import inspect_file
    from lorareg.signing.verify import verify_bundle

    verified = verify_bundle(
        pulled.with_name(pulled.name + ".sig").read_bytes(),
        file_size=pulled.stat().st_size,
        file_digests=hash_file(pulled).to_json(),
        file_facts=inspect_file(pulled, with_hashes=False).facts,
        trust=trust,
        policy=policy,
    )
    assert [s.role for s in verified.signers] == ["publisher", "registry"]


def test_republishing_the_same_version_is_409(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", "1.0.0")
    other_path, other_bundle = live_server.adapter("acme/ink", "1.0.0")
    with live_server.client(token) as client:
        client.publish(path, bundle)
        with pytest.raises(ConflictError):
            client.publish(path, bundle)
        with pytest.raises(ConflictError):
            client.publish(other_path, other_bundle)  # other bytes, same name@version: versions are immutable


def test_publish_without_token_is_401(live_server: LiveServer) -> None:
    live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink")
    with live_server.client(None) as client, pytest.raises(AuthError) as caught:
        client.publish(path, bundle)
    assert type(caught.value) is AuthError
    assert _blob_files(live_server) == []


def test_token_of_another_namespace_is_403(live_server: LiveServer) -> None:
    live_server.add_publisher("acme")
    other_token = live_server.add_publisher("globex")
    path, bundle = live_server.adapter("acme/ink")
    with live_server.client(other_token) as client, pytest.raises(ForbiddenError):
        client.publish(path, bundle)


def test_bundle_signed_by_an_unregistered_key_is_403(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", key=generate())  # a key nobody registered for acme
    with live_server.client(token) as client, pytest.raises(ForbiddenError):
        client.publish(path, bundle)
    with live_server.client() as client:
        assert client.search()["items"] == []


def test_upload_body_differing_from_the_signed_digest_is_422_and_nothing_stored(
    live_server: LiveServer,
) -> None:
    token = live_server.add_publisher("acme")
    path, _ = live_server.adapter("acme/ink")
    data = path.read_bytes()
    claimed = hashlib.sha256(data).hexdigest()
    tampered = data[:-1] + bytes([data[-1] ^ 0x01])
    response = _put(live_server, token, claimed, tampered)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unprocessable"
    assert _blob_files(live_server) == []
    assert httpx.head(f"{live_server.url}/api/v1/blobs/sha256/{claimed}").status_code == 404


@pytest.mark.parametrize("declare_length", [True, False], ids=["content-length", "chunked-running-count"])
def test_oversize_upload_is_413_and_nothing_stored(live_server_factory, declare_length: bool) -> None:
    server = live_server_factory(max_upload_bytes=16 * 1024)
    token = server.add_publisher("acme")
    path, bundle = server.adapter("acme/big", family="flux1")  # ~300 KiB, over the 16 KiB cap
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if declare_length:
        with server.client(token) as client, pytest.raises(PayloadTooLargeError):
            client.publish(path, bundle)
    else:
        response = _put(server, token, digest, iter([data[i : i + 4096] for i in range(0, len(data), 4096)]))
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"
    assert _blob_files(server) == []


def test_client_disconnecting_mid_upload_leaves_no_blob_row_or_temp_file(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    path, _ = live_server.adapter("acme/ink", family="flux1")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    host, port = live_server.url.removeprefix("http://").split(":")
    store = live_server.registry.store
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"PUT /api/v1/blobs/sha256/{digest} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[: len(data) // 2])
        _wait_for(lambda: len(store.temp_files()) == 1)  # the upload is in progress, half written
    _wait_for(lambda: store.temp_files() == [])
    assert _blob_files(live_server) == []
    with pytest.raises(NotFoundError):
        live_server.registry.get_blob(digest)


def test_blob_already_stored_answers_200(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    path, _ = live_server.adapter("acme/ink")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert _put(live_server, token, digest, data).status_code == 201
    again = _put(live_server, token, digest, data)
    assert again.status_code == 200
    assert again.json()["sha256"] == digest


def test_bundle_before_blob_is_422_upload_the_blob_first(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    _, bundle = live_server.adapter("acme/ink")
    response = httpx.post(
        f"{live_server.url}/api/v1/adapters/acme/ink/versions",
        content=bundle,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422
    assert "upload the blob first" in response.json()["error"]["message"]


def test_oversize_bundle_is_413(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    response = httpx.post(
        f"{live_server.url}/api/v1/adapters/acme/ink/versions",
        content=b"{" + b" " * (2 * 2**20) + b"}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 413


def test_token_in_the_url_is_refused(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    response = httpx.post(f"{live_server.url}/api/v1/adapters/acme/ink/versions/1.0.0/yank?token={token}")
    assert response.status_code == 400
    assert "Authorization header" in response.json()["error"]["message"]


def test_every_error_has_the_json_error_shape(live_server: LiveServer) -> None:
    for method, path in [("GET", "/api/v1/adapters/acme/none"), ("GET", "/api/v1/resolve?ref=%%%"),
                         ("GET", "/no/such/route"), ("GET", "/api/v1/adapters?limit=0")]:  # fmt: skip
        response = httpx.request(method, live_server.url + path)
        assert response.status_code in (400, 404), path
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, path


def _wait_for(condition, timeout_s: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("query", "allowed"),
    [
        ("family=bogus", "sd1, sd2, sdxl"),
        ("consent_subject=face", "style, likeness, character"),
        ("consent_status=maybe", "obtained, not-required"),
        ("sort=bogus", "newest"),
    ],
    ids=["family", "consent-subject", "consent-status", "sort"],
)
def test_search_filter_outside_its_enum_is_400_naming_the_allowed_values(
    live_server: LiveServer, query: str, allowed: str
) -> None:
    """A typo in a filter must not look like "no adapters match" (an empty 200 page)."""
    response = httpx.get(f"{live_server.url}/api/v1/adapters?{query}")
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_input"
    assert allowed in response.json()["error"]["message"]


def test_search_filters_with_known_values_or_left_blank_still_answer(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/pixel-art", "1.0.0", family="sdxl")
    with live_server.client(token) as client:
        client.publish(path, bundle)
    for query, refs in [
        ("family=sdxl&consent_subject=style&consent_status=not-required", ["acme/pixel-art@1.0.0"]),
        ("family=sd1", []),
        ("family=&consent_status=", ["acme/pixel-art@1.0.0"]),  # blank means any, as in the web form
    ]:
        response = httpx.get(f"{live_server.url}/api/v1/adapters?{query}")
        assert response.status_code == 200, response.text
        assert [item["ref"] for item in response.json()["items"]] == refs, query
