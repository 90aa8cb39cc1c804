"""``lorareg login``: OAuth 2.0 device authorization grants (RFC 8628) in progress

``device_grants``: one row per grant; only SHA-256 digests of the device code and the user code, the role
asked for, its state (pending, approved, denied, issued), the polling interval and last poll (``slow_down``),
and what the approver allowed. No token secret is ever stored: the token is minted in the poll that hands
it out.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_grants",
        sa.Column("device_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_sha256", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("last_poll", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approver", sa.String(length=120), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grant_role", sa.String(length=20), nullable=True),
        sa.Column("grant_scopes", sa.String(length=200), nullable=True),
        sa.Column("grant_namespace", sa.String(length=63), nullable=True),
        sa.Column("grant_user", sa.String(length=100), nullable=True),
        sa.Column("token_ttl_s", sa.Integer(), nullable=True),
        sa.Column("token_id", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("device_sha256"),
        sa.UniqueConstraint("user_sha256"),
    )
    with op.batch_alter_table("device_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_grants_expires"), ["expires"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("lorareg has no downgrades: restore the backup taken before upgrading")
