"""A persistent cache of file digests keyed by (path, size, mtime_ns, inode), so re-audits read no data.

A folder a render node loads from rarely changes; hashing 2,000 adapters on every audit would take minutes.
An entry is reused only while the file's path, size, modification time (nanoseconds) and inode all match
what was hashed; any write, replace or copy changes one of them. (A writer that restores all four, e.g. a
deliberate ``touch -d`` after an in-place edit on the same inode, is not detected; ``audit --rehash``
ignores the cache.) The cache is one JSON file written atomically; a corrupt or foreign cache file is
ignored and rebuilt, never trusted partially.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_FORMAT = 1
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))  # files hashed at once on a first audit
HASH_READ_BYTES = 1 * 2**20  # SHA-256 reads: large enough for few syscalls, small enough to stay in cache


@dataclass(frozen=True, slots=True)
class FileKey:
    """What must be unchanged for a cached digest to still describe the file."""

    path: str
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path, st: os.stat_result | None = None) -> FileKey:
        st = st or path.stat()
        return cls(os.path.abspath(path), st.st_size, st.st_mtime_ns, st.st_ino)


class HashCache:
    """``{path: [size, mtime_ns, inode, {digest name: hex}]}`` in one JSON file; :meth:`save` to persist."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self._entries: dict[str, list[Any]] = _read(file) if file is not None else {}
        self._dirty = False
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        """Forget every entry (``--rehash``): the next lookups read the files and refill the cache."""
        self._entries.clear()
        self._dirty = True

    def get(self, key: FileKey, name: str) -> str | None:
        entry = self._entries.get(key.path)
        if entry is None or entry[:3] != [key.size, key.mtime_ns, key.inode]:
            return None
        value = entry[3].get(name)
        return value if isinstance(value, str) else None

    def put(self, key: FileKey, values: dict[str, str]) -> None:
        entry = self._entries.get(key.path)
        digests = (
            dict(entry[3]) if entry is not None and entry[:3] == [key.size, key.mtime_ns, key.inode] else {}
        )
        digests.update(values)
        self._entries[key.path] = [key.size, key.mtime_ns, key.inode, digests]
        self._dirty = True

    def sha256(self, path: Path, st: os.stat_result | None = None) -> str:
        """The file's SHA-256, from the cache when its key matches, else read once and remembered."""
        key = FileKey.of(path, st)
        cached = self.get(key, "sha256")
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        digest = sha256_file(path)
        self.put(key, {"sha256": digest})
        return digest

    def prefetch(self, files: list[tuple[Path, os.stat_result]]) -> int:
        """Hash the files the cache has no valid entry for, ``HASH_THREADS`` at a time.

        One SHA-256 stream runs on one core (as ``openssl dgst``); several files at once use the others,
        so a first audit of a folder of many files reads at the disk's pace rather than one core's. Files
        that cannot be read are left for :meth:`sha256` to report. Returns how many files were hashed.
        """
        missing = [(p, st) for p, st in files if self.get(FileKey.of(p, st), "sha256") is None]
        if not missing:
            return 0
        from concurrent.futures import ThreadPoolExecutor

        def one(item: tuple[Path, os.stat_result]) -> tuple[FileKey, str] | None:
            try:
                return FileKey.of(item[0], item[1]), sha256_file(item[0])
            except OSError:
                return None

        hashed = 0
        with ThreadPoolExecutor(max_workers=min(HASH_THREADS, len(missing))) as pool:
            for result in pool.map(one, missing):
                if result is not None:
                    self.put(result[0], {"sha256": result[1]})
                    hashed += 1
        return hashed

    def save(self) -> None:
        """Write the cache atomically (temp file, rename) when anything changed."""
        if self.file is None or not self._dirty:
            return
        self.file.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"format": CACHE_FORMAT, "entries": self._entries}, separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".hashcache-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(body)
        os.replace(tmp, self.file)
        self._dirty = False


def sha256_file(path: Path) -> str:
    """SHA-256 of a file in one sequential read (hashlib releases the GIL on large updates)."""
    import hashlib

    hasher = hashlib.sha256()
    buf = bytearray(HASH_READ_BYTES)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            hasher.update(view[:n])
    return hasher.hexdigest()


def _read(file: Path) -> dict[str, list[Any]]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    if (
        not isinstance(data, dict)
        or data.get("format") != CACHE_FORMAT
        or not isinstance(data.get("entries"), dict)
    ):
        return {}
    return {k: v for k, v in data["entries"].items() if _valid_entry(v)}


def _valid_entry(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value[:3])
        and isinstance(value[3], dict)
    )
