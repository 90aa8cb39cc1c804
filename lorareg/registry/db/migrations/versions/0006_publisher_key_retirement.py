"""publisher key retirement and compromise cutoff; registry key-set documents (issue 15)

``lorareg admin publisher retire-key`` sets ``retired`` (the key can no longer publish; versions it signed
stay valid); ``revoke-key --compromised-since TIME`` also sets ``compromised_since`` and revokes the versions
the key signed whose log entry is not older than TIME. ``registry_keysets`` holds the chain of key-set
documents ``lorareg admin registry-key rotate`` signs (old key and new key), served to clients.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("publisher_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retired", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("compromised_since", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "registry_keysets",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )


def downgrade() -> None:
    raise NotImplementedError("lorareg has no downgrades: restore the backup taken before upgrading")
