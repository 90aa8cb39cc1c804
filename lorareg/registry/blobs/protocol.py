"""The two interfaces every blob store implements, and the one digest check every store key passes.

A blob is only ever visible under its SHA-256, and only once complete; keys are always validated 64-hex
digests, never user-supplied names, so no store can be asked for a path outside its root.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

from lorareg.errors import InputError

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


class PendingBlob(Protocol):
    """An upload in progress, invisible under any content address until :meth:`commit`."""

    def write(self, chunk: bytes) -> None: ...

    def commit(self, sha256: str) -> None: ...

    def abort(self) -> None: ...


class BlobStore(Protocol):
    """Where adapter files live, by SHA-256."""

    def begin(self) -> PendingBlob: ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int: ...

    def open_range(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...

    def delete(self, sha256: str) -> None: ...

    def collect_garbage(self, older_than_s: float) -> int: ...

    def iter_blobs(self, older_than_s: float) -> Iterator[str]: ...


def check_sha256(sha256: str) -> str:
    """Return ``sha256`` if it is 64 lower-case hex, else raise :class:`InputError`."""
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise InputError(f"bad sha256 digest {str(sha256)[:80]!r}: expected 64 lower-case hex characters")
    return sha256
