"""A deterministic digest of a training-set directory, so a dataset can be proven later without publishing it.

The digest (format ``lorareg-dataset-hash v1``) is the SHA-256 of this UTF-8 listing::

    lorareg-dataset-hash v1\\n
    <sha256 of file 1, 64 lower-case hex>  <relative POSIX path of file 1>\\n
    <sha256 of file 2>  <path 2>\\n
    ...

one line per regular file anywhere under the directory, two spaces between digest and path (the
``sha256sum`` line format), sorted by the UTF-8 bytes of the path. Only names and contents count: timestamps,
permissions, owners and empty directories do not change the digest. Nothing is skipped silently: hidden
files (``.DS_Store``, ``.git``) are hashed like any other, and :attr:`DatasetDigest.files` says how many.

Symlinks: a link to a regular file inside the directory is hashed as that file's content under the link's
own path (what a trainer reading the directory would see) and is listed in ``followed_symlinks``. A link
that leaves the directory, dangles, or points to a directory is refused, as are FIFOs, sockets and devices,
and names that cannot be written on one line (newline, carriage return, backslash) or are not UTF-8.
The same listing can be produced in a shell (no refusals are checked there)::

    (printf 'lorareg-dataset-hash v1\\n'; cd DIR && find . -type f -printf '%P\\0' | LC_ALL=C sort -z |
     xargs -0 sha256sum) | sha256sum

What this module deliberately does not do: interpret the files (captions, images) or read any metadata.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lorareg.errors import InputError, NotFoundError

FORMAT = "lorareg-dataset-hash v1"
READ_CHUNK_BYTES = 1 << 20  # 1 MiB per read while hashing a file
_FORBIDDEN_NAME_CHARS = ("\n", "\r", "\\")  # would break or be escaped in the sha256sum line format


@dataclass(frozen=True, slots=True)
class DatasetEntry:
    """One hashed file: its relative POSIX path, SHA-256 and size in bytes."""

    path: str
    sha256: str
    size: int

    def line(self) -> str:
        return f"{self.sha256}  {self.path}\n"


@dataclass(frozen=True, slots=True)
class DatasetDigest:
    """The digest of a directory and what went into it."""

    sha256: str
    entries: tuple[DatasetEntry, ...]
    followed_symlinks: tuple[str, ...]

    @property
    def files(self) -> int:
        return len(self.entries)

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.entries)

    def listing(self) -> str:
        """The exact text whose SHA-256 is :attr:`sha256`."""
        return FORMAT + "\n" + "".join(e.line() for e in self.entries)

    def to_json(self) -> dict[str, object]:
        return {
            "sha256": self.sha256,
            "format": FORMAT,
            "files": self.files,
            "bytes": self.total_bytes,
            "followed_symlinks": list(self.followed_symlinks),
        }


def dataset_hash(directory: str | os.PathLike[str]) -> DatasetDigest:
    """Digest every regular file under ``directory`` as the module docstring specifies.

    Raises:
        NotFoundError: ``directory`` does not exist.
        InputError: it is not a directory, or holds an entry that is refused (see the module docstring),
            or a file cannot be read.
    """
    root = Path(directory)
    if not root.exists():
        raise NotFoundError(f"no such directory: {root}")
    if not root.is_dir():
        raise InputError(f"{root} is not a directory; dataset-hash digests a directory of training files")
    real_root = root.resolve()
    found: list[tuple[str, Path]] = []
    followed: list[str] = []
    _walk(real_root, real_root, "", found, followed)
    found.sort(key=lambda item: item[0].encode("utf-8"))
    entries = tuple(_hash_entry(rel, path) for rel, path in found)
    listing = FORMAT + "\n" + "".join(e.line() for e in entries)
    sha = hashlib.sha256(listing.encode("utf-8")).hexdigest()
    return DatasetDigest(sha256=sha, entries=entries, followed_symlinks=tuple(sorted(followed)))


def _walk(
    root: Path, directory: Path, prefix: str, found: list[tuple[str, Path]], followed: list[str]
) -> None:
    try:
        with os.scandir(directory) as listing:
            children = sorted(listing, key=lambda e: e.name)
    except OSError as e:
        raise InputError(f"cannot list {directory}: {e.strerror or e}") from e
    for child in children:
        rel = _relative_name(prefix, child.name)
        path = Path(child.path)
        mode = child.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            found.append((rel, _symlink_target(path, rel, root=root)))
            followed.append(rel)
        elif stat.S_ISDIR(mode):
            _walk(root, path, rel + "/", found, followed)
        elif stat.S_ISREG(mode):
            found.append((rel, path))
        else:
            raise InputError(f"{rel} is not a regular file or directory (FIFO, socket or device); refused")


def _symlink_target(link: Path, rel: str, *, root: Path) -> Path:
    """Resolve a symlink; refuse it unless it names a regular file inside the dataset directory."""
    target = link.resolve()
    if not target.is_relative_to(root):
        raise InputError(f"symlink {rel} points outside the dataset directory (to {target}); refused")
    if not target.exists():
        raise InputError(f"symlink {rel} points to {target}, which does not exist")
    if not target.is_file():
        raise InputError(f"symlink {rel} points to a directory; only links to files are followed")
    return target


def _relative_name(prefix: str, name: str) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InputError(f"{prefix}{name!r} is not a UTF-8 file name; rename it to hash the dataset") from e
    if any(c in name for c in _FORBIDDEN_NAME_CHARS):
        raise InputError(f"{prefix}{name!r} holds a newline, carriage return or backslash; rename it")
    return prefix + name


def _hash_entry(rel: str, path: Path) -> DatasetEntry:
    digest = hashlib.sha256()
    size = 0
    try:  # O_NOFOLLOW: a file swapped for a symlink after the walk is refused, not followed
        with os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as handle:
            while chunk := handle.read(READ_CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise InputError(f"cannot read {rel}: {e.strerror or e}") from e
    return DatasetEntry(path=rel, sha256=digest.hexdigest(), size=size)
