"""The query shapes that keep the catalogue fast at a million versions answer as the plain ones do.

Issue #18 (a million versions): a text search in newest order reads a window of the newest versions instead
of every match; a rare word is looked up instead of walked; a prolific creator is a primary-key probe per
walked version; a blob published under many names is expanded to a page of its versions, best first. Each
story checks the answers (on SQLite and PostgreSQL) and, on SQLite, the query plan that makes it cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from lorareg.registry import catalog, search
from lorareg.registry.db import Version, migrate
from lorareg.registry.records import SearchQuery, SortOrder
from lorareg.registry.service import Registry, open_registry
from tests.fixtures.registry import Publisher, build_adapter, make_publisher

PROLIFIC = [{"name": "Mara Quist", "role": "trainer"}]


def _pages(registry: Registry, query: SearchQuery, *, between: Any = None) -> list[str]:
    """Every page of ``query`` (limit 2), calling ``between(page_number)`` after each page."""
    names: list[str] = []
    cursor: str | None = None
    page_number = 0
    while True:
        page = registry.search(replace(query, limit=2, cursor=cursor))
        names += [f"{item.name}@{item.version}" for item in page.items]
        page_number += 1
        if between is not None:
            between(page_number)
        cursor = page.next_cursor
        if cursor is None:
            return names


def _publish_words(publisher: Publisher) -> None:
    """Seven versions; "ink" in five of them, "wash" in three; a3 and a4 share one publication time (a tie
    that the id breaks: a4, published later, comes first)."""
    texts = ["ink wash", "ink", "moss", "ink wash", "ink", "moss", "ink wash"]
    for i, text in enumerate(texts):
        publisher.publish(f"a{i}", "1.0.0", description=f"{text} study")
    with publisher.registry.db.write() as session:
        tie = session.exec(select(Version.published_at).where(col(Version.name) == "acme/a4")).one()
        session.execute(sa.update(Version).where(col(Version.name) == "acme/a3").values(published_at=tie))


@pytest.mark.parametrize("window", [1, 2, 3, 2000], ids=lambda w: f"window-{w}")
def test_text_pages_are_the_same_whatever_the_window_with_ties_and_a_yank_between_pages(
    registry: Registry, publisher: Publisher, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    _publish_words(publisher)
    monkeypatch.setattr(search, "SQLITE_TEXT_WINDOW", window)

    def yank_after_first_page(page_number: int) -> None:
        if page_number == 1:  # a version on a later page disappears while the client pages
            registry.yank("acme/a1", "1.0.0", principal=publisher.principal)

    names = _pages(registry, SearchQuery(text="ink"), between=yank_after_first_page)

    assert names == ["acme/a6@1.0.0", "acme/a4@1.0.0", "acme/a3@1.0.0", "acme/a0@1.0.0"]
    assert _pages(registry, SearchQuery(text="INK wash")) == [
        "acme/a6@1.0.0",
        "acme/a3@1.0.0",
        "acme/a0@1.0.0",
    ]


@pytest.mark.parametrize("window", [1, 2000], ids=lambda w: f"window-{w}")
def test_text_with_other_filters_pages_the_same_through_the_window(
    registry: Registry, publisher: Publisher, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    for i in range(5):
        creators = PROLIFIC if i % 2 == 0 else [{"name": "Leo Marsh", "role": "trainer"}]
        publisher.publish(f"b{i}", "1.0.0", description="ink study", creators=creators)
    monkeypatch.setattr(search, "SQLITE_TEXT_WINDOW", window)
    monkeypatch.setattr(search, "SQLITE_CREATOR_SORT_MAX_ROWS", 1)  # the walking shape for the creator

    names = _pages(registry, SearchQuery(text="ink", creator="mara quist"))

    assert names == ["acme/b4@1.0.0", "acme/b2@1.0.0", "acme/b0@1.0.0"]


@pytest.mark.parametrize("sort", ["newest", "name"])
@pytest.mark.parametrize("lookup_max", [0, 1000], ids=["walk-sort-index", "look-up-and-sort"])
def test_rare_and_common_words_page_the_same_in_either_query_shape(
    registry: Registry,
    publisher: Publisher,
    monkeypatch: pytest.MonkeyPatch,
    sort: SortOrder,
    lookup_max: int,
) -> None:
    _publish_words(publisher)
    monkeypatch.setattr(search, "SQLITE_TEXT_WINDOW", 1)  # too small: every query falls back to the full one
    monkeypatch.setattr(search, "SQLITE_TEXT_LOOKUP_MAX_ROWS", lookup_max)

    names = _pages(registry, SearchQuery(text="wash", sort=sort))

    expected = ["acme/a0@1.0.0", "acme/a3@1.0.0", "acme/a6@1.0.0"]
    assert names == (expected if sort == "name" else expected[::-1])
    assert _pages(registry, SearchQuery(text="nothingmatchesthis", sort=sort)) == []


@pytest.mark.parametrize("max_terms", [1, 64], ids=["prefix-term", "expanded-terms"])
def test_a_word_finds_every_word_it_prefixes_whether_expanded_or_not(
    registry: Registry, publisher: Publisher, monkeypatch: pytest.MonkeyPatch, max_terms: int
) -> None:
    for i, text in enumerate(["inkwell", "ink", "moss", "inky", "Ink-Jet"]):
        publisher.publish(f"c{i}", "1.0.0", description=f"{text} study")
    monkeypatch.setattr(search, "SQLITE_PREFIX_MAX_TERMS", max_terms)

    assert _pages(registry, SearchQuery(text="ink")) == [
        "acme/c4@1.0.0",
        "acme/c3@1.0.0",
        "acme/c1@1.0.0",
        "acme/c0@1.0.0",
    ]
    assert _pages(registry, SearchQuery(text="ink jet", sort="name")) == ["acme/c4@1.0.0"]
    assert _pages(registry, SearchQuery(text="inkz")) == []
    assert _pages(registry, SearchQuery(text="ink zzz")) == []


def test_upgrading_to_0009_lists_the_words_already_indexed(tmp_path: Path) -> None:
    """A database at 0008 (no word list) upgraded to 0009: its versions are found by prefix at once."""
    url = f"sqlite:///{tmp_path / 'lorareg.db'}"
    publisher = make_publisher(open_registry(tmp_path / "data", database_url=url), "acme")
    publisher.publish("ink", "1.0.0", description="inkwell study")
    publisher.registry.db.engine.dispose()
    with sa.create_engine(url).begin() as conn:  # back to what 0008 left
        conn.exec_driver_sql("DROP TABLE version_fts_terms")
        conn.exec_driver_sql("DROP INDEX ix_versions_blob_status")
        conn.exec_driver_sql("CREATE INDEX ix_versions_sha256 ON versions (sha256)")
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0008'")

    assert migrate.upgrade(url) == "0009"

    registry = open_registry(tmp_path / "data", database_url=url)
    assert [v.name for v in registry.search(SearchQuery(text="inkw")).items] == ["acme/ink"]


def test_one_blob_under_many_names_resolves_and_expands_best_first(
    registry: Registry, publisher: Publisher
) -> None:
    for i in range(6):  # the same file, published under six names
        built = build_adapter(publisher.key, f"acme/copy{i}", "1.0.0", seed=424242)
        registry.upload_blob(built.sha256, built.chunks(), principal=publisher.principal)
        registry.publish(f"acme/copy{i}", built.bundle, principal=publisher.principal)
    registry.yank("acme/copy5", "1.0.0", principal=publisher.principal)

    with registry.db.read() as session:
        best = catalog.versions_of_blob(session, built.sha256, limit=3)
        everything = catalog.versions_of_blob(session, built.sha256, limit=100)

    assert [v.name for v in best] == ["acme/copy4", "acme/copy3", "acme/copy2"]
    assert [v.name for v in everything][-1] == "acme/copy5"  # the yanked one after every active one
    assert len(everything) == 6
    assert registry.resolve(built.sha256).name == "acme/copy4"
    registry.yank("acme/copy4", "1.0.0", principal=publisher.principal)
    assert registry.resolve(built.sha256).name == "acme/copy3"


# -- SQLite query plans ------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_publisher(tmp_path: Path) -> Publisher:
    """A publisher on a SQLite registry: the plans below are SQLite's (PostgreSQL plans by its statistics)."""
    registry = open_registry(tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'lorareg.db'}")
    return make_publisher(registry, "acme")


def test_a_blobs_versions_are_an_index_range_not_a_sort(sqlite_publisher: Publisher) -> None:
    registry = sqlite_publisher.registry
    record = sqlite_publisher.publish("ink", "1.0.0")
    with _captured(registry) as statements, registry.db.read() as session:
        catalog.versions_of_blob(session, record.sha256, limit=5)

    plan = _plan(registry, statements[0])

    assert "USING INDEX ix_versions_blob_status (sha256=? AND revoked=? AND yanked=?)" in plan
    assert "TEMP B-TREE" not in plan


def test_a_prolific_creator_is_one_primary_key_probe_per_walked_version(
    sqlite_publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = sqlite_publisher.registry
    sqlite_publisher.publish("ink", "1.0.0", creators=PROLIFIC)
    monkeypatch.setattr(search, "SQLITE_CREATOR_SORT_MAX_ROWS", 0)
    with _captured(registry) as statements:
        registry.search(SearchQuery(creator="Mara Quist"))

    page_query = next(s for s in statements if "ORDER BY versions.published_at DESC" in s[0])
    plan = _plan(registry, page_query)

    assert "CORRELATED SCALAR SUBQUERY" in plan
    assert "version_creators USING COVERING INDEX" in plan
    assert "(version_id=? AND name_key=?)" in plan


@contextmanager
def _captured(registry: Registry) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def remember(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    sa.event.listen(registry.db.engine, "before_cursor_execute", remember)
    try:
        yield statements
    finally:
        sa.event.remove(registry.db.engine, "before_cursor_execute", remember)


def _plan(registry: Registry, captured: tuple[str, Any]) -> str:
    statement, parameters = captured
    with registry.db.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    return "\n".join(str(row[3]) for row in rows)
