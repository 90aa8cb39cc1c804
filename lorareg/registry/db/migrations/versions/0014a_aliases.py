"""aliases: pipeline pointers such as ``ns/name@prod`` (issue 14)

One row per live alias with the registry-signed move that set it; moves and deletions are also leaves of
the transparency log, so the table needs no history.

Revision ID: 0014a
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014a"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "aliases",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("alias", sa.String(length=63), nullable=False),
        sa.Column("version", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("moved_by", sa.String(length=100), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("tlog_index", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["name"], ["adapters.name"]),
        sa.PrimaryKeyConstraint("name", "alias"),
    )


def downgrade() -> None:
    raise NotImplementedError("lorareg has no downgrades: restore the backup taken before upgrading")
