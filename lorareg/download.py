"""Resumable blob download into a part file, hashed on another thread while the network delivers.

The receiving thread appends ~1 MiB blocks to the part file and hands them to a SHA-256 running on its own
thread (hashlib releases the GIL on large buffers), so hashing overlaps the transfer instead of adding to
it; a bounded queue keeps memory flat. Only SHA-256 is computed: it is the digest the signature covers (the
statement's resource digest) and the content address of the cache. The other five ecosystem hashes were
computed from the same bytes by the registry at publish time; computing them again here would double the
CPU cost of a pull (measured: 3.0 s/GiB for all six against 1.6 s/GiB for SHA-256 on a 2-core machine).

A dropped connection is resumed with ``Range: bytes=<part length>-``; a part file left by an earlier,
interrupted process is re-hashed once from disk and then continued. A server that ignores the range (200)
restarts the file. This module moves and hashes bytes; it does not decide whether they are trustworthy.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import httpx

from lorareg.errors import RemoteError

if TYPE_CHECKING:
    from collections.abc import Iterator

Progress = Callable[[int, int], None]
OpenStream = Callable[[dict[str, str]], AbstractContextManager[httpx.Response]]

MAX_RESUMES = 5  # dropped connections survived per download
RESUME_BACKOFF_S = 0.2  # first pause before resuming; doubles each time
HASH_QUEUE_BLOCKS = 8  # blocks waiting for the hash thread at most (memory ~ 8 MiB)
REHASH_CHUNK_BYTES = 4 * 2**20  # read size when re-hashing a kept part file
BLOCK_BYTES = 1 * 2**20  # received bytes are written and hashed in blocks of this size


def download_resumable(
    open_stream: OpenStream,
    *,
    part: Path,
    size: int,
    raise_for: Callable[[httpx.Response], None],
    progress: Progress | None = None,
) -> str:
    """Download ``size`` bytes into ``part`` (resuming what it holds) and return its SHA-256 (hex).

    Args:
        open_stream: opens a streamed GET of the blob with the given extra headers.
        part: the part file; created or continued.
        size: the blob's size as the registry reported it.
        raise_for: turns an error answer into the matching LoraregError.
        progress: called with ``(bytes done, size)``.

    Raises:
        RemoteError: the connection kept dropping, or the server sent more bytes than announced.
    """
    for _ in range(2):  # the second round only when a server answered a Range request with the whole body
        with part.open("ab+") as handle, BackgroundSha256() as hasher:
            try:
                _fill(open_stream, handle, hasher, size=size, raise_for=raise_for, progress=progress)
            except _RangeIgnored:
                handle.truncate(0)
                continue
            return hasher.hexdigest()
    raise RemoteError("the server answered a Range request with the whole body twice")


def _fill(
    open_stream: OpenStream,
    handle: IO[bytes],
    hasher: BackgroundSha256,
    *,
    size: int,
    raise_for: Callable[[httpx.Response], None],
    progress: Progress | None,
) -> None:
    """Append to ``handle`` until it holds ``size`` bytes, resuming after dropped connections."""
    offset = _rehash_kept(handle, hasher, size)
    resumes = 0
    while offset < size:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            with open_stream(headers) as response:
                _check_answer(response, offset=offset, raise_for=raise_for)
                offset = _receive(response, handle, hasher, offset=offset, size=size, progress=progress)
        except httpx.TransportError as e:
            offset = handle.seek(0, 2)  # every byte received before the drop was written and hashed
            resumes += 1
            if resumes > MAX_RESUMES:
                raise RemoteError(f"download kept failing after {offset} of {size} bytes: {e}") from e
            time.sleep(RESUME_BACKOFF_S * 2 ** (resumes - 1))
    handle.flush()


def _receive(
    response: httpx.Response,
    handle: IO[bytes],
    hasher: BackgroundSha256,
    *,
    offset: int,
    size: int,
    progress: Progress | None,
) -> int:
    """Append the body to ``handle`` in ~1 MiB blocks (fewer hand-offs to the hash threads)."""
    block = bytearray()
    try:
        for chunk in response.iter_raw():
            if offset + len(block) + len(chunk) > size:
                raise RemoteError(f"server sent more than the {size} bytes it announced")
            block += chunk
            if len(block) >= BLOCK_BYTES:
                offset = _flush(block, handle, hasher, offset)
                if progress is not None:
                    progress(offset, size)
    finally:
        offset = _flush(block, handle, hasher, offset)
    if progress is not None:
        progress(offset, size)
    return offset


def _flush(block: bytearray, handle: IO[bytes], hasher: BackgroundSha256, offset: int) -> int:
    if not block:
        return offset
    data = bytes(block)  # the hasher keeps a reference until its threads are done: hand it a copy
    handle.write(data)
    hasher.update(data)
    block.clear()
    return offset + len(data)


class _RangeIgnored(Exception):  # noqa: N818 - internal control flow: 200 to a Range request, start over
    pass


def _check_answer(
    response: httpx.Response, *, offset: int, raise_for: Callable[[httpx.Response], None]
) -> None:
    if response.status_code == 200 and offset:
        raise _RangeIgnored()
    if response.status_code not in (200, 206):
        raise_for(response)
        raise RemoteError(f"unexpected answer {response.status_code} to a blob download")


def _rehash_kept(handle: IO[bytes], hasher: BackgroundSha256, size: int) -> int:
    """Feed the bytes an earlier attempt left in the part file to the hasher; return its length."""
    length = handle.seek(0, 2)
    if length > size:
        handle.truncate(0)
        return 0
    handle.seek(0)
    while chunk := handle.read(REHASH_CHUNK_BYTES):
        hasher.update(chunk)
    handle.seek(0, 2)
    return length


class BackgroundSha256(AbstractContextManager["BackgroundSha256"]):
    """SHA-256 of blocks fed in order, computed on a worker thread; use as a context manager."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=HASH_QUEUE_BLOCKS)
        self._thread = threading.Thread(target=self._run, name="lorareg-sha256", daemon=True)
        self._thread.start()

    def update(self, block: bytes) -> None:
        """Queue the next block (immutable ``bytes``: the thread reads it later)."""
        self._queue.put(block)

    def hexdigest(self) -> str:
        """Wait for every queued block, then return the digest."""
        self._stop()
        return self._digest.hexdigest()

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def _run(self) -> None:
        for block in _until_none(self._queue):
            self._digest.update(block)


def _until_none(source: queue.Queue[bytes | None]) -> Iterator[bytes]:
    while (block := source.get()) is not None:
        yield block


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file on disk, reading and hashing on two threads (a cached blob's re-check)."""
    with path.open("rb") as handle, BackgroundSha256() as hasher:
        while block := handle.read(REHASH_CHUNK_BYTES):
            hasher.update(block)
        return hasher.hexdigest()
