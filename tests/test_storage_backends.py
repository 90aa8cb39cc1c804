"""The blob-store contract, run unchanged against every backend: the filesystem store and S3Store on a real
S3 server (moto over loopback). Backend-specific checks (S3 key layout, multipart copy) follow at the end."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lorareg.errors import InputError, NotFoundError, StorageError, UnprocessableError
from lorareg.registry.blobs import BlobStore, FilesystemStore, open_store, s3
from lorareg.registry.blobs.s3 import MIN_PART_BYTES, S3Store, open_s3_store
from tests.fixtures.services import S3Bucket

MIB = 2**20
CHUNK_BYTES = 1 * MIB  # what the server writes per call
SMALL = b"safetensors-ish bytes " * 100
# Over two parts at S3's minimum part size, so the S3 backend takes the multipart path.
LARGE = os.urandom(2 * MIN_PART_BYTES + 12345)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["filesystem", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "filesystem":
        return FilesystemStore(tmp_path / "store")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return S3Store(
        bucket=bucket.name, prefix="team/prod", endpoint_url=bucket.endpoint_url, part_bytes=MIN_PART_BYTES
    )


def _leftovers(store: BlobStore) -> list[str]:
    """Everything an upload in progress keeps on the backend (temp files; multipart uploads, temp objects)."""
    if isinstance(store, FilesystemStore):
        return [p.name for p in store.temp_files()]
    assert isinstance(store, S3Store)
    client, bucket, prefix = store.client, store.bucket, store.uploads_prefix
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
    objects = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return [u["Key"] for u in uploads] + [o["Key"] for o in objects]


def _put(store: BlobStore, data: bytes) -> str:
    pending = store.begin()
    for offset in range(0, len(data), CHUNK_BYTES):
        pending.write(data[offset : offset + CHUNK_BYTES])
    digest = _digest(data)
    pending.commit(digest)
    return digest


def _read(chunks: Iterator[bytes]) -> bytes:
    return b"".join(chunks)


def _plant(store: BlobStore, tail: str, data: bytes = b"not a blob") -> None:
    """Write ``data`` at ``blobs/sha256/<tail>`` behind the store's back (a stray file, a foreign tool)."""
    if isinstance(store, FilesystemStore):
        path = store.root / "blobs" / "sha256" / tail
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    assert isinstance(store, S3Store)
    store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}blobs/sha256/{tail}", Body=data)


@pytest.mark.parametrize("data", [b"", SMALL, LARGE], ids=["empty", "small", "multipart-sized"])
def test_blob_round_trips(store: BlobStore, data: bytes) -> None:
    digest = _put(store, data)
    assert store.exists(digest)
    assert store.size(digest) == len(data)
    assert _read(store.open_range(digest)) == data
    assert _leftovers(store) == []


RANGES = [
    pytest.param(0, None, id="whole"),
    pytest.param(0, 1, id="first-byte"),
    pytest.param(5, 10, id="middle"),
    pytest.param(MIN_PART_BYTES - 3, MIN_PART_BYTES + 3, id="across-part-boundary"),
    pytest.param(len(LARGE) - 7, None, id="suffix"),
    pytest.param(0, len(LARGE) + 100, id="end-past-size-is-clamped"),
    pytest.param(len(LARGE), None, id="start-at-size-is-empty"),
    pytest.param(42, 42, id="empty-range"),
]


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_ranges_return_exactly_the_slice(store: BlobStore, start: int, end: int | None) -> None:
    digest = _put(store, LARGE)
    assert _read(store.open_range(digest, start, end)) == LARGE[start:end]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(-1, None, id="negative-start"),
        pytest.param(10, 5, id="end-before-start"),
        pytest.param(len(SMALL) + 1, None, id="start-past-size"),
    ],
)
def test_bad_ranges_are_refused(store: BlobStore, start: int, end: int | None) -> None:
    digest = _put(store, SMALL)
    with pytest.raises(InputError, match="bad range"):
        _read(store.open_range(digest, start, end))


def test_missing_blob_is_not_found_before_any_byte_is_streamed(store: BlobStore) -> None:
    absent = _digest(b"never stored")
    assert not store.exists(absent)
    with pytest.raises(NotFoundError):
        store.size(absent)
    with pytest.raises(NotFoundError):
        store.open_range(absent)  # raised by the call itself, before iteration starts


def test_no_partial_blob_is_visible_before_commit(store: BlobStore) -> None:
    digest = _digest(LARGE)
    pending = store.begin()
    for offset in range(0, len(LARGE) - 1, CHUNK_BYTES):
        pending.write(LARGE[offset : min(offset + CHUNK_BYTES, len(LARGE) - 1)])
    assert not store.exists(digest)
    with pytest.raises(NotFoundError):
        store.size(digest)
    pending.write(LARGE[-1:])
    pending.commit(digest)
    assert store.size(digest) == len(LARGE)


@pytest.mark.parametrize("data", [SMALL, LARGE], ids=["small", "multipart-sized"])
def test_abort_leaves_nothing_behind(store: BlobStore, data: bytes) -> None:
    pending = store.begin()
    pending.write(data)
    pending.abort()
    pending.abort()  # a second abort (e.g. in a finally after an error) is harmless
    assert not store.exists(_digest(data))
    assert _leftovers(store) == []


def test_writing_after_commit_is_refused(store: BlobStore) -> None:
    pending = store.begin()
    pending.write(SMALL)
    pending.commit(_digest(SMALL))
    with pytest.raises(StorageError, match="already committed or aborted"):
        pending.write(b"more")


@pytest.mark.parametrize("data", [SMALL, LARGE], ids=["small", "multipart-sized"])
def test_commit_of_an_existing_blob_is_idempotent(store: BlobStore, data: bytes) -> None:
    first = _put(store, data)
    second = _put(store, data)  # the same adapter published under another name
    assert first == second
    assert _read(store.open_range(first)) == data
    assert _leftovers(store) == []


def test_delete_removes_the_blob_and_tolerates_absence(store: BlobStore) -> None:
    digest = _put(store, SMALL)
    store.delete(digest)
    store.delete(digest)
    assert not store.exists(digest)


def test_garbage_collection_removes_only_stale_uploads(store: BlobStore) -> None:
    kept = _put(store, SMALL)
    abandoned = store.begin()  # a client that vanished mid-upload
    abandoned.write(LARGE[: MIN_PART_BYTES + 1])
    assert _leftovers(store) != []
    assert store.collect_garbage(older_than_s=3600) == 0  # too young: could still be in progress
    assert store.collect_garbage(older_than_s=0) >= 1
    assert _leftovers(store) == []
    assert store.exists(kept)


def test_iter_blobs_lists_committed_blobs_older_than_the_grace_only(store: BlobStore) -> None:
    small, large = _put(store, SMALL), _put(store, LARGE)
    in_flight = store.begin()  # never listed: not under a content address yet
    in_flight.write(LARGE[: MIN_PART_BYTES + 1])
    assert list(store.iter_blobs(older_than_s=3600)) == []  # too young: its row may be about to commit
    assert sorted(store.iter_blobs(older_than_s=0)) == sorted([small, large])
    in_flight.abort()


def test_deleting_while_iterating_misses_no_blob(store: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "LIST_PAGE_KEYS", 2)  # several pages from a few blobs
    stored = {_put(store, SMALL + bytes([i])) for i in range(7)}
    seen = []
    for digest in store.iter_blobs(older_than_s=0):
        store.delete(digest)
        seen.append(digest)
    assert sorted(seen) == sorted(stored)
    assert list(store.iter_blobs(older_than_s=0)) == []


_PLANTED = _digest(b"planted")
_OTHER_SHARD = "00" if _PLANTED[:2] != "00" else "11"
NOT_BLOB_NAMES = [
    pytest.param(f"{_PLANTED[:2]}/notes.txt", id="stray-file-in-shard"),
    pytest.param(f"{_OTHER_SHARD}/{_PLANTED}", id="digest-in-wrong-shard"),
    pytest.param(f"{_PLANTED[:2].upper()}/{_PLANTED.upper()}", id="upper-case-hex"),
    pytest.param(f"{_PLANTED[:2]}/{_PLANTED}.part", id="temp-suffix"),
    pytest.param(f"{_PLANTED[:2]}/{_PLANTED} ", id="trailing-space"),
    pytest.param(f"{_PLANTED[:2]}/{_PLANTED[:63]}", id="too-short"),
    pytest.param(_PLANTED, id="outside-any-shard"),
    pytest.param(f"{_PLANTED[:2]}/{_PLANTED}/{_PLANTED}", id="nested-below-a-digest"),
    pytest.param(f"{_PLANTED[:3]}/{_PLANTED}", id="three-char-shard"),
]


@pytest.mark.parametrize("tail", NOT_BLOB_NAMES)
def test_iter_blobs_never_yields_a_name_that_is_not_a_blob(store: BlobStore, tail: str) -> None:
    """The caller deletes what it is given: anything but ``ab/<ab…>`` must not come out."""
    kept = _put(store, SMALL)
    _plant(store, tail)
    assert list(store.iter_blobs(older_than_s=0)) == [kept]


HOSTILE_DIGESTS = [
    pytest.param("../../../../etc/passwd", id="dot-dot-traversal"),
    pytest.param("ab/../../" + "0" * 55, id="traversal-inside-64-chars"),
    pytest.param("/" + "a" * 63, id="absolute"),
    pytest.param("A" * 64, id="upper-case-hex"),
    pytest.param("a" * 63, id="too-short"),
    pytest.param("a" * 65, id="too-long"),
    pytest.param("a" * 63 + "\x00", id="nul-byte"),
    pytest.param("a" * 63 + "\n", id="trailing-newline"),
    pytest.param("a" * 64 + "\n", id="trailing-newline-after-64"),
    pytest.param("g" * 64, id="not-hex"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("digest", HOSTILE_DIGESTS)
def test_hostile_digest_is_refused_as_a_key(store: BlobStore, digest: str) -> None:
    for call in (store.exists, store.size, store.open_range, store.delete):
        with pytest.raises(InputError, match="bad sha256"):
            call(digest)
    pending = store.begin()
    pending.write(SMALL)
    with pytest.raises(InputError, match="bad sha256"):
        pending.commit(digest)
    pending.abort()
    assert _leftovers(store) == []


# --- S3-specific -------------------------------------------------------------------------------------------


@pytest.fixture
def s3_store(s3_bucket: S3Bucket) -> S3Store:
    return S3Store(
        bucket=s3_bucket.name, prefix="p", endpoint_url=s3_bucket.endpoint_url, part_bytes=MIN_PART_BYTES
    )


def test_s3_blob_lies_under_its_content_address(s3_store: S3Store) -> None:
    digest = _put(s3_store, SMALL)
    key = f"p/blobs/sha256/{digest[:2]}/{digest}"
    assert s3_store.key_of(digest) == key
    assert s3_store.client.get_object(Bucket=s3_store.bucket, Key=key)["Body"].read() == SMALL


@pytest.mark.parametrize("data", [SMALL, LARGE], ids=["small", "multipart-sized"])
def test_s3_commit_with_a_wrong_digest_stores_nothing(s3_store: S3Store, data: bytes) -> None:
    pending = s3_store.begin()
    pending.write(data)
    wrong = _digest(data + b"x")
    with pytest.raises(UnprocessableError, match="digest mismatch"):
        pending.commit(wrong)
    assert not s3_store.exists(wrong)
    assert not s3_store.exists(_digest(data))
    assert _leftovers(s3_store) == []


def test_s3_multipart_copy_is_used_above_the_copy_threshold(s3_bucket: S3Bucket) -> None:
    store = S3Store(
        bucket=s3_bucket.name,
        endpoint_url=s3_bucket.endpoint_url,
        part_bytes=MIN_PART_BYTES,
        copy_threshold_bytes=MIN_PART_BYTES,  # stands in for S3's 5 GiB CopyObject limit
    )
    digest = _put(store, LARGE)
    head = store.client.head_object(Bucket=store.bucket, Key=store.key_of(digest))
    assert head["ETag"].strip('"').endswith("-3")  # three copied parts
    assert _read(store.open_range(digest)) == LARGE
    assert _leftovers(store) == []


def test_s3_upload_memory_stays_below_one_part(s3_store: S3Store) -> None:
    pending = s3_store.begin()
    high_water = 0
    for offset in range(0, len(LARGE), CHUNK_BYTES):
        pending.write(LARGE[offset : offset + CHUNK_BYTES])
        high_water = max(high_water, pending.buffered_bytes)
    pending.abort()
    assert high_water < MIN_PART_BYTES


def test_s3_iter_blobs_never_lists_a_sibling_prefix(s3_store: S3Store) -> None:
    sibling = S3Store(
        bucket=s3_store.bucket, prefix="p-other", endpoint_url=s3_store.client.meta.endpoint_url
    )
    theirs, ours = _put(sibling, SMALL), _put(s3_store, LARGE[:100])
    assert list(s3_store.iter_blobs(older_than_s=0)) == [ours]
    assert list(sibling.iter_blobs(older_than_s=0)) == [theirs]


def test_s3_listing_failure_is_a_one_line_storage_error(s3_bucket: S3Bucket) -> None:
    store = S3Store(bucket="lorareg-no-such-bucket", endpoint_url=s3_bucket.endpoint_url)
    with pytest.raises(
        StorageError, match=r"S3 ListObjectsV2 of s3://lorareg-no-such-bucket/.* NoSuchBucket"
    ):
        list(store.iter_blobs(older_than_s=0))


def test_filesystem_iter_blobs_skips_a_digest_with_a_trailing_newline(tmp_path: Path) -> None:
    """``$`` matches before a final newline; the name must be exactly 64 hex (S3 servers refuse such keys)."""
    store = FilesystemStore(tmp_path / "store")
    _plant(store, f"{_PLANTED[:2]}/{_PLANTED}\n")
    assert list(store.iter_blobs(older_than_s=0)) == []


def test_filesystem_blob_age_counts_from_its_latest_commit(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "store")
    digest = _put(store, SMALL)
    old = time.time() - 7200
    os.utime(store.path_of(digest), (old, old))
    assert list(store.iter_blobs(older_than_s=3600)) == [digest]  # an orphan of a crash two hours ago
    _put(store, SMALL)  # uploaded again: the registry is about to write its row
    assert list(store.iter_blobs(older_than_s=3600)) == []


def test_s3_gc_deletes_a_temp_object_left_by_a_crash_after_complete(s3_store: S3Store) -> None:
    s3_store.client.put_object(Bucket=s3_store.bucket, Key=s3_store.uploads_prefix + "crashed", Body=b"x")
    assert s3_store.collect_garbage(older_than_s=0) == 1
    assert _leftovers(s3_store) == []


@pytest.mark.parametrize(
    "prefix",
    [
        pytest.param("../other-tenant", id="dot-dot"),
        pytest.param("a/../../b", id="dot-dot-inside"),
        pytest.param("a//b", id="empty-segment"),
        pytest.param("./a", id="dot"),
        pytest.param("a/\x00b", id="nul-byte"),
        pytest.param("a\\..\\b", id="backslash"),
    ],
)
def test_s3_hostile_prefix_is_refused(s3_bucket: S3Bucket, prefix: str) -> None:
    with pytest.raises(InputError, match="bad S3 key prefix"):
        S3Store(bucket=s3_bucket.name, prefix=prefix, endpoint_url=s3_bucket.endpoint_url)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("s3://", id="no-bucket"),
        pytest.param("s3://UPPER/x", id="upper-case-bucket"),
        pytest.param("s3://user:pw@bucket/x", id="credentials-in-url"),
        pytest.param("s3://bucket/x?versionId=1", id="query"),
        pytest.param("s3://bucket:9000/x", id="port"),
        pytest.param("s3://b/x", id="bucket-too-short"),
    ],
)
def test_bad_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(InputError):
        open_s3_store(url)


def test_storage_url_selects_the_s3_store(s3_bucket: S3Bucket) -> None:
    store = open_s3_store(s3_bucket.url("a/b/"), endpoint_url=s3_bucket.endpoint_url)
    assert (store.bucket, store.prefix) == (s3_bucket.name, "a/b/")
    assert _read(store.open_range(_put(store, SMALL))) == SMALL


def test_open_store_dispatches_s3_urls(s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_bucket.endpoint_url)  # boto3's own endpoint variable
    store: Any = open_store(s3_bucket.url("x"))
    assert isinstance(store, S3Store)
    assert store.exists(_put(store, SMALL))


def test_s3_failure_is_a_one_line_storage_error(s3_bucket: S3Bucket) -> None:
    store = S3Store(bucket="lorareg-no-such-bucket", endpoint_url=s3_bucket.endpoint_url)
    pending = store.begin()
    pending.write(SMALL)
    with pytest.raises(
        StorageError, match=r"S3 PutObject of s3://lorareg-no-such-bucket/.* failed: NoSuchBucket"
    ):
        pending.commit(_digest(SMALL))
