"""versions.unreviewed: imports whose licence or consent nobody has stated yet (issue #13)

``lorareg import`` publishes adapters found in a studio's folders; those whose licence or consent no sidecar
stated are shown as unreviewed in the catalogue (filterable) until a reviewed version is published. Every
version before this revision was written by hand (no ``origin``), so ``false`` is right for all of them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unreviewed", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_index(batch_op.f("ix_versions_unreviewed"), ["unreviewed"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("lorareg has no downgrades: restore the backup taken before upgrading")
