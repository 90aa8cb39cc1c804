"""Content-addressed blob storage: the ``BlobStore`` interface and the filesystem store.

A blob is only ever visible under its SHA-256, and only once complete: writes go to a temp file in ``tmp/``
(same filesystem), are fsynced, then renamed to ``blobs/sha256/ab/<hex>`` and the directory fsynced. The key
is always a validated 64-hex digest, never a user-supplied name, so no path can escape the root. The caller
(the registry service) checks the digest before :meth:`PendingBlob.commit`; the store does not hash.

``iter_blobs`` lists committed blobs older than a grace period, so the registry can collect an object whose
``blobs`` row never committed (a crash between the two). Only names that are exactly a blob's are listed,
because the caller deletes what it is given.

The protocols live in ``protocol.py``; the S3 backend in ``s3.py`` implements the same two.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lorareg.errors import InputError, NotFoundError, StorageError
from lorareg.registry.blobs.protocol import check_sha256

READ_CHUNK_BYTES = 1 * 2**20  # open_range yields chunks of at most 1 MiB
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_SHARD_RE = re.compile(r"^[0-9a-f]{2}$")
_TMP_SUFFIX = ".part"


class FilesystemStore:
    """Blobs under ``root/blobs/sha256/ab/<hex>``, temp files under ``root/tmp``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._blobs = self.root / "blobs" / "sha256"
        self._tmp = self.root / "tmp"
        try:
            self._blobs.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create blob store at {self.root}: {e}") from e

    def path_of(self, sha256: str) -> Path:
        """The final path of a blob (validated digest; whether it exists is not checked)."""
        check_sha256(sha256)
        return self._blobs / sha256[:2] / sha256

    def begin(self) -> _FilePendingBlob:
        return _FilePendingBlob(self)

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self.path_of(sha256).stat().st_size
        except FileNotFoundError as e:
            raise NotFoundError(f"blob sha256:{sha256} is not stored") from e

    def open_range(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield bytes ``start`` to ``end`` (exclusive; None = to the end) in chunks of READ_CHUNK_BYTES.

        The file is opened before the first chunk is requested, so a missing blob raises here, not midway.
        """
        path = self.path_of(sha256)
        try:
            handle = path.open("rb")
        except FileNotFoundError as e:
            raise NotFoundError(f"blob sha256:{sha256} is not stored") from e
        total = os.fstat(handle.fileno()).st_size
        stop = total if end is None else min(end, total)
        if start < 0 or start > stop:
            handle.close()
            raise InputError(f"bad range {start}-{end} for a blob of {total} bytes")
        return _read_chunks(handle, start, stop)

    def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)

    def collect_garbage(self, older_than_s: float) -> int:
        """Remove temp files older than ``older_than_s`` seconds (crashed uploads); return how many."""
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self._tmp.glob("*" + _TMP_SUFFIX):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue  # another process collected or committed it meanwhile
        return removed

    def iter_blobs(self, older_than_s: float) -> Iterator[str]:
        """Digests of committed blobs last written over ``older_than_s`` seconds ago, in no set order.

        A commit renames a fresh temp file into place, so the age counts from the latest commit of that
        digest. Each shard directory is read whole before its digests are yielded, so a caller may delete
        them while iterating. Anything that is not exactly ``ab/<ab…64 hex>`` as a regular file (a stray
        file, a symlink, a digest in the wrong shard) is skipped, never yielded.

        Raises:
            StorageError: the blob directory cannot be read.
        """
        cutoff = time.time() - older_than_s
        for shard in _scan(self._blobs):
            if not (_SHARD_RE.fullmatch(shard.name) and shard.is_dir(follow_symlinks=False)):
                continue
            for entry in _scan(Path(shard.path)):
                if (
                    entry.name[:2] == shard.name
                    and _SHA256_RE.fullmatch(entry.name)
                    and _older(entry, cutoff)
                ):
                    yield entry.name

    def temp_files(self) -> list[Path]:
        """Temp files present now (tests check that failed uploads leave none)."""
        return sorted(self._tmp.glob("*" + _TMP_SUFFIX))


class _FilePendingBlob:
    """A temp file that becomes a blob by fsync + rename, or disappears on abort."""

    def __init__(self, store: FilesystemStore) -> None:
        self._store = store
        self._path = store._tmp / (secrets.token_hex(16) + _TMP_SUFFIX)
        try:
            self._file: IO[bytes] | None = self._path.open("xb")
        except OSError as e:
            raise StorageError(f"cannot create temp file in {store._tmp}: {e}") from e

    def write(self, chunk: bytes) -> None:
        if self._file is None:
            raise StorageError("write to a pending blob that was already committed or aborted")
        try:
            self._file.write(chunk)
        except OSError as e:
            self.abort()
            raise StorageError(f"writing blob temp file failed: {e}") from e

    def commit(self, sha256: str) -> None:
        """fsync the data, rename into place, fsync the directory. Idempotent if the blob exists already."""
        final = self._store.path_of(sha256)
        if self._file is None:
            raise StorageError("commit of a pending blob that was already committed or aborted")
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            final.parent.mkdir(exist_ok=True)
            os.replace(self._path, final)  # same content under the same name: replacing is harmless
            _fsync_dir(final.parent)
        except OSError as e:
            self.abort()
            raise StorageError(f"storing blob sha256:{sha256} failed: {e}") from e

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._path.unlink(missing_ok=True)


def _read_chunks(handle: IO[bytes], start: int, stop: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        left = stop - start
        while left > 0:
            chunk = handle.read(min(READ_CHUNK_BYTES, left))
            if not chunk:
                raise StorageError(f"blob ended {left} bytes early")
            left -= len(chunk)
            yield chunk


def _scan(directory: Path) -> list[os.DirEntry[str]]:
    """The entries of one directory, read in full (callers may delete entries while walking the list)."""
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError as e:
        raise StorageError(f"cannot list blob directory {directory}: {e}") from e


def _older(entry: os.DirEntry[str], cutoff: float) -> bool:
    """A regular file (not a symlink) modified before ``cutoff``; False if it vanished meanwhile."""
    try:
        return entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff
    except FileNotFoundError:
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
