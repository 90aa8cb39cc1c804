"""Put a verified cache file where a user asked for it, without writing its bytes a second time.

``pull --out DIR`` used to copy the verified file out of the cache: a second full write of every adapter.
Here the file is placed, in order of preference, by a **reflink** (``FICLONE``: the filesystem shares the
blocks copy-on-write, so editing one copy never changes the other), a **hard link** (one inode, no bytes
written), or a plain copy when the two paths are on different filesystems or the filesystem refuses both.
A hard-linked copy shares its inode with the cache; the cache re-hashes a file on every pull and evicts one
that changed, and the loader verifies the bytes it reads, so an edited copy is never trusted.

The target appears atomically (a temporary name in the same directory, then ``rename``), so a reader never
sees a partial file. Nothing here verifies anything: the caller places only what it has verified.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path

from lorareg.errors import StorageError

FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)
PLACEMENTS = ("reflink", "hardlink", "copy")
_NOT_SUPPORTED = {errno.EXDEV, errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.EPERM, errno.ENOSYS}


def place(source: Path, target: Path) -> str:
    """Make ``target`` hold ``source``'s bytes; return how (one of ``PLACEMENTS``).

    Raises:
        StorageError: the target directory cannot be written.
    """
    temp = target.with_name(f".{target.name}.placing")
    temp.unlink(missing_ok=True)
    try:
        how = _reflink(source, temp) or _hardlink(source, temp) or _copy(source, temp)
        temp.replace(target)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {target}: {e.strerror or e}") from e
    return how


def _reflink(source: Path, temp: Path) -> str | None:
    with source.open("rb") as src:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(fd, FICLONE, src.fileno())
        except OSError as e:
            os.close(fd)
            temp.unlink(missing_ok=True)
            if e.errno in _NOT_SUPPORTED:
                return None
            raise
    os.close(fd)
    return "reflink"


def _hardlink(source: Path, temp: Path) -> str | None:
    try:
        os.link(source, temp)
    except OSError as e:
        if e.errno in _NOT_SUPPORTED or e.errno == errno.EMLINK:
            return None
        raise
    return "hardlink"


def _copy(source: Path, temp: Path) -> str:
    shutil.copyfile(source, temp)
    return "copy"
