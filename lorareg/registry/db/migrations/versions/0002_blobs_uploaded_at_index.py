"""index blobs.uploaded_at: garbage collection looks for old blobs that no version references

``Registry.collect_garbage`` (``lorareg admin gc`` and every ``serve`` start) deletes blobs uploaded longer
ago than the grace period and never published; without this index that is a scan of every blob row.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("blobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blobs_uploaded_at"), ["uploaded_at"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("lorareg has no downgrades: restore the backup taken before upgrading")
