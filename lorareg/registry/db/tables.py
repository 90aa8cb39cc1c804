"""The registry's core tables (SQLModel) and the full-text index DDL, on one ``SQLModel.metadata``.

Portable SQL only: every table is plain SQLModel/SQLAlchemy, so the same metadata describes the schema on
SQLite and PostgreSQL; the schema itself is made by the Alembic migrations in ``migrations/``
(``migrate.py``).
The one engine-specific object is the full-text index ``version_fts`` (FTS5 on SQLite, ``tsvector`` + GIN
on PostgreSQL), hidden behind ``search.py``. Immutability is enforced by unique constraints, not by checks
in Python: two concurrent inserts of one ``name@version`` cannot both commit.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DDL,
    JSON,
    Column,
    DateTime,
    Index,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

FTS_TABLE = "version_fts"


def utcnow() -> datetime:
    """Now, timezone-aware UTC, truncated to microseconds as every database keeps it."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def dt_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Namespace(SQLModel, table=True):
    __tablename__ = "namespaces"
    name: str = Field(primary_key=True, max_length=63)
    created: datetime = dt_column()


class PublisherKey(SQLModel, table=True):
    __tablename__ = "publisher_keys"
    __table_args__ = (UniqueConstraint("namespace", "keyid"),)
    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(foreign_key="namespaces.name", index=True, max_length=63)
    keyid: str = Field(max_length=64, index=True)
    public_pem: str
    added: datetime = dt_column()
    retired: datetime | None = dt_column(nullable=True)  # can no longer publish; what it signed stays valid
    compromised_since: datetime | None = dt_column(nullable=True)  # versions logged from then on: revoked


class User(SQLModel, table=True):
    __tablename__ = "users"
    name: str = Field(primary_key=True, max_length=100)
    role: str = Field(max_length=20)
    created: datetime = dt_column()


class Token(SQLModel, table=True):
    __tablename__ = "tokens"
    token_id: str = Field(primary_key=True, max_length=32)
    secret_sha256: str = Field(max_length=64)
    role: str = Field(max_length=20)
    scopes: str = Field(max_length=200)  # space-separated
    namespace: str | None = Field(default=None, foreign_key="namespaces.name", max_length=63)
    user: str | None = Field(default=None, foreign_key="users.name", max_length=100)
    created: datetime = dt_column()
    expires: datetime | None = dt_column(nullable=True)
    revoked_at: datetime | None = dt_column(nullable=True)
    last_used: datetime | None = dt_column(nullable=True)


class Blob(SQLModel, table=True):
    __tablename__ = "blobs"
    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    autov1: str | None = Field(default=None, max_length=8, index=True)
    autov2: str = Field(max_length=10, index=True)
    autov3: str = Field(max_length=64, index=True)
    crc32: str = Field(max_length=8, index=True)
    blake3: str = Field(max_length=64, index=True)
    uploaded_at: datetime = dt_column(index=True)  # garbage collection finds old unpublished blobs by it
    uploaded_by: str | None = Field(default=None, max_length=64)  # token id: the only reader until published


class Adapter(SQLModel, table=True):
    __tablename__ = "adapters"
    name: str = Field(primary_key=True, max_length=200)
    namespace: str = Field(foreign_key="namespaces.name", index=True, max_length=63)
    created: datetime = dt_column()


class Version(SQLModel, table=True):
    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_versions_name_version"),
        Index("ix_versions_newest", "published_at", "id"),
        Index("ix_versions_name_order", "name", "semver_key", "id"),
        # a blob's versions, active first, newest first, as an index range (migration 0009)
        Index("ix_versions_blob_status", "sha256", "revoked", "yanked", "published_at", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(foreign_key="adapters.name", max_length=200)
    version: str = Field(max_length=100)
    semver_key: str = Field(sa_column=Column(String(400), nullable=False))
    sha256: str = Field(foreign_key="blobs.sha256", max_length=64)  # indexed by ix_versions_blob_status
    manifest: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    bundle: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    signers: list[str] = Field(sa_column=Column(JSON, nullable=False))
    family: str = Field(index=True, max_length=40)
    license_id: str | None = Field(default=None, index=True, max_length=100)
    commercial_use: bool | None = Field(default=None, index=True)
    consent_subject: str | None = Field(default=None, index=True, max_length=40)
    consent_status: str | None = Field(default=None, index=True, max_length=40)
    creators: list[str] = Field(sa_column=Column(JSON, nullable=False))
    trigger_words: list[str] = Field(sa_column=Column(JSON, nullable=False))
    tags: list[str] = Field(sa_column=Column(JSON, nullable=False))
    description: str = ""
    created: str | None = Field(default=None, max_length=64)  # the manifest's own claim, as written
    published_at: datetime = dt_column()
    published_by: str | None = Field(default=None, max_length=32)
    yanked: bool = Field(default=False, index=True)
    revoked: bool = Field(default=False, index=True)
    revocation_reason: str | None = None
    unreviewed: bool = Field(
        default=False, index=True
    )  # an import with unknown licence/consent (migration 0004)
    tlog_index: int | None = None


class VersionCreator(SQLModel, table=True):
    """One row per (version, creator) so the creator filter is an indexed lookup, not a JSON scan."""

    __tablename__ = "version_creators"
    version_id: int = Field(foreign_key="versions.id", primary_key=True)
    name_key: str = Field(primary_key=True, max_length=200, index=True)  # lower-cased creator name


class Revocation(SQLModel, table=True):
    __tablename__ = "revocations"
    sha256: str = Field(primary_key=True, max_length=64)
    reason: str
    revoked_at: datetime = dt_column()
    revoked_by: str | None = Field(default=None, max_length=32)


class RevocationListState(SQLModel, table=True):
    """The one current signed revocation list (row id 1); replaced by optimistic update on version."""

    __tablename__ = "revocation_list"
    id: int = Field(default=1, primary_key=True)
    version: int
    issued: datetime = dt_column()
    expires: datetime = dt_column()
    envelope: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TlogLeaf(SQLModel, table=True):
    """A transparency-log leaf; the primary key on ``idx`` makes two appends at one index impossible."""

    __tablename__ = "tlog_leaves"
    idx: int = Field(primary_key=True)
    kind: str = Field(max_length=20)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created: datetime = dt_column()


class RegistryKeySet(SQLModel, table=True):
    """A key-set document announcing a registry key rotation (``lorareg.signing.keyset``), oldest first."""

    __tablename__ = "registry_keysets"
    version: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    envelope: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created: datetime = dt_column()


# The full-text index (see search.py), one table per engine under one name, keyed by versions.id. Versions are
# immutable, so rows are only ever inserted. Migrations carry their own frozen copy of these statements;
# these serve ``SQLModel.metadata.create_all`` (scratch databases in tests and benchmarks).
FTS_TERMS_TABLE = f"{FTS_TABLE}_terms"  # SQLite: every indexed word, to expand query prefixes (0009)
SQLITE_FTS_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(document, content='', tokenize='unicode61')",
    f"CREATE TABLE IF NOT EXISTS {FTS_TERMS_TABLE} (term TEXT PRIMARY KEY) WITHOUT ROWID",
)
POSTGRES_FTS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {FTS_TABLE} (version_id INTEGER PRIMARY KEY REFERENCES versions (id), "
    "document TSVECTOR NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS {FTS_TABLE}_document ON {FTS_TABLE} USING gin (document)",
)
for _dialect, _statements in (("sqlite", SQLITE_FTS_DDL), ("postgresql", POSTGRES_FTS_DDL)):
    for _statement in _statements:
        event.listen(
            SQLModel.metadata,
            "after_create",
            DDL(_statement).execute_if(dialect=_dialect),  # type: ignore[no-untyped-call]
        )
