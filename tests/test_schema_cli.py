"""The schema as operators meet it: ``lorareg admin migrate`` upgrades (from the data dir or
``LORAREG_DATABASE_URL``), and ``serve`` / the admin commands refuse a database at another revision with one
line saying what to run — while a brand-new empty data dir or database just works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from lorareg.errors import StorageError
from lorareg.registry.db import migrate as schema
from lorareg.registry.service import default_database_url, open_registry

FIRST, HEAD = "0001", schema.head_revision()
BEHIND_ERROR = (
    f"error: database schema is at rev {FIRST}, this lorareg needs {HEAD}: run 'lorareg admin migrate'"
)


def lorareg(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LORAREG_")}
    return subprocess.run(
        [sys.executable, "-m", "lorareg", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def behind(tmp_path: Path, database_url: str) -> tuple[Path, str]:
    """A data dir whose database (SQLite in it, or PostgreSQL) is at the first revision, not at head."""
    data = tmp_path / "data"
    data.mkdir()
    url = database_url if database_url.startswith("postgresql") else default_database_url(data)
    schema.upgrade(url, revision=FIRST)
    return data, url


def test_serve_refuses_a_database_behind_with_one_line(behind: tuple[Path, str]) -> None:
    data, url = behind
    result = lorareg("serve", "--data", str(data), "--port", "1", env={"LORAREG_DATABASE_URL": url})
    assert result.returncode == StorageError.exit_code
    assert result.stderr.strip() == BEHIND_ERROR


def test_admin_commands_refuse_it_until_migrate_upgrades_it(behind: tuple[Path, str]) -> None:
    data, url = behind
    env = {"LORAREG_DATABASE_URL": url}
    refused = lorareg("admin", "user", "add", "ada", "--role", "admin", "--data", str(data), env=env)
    assert refused.stderr.strip() == BEHIND_ERROR

    migrated = lorareg("admin", "migrate", "--data", str(data), "--json", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert json.loads(migrated.stdout) == {"from": FIRST, "to": HEAD}
    again = lorareg("admin", "migrate", "--data", str(data), "--json", env=env)
    assert json.loads(again.stdout) == {"from": HEAD, "to": HEAD}
    added = lorareg("admin", "user", "add", "ada", "--role", "admin", "--data", str(data), env=env)
    assert added.returncode == 0, added.stderr


def test_open_registry_refuses_a_newer_schema(tmp_path: Path, database_url: str) -> None:
    open_registry(tmp_path / "data", database_url=database_url).db.engine.dispose()
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))  # a newer lorareg migrated
    engine.dispose()
    with pytest.raises(StorageError, match="at rev 9999, newer than this lorareg knows"):
        open_registry(tmp_path / "data", database_url=database_url)


def test_a_database_with_tables_but_no_revision_is_refused(tmp_path: Path, database_url: str) -> None:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    with pytest.raises(StorageError, match="at rev none, this lorareg needs"):
        open_registry(tmp_path / "data", database_url=database_url)


def test_a_new_empty_data_dir_gets_the_current_schema_stamped(tmp_path: Path, database_url: str) -> None:
    registry = open_registry(tmp_path / "data", database_url=database_url)
    registry.db.engine.dispose()
    assert schema.current_revision(database_url) == HEAD
