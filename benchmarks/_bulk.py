"""Bulk loading of cloned catalogue rows for the catalogue and page benchmarks (10^6 versions in minutes).

Publishing one version writes, in one transaction: its ``versions`` row, an ``adapters`` row for a new
name, ``version_creators`` rows, its ``version_fts`` row (``search.document_words``; on SQLite also its
words in ``version_fts_terms``) and a ``tlog_leaves`` leaf whose index the version row keeps
(``tlog_index``). This module writes exactly those rows for many clones at once, without the ORM: on
SQLite through ``executemany`` on the driver connection in large transactions; on PostgreSQL with ``COPY``
(the ``tsvector`` given as its text form, words quoted, so it equals ``array_to_tsvector`` of the same
words). The caller runs one ANALYZE at the end.

Column values are the database's own encodings (SQLite keeps naive UTC text and 0/1, PostgreSQL ``json``,
``bytea`` and ``timestamptz``), produced by the same SQLAlchemy column types publishing uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from lorareg.manifest.canonical import canonical_json
from lorareg.registry.db import Adapter, TlogLeaf, Version, VersionCreator
from lorareg.registry.search import document_words
from lorareg.signing.merkle import leaf_hash


def load(engine: sa.Engine, rows: Iterator[list[dict[str, Any]]], *, first_leaf: int, now: datetime) -> int:
    """Insert every batch of clone rows (each a ``versions`` row as a dict); return the rows written."""
    written = 0
    leaf = first_leaf
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        sqlite = engine.dialect.name == "sqlite"
        for batch in rows:
            for row in batch:
                row["tlog_index"] = leaf
                leaf += 1
            tables = _tables(engine.dialect, batch, now=now)
            if sqlite:
                _sqlite_batch(driver, tables)
            else:
                _postgres_batch(driver, tables)
            written += len(batch)
    finally:
        raw.close()
    return written


def _tables(dialect: sa.Dialect, batch: list[dict[str, Any]], *, now: datetime) -> dict[str, Any]:
    """Per table, (columns, value tuples) in the database's encoding; ``version_fts`` as word lists."""
    leaves = []
    for row in batch:
        body = {"name": row["name"], "version": row["version"], "sha256": row["sha256"]}
        stamp = row["published_at"].isoformat().replace("+00:00", "Z")
        data = canonical_json({**body, "signers": list(row["signers"]), "kind": "publish", "time": stamp})
        leaves.append(
            {"idx": row["tlog_index"], "kind": "publish", "body": data, "leaf_hash": leaf_hash(data),
             "created": row["published_at"]}
        )  # fmt: skip
    adapters = [{"name": r["name"], "namespace": r["name"].split("/")[0], "created": now} for r in batch]
    creators = [
        {"version_id": r["id"], "name_key": c.lower()} for r in batch for c in sorted(set(r["creators"]))
    ]
    return {
        "adapters": _encoded(dialect, Adapter, adapters),
        "versions": _encoded(dialect, Version, batch),
        "version_creators": _encoded(dialect, VersionCreator, creators),
        "tlog_leaves": _encoded(dialect, TlogLeaf, leaves),
        "version_fts": [(r["id"], document_words(SimpleNamespace(**r))) for r in batch],  # type: ignore[arg-type]
    }


def _encoded(
    dialect: sa.Dialect, model: Any, rows: list[dict[str, Any]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, value tuples) as the model's column types bind them on ``dialect``."""
    columns = list(model.__table__.columns)
    processors = [
        _json_text if isinstance(c.type, sa.JSON) else c.type.bind_processor(dialect) for c in columns
    ]
    names = [c.name for c in columns]
    values = [
        tuple(v if p is None else p(v) for p, v in zip(processors, (r[n] for n in names), strict=True))
        for r in rows
    ]
    return names, values


def _sqlite_batch(driver: Any, tables: dict[str, Any]) -> None:
    driver.execute("BEGIN")
    for table in ("adapters", "versions", "version_creators", "tlog_leaves"):
        columns, values = tables[table]
        marks = ", ".join("?" for _ in columns)
        names = ", ".join(f'"{c}"' for c in columns)
        driver.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", values)  # noqa: S608
    driver.executemany(
        "INSERT INTO version_fts (rowid, document) VALUES (?, ?)",
        [(rowid, " ".join(words)) for rowid, words in tables["version_fts"]],
    )
    terms = sorted({w for _, words in tables["version_fts"] for w in words})
    driver.executemany("INSERT OR IGNORE INTO version_fts_terms (term) VALUES (?)", [(t,) for t in terms])
    driver.execute("COMMIT")


def _postgres_batch(driver: Any, tables: dict[str, Any]) -> None:
    with driver.transaction(), driver.cursor() as cursor:
        for table in ("adapters", "versions", "version_creators", "tlog_leaves"):
            columns, values = tables[table]
            names = ", ".join(f'"{c}"' for c in columns)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # noqa: S608
                for value in values:
                    copy.write_row(value)
        with cursor.copy("COPY version_fts (version_id, document) FROM STDIN") as copy:
            for rowid, words in tables["version_fts"]:
                copy.write_row((rowid, " ".join(f"'{w}'" for w in words)))


def _json_text(value: Any) -> str:
    """JSON columns as the text SQLAlchemy's ``JSON`` type stores (``json.dumps``), for both engines."""
    return json.dumps(value)
