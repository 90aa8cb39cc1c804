"""Tables of ``lorareg login``: OAuth 2.0 device authorization grants (RFC 8628) in progress.

Only SHA-256 digests of the ``device_code`` and the ``user_code`` are stored, so a database dump holds
neither a code a CLI could poll with nor one a person could approve. The row never holds a token secret
either: approving records *what* may be issued (role, scopes, namespace, user); the token itself is minted
in the one transaction of the poll that hands it out (``registry/device_grants.py``).
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from lorareg.registry.db.tables import dt_column


class DeviceGrant(SQLModel, table=True):
    """One device authorization: ``pending`` → ``approved`` | ``denied`` → (approved) ``issued``."""

    __tablename__ = "device_grants"
    device_sha256: str = Field(primary_key=True, max_length=64)
    user_sha256: str = Field(max_length=64, unique=True)
    client_id: str = Field(max_length=40)
    scope: str | None = Field(default=None, max_length=20)  # the role asked for (None: the approver's)
    status: str = Field(max_length=12)
    created: datetime = dt_column()
    expires: datetime = dt_column(index=True)
    interval_s: int
    last_poll: datetime | None = dt_column(nullable=True)
    approver: str | None = Field(default=None, max_length=120)  # user name, else token:<id>
    decided_at: datetime | None = dt_column(nullable=True)
    grant_role: str | None = Field(default=None, max_length=20)
    grant_scopes: str | None = Field(default=None, max_length=200)
    grant_namespace: str | None = Field(default=None, max_length=63)
    grant_user: str | None = Field(default=None, max_length=100)
    token_ttl_s: int | None = None  # the lifetime of the token the poll will mint
    token_id: str | None = Field(default=None, max_length=32)  # the token handed out (after ``issued``)
