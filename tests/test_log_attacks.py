"""A hostile registry against ``pull --verify``: every way of lying about the transparency log is refused.

Each test turns a real server (uvicorn over loopback) into a liar: its database is edited the way a
registry operator (or whoever holds its key) would, or a transport sends some routes to a second server that
holds the same key but a forked log. The client must refuse before downloading, with a reason naming what
was inconsistent, and must keep nothing of the refused pull.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, delete, select

from lorareg.client import Client
from lorareg.client.checkpoints import CheckpointStore
from lorareg.errors import VerificationError
from lorareg.manifest.canonical import canonical_json
from lorareg.registry.db import TlogLeaf
from lorareg.signing import merkle
from lorareg.signing.keys import PrivateKey, generate
from tests.fixtures.server import LiveServer


class ForkingTransport(httpx.HTTPTransport):
    """Sends requests for ``paths`` (all when None) to another server; the client still thinks it is one."""

    def __init__(self, other: str, paths: Iterable[str] | None = None) -> None:
        super().__init__()
        self._other = httpx.URL(other)
        self._paths = None if paths is None else frozenset(paths)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._paths is None or request.url.path in self._paths:
            request.url = request.url.copy_with(host=self._other.host, port=self._other.port)
        return super().handle_request(request)


def _publish(server: LiveServer, token: str, name: str, version: str = "1.0.0") -> None:
    path, bundle = server.adapter(name, version)
    with server.client(token) as client:
        client.publish(path, bundle)


def _pull(server: LiveServer, cache: Path, ref: str, transport: httpx.BaseTransport | None = None) -> Path:
    trust, policy = server.trust()
    with Client(server.url, cache_dir=cache, timeout=10.0, transport=transport) as client:
        return client.pull(ref, trust=trust, policy=policy)


def _rewrite_leaf(server: LiveServer, index: int, change: Callable[[dict[str, Any]], None]) -> None:
    """The operator edits a leaf in place (and its hash, so the tree it serves is self-consistent)."""
    with server.registry.db.write() as session:
        leaf = session.exec(select(TlogLeaf).where(col(TlogLeaf.idx) == index)).one()
        body = json.loads(bytes(leaf.body))
        change(body)
        leaf.body = canonical_json(body)
        leaf.leaf_hash = merkle.leaf_hash(leaf.body)
        session.add(leaf)
    server.registry.log_tree.clear()  # what restarting the edited server does


def _drop_leaves_from(server: LiveServer, index: int) -> None:
    with server.registry.db.write() as session:
        session.exec(delete(TlogLeaf).where(col(TlogLeaf.idx) >= index))  # type: ignore[call-overload]
    server.registry.log_tree.clear()


def _blobs(cache: Path) -> list[Path]:
    return [p for p in cache.glob("blobs/**/*") if p.is_file()]


@pytest.fixture
def shared_key(tmp_path: Path) -> tuple[PrivateKey, Path]:
    key = generate()
    path = tmp_path / "registry.key"
    path.write_bytes(key.to_pem())
    path.chmod(0o600)
    return key, path


def test_first_pull_stores_the_checkpoint_and_later_pulls_extend_it(
    live_server: LiveServer, tmp_path: Path
) -> None:
    token = live_server.add_publisher("acme")
    _publish(live_server, token, "acme/ink")
    cache = tmp_path / "cache"
    _pull(live_server, cache, "acme/ink@1.0.0")
    store = CheckpointStore(cache)
    first = store.held(live_server.url)
    assert first is not None and first.size == 1
    _publish(live_server, token, "acme/ink", "1.1.0")
    _pull(live_server, cache, "acme/ink@1.1.0")
    second = store.held(live_server.url)
    assert second is not None and second.size == 2 and second.origin == first.origin


def test_split_view_log_forked_for_one_client_is_refused(
    live_server_factory: Callable[..., LiveServer], shared_key: tuple[PrivateKey, Path], tmp_path: Path
) -> None:
    key, key_file = shared_key
    honest = live_server_factory(registry_key_file=key_file)
    fork = live_server_factory(registry_key_file=key_file)  # same key, its own history
    publisher = generate()
    honest_token = honest.add_publisher("acme", publisher)
    fork_token = fork.add_publisher("acme", publisher)
    _publish(honest, honest_token, "acme/ink")
    _publish(fork, fork_token, "acme/hidden")
    _publish(fork, fork_token, "acme/ink")
    cache = tmp_path / "cache"
    _pull(honest, cache, "acme/ink@1.0.0")  # the studio's first contact: the honest log
    with pytest.raises(VerificationError, match="split view: the registry's log of 2 entries"):
        _pull(honest, cache, "acme/ink@1.0.0", transport=ForkingTransport(fork.url))
    fresh = tmp_path / "fresh"
    _pull(honest, fresh, "acme/ink@1.0.0", transport=ForkingTransport(fork.url))  # one view alone is valid
    assert CheckpointStore(fresh).held(honest.url) != CheckpointStore(cache).held(honest.url)


def test_rolled_back_checkpoint_is_refused(live_server: LiveServer, tmp_path: Path) -> None:
    token = live_server.add_publisher("acme")
    _publish(live_server, token, "acme/ink")
    _publish(live_server, token, "acme/ink", "1.1.0")
    cache = tmp_path / "cache"
    _pull(live_server, cache, "acme/ink@1.1.0")
    _drop_leaves_from(live_server, 1)
    with pytest.raises(VerificationError, match="rolled-back log: the registry's checkpoint has 1 entries"):
        _pull(live_server, cache, "acme/ink@1.0.0")


def test_dropped_entry_is_refused_as_missing(live_server: LiveServer, tmp_path: Path) -> None:
    token = live_server.add_publisher("acme")
    _publish(live_server, token, "acme/ink")
    _publish(live_server, token, "acme/ink", "1.1.0")
    _drop_leaves_from(live_server, 1)  # the registry hides the publication of 1.1.0 from its log
    cache = tmp_path / "cache"
    with pytest.raises(VerificationError, match="missing log entry: acme/ink@1.1.0 names log index 1"):
        _pull(live_server, cache, "acme/ink@1.1.0")
    assert _blobs(cache) == []


def test_rewritten_entry_is_refused_as_a_split_view(live_server: LiveServer, tmp_path: Path) -> None:
    token = live_server.add_publisher("acme")
    _publish(live_server, token, "acme/ink")
    cache = tmp_path / "cache"
    _pull(live_server, cache, "acme/ink@1.0.0")
    _publish(live_server, token, "acme/ink", "1.1.0")
    _rewrite_leaf(live_server, 0, lambda body: body.update(signers=[]))  # history edited after the fact
    with pytest.raises(VerificationError, match="split view.*does not extend the log of 1 entries"):
        _pull(live_server, cache, "acme/ink@1.1.0")


def test_entry_that_names_another_digest_is_refused(live_server: LiveServer, tmp_path: Path) -> None:
    token = live_server.add_publisher("acme")
    _publish(live_server, token, "acme/ink")
    other = hashlib.sha256(b"other bytes").hexdigest()
    _rewrite_leaf(live_server, 0, lambda body: body.update(sha256=other))
    cache = tmp_path / "cache"
    with pytest.raises(
        VerificationError, match=f"log entry 0 names sha256 '{other}'; the signed bundle covers"
    ):
        _pull(live_server, cache, "acme/ink@1.0.0")
    assert _blobs(cache) == []


def test_checkpoint_signed_by_an_unknown_key_is_refused(
    live_server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    registry, impostor = live_server_factory(), live_server_factory()
    token = registry.add_publisher("acme")
    _publish(registry, token, "acme/ink")
    transport = ForkingTransport(impostor.url, paths=["/api/v1/log/evidence"])
    cache = tmp_path / "cache"
    with pytest.raises(VerificationError, match="checkpoint is signed by an unknown key"):
        _pull(registry, cache, "acme/ink@1.0.0", transport=transport)
    assert CheckpointStore(cache).held(registry.url) is None and _blobs(cache) == []
