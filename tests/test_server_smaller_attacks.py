"""The smaller attacks of issue #11, one test each: orphaned previews, decode bombs, unpublished blobs served
to anyone, a reflected ``Host``, tokens in public URLs, RFC 9110 conditionals, the docs page's script,
lax takedown JSON and malformed bundles answered 422 where the docs say 400.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lorareg.errors import ConflictError, PayloadTooLargeError
from lorareg.registry.previews import MAX_PREVIEWS_PER_VERSION, Previews, clean_image
from lorareg.server.app import create_app
from lorareg.server.config import Settings
from tests.fixtures.registry import make_publisher
from tests.fixtures.web import WebSite, png_bytes

GOOD_TAKEDOWN = {
    "ref": "acme/pixel-art@1.0.0",
    "reason": "likeness",
    "claimant": "Jo Model",
    "contact": "jo@example.org",
    "details": "It reproduces my face.",
    "good_faith": True,
}


def _store_files(web: WebSite) -> set[Path]:
    root = Path(web.registry.store.root)  # type: ignore[attr-defined]
    return {p for p in root.rglob("*") if p.is_file()}


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` with almost no pixel data (cheap to send)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def test_a_refused_ninth_preview_is_neither_decoded_nor_stored(web: WebSite) -> None:
    web.publisher.publish()
    previews = Previews(web.registry)
    for i in range(MAX_PREVIEWS_PER_VERSION):
        previews.add("acme/pixel-art", "1.0.0", png_bytes(color=(i, 0, 0)), principal=web.publisher.principal)
    before = _store_files(web)
    with pytest.raises(ConflictError, match="previews already"):
        previews.add(
            "acme/pixel-art", "1.0.0", png_bytes(color=(99, 1, 2)), principal=web.publisher.principal
        )
    assert _store_files(web) == before  # no orphaned image or thumbnail


def test_a_6000_by_6000_png_is_refused_from_its_header_before_decoding() -> None:
    started = time.monotonic()
    with pytest.raises(PayloadTooLargeError, match="pixels"):
        clean_image(_png_header_only(6000, 6000))
    assert time.monotonic() - started < 0.5


def test_an_unpublished_blob_is_served_only_to_its_uploader(web: WebSite) -> None:
    built = web.publisher.build()
    web.registry.upload_blob(built.sha256, built.chunks(), principal=web.publisher.principal)
    url = f"/api/v1/blobs/sha256/{built.sha256}"
    other = make_publisher(web.registry, "globex").secret
    assert web.client.get(url).status_code == 404
    assert web.client.head(url).status_code == 404
    assert web.client.get(url, headers={"authorization": f"Bearer {other}"}).status_code == 404
    mine = web.client.get(url, headers={"authorization": f"Bearer {web.publisher.secret}"})
    assert mine.status_code == 200 and mine.content == built.data
    web.registry.publish("acme/pixel-art", built.bundle, principal=web.publisher.principal)
    assert web.client.get(url).content == built.data  # public once published


def test_the_host_header_is_not_reflected_into_urls(web: WebSite, tmp_path: Path) -> None:
    web.publisher.publish()
    evil = {"host": "evil.example"}
    version = web.client.get("/api/v1/adapters/acme/pixel-art/versions/1.0.0", headers=evil).json()
    assert version["blob_url"].startswith("/api/v1/blobs/sha256/")
    assert version["signature_url"] == "/api/v1/adapters/acme/pixel-art/versions/1.0.0/signature"
    filed = web.client.post("/api/v1/takedowns", json=GOOD_TAKEDOWN, headers=evil)
    assert filed.status_code == 201 and filed.json()["status_url"].startswith("/api/v1/takedowns/td_")
    settings = Settings(home=tmp_path / "data", public_url="https://registry.example.org/")
    with TestClient(create_app(settings, registry=web.registry)) as client:
        resolved = client.get("/api/v1/resolve", params={"ref": "acme/pixel-art"}, headers=evil).json()
    assert resolved["blob_url"].startswith("https://registry.example.org/api/v1/blobs/sha256/")


@pytest.mark.parametrize("name", ["api_key", "token", "access_token", "APIKEY", "auth"])
@pytest.mark.parametrize("path", ["/api/v1/adapters", "/healthz", "/api/v1/keys", "/", "/api/v1/log/head"])
def test_a_token_in_the_query_is_refused_on_public_routes_too(web: WebSite, path: str, name: str) -> None:
    answer = web.client.get(path, params={name: "lrg_0123456789ab_secret"})
    assert answer.status_code == 400 and "Authorization header" in answer.text


def test_conditional_and_range_requests_follow_rfc_9110(web: WebSite) -> None:
    record = web.publisher.publish()
    url = f"/api/v1/blobs/sha256/{record.sha256}"
    etag = f'"sha256:{record.sha256}"'
    assert web.client.get(url, headers={"if-none-match": "*"}).status_code == 304
    assert web.client.get(url, headers={"if-none-match": f'"other", W/{etag}'}).status_code == 304
    assert web.client.get(url, headers={"if-none-match": f'"x{etag[1:]}'}).status_code == 200
    reversed_range = web.client.get(url, headers={"range": "bytes=10-5"})
    assert reversed_range.status_code == 200
    assert len(reversed_range.content) == web.registry.get_blob(record.sha256).size


def test_api_docs_page_has_the_security_headers_and_no_foreign_script(web: WebSite) -> None:
    answer = web.client.get("/api/docs")
    assert answer.status_code == 200
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    assert "cdn" not in answer.text.lower() and "/api/v1/blobs/sha256/{digest}" in answer.text
    scripts = [part.split('"', 2)[1] for part in answer.text.split("<script src=")[1:]]
    assert all(src.startswith("/static/") for src in scripts)


@pytest.mark.parametrize(
    "change",
    [{"good_faith": "yes"}, {"good_faith": 1}, {"extra": "field"}, {"reason": ["likeness"]}],
    ids=["good-faith-string", "good-faith-number", "unknown-field", "reason-list"],
)
def test_takedown_json_is_strict(web: WebSite, change: dict[str, object]) -> None:
    web.publisher.publish()
    answer = web.client.post("/api/v1/takedowns", json={**GOOD_TAKEDOWN, **change})
    assert answer.status_code == 400, answer.text


@pytest.mark.parametrize(
    "body", [b"{{", b"[]", b"{}", b'{"mediaType": 1}'], ids=["syntax", "list", "empty", "types"]
)
def test_a_malformed_bundle_is_bad_input_as_the_docs_say(web: WebSite, body: bytes) -> None:
    built = web.publisher.build()
    web.registry.upload_blob(built.sha256, built.chunks(), principal=web.publisher.principal)
    answer = web.client.post(
        "/api/v1/adapters/acme/pixel-art/versions",
        content=body,
        headers={"authorization": f"Bearer {web.publisher.secret}"},
    )
    assert answer.status_code == 400 and json.loads(answer.text)["error"]["code"] == "bad_input"


def test_a_405_names_every_method_the_path_has(web: WebSite) -> None:
    answer = web.client.delete(f"/api/v1/blobs/sha256/{'0' * 64}")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD, PUT"


def test_the_openapi_document_lists_the_errors_the_server_answers(web: WebSite) -> None:
    paths = web.client.get("/api/openapi.json").json()["paths"]
    upload = paths["/api/v1/blobs/sha256/{digest}"]["put"]
    assert {"400", "401", "403", "408", "413", "422", "429", "451"} <= set(upload["responses"])
    assert upload["security"] == [{"bearer": []}]
    assert (
        paths["/api/v1/blobs/sha256/{digest}"]["get"]["parameters"][0]["schema"]["pattern"]
        == "^[0-9a-f]{64}$"
    )
    search = {p["name"]: p["schema"] for p in paths["/api/v1/adapters"]["get"]["parameters"]}
    assert "sdxl" in search["family"]["enum"] and search["sort"]["enum"] == ["newest", "name"]
    assert all("422" not in op["responses"] for op in paths["/api/v1/resolve"].values())
