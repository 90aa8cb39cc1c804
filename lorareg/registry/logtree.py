"""An in-process cache of the log's Merkle tree, so proofs cost O(log² n) hashes instead of O(n).

The log is append-only: a leaf's hash never changes once its transaction committed. So a replica keeps
every leaf hash it has read and every complete, aligned subtree hash above them (``levels[k][i]`` is the
root of leaves ``i·2^k … (i+1)·2^k - 1``), and on each request reads only the leaves appended since (by
this or another replica). Any root the RFC 9162 recursion asks for is then a handful of cached nodes plus
the right edge (every left child in the recursion is an aligned complete subtree).

A log that shrank, or whose last cached leaf changed, is read again from scratch; an operator who edits
history in the database restarts the server (or calls :meth:`TreeCache.clear`), and then serves that
history — which is exactly what the clients' consistency checks exist to catch.
"""

from __future__ import annotations

import threading

from lorareg.signing import merkle


class TreeCache:
    """Leaf hashes and complete-subtree hashes of one log, shared by the threads of one process."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # held by the caller around sync-then-compute
        self._levels: list[list[bytes]] = [[]]

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def clear(self) -> None:
        with self.lock:
            self._levels = [[]]

    def last_leaf(self) -> bytes | None:
        return self._levels[0][-1] if self._levels[0] else None

    def extend(self, leaves: list[bytes]) -> None:
        """Append leaf hashes read from the database (indices ``size`` onwards)."""
        with self.lock:
            for leaf in leaves:
                self._append(leaf)

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` leaves (``size`` <= :attr:`size`)."""
        if size == 0:
            return merkle.root_hash([])
        return self._mth(0, size)

    def inclusion_path(self, index: int, size: int) -> tuple[bytes, ...]:
        """PATH(index, D[size]) of RFC 9162 2.1.3.1."""
        return tuple(self._path(index, 0, size))

    def consistency_path(self, first: int, size: int) -> tuple[bytes, ...]:
        """PROOF(first, D[size]) of RFC 9162 2.1.4.1; empty when ``first`` is 0 or ``size``."""
        if first in (0, size):
            return ()
        return tuple(self._subproof(first, 0, size, complete=True))

    def _append(self, leaf: bytes) -> None:
        self._levels[0].append(leaf)
        level = 0
        while len(self._levels[level]) % 2 == 0:  # a right child completed its parent: carry up
            pair = self._levels[level][-2:]
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._levels[level + 1].append(merkle.node_hash(pair[0], pair[1]))
            level += 1

    def _mth(self, lo: int, n: int) -> bytes:
        """Root of leaves ``lo … lo+n-1``; a cached node when the range is an aligned power of two."""
        if n & (n - 1) == 0 and lo % n == 0:
            return self._levels[n.bit_length() - 1][lo // n]
        k = 1 << ((n - 1).bit_length() - 1)
        return merkle.node_hash(self._mth(lo, k), self._mth(lo + k, n - k))

    def _path(self, m: int, lo: int, n: int) -> list[bytes]:
        if n <= 1:
            return []
        k = 1 << ((n - 1).bit_length() - 1)
        if m < k:
            return [*self._path(m, lo, k), self._mth(lo + k, n - k)]
        return [*self._path(m - k, lo + k, n - k), self._mth(lo, k)]

    def _subproof(self, m: int, lo: int, n: int, *, complete: bool) -> list[bytes]:
        if m == n:
            return [] if complete else [self._mth(lo, n)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return [*self._subproof(m, lo, k, complete=complete), self._mth(lo + k, n - k)]
        return [*self._subproof(m - k, lo + k, n - k, complete=False), self._mth(lo, k)]
