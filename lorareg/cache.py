"""The client's local content-addressed cache: verified blobs, their signature bundles, revocation state.

Layout under the root (``LORAREG_CACHE`` or ``~/.cache/lorareg``)::

    blobs/sha256/ab/<hex>        the adapter file, placed only after it verified (atomic rename)
    blobs/sha256/ab/<hex>.sig    the countersigned bundle it verified with
    tmp/<hex>.part               an interrupted download, resumed with Range on the next pull
    tmp/<hex>.lock               held (flock) while a process downloads that digest
    revocations/<id>.json        the newest revocation list seen per registry (rollback protection)

Files reach ``blobs/`` only through :meth:`BlobCache.install`, which the client calls after verification;
a partial or refused download never becomes visible under a content address. This module knows nothing
about HTTP or signatures: it moves files and keeps state; the client decides what is trustworthy.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from lorareg.errors import InputError, StorageError

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def default_cache_dir() -> Path:
    """``LORAREG_CACHE`` when set, else ``$XDG_CACHE_HOME/lorareg`` or ``~/.cache/lorareg``."""
    explicit = os.environ.get("LORAREG_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lorareg"


class BlobCache:
    """A content-addressed directory of verified adapter files."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def blob_path(self, sha256: str) -> Path:
        """Where the verified file for ``sha256`` lives (whether or not it is there)."""
        digest = _check(sha256)
        return self.root / "blobs" / "sha256" / digest[:2] / digest

    def bundle_path(self, sha256: str) -> Path:
        """The signature bundle kept beside the blob."""
        path = self.blob_path(sha256)
        return path.with_name(path.name + ".sig")

    def lookup(self, sha256: str) -> Path | None:
        """The cached file for ``sha256`` if both it and its bundle are present, else None."""
        path = self.blob_path(sha256)
        return path if path.is_file() and self.bundle_path(sha256).is_file() else None

    def part_path(self, sha256: str) -> Path:
        """The temp file of a download in progress (kept after a failure so it can resume)."""
        return self._tmp_dir() / f"{_check(sha256)}.part"

    @contextlib.contextmanager
    def download_lock(self, sha256: str) -> Iterator[None]:
        """Hold an exclusive lock for downloading ``sha256``, so two pulls never share one part file.

        The lock is an ``flock`` on ``tmp/<hex>.lock``; the kernel drops it when the holder dies, so a crash
        never leaves a stale lock. A second puller waits and then normally finds the blob installed.
        """
        lock_path = self._tmp_dir() / f"{_check(sha256)}.lock"
        with lock_path.open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def install(self, sha256: str, *, part: Path, bundle: bytes) -> Path:
        """Move a verified download into place: bundle first, then the blob by atomic rename.

        The bundle is written before the blob so that :meth:`lookup` never sees a blob without its bundle.
        The blob is not fsynced (that would double a large pull's time): every use re-hashes a cached
        file, so one torn by a crash is refused and evicted, never trusted.
        """
        target = self.blob_path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.bundle_path(sha256), bundle)
        try:
            os.replace(part, target)  # no fsync: a torn file after a crash fails re-hashing on next use
        except OSError as e:
            raise StorageError(f"cannot place {part} into the cache at {target}: {e}") from e
        return target

    def evict(self, sha256: str) -> None:
        """Remove a cached blob and its bundle (a file that no longer verifies)."""
        for path in (self.blob_path(sha256), self.bundle_path(sha256)):
            path.unlink(missing_ok=True)

    def held_revocation_version(self, registry_id: str) -> int | None:
        """The version of the newest revocation list seen from this registry, or None on first contact."""
        path = self._revocation_path(registry_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise StorageError(f"revocation state {path} is unreadable ({e}); delete it to start over") from e
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(version, int):
            raise StorageError(f"revocation state {path} has no integer 'version'; delete it to start over")
        return version

    def remember_revocation_version(self, registry_id: str, version: int) -> None:
        """Record ``version`` as the newest seen (never lowers the stored one)."""
        held = self.held_revocation_version(registry_id)
        if held is not None and held >= version:
            return
        path = self._revocation_path(registry_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps({"version": version}).encode())

    def _revocation_path(self, registry_id: str) -> Path:
        safe = hashlib.sha256(registry_id.encode("utf-8")).hexdigest()[:32]
        return self.root / "revocations" / f"{safe}.json"

    def _tmp_dir(self) -> Path:
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path


def _check(sha256: str) -> str:
    if not _SHA256_RE.match(sha256):
        raise InputError(f"not a sha256 digest: expected 64 lower-case hex characters, got {sha256!r}")
    return sha256


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with temp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {e}") from e
