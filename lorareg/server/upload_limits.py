"""Caps on concurrent uploads, per token and in total, and the worker threads uploads may occupy.

An upload is consumed by a worker thread (the registry hashes and writes synchronously), and that thread
waits for every chunk the client sends. Forty stalled uploads of one publisher once held all forty threads
of the shared pool, so every synchronous route — ``/healthz`` included — froze. Now:

- an upload first claims a slot: at most ``per_token`` at once for one token and ``total`` for the process,
  the next one is answered 429 at once (before any of its body is read);
- its thread comes from a pool of its own (``limiter``, ``total`` threads), so reads, health checks and
  pages keep the shared pool whatever the uploads do;
- a body that makes no progress for ``body_timeout_s`` ends with 408 (``streaming.capped_body``), which
  frees the slot.

The counts live in this process (each replica caps its own threads). Slots are claimed and released on
the event loop only, so no lock is needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
from starlette.requests import Request

from lorareg.errors import RateLimitedError


class UploadSlots:
    """Per-token and global counts of uploads in progress, and their own thread limiter."""

    def __init__(self, *, total: int, per_token: int) -> None:
        self.total = total
        self.per_token = per_token
        self._active: Counter[str] = Counter()
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """The uploads' own worker threads (made on first use, inside the running event loop)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.total)
        return self._limiter

    @property
    def in_progress(self) -> int:
        return sum(self._active.values())

    @contextmanager
    def claim(self, token_id: str) -> Iterator[None]:
        """Hold one slot for ``token_id`` while the block runs.

        Raises:
            RateLimitedError: the token already has ``per_token`` uploads running, or the process ``total``.
        """
        held = self._active[token_id]
        if held >= self.per_token:
            raise RateLimitedError(
                f"this token has {held} uploads in progress; the limit is {self.per_token}. "
                "Finish or cancel one, then retry."
            )
        if self.in_progress >= self.total:
            raise RateLimitedError(
                f"the registry is receiving {self.in_progress} uploads, its limit; retry in a moment"
            )
        self._active[token_id] += 1
        try:
            yield
        finally:
            self._active[token_id] -= 1
            if self._active[token_id] <= 0:
                del self._active[token_id]


def upload_slots(request: Request) -> UploadSlots:
    """The app's upload slots (``create_app`` makes one per app)."""
    slots: UploadSlots = request.app.state.upload_slots
    return slots
