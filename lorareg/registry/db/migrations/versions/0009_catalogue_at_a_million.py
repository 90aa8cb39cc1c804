"""catalogue at a million versions (issue 18): versions by blob, best first, without reading them all

``ix_versions_blob_status (sha256, revoked, yanked, published_at, id)`` replaces ``ix_versions_sha256`` (its
prefix serves every lookup the old index served, the foreign key from ``versions.sha256`` included). With
``sha256``, ``revoked`` and ``yanked`` fixed, the newest versions of a blob are an index range read backwards:
resolving a hash and expanding a similar blob to its versions read a page of rows, not every version of a blob
published under many names (one blob under 10^6 names took seconds per publish).

On SQLite, ``version_fts_terms``: every word the full-text index holds, so that a query word is expanded
to the words it prefixes by an index range and FTS5 gets exact terms (a prefix term makes FTS5 read every
match of every word it prefixes, whatever else restricts the query). Filled from the index itself through
an ``fts5vocab`` table; ``search.index_versions`` keeps it current.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_versions_blob_status", ["sha256", "revoked", "yanked", "published_at", "id"], unique=False
        )
        batch_op.drop_index("ix_versions_sha256")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE TABLE version_fts_terms (term TEXT PRIMARY KEY) WITHOUT ROWID")
        op.execute("CREATE VIRTUAL TABLE temp.version_fts_vocab USING fts5vocab(main, version_fts, 'row')")
        op.execute("INSERT INTO version_fts_terms (term) SELECT term FROM temp.version_fts_vocab")
        op.execute("DROP TABLE temp.version_fts_vocab")


def downgrade() -> None:
    raise NotImplementedError("lorareg has no downgrades: restore the backup taken before upgrading")
