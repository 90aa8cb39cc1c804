"""The newest checkpoint a client has verified, per registry, kept in the client cache.

The first checkpoint seen from a registry is stored on trust (like the trust file's registry key); every
later one must be a consistent extension of it (``lorareg.client.logcheck``). The file holds the signed
note exactly as fetched, so a studio can hand it to anyone as evidence of what the registry showed it.
Writes are atomic (temp file, rename) and serialised per registry with ``flock``; a stored checkpoint only
ever grows. They are not fsynced: a crash can at worst lose the newest checkpoint and keep the one before,
which is still a valid floor for the next consistency check, and an fsync would cost more than all the
other log checks of a pull together.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from lorareg.errors import StorageError, VerificationError
from lorareg.signing.checkpoint import Checkpoint, parse_note_body


class CheckpointStore:
    """``<cache>/checkpoints/<hash of registry URL>.note``: one verified checkpoint note per registry."""

    def __init__(self, root: Path) -> None:
        self.root = root / "checkpoints"

    def path(self, registry_id: str) -> Path:
        safe = hashlib.sha256(registry_id.encode("utf-8")).hexdigest()[:32]
        return self.root / f"{safe}.note"

    def held(self, registry_id: str) -> Checkpoint | None:
        """The stored checkpoint (its signature was verified when it was stored), or None before contact."""
        path = self.path(registry_id)
        try:
            note = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageError(f"stored checkpoint {path} is unreadable ({e})") from e
        try:
            return parse_note_body(note)
        except VerificationError as e:
            raise StorageError(f"stored checkpoint {path} is malformed ({e}); delete it to start over") from e

    @contextlib.contextmanager
    def locked(self, registry_id: str) -> Iterator[None]:
        """Serialise check-then-store of one registry's checkpoint across threads and processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self.path(registry_id).with_suffix(".lock").open("a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def remember(self, registry_id: str, note: bytes, checkpoint: Checkpoint) -> None:
        """Store ``note`` if it is newer (larger) than the held one; call inside :meth:`locked`."""
        held = self.held(registry_id)
        if held is not None and held.size >= checkpoint.size:
            return
        path = self.path(registry_id)
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            temp.write_bytes(note)  # no fsync: losing this write only leaves an older, still valid floor
            os.replace(temp, path)
        except OSError as e:
            temp.unlink(missing_ok=True)
            raise StorageError(f"cannot store checkpoint {path}: {e}") from e
