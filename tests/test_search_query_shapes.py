"""The creator filter gives the same pages whichever query shape ``search.py`` picks for it.

On SQLite a prolific creator is searched by walking the sort order's index and a rare one by looking its
versions up and sorting them (``SQLITE_CREATOR_SORT_MAX_ROWS`` chooses); both must list the same versions in
the same order, page after page, with yanked versions hidden. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from lorareg.registry import search
from lorareg.registry.records import SearchQuery, SortOrder
from lorareg.registry.service import Registry
from tests.fixtures.registry import Publisher

PROLIFIC = [{"name": "Mara Quist", "role": "trainer"}]
OTHER = [{"name": "Leo Marsh", "role": "trainer"}]


def _all_pages(registry: Registry, *, creator: str, sort: SortOrder) -> list[str]:
    names: list[str] = []
    cursor: str | None = None
    while True:
        page = registry.search(SearchQuery(creator=creator, sort=sort, limit=2, cursor=cursor))
        names += [f"{item.name}@{item.version}" for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return names


@pytest.mark.parametrize("sort", ["newest", "name"])
@pytest.mark.parametrize(
    "sort_max_rows",
    [pytest.param(1, id="walk-sort-index"), pytest.param(1000, id="look-up-and-sort")],
)
def test_prolific_creator_pages_are_the_same_in_either_query_shape(
    registry: Registry,
    publisher: Publisher,
    monkeypatch: pytest.MonkeyPatch,
    sort: SortOrder,
    sort_max_rows: int,
) -> None:
    for adapter in ("delta", "alpha", "charlie", "bravo"):
        publisher.publish(adapter, "1.0.0", creators=PROLIFIC)
    publisher.publish("alpha", "1.1.0", creators=PROLIFIC)
    publisher.publish("echo", "1.0.0", creators=OTHER)
    registry.yank("acme/charlie", "1.0.0", principal=publisher.principal)
    monkeypatch.setattr(search, "SQLITE_CREATOR_SORT_MAX_ROWS", sort_max_rows)

    names = _all_pages(registry, creator=" mara QUIST ", sort=sort)

    expected = {
        "newest": ["acme/alpha@1.1.0", "acme/bravo@1.0.0", "acme/alpha@1.0.0", "acme/delta@1.0.0"],
        "name": ["acme/alpha@1.1.0", "acme/alpha@1.0.0", "acme/bravo@1.0.0", "acme/delta@1.0.0"],
    }[sort]
    assert names == expected


def test_unknown_creator_finds_nothing_in_either_query_shape(
    registry: Registry, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    publisher.publish("alpha", "1.0.0", creators=PROLIFIC)
    for sort_max_rows in (0, 1000):
        monkeypatch.setattr(search, "SQLITE_CREATOR_SORT_MAX_ROWS", sort_max_rows)
        assert _all_pages(registry, creator="Nobody Here", sort="newest") == []
