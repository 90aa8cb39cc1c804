"""The transparency log kept in the database: appending leaves inside a transaction, and proofs.

The Merkle maths is in ``signing/merkle.py`` (checkpoint notes in ``signing/checkpoint.py``);
this module stores leaves (``tlog_leaves``, primary key = index) and
reads leaf hashes back. An append takes the next index inside the caller's transaction, so a leaf exists
exactly when the change it records committed. Two replicas appending at once on PostgreSQL collide on the
primary key; the loser gets :class:`LogRaceError` and the service retries its whole transaction.

Proofs come from a per-process :class:`~lorareg.registry.logtree.TreeCache` of leaf and complete-subtree
hashes, brought up to date with the leaves appended since the last request (O(log² n) per proof).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lorareg.errors import InputError
from lorareg.manifest.canonical import canonical_json
from lorareg.registry.db import TlogLeaf
from lorareg.registry.logtree import TreeCache
from lorareg.signing import merkle as tlog
from lorareg.signing.checkpoint import Checkpoint, sign_checkpoint
from lorareg.signing.keys import PrivateKey

LOG_APPEND_LOCK_ID = 0x6C6F7261  # PostgreSQL advisory lock that serialises log appends across replicas


class LogRaceError(Exception):
    """Another writer took this log index first; retry the transaction (never leaves the service)."""


def append(session: Session, kind: str, body: dict[str, Any], *, now: datetime) -> int:
    """Append a leaf for ``kind``: canonical JSON of ``body`` plus ``kind`` and ``time``; return its index."""
    if kind not in tlog.ENTRY_KINDS:
        raise ValueError(f"unknown log entry kind {kind!r}")
    _serialise_appends(session)
    last = session.exec(select(sa.func.max(col(TlogLeaf.idx)))).one()
    index = 0 if last is None else int(last) + 1
    data = canonical_json({**body, "kind": kind, "time": now.isoformat().replace("+00:00", "Z")})
    session.add(TlogLeaf(idx=index, kind=kind, body=data, leaf_hash=tlog.leaf_hash(data), created=now))
    try:
        session.flush()
    except IntegrityError as e:
        raise LogRaceError(f"log index {index} taken concurrently") from e
    return index


def size(session: Session) -> int:
    """The number of leaves: the last index plus one (a primary-key lookup, not a count of every row)."""
    last = session.exec(select(sa.func.max(col(TlogLeaf.idx)))).one()
    return 0 if last is None else int(last) + 1


def leaf_hashes(session: Session, tree_size: int) -> list[bytes]:
    rows = session.exec(
        select(col(TlogLeaf.leaf_hash)).where(col(TlogLeaf.idx) < tree_size).order_by(col(TlogLeaf.idx))
    )
    return [bytes(h) for h in rows]


def signed_head(session: Session, key: PrivateKey, *, now: datetime, cache: TreeCache) -> bytes:
    with cache.lock:
        current = _sync(session, cache)
        return tlog.sign_tree_head(tlog.TreeHead(current, cache.root(current), now), key)


def checkpoint(session: Session, key: PrivateKey, *, origin: str, cache: TreeCache) -> bytes:
    """The whole log as a C2SP checkpoint note signed by the registry key."""
    with cache.lock:
        current = _sync(session, cache)
        return sign_checkpoint(Checkpoint(origin, current, cache.root(current)), key)


def inclusion(session: Session, index: int, tree_size: int, *, cache: TreeCache) -> tlog.InclusionProof:
    with cache.lock:
        _check_size(tree_size, _sync(session, cache))
        if not 0 <= index < tree_size:
            raise InputError(f"leaf index {index} is outside a tree of size {tree_size}")
        return tlog.InclusionProof(index, tree_size, cache.inclusion_path(index, tree_size))


def consistency(session: Session, first: int, second: int, *, cache: TreeCache) -> tlog.ConsistencyProof:
    with cache.lock:
        _check_size(second, _sync(session, cache))
        if not 0 <= first <= second:
            raise InputError(f"consistency needs 0 <= first <= second, got first={first} second={second}")
        return tlog.ConsistencyProof(first, second, cache.consistency_path(first, second))


def evidence(
    session: Session, key: PrivateKey, *, origin: str, index: int, since: int, cache: TreeCache
) -> dict[str, Any]:
    """One snapshot for a client: checkpoint, leaf ``index``, its inclusion, consistency from ``since``.

    Everything is computed against the same tree size under the cache lock, in one round trip; a part
    that does not apply (no such leaf, ``since`` is 0 or beyond the log) is ``None``.
    """
    with cache.lock:
        current = _sync(session, cache)
        note = sign_checkpoint(Checkpoint(origin, current, cache.root(current)), key)
        found = entries(session, index, index + 1) if 0 <= index < current else []
        return {
            "checkpoint": note.decode("utf-8"),
            "entry": found[0].to_json() if found else None,
            "inclusion": tlog.InclusionProof(index, current, cache.inclusion_path(index, current)).to_json()
            if found
            else None,
            "consistency": tlog.ConsistencyProof(
                since, current, cache.consistency_path(since, current)
            ).to_json()
            if 0 < since <= current
            else None,
        }


def entries(session: Session, start: int, end: int) -> list[tlog.LogEntry]:
    if start < 0 or end < start:
        raise InputError(f"bad entry range start={start} end={end}: expected 0 <= start <= end")
    end = min(end, start + tlog.MAX_ENTRIES_PER_PAGE)
    rows = session.exec(
        select(TlogLeaf)
        .where(col(TlogLeaf.idx) >= start, col(TlogLeaf.idx) < end)
        .order_by(col(TlogLeaf.idx))
    )
    return [tlog.LogEntry(r.idx, r.kind, bytes(r.body), bytes(r.leaf_hash), r.created) for r in rows]


def _check_size(tree_size: int, current: int) -> None:
    if not 1 <= tree_size <= current:
        raise InputError(f"tree size {tree_size} is outside 1..{current} (the log's current size)")


def _sync(session: Session, cache: TreeCache) -> int:
    """Bring ``cache`` up to the database's log (new leaves only); return the log's size."""
    current = size(session)
    last = cache.last_leaf()
    if current < cache.size or (last is not None and _leaf_at(session, cache.size - 1) != last):
        cache.clear()  # the log shrank or was rewritten under us: read it again
    if current > cache.size:
        rows = session.exec(
            select(col(TlogLeaf.leaf_hash)).where(col(TlogLeaf.idx) >= cache.size).order_by(col(TlogLeaf.idx))
        )
        cache.extend([bytes(h) for h in rows])
    return min(current, cache.size)


def _leaf_at(session: Session, index: int) -> bytes | None:
    found = session.exec(select(col(TlogLeaf.leaf_hash)).where(col(TlogLeaf.idx) == index)).first()
    return None if found is None else bytes(found)


def _serialise_appends(session: Session) -> None:
    """On PostgreSQL, hold a transaction-scoped advisory lock so appenders take turns for the next index.

    Without it, replicas racing for ``max(idx) + 1`` retry on the unique index, and a busy burst can
    exhaust the retries. SQLite needs nothing: it admits one writer transaction at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": LOG_APPEND_LOCK_ID})
