"""weight fingerprints: one per blob, its LSH band keys (the candidate index), and reviewer flags

``fingerprints`` holds each blob's family, pooled vector and per-module sketches
(``lorareg.adapter.fingerprint``);
``fingerprint_bands`` has 24 rows per blob whose primary key ``(family, band_key, sha256)`` is the index
the similar-adapters search and the takedown queue look candidates up by; ``similarity_flags`` records a
high similarity to another namespace's active adapter at publish. Blobs published before this revision have
no fingerprint until they are published again (a fingerprint needs the tensors, not a migration).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fingerprints",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=40), nullable=False),
        sa.Column("modules", sa.Integer(), nullable=False),
        sa.Column("pooled", sa.LargeBinary(), nullable=False),
        sa.Column("sketch", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["blobs.sha256"],
        ),
        sa.PrimaryKeyConstraint("sha256"),
    )
    with op.batch_alter_table("fingerprints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fingerprints_family"), ["family"], unique=False)

    op.create_table(
        "fingerprint_bands",
        sa.Column("family", sa.String(length=40), nullable=False),
        sa.Column("band_key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["fingerprints.sha256"],
        ),
        sa.PrimaryKeyConstraint("family", "band_key", "sha256"),
    )
    op.create_table(
        "similarity_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("similar_name", sa.String(length=200), nullable=False),
        sa.Column("similar_version", sa.String(length=100), nullable=False),
        sa.Column("similarity", sa.Float(), nullable=False),
        sa.Column("coverage", sa.Float(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["versions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("similarity_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_similarity_flags_version_id"), ["version_id"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("lorareg has no downgrades: restore the backup taken before upgrading")
