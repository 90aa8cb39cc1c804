"""Alembic environment of lorareg, driven from Python by ``lorareg.registry.db.migrate``; no alembic.ini.

``schema.upgrade`` hands over an open connection (``config.attributes["connection"]``) inside its own
transaction, so it can hold a PostgreSQL advisory lock while two replicas start at once. Without one, the
URL comes from ``config.attributes["url"]`` (a URL in an .ini file would need ``%`` escaped).

SQLite cannot ``ALTER`` most things, so migrations run in batch mode there (copy the table, swap it in).
Migrations never run with SQLite's foreign keys on: dropping a parent table during a batch copy would
otherwise cascade deletes into its children.

The full-text index ``version_fts`` (FTS5 and its shadow tables on SQLite, a tsvector table on PostgreSQL)
is not a SQLModel table: revision 0001 creates it with explicit per-dialect ops, and autogenerate ignores
every table whose name starts with ``version_fts``.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, TypeDecorator, create_engine, pool
from sqlmodel import SQLModel

from lorareg.registry import db  # registers every table on SQLModel.metadata

TARGET_METADATA = SQLModel.metadata


def _include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name is not None and name.startswith(db.FTS_TABLE))


def _render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render a model's TypeDecorator (``db.UTCDateTime``) as the plain SQL type it stores.

    The conversion is Python-side only, and a migration must not import today's models: they change,
    released migrations do not.
    """
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=TARGET_METADATA,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=_include_object,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass a connection or a URL in config.attributes")
    return str(url)


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as new_connection:
            _run(new_connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (``alembic upgrade --sql``), for DBAs who apply it by hand."""
    url = _url()
    context.configure(
        url=url,
        target_metadata=TARGET_METADATA,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
