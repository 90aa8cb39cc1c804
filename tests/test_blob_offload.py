"""Blob bytes served by nginx (X-Accel-Redirect) after lorareg authorised the request, with a real nginx.

lorareg still answers everything that is a decision — unknown digest 404, revoked 451, ``If-None-Match`` 304 —
and nginx streams only what lorareg sent it to, applying ``Range`` itself; its internal location cannot be
reached from outside. A verified pull through the proxy works unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import httpx
import pytest

from lorareg.errors import InputError
from lorareg.registry import open_registry
from lorareg.server.app import create_app
from lorareg.server.config import Settings, settings_from_env
from tests.fixtures.nginx import NginxFront
from tests.fixtures.server import LiveServer

pytestmark = pytest.mark.nginx


@pytest.fixture
def fronted(
    live_server_factory: Callable[..., LiveServer], nginx_front: Callable[[LiveServer], NginxFront]
) -> tuple[LiveServer, NginxFront, bytes, str]:
    server = live_server_factory(blob_offload="x-accel")
    token = server.add_publisher("acme")
    path, bundle = server.adapter("acme/ink", "1.0.0", family="sd1")
    with server.client(token) as client:
        client.publish(path, bundle)
    data = path.read_bytes()
    return server, nginx_front(server), data, hashlib.sha256(data).hexdigest()


def test_blob_through_nginx_is_the_file_with_lorareg_headers(fronted) -> None:
    _, front, data, sha256 = fronted
    answer = httpx.get(f"{front.url}/api/v1/blobs/sha256/{sha256}")
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["etag"] == f'"sha256:{sha256}"'
    assert "immutable" in answer.headers["cache-control"]
    assert "x-accel-redirect" not in answer.headers


def test_range_through_nginx_is_applied_by_nginx(fronted) -> None:
    _, front, data, sha256 = fronted
    answer = httpx.get(f"{front.url}/api/v1/blobs/sha256/{sha256}", headers={"Range": "bytes=10-99"})
    assert answer.status_code == 206 and answer.content == data[10:100]
    assert answer.headers["content-range"] == f"bytes 10-99/{len(data)}"


def test_revoked_blob_is_451_from_lorareg_not_the_file(fronted) -> None:
    server, front, data, sha256 = fronted
    reviewer = server.registry.authenticate(server.token("reviewer"))
    server.registry.revoke(sha256, reason="likeness without consent", principal=reviewer)
    answer = httpx.get(f"{front.url}/api/v1/blobs/sha256/{sha256}")
    assert answer.status_code == 451 and data[:64] not in answer.content
    assert answer.json()["error"]["code"] == "revoked"


def test_unknown_digest_and_not_modified_are_lorareg_answers(fronted) -> None:
    _, front, _, sha256 = fronted
    assert httpx.get(f"{front.url}/api/v1/blobs/sha256/{'0' * 64}").status_code == 404
    etag = f'"sha256:{sha256}"'
    again = httpx.get(f"{front.url}/api/v1/blobs/sha256/{sha256}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_the_internal_location_cannot_be_reached_directly(fronted) -> None:
    _, front, _, sha256 = fronted
    direct = httpx.get(f"{front.url}/_lorareg_blobs/sha256/{sha256[:2]}/{sha256}")
    assert direct.status_code == 404


def test_verified_pull_through_nginx(fronted, tmp_path) -> None:
    server, front, data, _ = fronted
    trust, policy = server.trust()
    from lorareg.client import Client

    with Client(front.url, cache_dir=tmp_path / "cache") as client:
        pulled = client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
    assert pulled.read_bytes() == data


def test_offload_modes_are_checked_when_configured(tmp_path) -> None:
    assert settings_from_env({"LORAREG_BLOB_OFFLOAD": "x-sendfile"}).blob_offload == "x-sendfile"
    with pytest.raises(InputError, match="LORAREG_BLOB_OFFLOAD"):
        settings_from_env({"LORAREG_BLOB_OFFLOAD": "sendfile-please"})
    with pytest.raises(InputError, match="LORAREG_X_ACCEL_PREFIX"):
        settings_from_env({"LORAREG_X_ACCEL_PREFIX": "no-slashes"})


def test_x_sendfile_names_the_blob_file(live_server_factory) -> None:
    server = live_server_factory(blob_offload="x-sendfile")
    token = server.add_publisher("acme")
    path, bundle = server.adapter("acme/ink", "1.0.0", family="sd1")
    with server.client(token) as client:
        client.publish(path, bundle)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    answer = httpx.get(f"{server.url}/api/v1/blobs/sha256/{sha256}")
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["x-sendfile"] == str(server.data_dir / "blobs" / "sha256" / sha256[:2] / sha256)


@pytest.fixture
def redirecting(live_server_factory, s3_bucket) -> tuple[LiveServer, bytes, str]:
    server = live_server_factory(
        storage=s3_bucket.url("blobs-here"), s3_endpoint=s3_bucket.endpoint_url, blob_offload="s3-redirect"
    )
    token = server.add_publisher("acme")
    path, bundle = server.adapter("acme/ink", "1.0.0", family="sd1")
    with server.client(token) as client:
        client.publish(path, bundle)
    data = path.read_bytes()
    return server, data, hashlib.sha256(data).hexdigest()


def test_s3_redirect_sends_the_client_to_a_presigned_store_url(redirecting) -> None:
    server, data, sha256 = redirecting
    answer = httpx.get(f"{server.url}/api/v1/blobs/sha256/{sha256}")
    assert answer.status_code == 307 and answer.headers["cache-control"] == "no-store"
    location = answer.headers["location"]
    assert location.startswith(redirecting[0].registry.store.client.meta.endpoint_url)
    assert "Signature=" in location or "X-Amz-Signature=" in location
    fetched = httpx.get(location, headers={"Range": "bytes=0-99"})
    assert fetched.status_code == 206 and fetched.content == data[:100]


def test_s3_redirect_keeps_decisions_on_the_app_server(redirecting) -> None:
    server, data, sha256 = redirecting
    head = httpx.head(f"{server.url}/api/v1/blobs/sha256/{sha256}")
    assert head.status_code == 200 and int(head.headers["content-length"]) == len(data)
    reviewer = server.registry.authenticate(server.token("reviewer"))
    server.registry.revoke(sha256, reason="upheld takedown", principal=reviewer)
    assert httpx.get(f"{server.url}/api/v1/blobs/sha256/{sha256}").status_code == 451


def test_verified_pull_follows_the_redirect_and_verifies_every_byte(redirecting, tmp_path) -> None:
    server, data, _ = redirecting
    trust, policy = server.trust()
    with server.client(cache_dir=tmp_path / "cache") as client:
        assert client.pull("acme/ink@1.0.0", trust=trust, policy=policy).read_bytes() == data


def test_redirects_keep_credentials_on_their_origin() -> None:
    from lorareg.client.download_http import TransferInterruptedError, redirect_target

    headers = {"Authorization": "Bearer lrg_x", "Range": "bytes=5-"}
    same, kept = redirect_target("http://reg.example/api/v1/blobs/x", "/other", headers)
    assert same == "http://reg.example/other" and kept == headers
    away, sent = redirect_target("http://reg.example/a", "https://bucket.example/k?sig=1", headers)
    assert away == "https://bucket.example/k?sig=1" and sent == {"Range": "bytes=5-"}
    with pytest.raises(TransferInterruptedError, match="non-http"):
        redirect_target("http://reg.example/a", "file:///etc/passwd", headers)


def test_offload_with_an_s3_store_is_refused_at_start(tmp_path, s3_bucket) -> None:
    settings = Settings(
        home=tmp_path, storage=s3_bucket.url(), s3_endpoint=s3_bucket.endpoint_url, blob_offload="x-accel"
    )
    registry = open_registry(tmp_path, storage=settings.storage, s3_endpoint=settings.s3_endpoint)
    with pytest.raises(InputError, match="filesystem blob store"):
        create_app(settings, registry=registry)
    local = open_registry(tmp_path / "local")
    with pytest.raises(InputError, match="needs S3 storage"):
        create_app(Settings(home=tmp_path / "local", blob_offload="s3-redirect"), registry=local)
