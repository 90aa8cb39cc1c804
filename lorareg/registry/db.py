"""The registry's tables (SQLModel) and ``open_database``: engine, sessions, schema check, SQLite defaults.

Portable SQL only: every table is plain SQLModel/SQLAlchemy, so the same metadata describes the schema on
SQLite and PostgreSQL; the schema itself is made by the Alembic migrations in ``migrations/`` (``schema.py``).
The one engine-specific object is the full-text index ``version_fts`` (FTS5 on SQLite, ``tsvector`` + GIN
on PostgreSQL), hidden behind ``search.py``. Immutability is enforced by unique constraints, not by checks
in Python: two concurrent inserts of one ``name@version`` cannot both commit.

SQLite runs in WAL mode with foreign keys and a busy timeout; write transactions start with
``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing on a stale read snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    DDL,
    JSON,
    Column,
    DateTime,
    Engine,
    Index,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Field, Session, SQLModel, create_engine

from lorareg.errors import StorageError

SQLITE_BUSY_TIMEOUT_MS = 30_000  # a writer waits up to 30 s for the lock before failing
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


def _dt(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Namespace(SQLModel, table=True):
    __tablename__ = "namespaces"
    name: str = Field(primary_key=True, max_length=63)
    created: datetime = _dt()


class PublisherKey(SQLModel, table=True):
    __tablename__ = "publisher_keys"
    __table_args__ = (UniqueConstraint("namespace", "keyid"),)
    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(foreign_key="namespaces.name", index=True, max_length=63)
    keyid: str = Field(max_length=64, index=True)
    public_pem: str
    added: datetime = _dt()


class User(SQLModel, table=True):
    __tablename__ = "users"
    name: str = Field(primary_key=True, max_length=100)
    role: str = Field(max_length=20)
    created: datetime = _dt()


class Token(SQLModel, table=True):
    __tablename__ = "tokens"
    token_id: str = Field(primary_key=True, max_length=32)
    secret_sha256: str = Field(max_length=64)
    role: str = Field(max_length=20)
    scopes: str = Field(max_length=200)  # space-separated
    namespace: str | None = Field(default=None, foreign_key="namespaces.name", max_length=63)
    user: str | None = Field(default=None, foreign_key="users.name", max_length=100)
    created: datetime = _dt()
    expires: datetime | None = _dt(nullable=True)
    revoked_at: datetime | None = _dt(nullable=True)
    last_used: datetime | None = _dt(nullable=True)


class Blob(SQLModel, table=True):
    __tablename__ = "blobs"
    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    autov1: str | None = Field(default=None, max_length=8, index=True)
    autov2: str = Field(max_length=10, index=True)
    autov3: str = Field(max_length=64, index=True)
    crc32: str = Field(max_length=8, index=True)
    blake3: str = Field(max_length=64, index=True)
    uploaded_at: datetime = _dt(index=True)  # garbage collection finds old unpublished blobs by it


class Adapter(SQLModel, table=True):
    __tablename__ = "adapters"
    name: str = Field(primary_key=True, max_length=200)
    namespace: str = Field(foreign_key="namespaces.name", index=True, max_length=63)
    created: datetime = _dt()


class Version(SQLModel, table=True):
    __tablename__ = "versions"
    __table_args__ = (
        UniqueConstraint("name", "version", name="uq_versions_name_version"),
        Index("ix_versions_newest", "published_at", "id"),
        Index("ix_versions_name_order", "name", "semver_key", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(foreign_key="adapters.name", max_length=200)
    version: str = Field(max_length=100)
    semver_key: str = Field(sa_column=Column(String(400), nullable=False))
    sha256: str = Field(foreign_key="blobs.sha256", index=True, max_length=64)
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
    published_at: datetime = _dt()
    published_by: str | None = Field(default=None, max_length=32)
    yanked: bool = Field(default=False, index=True)
    revoked: bool = Field(default=False, index=True)
    revocation_reason: str | None = None
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
    revoked_at: datetime = _dt()
    revoked_by: str | None = Field(default=None, max_length=32)


class RevocationListState(SQLModel, table=True):
    """The one current signed revocation list (row id 1); replaced by optimistic update on version."""

    __tablename__ = "revocation_list"
    id: int = Field(default=1, primary_key=True)
    version: int
    issued: datetime = _dt()
    expires: datetime = _dt()
    envelope: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class TlogLeaf(SQLModel, table=True):
    """A transparency-log leaf; the primary key on ``idx`` makes two appends at one index impossible."""

    __tablename__ = "tlog_leaves"
    idx: int = Field(primary_key=True)
    kind: str = Field(max_length=20)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created: datetime = _dt()


# The full-text index (see search.py), one table per engine under one name, keyed by versions.id. Versions are
# immutable, so rows are only ever inserted. Migrations carry their own frozen copy of these statements;
# these serve ``SQLModel.metadata.create_all`` (scratch databases in tests and benchmarks).
SQLITE_FTS_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5(document, content='', tokenize='unicode61')",
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


class Database:
    """An engine plus session factories: :meth:`read` for queries, :meth:`write` for one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(lorareg_begin="IMMEDIATE")

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries (no commit); objects stay usable after it closes."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    def is_empty(self) -> bool:
        """True when the database has no tables at all (a brand-new file or database)."""
        try:
            return not sa.inspect(self.engine).get_table_names()
        except SQLAlchemyError as e:
            raise StorageError(f"cannot reach the database: {' '.join(str(e).split())[:300]}") from e


def open_database(url: str, *, create_if_empty: bool = True) -> Database:
    """Open a database by SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://…``), schema checked.

    A database without any table is migrated to the current schema (a new data directory just works);
    any other database must already be at exactly this lorareg's schema revision: ``lorareg admin
    migrate`` upgrades it. Replicas starting together on an empty PostgreSQL database serialise on the
    migration lock, so exactly one creates the tables.

    Raises:
        StorageError: the database cannot be reached, or its schema is behind or ahead (one line saying
            what to run).
    """
    from lorareg.registry import schema  # alembic is imported only when a database is opened

    is_sqlite = url.startswith("sqlite")
    connect_args: dict[str, Any] = {"check_same_thread": False} if is_sqlite else {}
    engine = create_engine(url, connect_args=connect_args)
    if is_sqlite:
        _configure_sqlite(engine)
    db = Database(engine)
    if create_if_empty and db.is_empty():
        schema.upgrade(url)
    else:
        schema.check_schema(url)
    if is_sqlite:
        _refresh_sqlite_statistics(engine)
    return db


def _refresh_sqlite_statistics(engine: Engine) -> None:
    """ANALYZE when the statistics are missing or the catalogue grew or shrank 2x since they were taken.

    Without statistics SQLite sorts a filter's every match (150 ms at 10^5 versions) instead of walking the
    sort order's index (2 ms); sampled statistics mislead it just as much. A full ANALYZE takes ~0.2 s per
    10^5 versions, so it runs only when the row count moved. PostgreSQL's autovacuum does this by itself.
    """
    try:
        with engine.begin() as connection:
            rows = int(connection.exec_driver_sql("SELECT count(*) FROM versions").scalar_one())
            has_stats = connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).first()
            stat = None
            if has_stats is not None:
                stat = connection.exec_driver_sql(
                    "SELECT stat FROM sqlite_stat1 WHERE tbl = 'versions' LIMIT 1"
                ).scalar()
            analysed_rows = int(str(stat).split()[0]) if stat else -1
            if analysed_rows < 0 or not analysed_rows / 2 <= rows <= max(2 * analysed_rows, 100):
                connection.exec_driver_sql("ANALYZE")
    except SQLAlchemyError as e:
        raise StorageError(f"refreshing SQLite statistics failed: {' '.join(str(e).split())[:300]}") from e


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, busy timeout; take over BEGIN so writers can ask for ``BEGIN IMMEDIATE``."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" hook below emits BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("lorareg_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


# The takedown, session, preview and fingerprint tables live in their own modules on the same metadata;
# importing them here (after every name they use exists) registers them wherever this module is imported,
# Alembic included.
from lorareg.registry import fingerprints_db as _fingerprints_db  # noqa: E402,F401
from lorareg.registry import takedown_db as _takedown_db  # noqa: E402,F401
