"""The transparency log kept in the database: appending leaves inside a transaction, and proofs.

The Merkle maths is in ``signing/merkle.py`` (checkpoint notes in ``signing/checkpoint.py``);
this module stores leaves (``tlog_leaves``, primary key = index) and
reads leaf hashes back. An append takes the next index inside the caller's transaction, so a leaf exists
exactly when the change it records committed. Two replicas appending at once on PostgreSQL collide on the
primary key; the loser gets :class:`LogRaceError` and the service retries its whole transaction.

Proofs recompute from the stored leaf hashes (O(n) reading, fine for catalogues of 10^5 entries); cached
subtree hashes can come later without changing the interface.
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
    return int(session.exec(select(sa.func.count()).select_from(TlogLeaf)).one())


def leaf_hashes(session: Session, tree_size: int) -> list[bytes]:
    rows = session.exec(
        select(col(TlogLeaf.leaf_hash)).where(col(TlogLeaf.idx) < tree_size).order_by(col(TlogLeaf.idx))
    )
    return [bytes(h) for h in rows]


def signed_head(session: Session, key: PrivateKey, *, now: datetime) -> bytes:
    leaves = leaf_hashes(session, size(session))
    return tlog.sign_tree_head(tlog.TreeHead(len(leaves), tlog.root_hash(leaves), now), key)


def checkpoint(session: Session, key: PrivateKey, *, origin: str) -> bytes:
    """The whole log as a C2SP checkpoint note signed by the registry key."""
    leaves = leaf_hashes(session, size(session))
    return sign_checkpoint(Checkpoint(origin, len(leaves), tlog.root_hash(leaves)), key)


def inclusion(session: Session, index: int, tree_size: int) -> tlog.InclusionProof:
    _check_size(session, tree_size)
    leaves = leaf_hashes(session, tree_size)
    return tlog.InclusionProof(index, tree_size, tlog.inclusion_path(index, leaves))


def consistency(session: Session, first: int, second: int) -> tlog.ConsistencyProof:
    _check_size(session, second)
    if not 0 <= first <= second:
        raise InputError(f"consistency needs 0 <= first <= second, got first={first} second={second}")
    leaves = leaf_hashes(session, second)
    return tlog.ConsistencyProof(first, second, tlog.consistency_path(first, leaves))


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


def _check_size(session: Session, tree_size: int) -> None:
    current = size(session)
    if not 1 <= tree_size <= current:
        raise InputError(f"tree size {tree_size} is outside 1..{current} (the log's current size)")


def _serialise_appends(session: Session) -> None:
    """On PostgreSQL, hold a transaction-scoped advisory lock so appenders take turns for the next index.

    Without it, replicas racing for ``max(idx) + 1`` retry on the unique index, and a busy burst can
    exhaust the retries. SQLite needs nothing: it admits one writer transaction at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:lock_id)"), {"lock_id": LOG_APPEND_LOCK_ID})
