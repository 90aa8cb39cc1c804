"""``Client.pull`` against a live server: verified cache, resumed downloads, tampering, revocation, load."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import blake3
import httpx
import pytest

from lorareg.client import Client, download
from lorareg.client.download import Fetched
from lorareg.errors import GoneError, InputError, NotFoundError, VerificationError
from lorareg.manifest.drafting import ManifestDraft
from lorareg.signing.filecheck import verify_file
from lorareg.signing.keys import generate
from lorareg.signing.sign import sign_file
from lorareg.signing.trust import TrustStore
from tests.fixtures.server import LiveServer, draft_manifest


@pytest.fixture
def published(live_server: LiveServer) -> tuple[LiveServer, Path, str]:
    """A server with acme/ink@1.0.0 (a ~300 KiB flux1 adapter); returns (server, file, sha256)."""
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", "1.0.0", family="flux1")
    with live_server.client(token) as client:
        client.publish(path, bundle)
    return live_server, path, hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_files(cache_dir: Path) -> list[str]:
    """Blobs, bundles and part files in a client cache (not locks or revocation state)."""
    found = [*cache_dir.glob("blobs/**/*"), *cache_dir.glob("tmp/*.part")]
    return sorted(p.name for p in found if p.is_file())


@pytest.mark.parametrize("path", ["http.client", "httpx"])
def test_download_cut_midway_resumes_with_range_and_verifies(
    published, cutting_proxy, tmp_path: Path, path: str
) -> None:
    server, adapter, _ = published
    size = adapter.stat().st_size
    proxy = cutting_proxy(server.url, cut_after=size // 2, cuts=2)  # the API connection is never that long
    trust, policy = server.trust()
    transport = httpx.HTTPTransport() if path == "httpx" else None  # an injected transport: the httpx path
    with Client(proxy.url, cache_dir=tmp_path / "cache", timeout=10.0, transport=transport) as client:
        pulled = client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
    assert pulled.read_bytes() == adapter.read_bytes()
    cut = proxy.response_bytes.index(size // 2)  # a connection was cut mid-blob …
    assert (
        0 < sum(proxy.response_bytes[cut + 1 :]) < size
    )  # … and the rest came as a range, not the whole file


def test_tampered_blob_on_the_server_is_refused_and_never_cached(published, tmp_path: Path) -> None:
    server, _, sha256 = published
    stored = server.registry.store.path_of(sha256)
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0x01
    stored.write_bytes(bytes(data))
    trust, policy = server.trust()
    cache_dir = tmp_path / "cache"
    with (
        server.client(cache_dir=cache_dir) as client,
        pytest.raises(VerificationError, match="digest mismatch"),
    ):
        client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
    assert _cache_files(cache_dir) == []


def test_verified_pull_hashes_while_downloading_and_never_reads_the_file_again(
    published, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, path, _ = published

    def reread(*args: object, **kwargs: object) -> None:
        raise AssertionError("the downloaded file was read again")

    for name in ("lorareg.signing.filecheck.digest_file", "lorareg.adapter.safetensors.read_header"):
        monkeypatch.setattr(name, reread)
    fetched: list[Fetched] = []
    real = download.download_resumable

    def spy(*args: Any, **kwargs: Any) -> Fetched:
        fetched.append(real(*args, **kwargs))
        return fetched[-1]

    monkeypatch.setattr(download, "download_resumable", spy)
    trust, policy = server.trust()
    with server.client(cache_dir=tmp_path / "cache") as client:
        pulled = client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
    assert pulled.read_bytes() == path.read_bytes()
    assert [f.algorithm for f in fetched] == ["blake3"]  # the signed manifest carries BLAKE3: the cheaper one
    assert fetched[0].digest == blake3.blake3(path.read_bytes()).hexdigest()


def test_cached_file_changed_on_disk_is_refused_and_evicted(published, tmp_path: Path) -> None:
    server, _, sha256 = published
    trust, policy = server.trust()
    with server.client(cache_dir=tmp_path / "cache") as client:
        cached = client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
        data = bytearray(cached.read_bytes())
        data[len(data) // 2] ^= 0x01
        cached.write_bytes(bytes(data))
        with pytest.raises(VerificationError, match="digest mismatch"):
            client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
        assert client.cache.lookup(sha256) is None
        assert client.pull("acme/ink@1.0.0", trust=trust, policy=policy).read_bytes() != bytes(data)


def test_cached_file_is_rechecked_against_revocations_on_every_pull(published, tmp_path: Path) -> None:
    server, _, sha256 = published
    trust, policy = server.trust()
    with server.client(cache_dir=tmp_path / "cache") as client:
        first = client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
        assert first.is_file()
        reviewer = server.registry.authenticate(server.token("reviewer"))
        server.registry.revoke(sha256, reason="upheld takedown", principal=reviewer)
        with pytest.raises(VerificationError, match="revoked"):
            client.pull("acme/ink@1.0.0", trust=trust, policy=policy)


def test_revocation_list_rollback_is_refused(published, tmp_path: Path) -> None:
    server, _, _ = published
    trust, policy = server.trust()
    with server.client(cache_dir=tmp_path / "cache") as client:
        client.cache.remember_revocation_version(client.registry_url, 10_000)  # we have seen a newer list
        with pytest.raises(VerificationError, match="rollback"):
            client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
    assert _cache_files(tmp_path / "cache") == []


def test_pull_from_a_registry_the_trust_file_does_not_know_is_refused_and_not_cached(
    published, tmp_path: Path
) -> None:
    server, _, _ = published
    _, policy = server.trust()
    stranger = TrustStore((), policy).with_key(
        generate().public_key, label="other", role="registry", namespace=None
    )
    with server.client(cache_dir=tmp_path / "cache") as client, pytest.raises(VerificationError):
        client.pull("acme/ink@1.0.0", trust=stranger, policy=policy)
    assert _cache_files(tmp_path / "cache") == []


def test_yanked_version_is_hidden_but_pullable_by_exact_version(published, tmp_path: Path) -> None:
    server, path, _ = published
    token = server.token("publisher", "acme")
    trust, policy = server.trust()
    with server.client(token, cache_dir=tmp_path / "cache") as client:
        assert client.yank("acme/ink@1.0.0")["status"] == "yanked"
        assert client.search()["items"] == []
        with pytest.raises(NotFoundError):
            client.resolve("acme/ink")
        assert client.pull("acme/ink@1.0.0", trust=trust, policy=policy).read_bytes() == path.read_bytes()
        assert client.unyank("acme/ink@1.0.0")["status"] == "active"


def test_revoked_blob_download_is_451_gone(published, tmp_path: Path) -> None:
    server, _, sha256 = published
    reviewer = server.registry.authenticate(server.token("reviewer"))
    server.registry.revoke(sha256, reason="upheld takedown", principal=reviewer)
    with server.client(cache_dir=tmp_path / "cache") as client, pytest.raises(GoneError):
        client.pull("acme/ink@1.0.0", verify=False, out_dir=tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []  # not even a part file


def test_republishing_revoked_bytes_says_a_takedown_revoked_them_and_why(published, tmp_path: Path) -> None:
    server, path, sha256 = published
    reviewer = server.registry.authenticate(server.token("reviewer"))
    server.registry.revoke(sha256, reason="likeness of J. Doe without consent", principal=reviewer)
    renamed = ManifestDraft.from_json(draft_manifest("acme/ink-again", "2.0.0"))
    bundle = sign_file(path, renamed, server.publisher_keys["acme"])
    with server.client(server.token("publisher", "acme")) as client, pytest.raises(GoneError) as caught:
        client.publish(path, bundle)
    message = str(caught.value)
    assert "revoked by an upheld takedown" in message and "cannot" in message
    assert message.endswith("(public reason: likeness of J. Doe without consent)")


def test_unverified_pull_writes_only_to_out_and_never_into_the_cache(published, tmp_path: Path) -> None:
    """Issue 4 item 4: the cache never holds a file that skipped verification."""
    server, path, _ = published
    cache_dir, out = tmp_path / "cache", tmp_path / "out"
    with server.client(cache_dir=cache_dir) as client:
        with pytest.raises(InputError, match="--out"):
            client.pull("acme/ink@1.0.0", verify=False)
        pulled = client.pull("acme/ink@1.0.0", verify=False, out_dir=out)
    assert pulled == out / "ink-1.0.0.safetensors" and pulled.read_bytes() == path.read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["ink-1.0.0.safetensors", "ink-1.0.0.safetensors.sig"]
    assert _cache_files(cache_dir) == []
    trust, policy = server.trust()  # the signature file beside it lets it be verified later
    verified = verify_file(pulled, Path(f"{pulled}.sig"), trust=trust, policy=policy)
    assert verified.manifest is not None and verified.manifest.name == "acme/ink"


def test_unverified_pull_of_tampered_bytes_keeps_nothing(published, tmp_path: Path) -> None:
    server, _, sha256 = published
    stored = server.registry.store.path_of(sha256)
    os.chmod(stored, 0o644)
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0x01
    stored.write_bytes(bytes(data))
    with (
        server.client(cache_dir=tmp_path / "cache") as client,
        pytest.raises(VerificationError, match="digest mismatch"),
    ):
        client.pull("acme/ink@1.0.0", verify=False, out_dir=tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == [] and _cache_files(tmp_path / "cache") == []


def test_out_dir_that_is_a_file_is_refused_before_downloading(published, tmp_path: Path) -> None:
    server, _, _ = published
    (tmp_path / "taken").write_text("not a directory")
    trust, policy = server.trust()
    with server.client(cache_dir=tmp_path / "cache") as client, pytest.raises(InputError, match="is a file"):
        client.pull("acme/ink@1.0.0", trust=trust, policy=policy, out_dir=tmp_path / "taken")
    assert _cache_files(tmp_path / "cache") == []


def test_pull_by_hash_and_copy_out(published, tmp_path: Path) -> None:
    server, path, sha256 = published
    trust, policy = server.trust()
    autov2 = sha256[:10]
    with server.client(cache_dir=tmp_path / "cache") as client:
        copied = client.pull(autov2, trust=trust, policy=policy, out_dir=tmp_path / "out")
    assert copied == tmp_path / "out" / "ink-1.0.0.safetensors"
    assert copied.read_bytes() == path.read_bytes()


def test_twenty_concurrent_publishes_and_fifty_concurrent_pulls_all_verify(
    live_server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    live_server = live_server_factory(max_uploads_per_token=20)  # one token, twenty uploads at once
    token = live_server.add_publisher("acme")
    adapters = [live_server.adapter(f"acme/load-{i}", "1.0.0", family="sd1") for i in range(20)]

    def publish(item: tuple[Path, bytes]) -> str:
        with live_server.client(token) as client:
            return str(client.publish(*item)["ref"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        refs = list(pool.map(publish, adapters))
    assert sorted(refs) == sorted(f"acme/load-{i}@1.0.0" for i in range(20))
    trust, policy = live_server.trust()
    shared = tmp_path / "shared-cache"

    def pull(i: int) -> bytes:
        cache = shared if i % 2 else tmp_path / f"cache-{i}"
        with live_server.client(cache_dir=cache) as client:
            return client.pull(f"acme/load-{i % 20}@1.0.0", trust=trust, policy=policy).read_bytes()

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(pull, range(50)))
    for i, data in enumerate(results):
        assert data == adapters[i % 20][0].read_bytes()
