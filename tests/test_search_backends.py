"""Full-text search gives the same versions on SQLite (FTS5) and PostgreSQL (tsvector + GIN).

One corpus is published once per backend (module-scoped: publishing is the slow part), then every query of
the table runs against both. The expected names are written down once, so a backend that tokenises,
folds accents or treats query syntax differently fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lorareg.registry.records import SearchQuery
from lorareg.registry.service import Registry, open_registry
from tests.fixtures.registry import make_publisher
from tests.fixtures.services import PostgresServer

CORPUS: dict[str, dict[str, Any]] = {  # adapter name -> manifest fields that search reads
    "pixel-art": {
        "description": "Crisp 16-bit sprites for retro games",
        "trigger_words": ["pxl_style"],
        "tags": ["pixel", "retro"],
    },
    "ink-wash": {
        "description": "Sumi-e brush strokes, café posters and Straße signs",
        "trigger_words": ["inkwash"],
        "tags": ["ink"],
        "creators": [{"name": "Hana Sató", "role": "trainer"}],
    },
    "neon-city": {
        "description": "Cyberpunk NEON streets at night; 東京 skyline",
        "trigger_words": ["neoncity"],
        "tags": ["city", "night"],
    },
    "watercolor": {
        "description": "Soft watercolour washes (not ink) OR pastel",
        "trigger_words": ["wc"],
        "tags": ["paint"],
    },
}

QUERIES = [
    pytest.param("sprites", ["pixel-art"], id="word"),
    pytest.param("SPRITES", ["pixel-art"], id="case"),
    pytest.param("sprit", ["pixel-art"], id="prefix"),
    pytest.param("wash", ["ink-wash", "watercolor"], id="name-and-description"),
    pytest.param("ink wash", ["ink-wash", "watercolor"], id="all-words"),
    pytest.param("ink brush", ["ink-wash"], id="all-words-narrowing"),
    pytest.param("cafe", ["ink-wash"], id="accent-folded-query"),
    pytest.param("café", ["ink-wash"], id="accent-in-query"),
    pytest.param("sato", ["ink-wash"], id="accent-in-creator"),
    pytest.param("strasse", ["ink-wash"], id="sharp-s-folded"),
    pytest.param("sumi-e", ["ink-wash"], id="hyphenated"),
    pytest.param("pxl_style", ["pixel-art"], id="underscore-trigger"),
    pytest.param("style", ["pixel-art"], id="underscore-part"),
    pytest.param("16", ["pixel-art"], id="digits"),
    pytest.param("東京", ["neon-city"], id="cjk"),
    pytest.param("acme", sorted(CORPUS), id="namespace"),
    pytest.param("night", ["neon-city"], id="tag"),
    pytest.param("OR pastel", ["watercolor"], id="operator-word-is-a-word"),
    pytest.param('"ink" OR NEAR(pixel)', [], id="fts5-syntax-is-text"),
    pytest.param("ink & !pixel | neon:*", [], id="tsquery-syntax-is-text"),
    pytest.param("'; DROP TABLE versions; --", [], id="sql-is-text"),
    pytest.param("x" * 300, [], id="very-long-word"),
    pytest.param("nothing-like-this", [], id="no-match"),
    pytest.param("!!! ???", sorted(CORPUS), id="no-words-means-no-text-filter"),
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The corpus published into a fresh registry on each database backend."""
    data = tmp_path_factory.mktemp("search")
    if request.param == "sqlite":
        yield _publish_corpus(data, f"sqlite:///{data / 'lorareg.db'}")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"s_{uuid.uuid4().hex[:16]}"
    with server.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    registry = _publish_corpus(data, server.url(name))
    try:
        yield registry
    finally:
        registry.db.engine.dispose()
        with server.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize(("text", "expected"), QUERIES)
def test_search_finds_the_same_versions_on_every_backend(
    corpus: Registry, text: str, expected: list[str]
) -> None:
    page = corpus.search(SearchQuery(text=text, limit=50))
    assert sorted(item.name.split("/", 1)[1] for item in page.items) == expected


def test_search_pages_through_text_matches_on_every_backend(corpus: Registry) -> None:
    first = corpus.search(SearchQuery(text="acme", limit=3))
    second = corpus.search(SearchQuery(text="acme", limit=3, cursor=first.next_cursor))
    names = [i.name for i in (*first.items, *second.items)]
    assert sorted(names) == sorted(f"acme/{n}" for n in CORPUS)
    assert second.next_cursor is None


def _publish_corpus(data: Path, url: str) -> Registry:
    registry = open_registry(data, database_url=url)
    publisher = make_publisher(registry, "acme")
    for adapter, fields in CORPUS.items():
        publisher.publish(adapter, "1.0.0", **fields)
    return registry
