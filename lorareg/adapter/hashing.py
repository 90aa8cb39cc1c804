"""File hashes as the ecosystem knows them, computed in one streaming read.

The six digests (``LORA_FORMATS.md`` §6, Civitai's model scanner and A1111), all lower-case hex:

- ``sha256``: SHA-256 of the whole file; ``autov2`` is its first 10 hex digits.
- ``autov1``: SHA-256 of the 0x10000 bytes at offset 0x100000, first 8 hex digits; ``None`` for files under
  2 MiB, as Civitai reports it (the legacy A1111 ``model_hash``).
- ``autov3``: SHA-256 of the bytes after ``8 + N`` (the tensor data), full 64 hex; equals kohya's
  ``sshs_model_hash`` and ModelSpec's ``hash_sha256``. Quirk kept for compatibility: when ``N >= 16 MiB``
  Civitai hashes from byte 8, and so does this module.
- ``crc32``: CRC-32 (IEEE 802.3, as zlib) of the whole file, 8 hex digits of its *little-endian* bytes:
  Civitai's scanner prints .NET ``Crc32.GetCurrentHash()``, which emits the value little-endian, so
  ``hello world`` (0x0d4a1185) is ``85114a0d`` there and here. Same value, Civitai's spelling.
- ``blake3``: BLAKE3 of the whole file (the ``blake3`` package).

:class:`StreamHasher` takes the bytes in file order with any chunk boundaries (uploads, downloads) and learns
the header length from the first 8 bytes. :func:`hash_file` reads a file once and runs the digests on
separate threads: hashlib, zlib and blake3 release the GIL on large buffers, so the cores hash the same chunk
at the same time while the reader fetches the next; memory stays at a few chunks.

What it deliberately does not do: validate the file (``adapter/safetensors.py`` does; any bytes can be
hashed) or compare digests (the verifier does).
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import blake3

try:  # ISA-L's CRC-32 uses carry-less multiplication: ~6x zlib's speed, same result
    from isal.isal_zlib import crc32 as _crc32
except ImportError:  # pragma: no cover - platforms without an isal wheel
    from zlib import crc32 as _crc32

from lorareg.errors import InputError, NotFoundError

if TYPE_CHECKING:
    from typing import Protocol

    class Hasher(Protocol):
        def update(self, data: bytes | memoryview, /) -> object: ...
        def hexdigest(self) -> str: ...


HASH_NAMES = ("sha256", "autov1", "autov2", "autov3", "crc32", "blake3")

AUTOV1_OFFSET = 0x100000  # bytes: the AutoV1 window starts 1 MiB into the file ...
AUTOV1_LENGTH = 0x10000  # ... and is 64 KiB long
AUTOV1_MIN_FILE_BYTES = 2 * 0x100000  # Civitai reports no AutoV1 for smaller files
AUTOV3_HEADER_QUIRK_BYTES = 16 * 2**20  # header length from which Civitai's AutoV3 hashes from byte 8
AUTOV2_HEX_DIGITS = 10
# hash_file's read size: big enough to release the GIL, small enough to stay in a core's L2 cache while
# every lane hashes it (measured on 2 cores: 4 MiB chunks cost ~15% more CPU and time than 1 MiB).
CHUNK_BYTES = 2**20
SINGLE_DIGESTS = ("sha256", "blake3")  # the digests a signature can bind a file by (see new_hasher)
_QUEUE_CHUNKS = 8  # chunks a hashing thread may lag behind the reader (memory ~ queue x chunk)
_LENGTH_BYTES = 8

_Buffer = bytes | bytearray | memoryview


@dataclass(frozen=True, slots=True)
class FileHashes:
    """The six digests of one file, lower-case hex; ``autov1`` is ``None`` for files under 2 MiB."""

    sha256: str
    autov1: str | None
    autov2: str
    autov3: str
    crc32: str
    blake3: str

    def to_json(self) -> dict[str, str | None]:
        """The digests keyed by :data:`HASH_NAMES`, in that order (the ``inspect --json`` ``hashes``)."""
        return asdict(self)


class StreamHasher:
    """All six digests of a byte stream fed in file order, with any chunk boundaries.

    ``update`` routes each chunk to the digests it concerns (AutoV1 sees only its 64 KiB window, AutoV3
    only the bytes after the header); ``finish`` returns the :class:`FileHashes`. The router runs on the
    caller's thread; the digest updates run wherever :meth:`_run` sends them (here: inline).
    """

    def __init__(self) -> None:
        self._sha256 = hashlib.sha256()
        self._autov1 = hashlib.sha256()
        self._autov3 = hashlib.sha256()
        self._blake3 = blake3.blake3()  # one thread: its lane is not the critical path (SHA-256 is)
        self._crc32 = 0
        self._size = 0
        self._prefix = b""  # the first 8 bytes, until the header length is known
        self._autov3_start: int | None = None
        # Lanes: each is updated in stream order by one thread at a time. CRC-32 and the small AutoV1
        # window share a lane; the two SHA-256 passes, the costliest, get one each.
        self._lanes: tuple[Callable[[memoryview], object], ...] = (
            self._sha256.update,
            self._autov3.update,
            self._update_crc32,
            self._blake3.update,
            self._autov1.update,
        )

    @property
    def size(self) -> int:
        """Bytes fed so far."""
        return self._size

    def update(self, chunk: _Buffer) -> None:
        """Feed the next bytes of the stream. The caller must not modify ``chunk`` afterwards."""
        view = memoryview(chunk).cast("B")
        start, end = self._size, self._size + len(view)
        if not view:
            return
        self._learn_header_length(view)
        work = [(0, view), (2, view), (3, view)]
        if self._autov3_start is not None and end > self._autov3_start:
            work.append((1, view[max(self._autov3_start - start, 0) :]))
        window_end = AUTOV1_OFFSET + AUTOV1_LENGTH
        if start < window_end and end > AUTOV1_OFFSET:
            work.append((4, view[max(AUTOV1_OFFSET - start, 0) : window_end - start]))
        self._size = end
        self._run(work)

    def finish(self) -> FileHashes:
        """Return the digests of everything fed so far."""
        sha256 = self._sha256.hexdigest()
        return FileHashes(
            sha256=sha256,
            autov1=self._autov1.hexdigest()[:8] if self._size >= AUTOV1_MIN_FILE_BYTES else None,
            autov2=sha256[:AUTOV2_HEX_DIGITS],
            autov3=self._autov3.hexdigest(),
            crc32=self._crc32.to_bytes(4, "little").hex(),
            blake3=self._blake3.hexdigest(),
        )

    def _run(self, work: list[tuple[int, memoryview]]) -> None:
        for lane, view in work:
            self._lanes[lane](view)

    def _update_crc32(self, view: memoryview) -> None:
        self._crc32 = _crc32(view, self._crc32)

    def _learn_header_length(self, view: memoryview) -> None:
        """Collect the first 8 bytes; AutoV3 then starts after the header (or at 8: Civitai's quirk)."""
        if self._autov3_start is not None or self._size >= _LENGTH_BYTES:
            return
        self._prefix += bytes(view[: _LENGTH_BYTES - self._size])
        if len(self._prefix) == _LENGTH_BYTES:
            length = int.from_bytes(self._prefix, "little")
            self._autov3_start = (
                _LENGTH_BYTES + length if length < AUTOV3_HEADER_QUIRK_BYTES else _LENGTH_BYTES
            )


class ThreadedStreamHasher(StreamHasher):
    """A :class:`StreamHasher` whose lanes run on their own threads, so the digests use several cores.

    Use it as a context manager (the threads stop on exit) and call :meth:`finish` inside it. Chunks are
    held by reference until every lane has hashed them, so ``update`` must get immutable ``bytes`` or a
    buffer the caller will not reuse; at most ``_QUEUE_CHUNKS`` chunks wait per lane.
    """

    def __init__(self) -> None:
        super().__init__()
        self._queues: list[queue.Queue[memoryview | None]] = []
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        for lane in self._lanes[:4]:  # AutoV1 (64 KiB once) runs inline
            lane_queue: queue.Queue[memoryview | None] = queue.Queue(maxsize=_QUEUE_CHUNKS)
            thread = threading.Thread(target=self._drain, args=(lane, lane_queue), daemon=True)
            thread.start()
            self._queues.append(lane_queue)
            self._threads.append(thread)

    def __enter__(self) -> ThreadedStreamHasher:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop()

    def finish(self) -> FileHashes:
        """Wait for every lane to catch up, then return the digests."""
        self._stop()
        if self._errors:
            raise self._errors[0]
        return super().finish()

    def _run(self, work: list[tuple[int, memoryview]]) -> None:
        for lane, view in work:
            if lane < len(self._queues):
                self._queues[lane].put(view)
            else:
                self._lanes[lane](view)

    def _stop(self) -> None:
        for lane_queue, thread in zip(self._queues, self._threads, strict=True):
            if thread.is_alive():
                lane_queue.put(None)
                thread.join()

    def _drain(
        self, update: Callable[[memoryview], None], lane_queue: queue.Queue[memoryview | None]
    ) -> None:
        while (view := lane_queue.get()) is not None:
            if not self._errors:
                try:
                    update(view)
                except BaseException as e:  # re-raised by finish() on the caller's thread
                    self._errors.append(e)


def new_hasher(algorithm: str, *, all_cores: bool = False) -> Hasher:
    """A fresh hasher of one of ``SINGLE_DIGESTS``: the one factory every single-digest check uses.

    ``all_cores`` lets BLAKE3 spread one large update over every core (a file on disk, a buffer in
    memory); a download keeps it on one thread so the other core stays with the network and the writer.

    Raises:
        ValueError: an algorithm not in ``SINGLE_DIGESTS`` (a programming error, not bad input).
    """
    if algorithm == "blake3":
        return blake3.blake3(max_threads=blake3.blake3.AUTO if all_cores else 1)
    if algorithm == "sha256":
        return hashlib.sha256()
    raise ValueError(f"unsupported digest {algorithm!r}")


def hash_file(path: str | os.PathLike[str]) -> FileHashes:
    """Hash the file at ``path`` in one read, the digests running in parallel.

    Raises:
        NotFoundError: the file does not exist.
        InputError: the file cannot be read.
    """
    file = Path(path)
    try:
        with file.open("rb", buffering=0) as handle, ThreadedStreamHasher() as hasher:
            _advise_sequential(handle.fileno())
            while chunk := handle.read(CHUNK_BYTES):
                hasher.update(chunk)
            return hasher.finish()
    except FileNotFoundError as e:
        raise NotFoundError(f"no such file: {file}") from e
    except OSError as e:
        raise InputError(f"cannot read {file}: {e.strerror or e}") from e


def _advise_sequential(fd: int) -> None:
    """Tell the kernel the read is sequential (larger read-ahead on a cold cache); optional."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        advise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
