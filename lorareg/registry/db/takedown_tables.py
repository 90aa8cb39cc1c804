"""Tables of the web-facing features: takedown requests and their audit trail, the per-client rate limit,
reviewer sessions, preview images, and the lineage index (which versions derive from which). Same
``SQLModel.metadata`` as ``tables.py`` (the package face imports both modules, so ``open_database`` and the
Alembic environment see these tables too).

Everything a replica needs lives here, in the database, never in process memory: a rate limit counted in
one replica's memory would let a client multiply its allowance by the number of replicas, and a session
kept in memory would sign the reviewer out whenever the load balancer picks another replica.

The audit table is append-only by construction: ``takedown.py`` only ever inserts into it (a test checks
that earlier rows are unchanged after later decisions). Deliberately no foreign key from previews to
the ``blobs`` table: preview images are stored in the same BlobStore but are not adapter blobs.

``derivations`` is filled by an ORM ``after_insert`` hook on ``Version`` inside the publishing transaction,
so "what derives from this adapter" is an indexed lookup rather than a scan of every manifest; versions are
immutable, so the index never needs updating.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, Index, Text, event
from sqlmodel import Field, SQLModel

from lorareg.registry.db.tables import Version, dt_column


class TakedownRequest(SQLModel, table=True):
    """One request to remove an adapter version; ``id`` is the public tracking id (unguessable)."""

    __tablename__ = "takedown_requests"
    __table_args__ = (Index("ix_takedown_status_created", "status", "created"),)
    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200, index=True)
    version: str = Field(max_length=100)
    sha256: str = Field(max_length=64, index=True)
    reason: str = Field(max_length=20)
    claimant: str = Field(max_length=200)
    contact: str = Field(max_length=320)
    details: str = Field(sa_column=Column(Text, nullable=False))
    good_faith: bool = False
    status: str = Field(max_length=20)
    public_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    all_versions: bool = False
    created: datetime = dt_column()
    updated: datetime = dt_column()


class TakedownEvent(SQLModel, table=True):
    """One line of the append-only audit log: who did what to which request, when, and why."""

    __tablename__ = "takedown_events"
    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="takedown_requests.id", index=True, max_length=40)
    action: str = Field(max_length=20)
    actor: str = Field(max_length=100)
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    at: datetime = dt_column(index=True)


class RateLimitHit(SQLModel, table=True):
    """One counted action of one client (hashed address) in a bucket; old rows are pruned as we go."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_bucket_client_at", "bucket", "client", "at"),)
    id: int | None = Field(default=None, primary_key=True)
    bucket: str = Field(max_length=40)
    client: str = Field(max_length=64)
    at: datetime = dt_column()


class WebSession(SQLModel, table=True):
    """A signed-in reviewer's browser session: only the SHA-256 of the cookie value is stored."""

    __tablename__ = "web_sessions"
    id_sha256: str = Field(primary_key=True, max_length=64)
    token_id: str = Field(foreign_key="tokens.token_id", max_length=32)
    csrf: str = Field(max_length=64)
    created: datetime = dt_column()
    expires: datetime = dt_column(index=True)


class Preview(SQLModel, table=True):
    """A preview image of one version: re-encoded image and thumbnail, both blobs in the BlobStore."""

    __tablename__ = "previews"
    __table_args__ = (Index("ux_previews_version_position", "name", "version", "position", unique=True),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    version: str = Field(max_length=100)
    position: int
    sha256: str = Field(max_length=64, index=True)
    media_type: str = Field(max_length=40)
    width: int
    height: int
    thumb_sha256: str = Field(max_length=64, index=True)
    thumb_media_type: str = Field(max_length=40)
    added: datetime = dt_column()


class Derivation(SQLModel, table=True):
    """One lineage edge: version ``child_id`` declares it derives from ``parent_name@parent_version``."""

    __tablename__ = "derivations"
    child_id: int = Field(foreign_key="versions.id", primary_key=True)
    parent_name: str = Field(primary_key=True, max_length=200, index=True)
    parent_version: str = Field(primary_key=True, max_length=100)


@event.listens_for(Version, "after_insert")
def _index_lineage(_mapper: Any, connection: sa.Connection, target: Version) -> None:
    """Write the new version's ``derived_from`` edges in the same transaction as the version row."""
    parents = {
        (str(p["name"])[:200], str(p.get("version") or "")[:100])
        for p in target.manifest.get("derived_from") or []
        if isinstance(p, dict) and p.get("name") and not p.get("registry")  # external: not an edge here
    }
    if parents and target.id is not None:
        rows = [{"child_id": target.id, "parent_name": n, "parent_version": v} for n, v in sorted(parents)]
        connection.execute(sa.insert(Derivation), rows)
