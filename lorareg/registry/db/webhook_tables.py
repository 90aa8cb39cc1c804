"""Tables for webhooks: the hooks, a durable delivery queue, and the log of every attempt.

The queue is the transactional-outbox pattern: a delivery row is inserted in the same transaction as the
event it announces (a publish, a yank, an alias move …), so an event that committed is never lost, even
if the process dies a moment later. Workers claim due rows (``claimed_until``, ``claimed_by``) in a short
transaction — ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite — so two
replicas never send one delivery at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from lorareg.registry.db.tables import dt_column


class Webhook(SQLModel, table=True):
    __tablename__ = "webhooks"
    id: str = Field(primary_key=True, max_length=24)
    url: str = Field(max_length=2000)
    events: list[str] = Field(sa_column=Column(JSON, nullable=False))
    namespace: str | None = Field(default=None, foreign_key="namespaces.name", index=True, max_length=63)
    secret: str = Field(max_length=100)  # HMAC key of the signature header; shown once at registration
    owner: str = Field(max_length=100)  # who registered it (user, else token:<id>)
    created: datetime = dt_column()
    deleted_at: datetime | None = dt_column(nullable=True)


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)
    id: int | None = Field(default=None, primary_key=True)
    hook_id: str = Field(foreign_key="webhooks.id", index=True, max_length=24)
    event: str = Field(max_length=40)
    event_id: str = Field(max_length=40)
    body: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(max_length=20)  # pending, delivered, failed
    attempts: int = 0
    next_attempt_at: datetime = dt_column()
    claimed_until: datetime | None = dt_column(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=40)
    last_status: int | None = None
    created: datetime = dt_column()
    delivered_at: datetime | None = dt_column(nullable=True)


class WebhookAttempt(SQLModel, table=True):
    __tablename__ = "webhook_attempts"
    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="webhook_deliveries.id", index=True)
    at: datetime = dt_column()
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: int = 0
