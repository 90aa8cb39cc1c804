"""Tables of issue 14: pipeline aliases (``ns/name@prod``), namespace members (teams), SSO logins.

Aliases: one row per live alias, its signed move kept beside it.

The row is the current pointer; its history is in the transparency log (an ``alias`` leaf per move and
deletion), so no history table is needed. ``(name, alias)`` is the primary key: two replicas moving one
alias at once serialise on it, and the later move wins with its own log leaf.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from lorareg.registry.db.tables import dt_column


class Alias(SQLModel, table=True):
    __tablename__ = "aliases"
    name: str = Field(foreign_key="adapters.name", primary_key=True, max_length=200)
    alias: str = Field(primary_key=True, max_length=63)
    version: str = Field(max_length=100)
    sha256: str = Field(max_length=64)
    moved_by: str = Field(max_length=100)
    moved_at: datetime = dt_column()
    envelope: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # the registry-signed move
    tlog_index: int


class NamespaceMember(SQLModel, table=True):
    """A user's role in a namespace (a team): ``owner`` or ``publisher``; both may publish, yank and move
    aliases there with a token of their own (``Principal.teams``)."""

    __tablename__ = "namespace_members"
    namespace: str = Field(foreign_key="namespaces.name", primary_key=True, max_length=63)
    user: str = Field(foreign_key="users.name", primary_key=True, max_length=100, index=True)
    role: str = Field(max_length=20)
    added: datetime = dt_column()


class OidcLogin(SQLModel, table=True):
    """A single sign-on in progress: the ``state`` (hashed), ``nonce`` and PKCE verifier it must match.

    Kept in the database, not in process memory, so the IdP's callback may reach any replica; the row is
    deleted when the callback uses it, so a replayed ``state`` finds nothing.
    """

    __tablename__ = "oidc_logins"
    state_sha256: str = Field(primary_key=True, max_length=64)
    nonce: str = Field(max_length=100)
    verifier: str = Field(max_length=200)
    next_path: str = Field(max_length=2000)
    expires: datetime = dt_column()
