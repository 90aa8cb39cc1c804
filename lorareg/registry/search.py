"""Catalogue search behind one function: full text, filters, sort and keyset pagination.

Full text uses each engine's own index, behind :func:`search_versions`: a contentless FTS5 table on SQLite,
a ``tsvector`` column with a GIN index on PostgreSQL (both named ``version_fts``, keyed by version id, filled
by :func:`index_version` inside the publishing transaction; versions are immutable, so rows are only ever
inserted). Text is split into words here, in Python, for both engines: Unicode-folded (accents removed,
case-folded) runs of letters and digits. The engines then only store and look up those exact words, so a
query gives the same versions on SQLite and PostgreSQL whatever their locale or tokenizer would have done.
Every query word is a prefix term and all must match; words are never passed as query syntax.

Pagination is by keyset, not offset: the cursor holds the sort key of the last item, so pages stay stable
while versions are published and deep pages cost the same as the first. Yanked and revoked versions never
appear. This module reads rows; it does not decide who may see them (everything listed here is public).
Only SQLite and PostgreSQL are supported.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from lorareg.errors import InputError
from lorareg.registry.db import FTS_TABLE, FTS_TERMS_TABLE, Version, VersionCreator
from lorareg.registry.records import MAX_PAGE_LIMIT, SearchQuery

MAX_QUERY_WORDS = 16  # words of free text used; the rest is ignored
MAX_WORD_CHARS = 100  # longer words are cut, in documents and queries alike (PostgreSQL caps a lexeme)
MAX_CURSOR_CHARS = 1024  # a cursor longer than this was not made by us
MAX_CURSOR_ID = 2**31 - 1  # versions.id is a 32-bit INTEGER on PostgreSQL
# Above this many versions by one creator, SQLite walks the sort order's index instead of sorting the matches
# (see _creator_match); sorting costs ~3 us per match (wide rows), walking ~0.1 us per version passed over.
SQLITE_CREATOR_SORT_MAX_ROWS = 500
# Newest versions whose full-text matches a "newest" text search reads before falling back to every match
# (see _newest_text_window): a page needs 21 matches, found in the window for words in >= 1% of versions.
SQLITE_TEXT_WINDOW = 2000
# Up to this many full-text matches, SQLite looks them up and sorts them rather than walking the sort order
SQLITE_TEXT_LOOKUP_MAX_ROWS = 2000
SQLITE_PREFIX_MAX_TERMS = 64  # a query word prefixing more indexed words than this stays an FTS5 prefix term
_WORD_RE = re.compile(r"[^\W_]+")  # runs of letters and digits
_FTS = sa.table(FTS_TABLE, sa.column("rowid", sa.Integer), sa.column(FTS_TABLE, sa.String))
_TERMS = sa.table(FTS_TERMS_TABLE, sa.column("term", sa.String))
_MAX_CHAR = "\U0010ffff"  # sorts after every character: [word, word + _MAX_CHAR) holds the words it prefixes
_TSV = sa.table(FTS_TABLE, sa.column("version_id", sa.Integer), sa.column("document"))


def index_version(session: Session, version: Version) -> None:
    """Add a just-inserted version to the full-text index (same transaction as the version row)."""
    index_versions(session, [version])


def index_versions(session: Session, rows: list[Version]) -> None:
    """Add inserted versions to the full-text index in one statement (bulk loads use it directly)."""
    if not rows:
        return
    params: list[dict[str, object]]
    if session.get_bind().dialect.name == "sqlite":
        statement = f"INSERT INTO {FTS_TABLE} (rowid, document) VALUES (:id, :document)"  # noqa: S608
        params = [{"id": r.id, "document": " ".join(document_words(r))} for r in rows]
        terms = sorted({w for p in params for w in str(p["document"]).split()})
        session.execute(
            sa.text(f"INSERT OR IGNORE INTO {FTS_TERMS_TABLE} (term) VALUES (:term)"),  # noqa: S608
            [{"term": t} for t in terms],
        )
    else:
        statement = (
            f"INSERT INTO {FTS_TABLE} (version_id, document) "  # noqa: S608  (constant identifier only)
            "VALUES (:id, array_to_tsvector(CAST(:words AS text[])))"
        )
        params = [{"id": r.id, "words": document_words(r)} for r in rows]
    session.execute(sa.text(statement), params)


def document_words(version: Version) -> list[str]:
    """The distinct words a version is found by: name, description, trigger words, creators and tags."""
    parts = [version.name, version.description, *version.trigger_words, *version.creators, *version.tags]
    return sorted({w for part in parts for w in search_words(part)})


def search_words(text: str) -> list[str]:
    """Split text into search words: accents removed, case-folded, letters and digits only, capped."""
    decomposed = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return [w[:MAX_WORD_CHARS] for w in _WORD_RE.findall(folded)]


def search_versions(session: Session, query: SearchQuery) -> tuple[list[Version], str | None]:
    """Return one page of active versions matching ``query`` and the cursor of the next page (or None)."""
    if query.limit < 1:
        raise InputError(f"limit must be at least 1, got {query.limit}")
    limit = min(query.limit, MAX_PAGE_LIMIT)
    stmt = select(Version).where(col(Version.yanked) == sa.false(), col(Version.revoked) == sa.false())
    if query.cursor:
        stmt = stmt.where(_after_cursor(query.sort, decode_cursor(query.cursor, sort=query.sort)))
    stmt = stmt.order_by(*_order(query.sort))
    filters = _filters(session, query)
    words = match_words(query.text)
    rows = None
    if words and query.sort == "newest" and session.get_bind().dialect.name == "sqlite":
        rows = _newest_text_window(session, stmt, filters, words, wanted=limit + 1)
    if rows is None:
        if words:
            filters.append(_text_match(session, words))
        rows = list(session.exec(stmt.where(*filters).limit(limit + 1)).all())
    next_cursor = encode_cursor(query.sort, rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def match_words(text: str | None) -> list[str]:
    """The words of a free-text query (see :func:`search_words`), at most :data:`MAX_QUERY_WORDS`."""
    return search_words(text or "")[:MAX_QUERY_WORDS]


def encode_cursor(sort: str, row: Version) -> str:
    """An opaque cursor after ``row`` in ``sort`` order."""
    key: list[Any] = (
        [sort, row.published_at.isoformat(), row.id]
        if sort == "newest"
        else [sort, row.name, row.semver_key, row.id]
    )
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, sort: str) -> list[Any]:
    """Parse a cursor made by :func:`encode_cursor` for the same sort; :class:`InputError` otherwise."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        expected_len = 3 if sort == "newest" else 4
        if not isinstance(key, list) or len(key) != expected_len or key[0] != sort:
            raise ValueError("wrong shape")
        return _checked_key(sort, key[1:])
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError) as e:
        raise InputError(
            f"bad cursor for sort {sort!r}: pass next_cursor from the previous page unchanged"
        ) from e


def _checked_key(sort: str, key: list[Any]) -> list[Any]:
    """The cursor key with every part of the type and range its column holds (ValueError otherwise).

    A cursor is opaque but comes back from the client, so a forged one must not reach the database with a
    dict, a NUL or an id past the 32-bit column (PostgreSQL and SQLite raise, which would answer 500).
    """
    *texts, last_id = key
    if isinstance(last_id, bool) or not isinstance(last_id, int) or not 0 <= last_id <= MAX_CURSOR_ID:
        raise ValueError("cursor id out of range")
    if not all(isinstance(t, str) and "\x00" not in t for t in texts):
        raise ValueError("cursor text of the wrong type")
    if sort == "newest":
        published = datetime.fromisoformat(texts[0])
        if published.tzinfo is None:
            published = published.replace(tzinfo=UTC)
        return [published.astimezone(UTC), last_id]
    return [*texts, last_id]


def _filters(session: Session, query: SearchQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    exact: list[tuple[Any, object]] = [
        (col(Version.family), query.family),
        (col(Version.license_id), query.license),
        (col(Version.commercial_use), query.commercial_use),
        (col(Version.consent_subject), query.consent_subject),
        (col(Version.consent_status), query.consent_status),
        (col(Version.unreviewed), query.unreviewed),
    ]
    conditions += [column == value for column, value in exact if value is not None]
    if query.creator:
        conditions.append(_creator_match(session, query.creator.strip().lower()))
    if query.namespace:  # names are "ns/adapter": a range on the name index, never LIKE ('0' follows '/')
        ns = query.namespace.strip()
        conditions.append(sa.and_(col(Version.name) >= ns + "/", col(Version.name) < ns + "0"))
    return conditions


def _creator_match(session: Session, name_key: str) -> ColumnElement[bool]:
    """Versions by one creator, in the query shape that stays fast on SQLite whatever the creator's size.

    SQLite looks every match up by primary key and sorts them all: version rows are wide (signature bundle
    and manifest, ~4.5 KB), so a creator with 5,500 of 10^5 versions cost ~17 ms. For a prolific creator it
    is cheaper to walk the sort order's index and test each version with one primary-key probe of
    ``version_creators`` (a correlated EXISTS: 0.2 ms for a page at 2*10^5 versions, where testing against
    the materialised set of the creator's ids cost 4 ms and grew with the catalogue); for a rare one that
    walk would pass over the whole catalogue (~9 ms at 10^5), so it keeps the lookup. An indexed count picks
    between them. PostgreSQL's planner weighs row width itself.
    """
    creator_rows = select(col(VersionCreator.version_id)).where(col(VersionCreator.name_key) == name_key)
    if session.get_bind().dialect.name != "sqlite":
        return col(Version.id).in_(creator_rows)
    counted = select(sa.func.count()).select_from(
        creator_rows.limit(SQLITE_CREATOR_SORT_MAX_ROWS + 1).subquery()
    )
    if session.exec(counted).one() > SQLITE_CREATOR_SORT_MAX_ROWS:
        return sa.exists().where(
            col(VersionCreator.version_id) == col(Version.id), col(VersionCreator.name_key) == name_key
        )
    return col(Version.id).in_(creator_rows)


def _newest_text_window(
    session: Session,
    stmt: SelectOfScalar[Version],
    filters: list[ColumnElement[bool]],
    words: list[str],
    *,
    wanted: int,
) -> list[Version] | None:
    """The first ``wanted`` versions in newest order that match ``words`` and ``filters``, read from a window
    of the newest active versions, on SQLite; ``None`` when the window holds too few (run the full query).

    Materialising every match of a common word costs time in proportion to the catalogue (a quarter of
    10^6 versions match "pixel"). Instead: (1) the ids of the newest ``SQLITE_TEXT_WINDOW`` active versions
    after the cursor, walking the sort order's index; (2) the full-text matches within their id range only
    (FTS5 seeks its doclists to a rowid range; versions published together have neighbouring ids); (3) of
    those, the ones that pass the other filters, in window order. The page is exact: the window is a prefix
    of the sort order, so no version after it can precede a match inside it. When the window is full and
    holds fewer than ``wanted`` matches, the query is rare, and the full query has few matches to read.
    """
    ids_stmt = stmt.with_only_columns(col(Version.id)).limit(SQLITE_TEXT_WINDOW)
    window = [int(i) for i in session.execute(ids_stmt).scalars()]
    if not window:
        return []
    expression = _fts5_expression(session, words)
    if expression is None:
        return []
    in_range = sa.select(_FTS.c.rowid).where(
        _FTS.c[FTS_TABLE].op("MATCH")(expression), _FTS.c.rowid.between(min(window), max(window))
    )
    text_hits = {int(i) for i in session.execute(in_range).scalars()}
    candidates = [i for i in window if i in text_hits]
    if filters and candidates:
        passing = sa.select(col(Version.id)).where(col(Version.id).in_(candidates), *filters)
        kept = {int(i) for i in session.execute(passing).scalars()}
        candidates = [i for i in candidates if i in kept]
    hits = candidates[:wanted]
    if len(hits) < wanted and len(window) == SQLITE_TEXT_WINDOW:
        return None
    found = {row.id: row for row in session.exec(select(Version).where(col(Version.id).in_(hits))).all()}
    return [found[i] for i in hits]


def _fts5_expression(session: Session, words: list[str]) -> str | None:
    """The FTS5 query for ``words`` (all must match, each as a prefix); ``None`` when one prefixes no word.

    Each word becomes the OR of the indexed words it prefixes, read from ``version_fts_terms`` by an index
    range: FTS5 evaluates a prefix term by reading every match of every word it prefixes first (a quarter
    of the catalogue for "pixel*", even within a rowid range), while exact terms are read lazily and seek.
    A word that prefixes more than ``SQLITE_PREFIX_MAX_TERMS`` words ("a") stays a prefix term.
    """
    parts = []
    for word in words:
        found = session.execute(
            sa.select(_TERMS.c.term)
            .where(_TERMS.c.term >= word, _TERMS.c.term < word + _MAX_CHAR)
            .order_by(_TERMS.c.term)
            .limit(SQLITE_PREFIX_MAX_TERMS + 1)
        ).scalars()
        terms = [str(t) for t in found]
        if not terms:
            return None
        if len(terms) > SQLITE_PREFIX_MAX_TERMS:
            parts.append(f'"{word}"*')
        else:
            parts.append("(" + " OR ".join(f'"{t}"' for t in terms) + ")")
    return " AND ".join(parts)


def _text_match(session: Session, words: list[str]) -> ColumnElement[bool]:
    """Every word as a prefix term; words are letters and digits only, so quoting them is safe."""
    if session.get_bind().dialect.name == "sqlite":
        expression = _fts5_expression(session, words)
        if expression is None:
            return sa.false()
        matching = sa.select(_FTS.c.rowid).where(_FTS.c[FTS_TABLE].op("MATCH")(expression))
        # "id + 0" keeps SQLite from looking every match up by primary key (a common word matches a quarter
        # of the catalogue, and version rows are wide); it walks the sort order's index instead and tests
        # each id against the match set without reading the row: ~3 ms instead of ~70 ms at 10^5 versions.
        # A rare word is the opposite case: the walk passes over the whole catalogue (35 ms at 2*10^5 for a
        # word nothing matches), while looking its few matches up and sorting them is cheap. A count
        # bounded at SQLITE_TEXT_LOOKUP_MAX_ROWS picks between them.
        counted = sa.select(sa.func.count()).select_from(
            matching.limit(SQLITE_TEXT_LOOKUP_MAX_ROWS + 1).subquery()
        )
        if int(session.execute(counted).scalar_one()) <= SQLITE_TEXT_LOOKUP_MAX_ROWS:
            return col(Version.id).in_(matching)
        return (col(Version.id) + 0).in_(matching)
    # PostgreSQL: a tsquery literal, so the words are not re-parsed under the server's locale
    tsquery = sa.cast(sa.literal(" & ".join(f"'{w}':*" for w in words)), TSQUERY)
    matching = sa.select(_TSV.c.version_id).where(_TSV.c.document.op("@@")(tsquery))
    return col(Version.id).in_(matching)


def _order(sort: str) -> list[Any]:
    if sort == "newest":
        return [sa.desc(col(Version.published_at)), sa.desc(col(Version.id))]
    if sort == "name":
        return [sa.asc(col(Version.name)), sa.desc(col(Version.semver_key)), sa.asc(col(Version.id))]
    raise InputError(f"unknown sort {sort!r}; expected newest or name")


def _after_cursor(sort: str, key: list[Any]) -> ColumnElement[bool]:
    """Rows after the cursor's key; the leading ``>=``/``<=`` on the first sort column gives every engine an
    index range to start from (an OR of three cases alone made SQLite scan: 200 ms at 10^5 versions)."""
    if sort == "newest":
        published, last_id = key
        return sa.and_(
            col(Version.published_at) <= published,
            sa.or_(col(Version.published_at) < published, col(Version.id) < last_id),
        )
    name, semver, last_id = key
    return sa.and_(
        col(Version.name) >= name,
        sa.or_(
            col(Version.name) > name,
            col(Version.semver_key) < semver,
            sa.and_(col(Version.semver_key) == semver, col(Version.id) > last_id),
        ),
    )
