"""blobs.uploaded_by: the token that first uploaded a blob; only it may read the blob until it is published

An uploaded but never published blob is not public (issue #11): the registry serves it only to the token
that uploaded it. Existing rows keep NULL (uploaded before this revision): such a blob is public once
published and readable by nobody before.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uploaded_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("lorareg has no downgrades: restore the backup taken before upgrading")
