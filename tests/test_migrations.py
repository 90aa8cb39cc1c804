"""Schema migrations on every database backend: upgrades keep data, ``serve`` refuses a schema it was not
built for, replicas starting together do not race.

The upgrade stories run twice: on a synthetic chain of revisions (it exists now, and includes the SQLite
table rebuild that would cascade-delete child rows if foreign keys were on) and on the revisions shipped in
``lorareg/registry/migrations`` (a row in every table at the first revision, upgraded to head, nothing lost).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from lorareg.errors import InputError, StorageError
from lorareg.registry import db
from lorareg.registry.db import migrate as schema
from tests.fixtures.services import free_port

SYNTHETIC_REVISIONS = {
    "s001_first.py": """
revision, down_revision, branch_labels, depends_on = "s001", None, None, None
import sqlalchemy as sa
from alembic import op

def upgrade():
    op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.String(50), nullable=False), sa.Column("legacy", sa.String(20)))
    op.create_table("child", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id", ondelete="CASCADE"),
                              nullable=False),
                    sa.Column("body", sa.Text, nullable=False))
""",
    "s002_rebuild_parent.py": """
revision, down_revision, branch_labels, depends_on = "s002", "s001", None, None
import sqlalchemy as sa
from alembic import op

def upgrade():  # on SQLite a batch rebuild: copy, DROP the parent table, rename
    with op.batch_alter_table("parent") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="style"))
        batch.drop_column("legacy")
        batch.create_index("ix_parent_name", ["name"])
""",
    "s003_backfill.py": """
revision, down_revision, branch_labels, depends_on = "s003", "s002", None, None
import sqlalchemy as sa
from alembic import op

def upgrade():
    op.add_column("child", sa.Column("body_length", sa.Integer))
    op.execute("UPDATE child SET body_length = length(body)")
""",
}
SYNTHETIC_HEAD = "s003"


def _shipped_revisions() -> list[str]:
    """Revisions in lorareg/registry/migrations, oldest first."""
    config = Config()
    config.set_main_option("script_location", str(schema.MIGRATIONS_DIR))
    return [s.revision for s in ScriptDirectory.from_config(config).walk_revisions()][::-1]


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    """A script directory with the shipped env.py and template and three synthetic revisions."""
    location = tmp_path / "migrations"
    (location / "versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako"):
        shutil.copy(schema.MIGRATIONS_DIR / name, location / name)
    for name, source in SYNTHETIC_REVISIONS.items():
        (location / "versions" / name).write_text(source)
    return location


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    yield engine
    engine.dispose()


def test_upgrade_from_first_revision_keeps_every_row(
    database_url: str, engine: sa.Engine, synthetic: Path
) -> None:
    schema.upgrade(database_url, revision="s001", script_location=synthetic)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO parent (id, name, legacy) VALUES (1, 'ink', 'x'), (2, 'pixel', NULL)")
        )
        conn.execute(
            sa.text("INSERT INTO child (id, parent_id, body) VALUES (1, 1, 'aa'), (2, 1, 'b'), (3, 2, '')")
        )
    assert schema.upgrade(database_url, script_location=synthetic) == SYNTHETIC_HEAD
    with engine.connect() as conn:
        parents = conn.execute(sa.text("SELECT id, name, kind FROM parent ORDER BY id")).all()
        children = conn.execute(
            sa.text("SELECT id, parent_id, body, body_length FROM child ORDER BY id")
        ).all()
    assert parents == [(1, "ink", "style"), (2, "pixel", "style")]
    assert children == [(1, 1, "aa", 2), (2, 1, "b", 1), (3, 2, "", 0)]  # no cascade from the rebuild


def test_upgrade_is_a_no_op_at_head(database_url: str, synthetic: Path) -> None:
    assert schema.upgrade(database_url, script_location=synthetic) == SYNTHETIC_HEAD
    assert schema.upgrade(database_url, script_location=synthetic) == SYNTHETIC_HEAD
    assert schema.current_revision(database_url) == SYNTHETIC_HEAD


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(
            None,
            "database schema is at rev none, this lorareg needs s003: run 'lorareg admin migrate'",
            id="unmigrated",
        ),
        pytest.param(
            "s002",
            "database schema is at rev s002, this lorareg needs s003: run 'lorareg admin migrate'",
            id="behind",
        ),
        pytest.param(
            "s999",
            "database schema is at rev s999, newer than this lorareg knows (it needs s003)",
            id="newer",
        ),
    ],
)
def test_serve_refuses_a_schema_it_was_not_built_for(
    database_url: str, engine: sa.Engine, synthetic: Path, at: str | None, expected: str
) -> None:
    if at == "s999":
        schema.upgrade(database_url, script_location=synthetic)
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = 's999'"))  # a newer lorareg ran
    elif at is not None:
        schema.upgrade(database_url, revision=at, script_location=synthetic)
    with pytest.raises(StorageError) as caught:
        schema.check_schema(database_url, script_location=synthetic)
    assert str(caught.value).startswith(expected)
    assert "\n" not in str(caught.value)


def test_check_schema_accepts_a_database_at_head(database_url: str, synthetic: Path) -> None:
    schema.upgrade(database_url, script_location=synthetic)
    schema.check_schema(database_url, script_location=synthetic)


def test_two_replicas_migrating_at_once_both_succeed(postgres_url: str, synthetic: Path) -> None:
    results: list[object] = []

    def migrate() -> None:
        try:
            results.append(schema.upgrade(postgres_url, script_location=synthetic))
        except Exception as e:  # collected and asserted below
            results.append(e)

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == [SYNTHETIC_HEAD] * 3


def test_unknown_target_revision_is_bad_input(database_url: str, synthetic: Path) -> None:
    with pytest.raises(InputError, match="cannot upgrade .* to 'nope'"):
        schema.upgrade(database_url, revision="nope", script_location=synthetic)


def test_unreachable_database_error_hides_the_password() -> None:
    url = f"postgresql+psycopg://lorareg:hunter2-secret@127.0.0.1:{free_port()}/registry"
    with pytest.raises(StorageError) as caught:
        schema.current_revision(url)
    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


# --- the shipped revisions ---------------------------------------------------------------------------------


def test_shipped_migrations_create_exactly_the_current_tables(database_url: str, engine: sa.Engine) -> None:
    assert schema.upgrade(database_url) == schema.head_revision()
    schema.check_schema(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": _not_fts})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_first_revision_with_data_upgrades_to_head_losing_nothing(
    database_url: str, engine: sa.Engine
) -> None:
    schema.upgrade(database_url, revision=_shipped_revisions()[0])
    with engine.begin() as conn:
        seeded = _seed_every_table(conn)
    assert seeded, "the first revision created no table"
    schema.upgrade(database_url)
    with engine.connect() as conn:
        for table, row in seeded.items():
            present = sa.MetaData()
            present.reflect(conn, only=[table])
            kept = {
                c: v
                for c, v in row.items()
                if c in present.tables[table].c and isinstance(v, str | int | bytes)
            }
            query = sa.select(*(present.tables[table].c[c] for c in kept))
            assert [tuple(kept.values())] == [tuple(r) for r in conn.execute(query)], (
                f"rows of {table} changed"
            )


def test_data_harness_can_fill_every_current_table(database_url: str, engine: sa.Engine) -> None:
    """Keeps the harness above honest: it can seed every table of today's models."""
    SQLModel.metadata.create_all(engine)
    with engine.begin() as conn:
        seeded = _seed_every_table(conn)
    expected = {t.name for t in SQLModel.metadata.sorted_tables if _not_fts(t, t.name, "table", False, None)}
    assert set(seeded) == expected


# --- private helpers ---------------------------------------------------------------------------------------


def _not_fts(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name is not None and name.startswith(db.FTS_TABLE))


def _seed_every_table(conn: sa.Connection) -> dict[str, dict[str, Any]]:
    """Insert one row into every table (parents first, foreign keys pointing at the parents' rows)."""
    metadata = sa.MetaData()
    metadata.reflect(conn)
    rows: dict[str, dict[str, Any]] = {}
    for table in metadata.sorted_tables:
        if table.name == "alembic_version" or not _not_fts(table, table.name, "table", True, None):
            continue
        row = {column.name: _value_for(column, rows) for column in table.columns}
        conn.execute(table.insert().values(**row))
        rows[table.name] = row
    return rows


def _value_for(column: sa.Column[Any], rows: dict[str, dict[str, Any]]) -> Any:
    for fk in column.foreign_keys:
        parent = rows.get(fk.column.table.name)
        if parent is not None:
            return parent[fk.column.name]
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return True
    if isinstance(kind, sa.Integer | sa.Numeric | sa.Float):
        return 1
    if isinstance(kind, sa.DateTime):
        return datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    if isinstance(kind, sa.Date):
        return date(2024, 5, 6)
    if isinstance(kind, sa.JSON):
        return {"seeded": True}
    if isinstance(kind, sa.LargeBinary):
        return b"\x00seed"
    if isinstance(kind, sa.String):
        text = f"{column.table.name}.{column.name}"
        return text[: kind.length] if kind.length else text
    return None if column.nullable else "seed"
