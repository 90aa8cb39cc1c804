"""Sending queued webhook deliveries: claim, send, record — safe with any number of replicas.

1. **Claim** (one short write transaction): due rows (``pending``, ``next_attempt_at`` passed, no live
   claim) are marked ``claimed_by`` this worker until ``now + lease``. On PostgreSQL the rows are read with
   ``SELECT … FOR UPDATE SKIP LOCKED``, so a second replica skips them instead of waiting; SQLite admits one
   writer at a time (``BEGIN IMMEDIATE``), so the second replica sees the claim. Either way one delivery is
   in one worker's hands at a time.
2. **Send** outside any transaction: the URL is checked again (``webhook_urls``: it may have been
   re-pointed), then one POST with the signature headers (``lorareg.signing.webhook_signature``), no
   redirects followed, a short timeout. A 2xx answer is success.
3. **Record** (one write transaction): the attempt (status code or error, duration) is logged; success marks
   the row ``delivered``, failure schedules the next try after ``backoff * 2**(attempts-1)`` (capped), and
   after :data:`MAX_ATTEMPTS` marks it ``failed``.

A process killed between 1 and 3 leaves a claim that expires after the lease; another worker then sends
the delivery. Delivery is therefore at-least-once — a receiver that must not act twice keys on the
``X-Lorareg-Delivery`` header — and never twice *concurrently*.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import sqlalchemy as sa
from sqlmodel import col, select

from lorareg.errors import InputError
from lorareg.registry.db import Database, Webhook, WebhookAttempt, WebhookDelivery, utcnow
from lorareg.registry.faults import crash_point
from lorareg.registry.webhook_urls import WebhookAllow, check_webhook_url
from lorareg.signing.webhook_signature import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign_webhook,
)

MAX_ATTEMPTS = 8  # then the delivery is marked failed (redeliver queues it again)
DEFAULT_LEASE_S = 60.0  # a claim older than this is taken over: its worker died
DEFAULT_TIMEOUT_S = 10.0  # per request; a slow receiver must not stall the queue
DEFAULT_BACKOFF_S = 10.0  # first retry delay; doubles per attempt
MAX_BACKOFF_S = 6 * 3600.0
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this worker holds: what to send and where."""

    delivery_id: int
    url: str
    secret: str
    event: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver_due(
    db: Database,
    *,
    worker: str,
    allow: WebhookAllow,
    limit: int = 20,
    lease_s: float = DEFAULT_LEASE_S,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    backoff_s: float = DEFAULT_BACKOFF_S,
) -> int:
    """Claim up to ``limit`` due deliveries, send each, record each; return how many were tried."""
    claims = claim_due(db, worker=worker, now=utcnow(), lease_s=lease_s, limit=limit)
    for claim in claims:
        crash_point("before-webhook-send")
        outcome = send(claim, allow=allow, timeout_s=timeout_s)
        record(db, claim, outcome, worker=worker, now=utcnow(), backoff_s=backoff_s)
    return len(claims)


def claim_due(db: Database, *, worker: str, now: datetime, lease_s: float, limit: int) -> list[Claim]:
    """Step 1 of the module docstring."""
    with db.write() as session:
        query = (
            select(WebhookDelivery)
            .where(
                col(WebhookDelivery.status) == "pending",
                col(WebhookDelivery.next_attempt_at) <= now,
                sa.or_(
                    col(WebhookDelivery.claimed_until).is_(None), col(WebhookDelivery.claimed_until) < now
                ),
            )
            .order_by(col(WebhookDelivery.id))
            .limit(limit)
        )
        if db.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        claims = []
        for row in session.exec(query).all():
            hook = session.get(Webhook, row.hook_id)
            if hook is None or hook.deleted_at is not None:
                row.status = "failed"  # the hook was deleted while this waited
            else:
                row.claimed_until, row.claimed_by = now + timedelta(seconds=lease_s), worker
                assert row.id is not None
                claims.append(Claim(row.id, hook.url, hook.secret, row.event, bytes(row.body)))
            session.add(row)
        return claims


def send(claim: Claim, *, allow: WebhookAllow, timeout_s: float) -> Outcome:
    """Step 2: one signed POST; never raises for the receiver's faults (they become the outcome)."""
    started = time.monotonic()
    try:
        check_webhook_url(claim.url, allow=allow)
    except InputError as e:
        return Outcome(None, f"refused: {e}"[:MAX_ERROR_CHARS], 0)
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "lorareg-webhooks",
        EVENT_HEADER: claim.event,
        DELIVERY_HEADER: str(claim.delivery_id),
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign_webhook(claim.secret, stamp, claim.body),
    }
    try:
        response = httpx.post(
            claim.url, content=claim.body, headers=headers, timeout=timeout_s, follow_redirects=False
        )
    except httpx.HTTPError as e:
        return Outcome(None, f"{type(e).__name__}: {e}"[:MAX_ERROR_CHARS], _ms_since(started))
    return Outcome(response.status_code, None, _ms_since(started))


def record(
    db: Database, claim: Claim, outcome: Outcome, *, worker: str, now: datetime, backoff_s: float
) -> None:
    """Step 3: log the attempt; mark delivered, or schedule the retry, or give up after MAX_ATTEMPTS."""
    with db.write() as session:
        row = session.get(WebhookDelivery, claim.delivery_id)
        if row is None:
            return
        session.add(
            WebhookAttempt(
                delivery_id=claim.delivery_id,
                at=now,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
            )
        )
        row.attempts += 1
        row.last_status = outcome.status_code
        if row.claimed_by == worker:  # a worker that outlived its lease leaves the new claim alone
            row.claimed_until, row.claimed_by = None, None
        if outcome.ok:
            row.status, row.delivered_at = "delivered", now
        elif row.attempts >= MAX_ATTEMPTS:
            row.status = "failed"
        else:
            delay = min(backoff_s * 2 ** (row.attempts - 1), MAX_BACKOFF_S)
            row.next_attempt_at = now + timedelta(seconds=delay)
        session.add(row)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
