"""``open_database``: engine, sessions, schema check and SQLite defaults.

SQLite runs in WAL mode with foreign keys and a busy timeout; write transactions start with
``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing on a stale read snapshot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    Engine,
    event,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, create_engine

from lorareg.errors import StorageError
from lorareg.registry.db import tables as _tables  # noqa: F401  (every table registered before use)

SQLITE_BUSY_TIMEOUT_MS = 30_000  # a writer waits up to 30 s for the lock before failing


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
    from lorareg.registry.db import migrate as schema  # alembic is imported only when a database is opened

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
