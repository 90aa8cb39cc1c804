"""Garbage collection of the blob store: blobs never published, and objects whose row never committed.

Two kinds of leftovers live under a content address (the store's own temporary uploads are the store's job,
``BlobStore.collect_garbage``):

* **unpublished blobs**: a ``blobs`` row and its object that no version references (the loser of a 409, a
  client that gave up after step 1). The row goes first, then, if no upload wrote the row again meanwhile,
  the object; a crash between the two leaves an orphan object, the second kind.
* **orphan objects**: a committed object that no row names, left by a crash between the blob's commit and
  its ``blobs`` row (or the preview's row). Found by listing the store (``BlobStore.iter_blobs``) and asking
  the database, in batches, which of the listed digests are still named by a ``blobs`` row or a preview.

A crash leaves a handful of orphans. When a run finds many, and they are a large share of the store, the
database and the store disagree wholesale — a replica pointed at the wrong (or a fresh, just-migrated)
``LORAREG_DATABASE_URL``, an old dump restored, two deployments sharing one bucket prefix — and deleting
them would destroy adapters. Such a run deletes no orphan and reports how many it spared.

Both spare anything younger than the grace period: a young object may be an upload in flight on another
replica, whose row is about to commit. Revocations are not consulted, as before: a revoked digest that a
version references keeps its row and object (it is served as 451); one that nothing references is collected
like any other, and its ``revocations`` row still refuses any upload of it.

Deliberately not here: the store's temporary uploads, the grace period's default, and any deletion of a
row or object that a version, a blob row or a preview still names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from lorareg.registry.blobs import BlobStore
from lorareg.registry.db import Blob, Database, Preview, Version

GC_BATCH = 1000  # unpublished blobs examined per collection
ORPHAN_CHECK_BATCH = 500  # listed digests looked up in the database per query (under SQLite's 999 variables)
ORPHAN_ALARM_COUNT = 20  # more orphans than this in one run ...
ORPHAN_ALARM_SHARE = 0.25  # ... that are also over this share of the old objects listed: spare them all


def collect_unpublished(db: Database, store: BlobStore, *, cutoff: datetime) -> int:
    """Delete up to ``GC_BATCH`` blobs uploaded before ``cutoff`` that no version references; return how many.

    A row never points at a deleted object for longer than a racing upload takes, and such a row reads as
    "not uploaded" (``Registry.upload_blob`` re-stores the object).
    """
    removed = 0
    for sha256 in _unpublished_blobs(db, cutoff):
        if _delete_blob_row(db, sha256, cutoff):
            with db.read() as session:
                if session.get(Blob, sha256) is not None:
                    continue  # uploaded again just now: the object is theirs
            store.delete(sha256)
            removed += 1
    return removed


def collect_orphans(db: Database, store: BlobStore, *, older_than_s: float) -> tuple[int, int]:
    """Delete objects older than ``older_than_s`` seconds that no blob row or preview names.

    Returns:
        ``(deleted, spared)``: ``spared`` is non-zero only when the orphans look like a database that is
        not this store's (see the module docstring), and then nothing was deleted.

    The whole store is listed first, to count; each batch of candidates is looked up again right before it
    is deleted, so an upload whose row commits meanwhile keeps its object. The one race left is a re-upload
    of an *old* orphan whose row commits in the milliseconds between that lookup and the delete: the row
    then names a missing object, which ``upload_blob`` treats as not uploaded (the same window the
    unpublished-blob collection accepts).
    """
    listed, candidates = 0, []
    for batch in _batches(store.iter_blobs(older_than_s), ORPHAN_CHECK_BATCH):
        listed += len(batch)
        candidates += sorted(set(batch) - _named_by_rows(db, batch))
    if len(candidates) > ORPHAN_ALARM_COUNT and len(candidates) > ORPHAN_ALARM_SHARE * listed:
        return 0, len(candidates)
    deleted = 0
    for batch in _batches(candidates, ORPHAN_CHECK_BATCH):
        for sha256 in sorted(set(batch) - _named_by_rows(db, batch)):
            store.delete(sha256)
            deleted += 1
    return deleted, 0


def _unpublished_blobs(db: Database, cutoff: datetime) -> list[str]:
    referenced = select(col(Version.sha256)).where(col(Version.sha256) == col(Blob.sha256))
    with db.read() as session:
        query = (
            select(col(Blob.sha256))
            .where(col(Blob.uploaded_at) < cutoff, ~referenced.exists())
            .limit(GC_BATCH)
        )
        return list(session.exec(query).all())


def _delete_blob_row(db: Database, sha256: str, cutoff: datetime) -> bool:
    """Delete one unpublished blob row; False if a version took it or it was re-uploaded meanwhile."""
    referenced = select(col(Version.sha256)).where(col(Version.sha256) == sha256)
    statement = delete(Blob).where(
        col(Blob.sha256) == sha256, col(Blob.uploaded_at) < cutoff, ~referenced.exists()
    )
    try:
        with db.write() as session:
            return bool(session.exec(statement).rowcount)  # type: ignore[attr-defined]
    except IntegrityError:
        return False  # a version referencing it committed between the check and the delete


def _named_by_rows(db: Database, digests: list[str]) -> set[str]:
    """Which of ``digests`` a ``blobs`` row or a preview (image or thumbnail) names."""
    image, thumb = col(Preview.sha256), col(Preview.thumb_sha256)
    with db.read() as session:
        blobs = set(session.exec(select(col(Blob.sha256)).where(col(Blob.sha256).in_(digests))).all())
        previews = session.exec(
            select(image, thumb).where(sa.or_(image.in_(digests), thumb.in_(digests)))
        ).all()
    return blobs | {digest for pair in previews for digest in pair}


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
