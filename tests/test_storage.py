"""The filesystem blob store: content-addressed layout, atomic commits, ranges, hostile keys, GC."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from lorareg.errors import InputError, NotFoundError
from lorareg.registry.blobs import READ_CHUNK_BYTES, FilesystemStore, open_store

DATA = bytes(range(256)) * 9000  # ~2.2 MiB: more than two read chunks
DIGEST = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore(tmp_path / "data")


def _put(store: FilesystemStore, data: bytes = DATA, digest: str = DIGEST) -> None:
    pending = store.begin()
    for i in range(0, len(data), 100_000):
        pending.write(data[i : i + 100_000])
    pending.commit(digest)


def test_committed_blob_lands_at_its_content_address(store: FilesystemStore) -> None:
    _put(store)
    assert (store.root / "blobs" / "sha256" / DIGEST[:2] / DIGEST).read_bytes() == DATA
    assert store.exists(DIGEST) and store.size(DIGEST) == len(DATA)
    assert store.temp_files() == []


def test_pending_blob_is_invisible_until_commit(store: FilesystemStore) -> None:
    pending = store.begin()
    pending.write(DATA)
    assert not store.exists(DIGEST)
    pending.commit(DIGEST)
    assert store.exists(DIGEST)


def test_abort_leaves_no_temp_file(store: FilesystemStore) -> None:
    pending = store.begin()
    pending.write(DATA[:1000])
    pending.abort()
    assert store.temp_files() == []
    assert not store.exists(DIGEST)


def test_commit_of_an_existing_blob_is_idempotent(store: FilesystemStore) -> None:
    _put(store)
    _put(store)
    assert store.size(DIGEST) == len(DATA)
    assert store.temp_files() == []


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, None), (0, 1), (READ_CHUNK_BYTES - 3, READ_CHUNK_BYTES + 5), (len(DATA) - 1, None), (10, 10)],
    ids=["whole", "first-byte", "across-chunks", "last-byte", "empty"],
)
def test_open_range_returns_exact_bytes(store: FilesystemStore, start: int, end: int | None) -> None:
    _put(store)
    chunks = list(store.open_range(DIGEST, start, end))
    assert all(len(c) <= READ_CHUNK_BYTES for c in chunks)
    assert b"".join(chunks) == DATA[start:end]


def test_range_past_the_end_is_refused(store: FilesystemStore) -> None:
    _put(store)
    with pytest.raises(InputError):
        store.open_range(DIGEST, len(DATA) + 1)


def test_missing_blob_is_not_found(store: FilesystemStore) -> None:
    with pytest.raises(NotFoundError):
        store.size(DIGEST)
    with pytest.raises(NotFoundError):
        store.open_range(DIGEST)


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", DIGEST.upper(), DIGEST[:-1], DIGEST + "0", "", "g" * 64, "../" + DIGEST[3:]],
    ids=["traversal", "upper-case", "short", "long", "empty", "not-hex", "traversal-64"],
)
def test_hostile_keys_are_refused(store: FilesystemStore, key: str) -> None:
    with pytest.raises(InputError):
        store.exists(key)
    pending = store.begin()
    pending.write(b"x")
    with pytest.raises(InputError):
        pending.commit(key)
    pending.abort()
    assert store.temp_files() == []


def test_delete_removes_the_blob(store: FilesystemStore) -> None:
    _put(store)
    store.delete(DIGEST)
    assert not store.exists(DIGEST)
    store.delete(DIGEST)  # deleting twice is fine


def test_garbage_collection_removes_only_old_temp_files(store: FilesystemStore) -> None:
    store.begin().write(b"abandoned by a crashed upload")
    (old_path,) = store.temp_files()
    past = time.time() - 3600
    os.utime(old_path, (past, past))
    fresh = store.begin()
    fresh.write(b"still streaming")
    assert store.collect_garbage(older_than_s=600) == 1
    assert len(store.temp_files()) == 1
    fresh.abort()


def test_open_store_picks_the_filesystem_for_a_path(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "d"), FilesystemStore)
    with pytest.raises(InputError):
        open_store("ftp://example.com/x")
