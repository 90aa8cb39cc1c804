"""S3-compatible blob store: the ``BlobStore`` / ``PendingBlob`` protocols of ``registry/blobs/protocol.py``.

Any S3-compatible service works (AWS S3, MinIO, Ceph RGW, R2): only core S3 calls are used. Keys::

    <prefix>/blobs/sha256/ab/<hex>     a blob, under its content address only
    <prefix>/uploads/<ms>-<uuid>       an upload in progress (a multipart upload, then briefly an object)

How nothing partial ever appears under a content address:

* The pending blob hashes what it is given and ``commit(sha256)`` refuses a digest that differs, so the store
  never publishes bytes under the wrong address, even if a caller forgot to check (the contract says the
  caller checks; this costs one SHA-256 pass and removes a whole class of bug).
* An upload that fits in one part (``part_bytes``, 8 MiB by default) is held in memory and written with one
  ``PutObject`` directly at its content address at commit, after that digest check. A PUT is atomic in S3.
* A larger upload is a multipart upload under ``uploads/<ms>-<uuid>`` (the start time, for garbage
  collection), started when the first part is full. Its key is fixed when it starts, before the digest is
  known, so commit completes it at the temporary key, copies it server-side to the content address
  (``CopyObject`` up to 5 GiB, a multipart copy beyond) and deletes the temporary object. Memory stays at
  about one part whatever the size.
* Commit is idempotent: if the address exists already (same digest, same bytes) the upload is dropped.
* ``collect_garbage`` aborts multipart uploads and deletes temporary objects older than a threshold: what a
  crash between "complete" and "delete" or a vanished client leaves behind.
* ``iter_blobs`` lists the content addresses (``ListObjectsV2``, paginated) whose ``LastModified`` is older
  than a threshold, so the registry can collect an object whose database row never committed.

Credentials come from the standard AWS chain (environment, shared files, instance or web-identity roles);
the endpoint is an argument (``LORAREG_S3_ENDPOINT``, read by ``server/config.py``), else boto3's own
``AWS_ENDPOINT_URL_S3``, else AWS. boto3 (the ``s3`` extra) is imported only when a store is created.

Deliberately not here: creating or configuring the bucket (versioning, lifecycle rules, encryption are
deployment choices, see ``docs/deployment.md``), and parallel part uploads (one stream per request is what
the server feeds it).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from lorareg.errors import InputError, NotFoundError, PayloadTooLargeError, StorageError, UnprocessableError
from lorareg.registry.blobs.protocol import check_sha256

MIB = 2**20
GIB = 2**30
MIN_PART_BYTES = 5 * MIB  # S3's minimum size of every part but the last
DEFAULT_PART_BYTES = 8 * MIB  # memory held per upload; 10,000 parts of 8 MiB = 78 GiB maximum blob
MAX_PARTS = 10_000  # S3's limit on parts per multipart upload
MAX_COPY_OBJECT_BYTES = 5 * GIB  # S3's limit for a single CopyObject; larger objects need a multipart copy
COPY_PART_BYTES = 512 * MIB  # range per UploadPartCopy in a multipart copy
READ_CHUNK_BYTES = 1 * MIB  # open_range yields chunks of at most this size
LIST_PAGE_KEYS = 1000  # keys per ListObjectsV2 request in iter_blobs (S3's maximum; tests lower it)
_BUCKET_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-")
_MAX_BUCKET_NAME = 63
_MIN_BUCKET_NAME = 3
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


class S3Store:
    """Blobs in one bucket under an optional key prefix.

    Args:
        bucket: the bucket name (it must exist; the store does not create it).
        prefix: a key prefix such as ``lorareg/prod``; ``..``, ``.`` and empty segments are refused.
        endpoint_url: the S3 endpoint (MinIO, Ceph, R2...); ``None`` for AWS or ``AWS_ENDPOINT_URL_S3``.
        part_bytes: multipart part size, at least 5 MiB; bounds the memory of one upload.
        copy_threshold_bytes: objects larger than this are copied with a multipart copy (tests lower it).

    Raises:
        InputError: a bad bucket name or prefix, or boto3 is not installed.
    """

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        part_bytes: int = DEFAULT_PART_BYTES,
        copy_threshold_bytes: int = MAX_COPY_OBJECT_BYTES,
    ) -> None:
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"part_bytes must be at least {MIN_PART_BYTES} (S3's minimum); got {part_bytes}")
        self.bucket = _check_bucket(bucket)
        self.prefix = _check_prefix(prefix)
        self.part_bytes = part_bytes
        self.copy_threshold_bytes = min(copy_threshold_bytes, MAX_COPY_OBJECT_BYTES)
        self.client: Any = _make_client(endpoint_url)

    def key_of(self, sha256: str) -> str:
        """The object key of a blob (validated digest; whether it exists is not checked)."""
        check_sha256(sha256)
        return f"{self.prefix}blobs/sha256/{sha256[:2]}/{sha256}"

    @property
    def uploads_prefix(self) -> str:
        return f"{self.prefix}uploads/"

    def begin(self) -> _S3PendingBlob:
        return _S3PendingBlob(self)

    def exists(self, sha256: str) -> bool:
        return self._head(self.key_of(sha256)) is not None

    def size(self, sha256: str) -> int:
        head = self._head(self.key_of(sha256))
        if head is None:
            raise NotFoundError(f"blob sha256:{sha256} is not stored")
        return int(head["ContentLength"])

    def open_range(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes ``start`` to ``end`` (exclusive; None = to the end) streamed from one ranged GET.

        The request is made before the first chunk is asked for, so a missing blob raises here, not midway.

        Raises:
            NotFoundError: no such blob.
            InputError: ``start`` is negative or past ``end`` or past the blob's size.
        """
        key = self.key_of(sha256)
        if start < 0 or (end is not None and end < start):
            raise InputError(f"bad range {start}-{end}: expected 0 <= start <= end")
        if end == start:
            self.size(sha256)  # a missing blob is still an error, even for an empty range
            return iter(())
        byte_range = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=key, Range=byte_range)
        except Exception as e:
            if _error_code(e) in _NOT_FOUND_CODES:
                raise NotFoundError(f"blob sha256:{sha256} is not stored") from e
            if _error_code(e) in {"416", "InvalidRange"}:
                return self._empty_or_bad_range(sha256, start, end)
            if _is_boto_error(e):
                raise StorageError(f"S3 GetObject of s3://{self.bucket}/{key} failed: {_describe(e)}") from e
            raise
        return _stream_body(answer["Body"], f"s3://{self.bucket}/{key}")

    def presigned_url(self, sha256: str, *, expires_s: int) -> str:
        """A time-limited GET URL for the blob, so the client fetches the bytes from the store itself.

        Signing is local (no request to the store); ``Range`` headers still apply to the URL.
        """
        try:
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.key_of(sha256)}, ExpiresIn=expires_s
            )
        except Exception as e:  # noqa: BLE001 - botocore raises several unrelated types; one line for all
            raise StorageError(f"cannot presign sha256:{sha256}: {type(e).__name__}: {e}") from e
        return str(url)

    def delete(self, sha256: str) -> None:
        """Remove a blob; an absent blob is not an error (as in S3 and the filesystem store)."""
        key = self.key_of(sha256)
        with self._call("DeleteObject", key):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def collect_garbage(self, older_than_s: float) -> int:
        """Abort multipart uploads and delete temporary objects started over ``older_than_s`` seconds ago.

        Timestamps are the server's; keep ``older_than_s`` well above the longest upload plus clock skew.

        Returns:
            How many uploads and objects were removed.
        """
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        return self._abort_stale_uploads(cutoff) + self._delete_stale_temp_objects(cutoff)

    def iter_blobs(self, older_than_s: float) -> Iterator[str]:
        """Digests of objects under ``<prefix>/blobs/sha256/`` last written over ``older_than_s`` seconds ago.

        Pages are fetched as the caller iterates (``LIST_PAGE_KEYS`` each); a page continues after the last
        key of the one before, so deleting what was yielded neither skips nor repeats a blob.
        A key that is not exactly ``ab/<ab…64 hex>`` is skipped, never yielded. Timestamps are the
        server's, as in :meth:`collect_garbage`.

        Raises:
            StorageError: listing the bucket failed.
        """
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        prefix = f"{self.prefix}blobs/sha256/"
        for obj in self._list_objects(prefix, page_keys=LIST_PAGE_KEYS):
            sha256 = _blob_digest(obj["Key"][len(prefix) :])
            if sha256 is not None and obj["LastModified"] < cutoff:
                yield sha256

    # --- used by _S3PendingBlob ---

    def _put(self, key: str, body: bytes) -> None:
        with self._call("PutObject", key):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def _copy(self, source_key: str, target_key: str, size: int) -> None:
        """Server-side copy; multipart above ``copy_threshold_bytes`` (S3 refuses single copies > 5 GiB)."""
        source = {"Bucket": self.bucket, "Key": source_key}
        if size <= self.copy_threshold_bytes:
            with self._call("CopyObject", target_key):
                self.client.copy_object(Bucket=self.bucket, Key=target_key, CopySource=source)
            return
        with self._call("CreateMultipartUpload", target_key):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=target_key)["UploadId"]
        try:
            parts = self._copy_parts(source, target_key, upload_id, size)
            with self._call("CompleteMultipartUpload", target_key):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=target_key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            self._abort_quietly(target_key, upload_id)
            raise

    def _copy_parts(
        self, source: dict[str, str], key: str, upload_id: str, size: int
    ) -> list[dict[str, Any]]:
        part_bytes = max(MIN_PART_BYTES, min(COPY_PART_BYTES, self.copy_threshold_bytes))
        parts = []
        for number, first in enumerate(range(0, size, part_bytes), start=1):
            last = min(first + part_bytes, size) - 1
            with self._call("UploadPartCopy", key):
                answer = self.client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={first}-{last}",
                )
            parts.append({"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number})
        return parts

    def _delete_quietly(self, key: str) -> None:
        """Best effort: a leftover temporary object is collected later by ``collect_garbage``."""
        with contextlib.suppress(Exception):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    @contextlib.contextmanager
    def _call(self, action: str, key: str) -> Iterator[None]:
        """Convert boto errors to one-line ``StorageError`` naming the call and the object."""
        try:
            yield
        except Exception as e:
            if _is_boto_error(e):
                raise StorageError(f"S3 {action} of s3://{self.bucket}/{key} failed: {_describe(e)}") from e
            raise

    # --- private helpers ---

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.head_object(Bucket=self.bucket, Key=key))
        except Exception as e:
            if _error_code(e) in _NOT_FOUND_CODES:
                return None
            if _is_boto_error(e):
                raise StorageError(f"S3 HeadObject of s3://{self.bucket}/{key} failed: {_describe(e)}") from e
            raise

    def _empty_or_bad_range(self, sha256: str, start: int, end: int | None) -> Iterator[bytes]:
        """S3 answers 416 for a range starting at the end; the filesystem store yields nothing there."""
        size = self.size(sha256)
        if start == size:
            return iter(())
        raise InputError(f"bad range {start}-{end} for a blob of {size} bytes")

    def _list_objects(self, prefix: str, *, page_keys: int) -> Iterator[dict[str, Any]]:
        """Every object under ``prefix``, one page per request; errors become ``StorageError``."""
        paginator = self.client.get_paginator("list_objects_v2")
        config = {"PageSize": page_keys}
        pages = iter(paginator.paginate(Bucket=self.bucket, Prefix=prefix, PaginationConfig=config))
        while True:
            with self._call("ListObjectsV2", prefix):
                page = next(pages, None)
            if page is None:
                return
            yield from page.get("Contents", [])

    def _abort_stale_uploads(self, cutoff: datetime) -> int:
        aborted = 0
        with self._call("ListMultipartUploads", self.uploads_prefix):
            pages = self.client.get_paginator("list_multipart_uploads")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.uploads_prefix):
                for upload in page.get("Uploads", []):
                    if _started(upload["Key"], upload["Initiated"]) < cutoff:
                        self._abort_quietly(upload["Key"], upload["UploadId"])
                        aborted += 1
        return aborted

    def _delete_stale_temp_objects(self, cutoff: datetime) -> int:
        deleted = 0
        with self._call("ListObjectsV2", self.uploads_prefix):
            pages = self.client.get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self.uploads_prefix):
                for obj in page.get("Contents", []):
                    if _started(obj["Key"], obj["LastModified"]) < cutoff:
                        self._delete_quietly(obj["Key"])
                        deleted += 1
        return deleted


class _S3PendingBlob:
    """Bytes on their way into the bucket: a buffer of at most one part, then a multipart upload."""

    def __init__(self, store: S3Store) -> None:
        self._store = store
        self._key = f"{store.uploads_prefix}{time.time_ns() // 1_000_000}-{uuid.uuid4().hex}"
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._open = True

    @property
    def buffered_bytes(self) -> int:
        """Bytes held in memory now: below one part after every ``write``."""
        return len(self._buffer)

    def write(self, chunk: bytes) -> None:
        """Buffer ``chunk``; upload every full part at once so memory stays at about one part."""
        self._check_open("write to")
        self._hash.update(chunk)
        self._size += len(chunk)
        self._buffer += chunk
        try:
            while len(self._buffer) >= self._store.part_bytes:
                self._upload_part(bytes(self._buffer[: self._store.part_bytes]))
                del self._buffer[: self._store.part_bytes]
        except BaseException:
            self.abort()
            raise

    def commit(self, sha256: str) -> None:
        """Publish the bytes under ``sha256`` (see the module docstring for how); idempotent.

        Raises:
            UnprocessableError: the bytes written do not have this digest (nothing is stored).
            StorageError: the object store failed (the upload is aborted).
        """
        target = self._store.key_of(sha256)
        self._check_open("commit")
        self._open = False
        try:
            self._check_digest(sha256)
            if self._store.exists(sha256):
                self._discard()
            elif self._upload_id is None:
                self._store._put(target, bytes(self._buffer))
            else:
                self._complete_and_copy(target)
        except BaseException:
            self._discard()
            raise
        finally:
            self._buffer = bytearray()

    def abort(self) -> None:
        """Drop the upload; nothing of it stays in the bucket. Safe to call twice or after a failure."""
        self._open = False
        self._discard()

    def _check_open(self, action: str) -> None:
        if not self._open:
            raise StorageError(f"{action} a pending blob that was already committed or aborted")

    def _check_digest(self, sha256: str) -> None:
        actual = self._hash.hexdigest()
        if actual != sha256:
            raise UnprocessableError(f"digest mismatch: the upload has sha256 {actual}, commit says {sha256}")

    def _upload_part(self, body: bytes) -> None:
        store = self._store
        if self._upload_id is None:
            with store._call("CreateMultipartUpload", self._key):
                answer = store.client.create_multipart_upload(Bucket=store.bucket, Key=self._key)
            self._upload_id = str(answer["UploadId"])
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            limit = MAX_PARTS * store.part_bytes
            raise PayloadTooLargeError(f"upload is over {limit} bytes, the most {MAX_PARTS} parts can hold")
        with store._call("UploadPart", self._key):
            answer = store.client.upload_part(
                Bucket=store.bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
            )
        self._parts.append({"ETag": answer["ETag"], "PartNumber": number})

    def _complete_and_copy(self, target: str) -> None:
        if self._buffer:
            self._upload_part(bytes(self._buffer))
        store = self._store
        with store._call("CompleteMultipartUpload", self._key):
            store.client.complete_multipart_upload(
                Bucket=store.bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._upload_id = None  # completed: from here on the leftover is an object, not an upload
        try:
            store._copy(self._key, target, self._size)
        finally:
            store._delete_quietly(self._key)

    def _discard(self) -> None:
        if self._upload_id is not None:
            self._store._abort_quietly(self._key, self._upload_id)
            self._upload_id = None
        self._buffer = bytearray()


def open_s3_store(url: str, *, endpoint_url: str | None = None) -> S3Store:
    """A store from ``s3://bucket[/prefix]`` (the ``LORAREG_STORAGE`` form).

    Raises:
        InputError: not an ``s3://`` URL, a bad bucket name or prefix, or boto3 is not installed.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise InputError(f"bad storage URL {url!r}: expected s3://bucket/prefix")
    return S3Store(bucket=parts.netloc, prefix=parts.path, endpoint_url=endpoint_url)


def _check_bucket(bucket: str) -> str:
    ok = _MIN_BUCKET_NAME <= len(bucket) <= _MAX_BUCKET_NAME and set(bucket) <= _BUCKET_CHARS
    if not ok or not (bucket[0].isalnum() and bucket[-1].isalnum()) or ".." in bucket:
        raise InputError(
            f"bad S3 bucket name {bucket[:80]!r}: expected 3-63 of a-z 0-9 . - (S3 naming rules)"
        )
    return bucket


def _check_prefix(prefix: str) -> str:
    """Normalise to ``""`` or ``"a/b/"``; refuse anything that could alias or escape another prefix."""
    inner = prefix.strip("/")
    if not inner:
        return ""
    segments = inner.split("/")
    bad = [s for s in segments if s in {"", ".", ".."} or not s.isprintable() or "\\" in s]
    if bad:
        raise InputError(f"bad S3 key prefix {prefix[:200]!r}: segments like {bad[0]!r} are not allowed")
    return inner + "/"


def _make_client(endpoint_url: str | None) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as e:
        raise InputError("S3 storage needs boto3: pip install 'lorareg[s3]'") from e
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        # Most self-hosted S3 servers (MinIO, Ceph) are reached by path; AWS prefers virtual hosts.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def _stream_body(body: Any, where: str) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(READ_CHUNK_BYTES)
    except Exception as e:
        if _is_boto_error(e) or isinstance(e, OSError):
            raise StorageError(f"reading {where} failed midway: {_describe(e)}") from e
        raise
    finally:
        body.close()


def _started(key: str, server_time: datetime) -> datetime:
    """When an upload began: the later of the server's timestamp and the one in its key.

    The later one, so a server that reports odd times (moto reports every upload as initiated in 2010)
    cannot get an upload in progress collected.
    """
    millis = key.rsplit("/", 1)[-1].split("-", 1)[0]
    if not millis.isdigit():
        return server_time
    return max(server_time, datetime.fromtimestamp(int(millis) / 1000, UTC))


def _blob_digest(rest: str) -> str | None:
    """The digest in a key's ``ab/<hex>`` tail, or None if the tail is anything else."""
    shard, _, name = rest.partition("/")
    try:
        check_sha256(name)
    except InputError:
        return None
    return name if shard == name[:2] else None


def _is_boto_error(e: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(e, BotoCoreError | ClientError)


def _error_code(e: BaseException) -> str:
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return ""
    return str(response.get("Error", {}).get("Code", ""))


def _describe(e: BaseException) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    return str(e) or type(e).__name__
