"""The server's cached Merkle tree gives exactly the roots and proofs of the RFC 9162 reference functions."""

from __future__ import annotations

import pytest

from lorareg.registry.logtree import TreeCache
from lorareg.signing import merkle

MAX_N = 34  # crosses 32: an exact power of two, and sizes just past it


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"entry {i}".encode()) for i in range(n)]


def _cache(leaves: list[bytes], *, step: int) -> TreeCache:
    """Filled in chunks of ``step``, as requests see appends arrive."""
    cache = TreeCache()
    for lo in range(0, len(leaves), step):
        cache.extend(leaves[lo : lo + step])
    return cache


@pytest.mark.parametrize("step", [1, 3, 64])
def test_cached_roots_and_proofs_match_the_reference_for_every_size(step: int) -> None:
    leaves = _leaves(MAX_N)
    cache = _cache(leaves, step=step)
    for n in range(MAX_N + 1):
        assert cache.root(n) == merkle.root_hash(leaves[:n])
        for m in range(n):
            assert cache.inclusion_path(m, n) == merkle.inclusion_path(m, leaves[:n])
        for first in range(n + 1):
            assert cache.consistency_path(first, n) == merkle.consistency_path(first, leaves[:n])


def test_cleared_cache_forgets_the_old_history() -> None:
    cache = _cache(_leaves(5), step=5)
    cache.clear()
    other = [merkle.leaf_hash(b"rewritten"), *_leaves(5)[1:]]
    cache.extend(other)
    assert cache.root(5) == merkle.root_hash(other) != merkle.root_hash(_leaves(5))
