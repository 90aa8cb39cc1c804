"""The client's local content-addressed cache: verified blobs, their signature bundles, revocation state.

Layout under the root (``LORAREG_CACHE`` or ``~/.cache/lorareg``)::

    blobs/sha256/ab/<hex>        the adapter file, placed only after it verified (atomic rename)
    blobs/sha256/ab/<hex>.sig    the countersigned bundle it verified with
    tmp/<hex>.part               an interrupted download, resumed with Range on the next pull
    tmp/<hex>.lock               held (flock) while a process downloads that digest
    revocations/<id>.json        per registry: the newest list version seen (rollback floor) and the
                                 newest verified revocation-list envelope, written atomically together
    revocations/<id>.lock        held (flock) while that state is updated

Files reach ``blobs/`` only through :meth:`BlobCache.install`, which the client calls after verification;
a partial or refused download never becomes visible under a content address. The cache knows nothing about
HTTP. It never trusts its own disk either: a held revocation list is handed out as the envelope bytes the
registry signed and re-verified (:meth:`BlobCache.held_revocations`, through ``lorareg.signing.revocation``)
each time it is used, so the loader and ``lorareg verify`` can honour revocations while the registry is away.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from lorareg.errors import InputError, StorageError, VerificationError

if TYPE_CHECKING:
    from lorareg.signing.keys import PublicKey
    from lorareg.signing.revocation import RevocationList

_SHA256_RE = re.compile(r"[0-9a-f]{64}")  # used with fullmatch: "$" would accept a trailing newline


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

    # -- revocation lists ----------------------------------------------------------------------------
    def held_revocation_version(self, registry_id: str) -> int | None:
        """The version of the newest revocation list seen from this registry, or None on first contact."""
        state = self._read_state(self._revocation_path(registry_id))
        return state.version if state is not None else None

    def held_revocation_list(self, registry_id: str) -> bytes | None:
        """The newest verified revocation-list envelope kept for this registry (bytes as fetched), or None.

        Unverified as read: a caller re-verifies it (:meth:`held_revocations` does, and so does the loader)
        with the version from :meth:`held_revocation_version` as the rollback floor.
        """
        state = self._read_state(self._revocation_path(registry_id))
        return state.envelope if state is not None else None

    def held_revocations(
        self,
        registry_keys: Iterable[PublicKey],
        *,
        now: datetime,
        max_age: timedelta | None,
        registry_id: str | None = None,
    ) -> RevocationList | None:
        """The newest held revocation list signed by one of ``registry_keys``, re-verified; None if none.

        The keys name the registry, so this works offline without its URL (``lorareg verify``); with
        ``registry_id`` only that registry's list is considered. Lists signed by other keys (another
        registry's) are passed over. The chosen list is checked against the version held for it (rollback)
        and for freshness at ``now`` (``expires`` and ``max_age``: freeze).

        Raises:
            VerificationError: the chosen list is stale ("freeze"), older than the version held for its
                registry ("rollback"), or, with ``registry_id``, not signed by ``registry_keys``.
            StorageError: the state file is unreadable.
        """
        from lorareg.signing.revocation import verify_revocation_list

        keys = list(registry_keys)
        if not keys:
            return None  # no trusted registry: no held list could verify
        paths = [self._revocation_path(registry_id)] if registry_id else self._state_paths()
        candidates: list[tuple[RevocationList, int, bytes]] = []
        for state in map(self._read_state, paths):
            if state is None or state.envelope is None:
                continue
            signed = _signed_list(state.envelope, keys, strict=registry_id is not None)
            if signed is not None:
                candidates.append((signed, state.version, state.envelope))
        if not candidates:
            return None
        _, floor, envelope = max(candidates, key=lambda c: (c[0].version, c[0].issued))
        return verify_revocation_list(envelope, keys, held_version=floor, now=now, max_age=max_age)

    def remember_revocation_version(self, registry_id: str, version: int) -> None:
        """Record ``version`` as the newest seen (never lowers the stored one; keeps the held list)."""
        with self._revocation_lock(registry_id) as path:
            state = self._read_state(path)
            if state is not None and state.version >= version:
                return
            envelope = state.envelope if state is not None else None
            listed = state.listed_version if state is not None else None
            self._write_state(path, _HeldState(registry_id, version, listed, envelope))

    def remember_revocation_list(self, registry_id: str, envelope: bytes, *, version: int) -> None:
        """Keep a verified list's envelope (atomically) unless a newer one is held; raise the version seen.

        The caller has verified ``envelope`` (signature, rollback, freeze) and passes its ``version``. A
        concurrent pull that stored a newer list meanwhile wins: versions and envelopes never go back.
        """
        with self._revocation_lock(registry_id) as path:
            state = self._read_state(path)
            if state is not None and state.listed_version is not None and state.listed_version > version:
                return
            seen = max(version, state.version) if state is not None else version
            self._write_state(path, _HeldState(registry_id, seen, version, envelope))

    def _revocation_path(self, registry_id: str) -> Path:
        safe = hashlib.sha256(registry_id.encode("utf-8")).hexdigest()[:32]
        return self.root / "revocations" / f"{safe}.json"

    def _state_paths(self) -> list[Path]:
        return sorted((self.root / "revocations").glob("*.json"))

    @contextlib.contextmanager
    def _revocation_lock(self, registry_id: str) -> Iterator[Path]:
        """Serialise read-modify-write of one registry's state across processes; yields its path."""
        path = self._revocation_path(registry_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.with_suffix(".lock").open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield path
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    @staticmethod
    def _read_state(path: Path) -> _HeldState | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageError(f"revocation state {path} is unreadable ({e}); delete it to start over") from e
        return _HeldState.from_bytes(raw, where=path)

    @staticmethod
    def _write_state(path: Path, state: _HeldState) -> None:
        _write_atomic(path, state.to_bytes())

    def _tmp_dir(self) -> Path:
        path = self.root / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass(frozen=True, slots=True)
class _HeldState:
    """One registry's revocation state: the newest version seen and the newest verified envelope."""

    registry: str
    version: int  # rollback floor: the highest list version seen from this registry
    listed_version: int | None  # the version of ``envelope``
    envelope: bytes | None  # the DSSE envelope exactly as fetched

    def to_bytes(self) -> bytes:
        body: dict[str, object] = {"registry": self.registry, "version": self.version}
        if self.envelope is not None:
            body["listed_version"] = self.listed_version
            body["envelope"] = base64.b64encode(self.envelope).decode("ascii")
        return json.dumps(body, sort_keys=True).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes, *, where: Path) -> _HeldState:
        """Parse a state file (also the first format, ``{"version": N}`` only)."""
        try:
            data = json.loads(raw)
            version = data["version"]
            envelope = data.get("envelope")
            listed = data.get("listed_version")
            if not isinstance(version, int) or not (envelope is None or isinstance(listed, int)):
                raise TypeError("version and listed_version must be integers")
            held = base64.b64decode(envelope, validate=True) if envelope is not None else None
            return cls(str(data.get("registry", "")), version, listed, held)
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise StorageError(f"revocation state {where} is malformed ({e}); delete it to start over") from e


def _signed_list(envelope: bytes, keys: list[PublicKey], *, strict: bool) -> RevocationList | None:
    """The list inside ``envelope`` if one of ``keys`` signed it (no freshness checks yet), else None.

    ``strict`` raises the VerificationError instead of returning None (a named registry's own list).
    """
    from lorareg.signing.revocation import verify_revocation_list

    try:
        return verify_revocation_list(envelope, keys, held_version=None, now=_EPOCH, max_age=None)
    except VerificationError:
        if strict:
            raise
        return None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # "now" for a signature-only check: nothing has expired yet


def _check(sha256: str) -> str:
    if not _SHA256_RE.fullmatch(sha256):
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
