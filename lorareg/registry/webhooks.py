"""Webhooks: who may register one, which events reach it, the delivery log, and the in-transaction enqueue.

Admins register hooks for every namespace (or one); publishers only for their own namespace. A hook names
a URL (checked by ``webhook_urls.py``) and event types (:data:`EVENTS`), and gets a random secret, shown
once, that keys the HMAC signature of every delivery (``lorareg.signing.webhook_signature``).

Events are enqueued by :func:`enqueue` *inside* the transaction of the change they announce (publish, yank,
revoke, takedown filed or decided, alias moved): a delivery row exists exactly when the change committed,
so a crash between the change and the delivery loses nothing. Sending is ``webhook_delivery.py``'s job.
A hook's deliveries (each with every attempt and its HTTP status) are visible to whoever may manage it;
"redeliver" queues a copy of a delivery as a new one.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lorareg.errors import ForbiddenError, InputError, NotFoundError
from lorareg.manifest.ids import check_namespace
from lorareg.registry import webhook_delivery
from lorareg.registry.auth import Principal
from lorareg.registry.db import Namespace, Webhook, WebhookAttempt, WebhookDelivery, utcnow
from lorareg.registry.service import Registry
from lorareg.registry.webhook_events import EVENTS
from lorareg.registry.webhook_urls import WebhookAllow, check_webhook_url

SECRET_BYTES = 32  # 256-bit HMAC key
MAX_HOOKS_PER_OWNER = 50  # a runaway script must not fan one event out to thousands of URLs
MAX_LISTED_DELIVERIES = 200


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """A registered hook (never its secret: that is returned once, by :meth:`Webhooks.add`)."""

    id: str
    url: str
    events: tuple[str, ...]
    namespace: str | None
    owner: str
    created: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "namespace": self.namespace,
            "owner": self.owner,
            "created": _iso(self.created),
        }


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One queued event for one hook, and every attempt to send it."""

    id: int
    hook_id: str
    event: str
    event_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    created: datetime
    delivered_at: datetime | None
    log: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hook_id": self.hook_id,
            "event": self.event,
            "event_id": self.event_id,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at) if self.status == "pending" else None,
            "last_status": self.last_status,
            "created": _iso(self.created),
            "delivered_at": _iso(self.delivered_at),
            "log": list(self.log),
        }


class Webhooks:
    """Register, list, delete hooks; read their delivery logs; redeliver; run due deliveries."""

    def __init__(self, registry: Registry, *, allow: WebhookAllow | None = None) -> None:
        self.registry = registry
        self.allow = allow or WebhookAllow()

    def add(
        self, url: str, events: Iterable[str], *, namespace: str | None, principal: Principal
    ) -> tuple[WebhookRecord, str]:
        """Register a hook; return it and its secret (shown this once).

        Raises:
            InputError: a bad URL (see ``webhook_urls``), no or unknown event types, an unknown namespace.
            ForbiddenError: not an admin, and not a publisher of ``namespace``.
        """
        chosen = _events(events)
        _require_manage(principal, namespace)
        check_webhook_url(url, allow=self.allow)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        row = Webhook(
            id=secrets.token_hex(8),
            url=url,
            events=list(chosen),
            namespace=namespace,
            secret=secret,
            owner=who(principal),
            created=utcnow(),
        )
        with self.registry.db.write() as session:
            if namespace is not None and session.get(Namespace, namespace) is None:
                raise InputError(f"namespace {namespace} is not registered")
            owned = select(sa.func.count()).select_from(Webhook).where(col(Webhook.owner) == row.owner)
            if int(session.exec(owned).one()) >= MAX_HOOKS_PER_OWNER:
                raise InputError(f"{row.owner} already has {MAX_HOOKS_PER_OWNER} webhooks; delete one first")
            session.add(row)
        return _hook_record(row), secret

    def of(self, principal: Principal) -> list[WebhookRecord]:
        """The hooks ``principal`` may see: all for an admin, else its own and its namespace's."""
        with self.registry.db.read() as session:
            rows = session.exec(
                select(Webhook).where(col(Webhook.deleted_at).is_(None)).order_by(col(Webhook.created))
            )
            return [_hook_record(r) for r in rows if _may_manage(principal, r)]

    def delete(self, hook_id: str, *, principal: Principal) -> WebhookRecord:
        """Stop a hook: no new deliveries; its log stays readable to admins. NotFound/Forbidden."""
        with self.registry.db.write() as session:
            row = _visible_hook(session, hook_id, principal)
            row.deleted_at = utcnow()
            session.add(row)
            return _hook_record(row)

    def deliveries(self, hook_id: str, *, principal: Principal) -> list[DeliveryRecord]:
        """A hook's deliveries, newest first, each with its attempts (HTTP status, error, duration)."""
        with self.registry.db.read() as session:
            _visible_hook(session, hook_id, principal, include_deleted=True)
            rows = session.exec(
                select(WebhookDelivery)
                .where(col(WebhookDelivery.hook_id) == hook_id)
                .order_by(sa.desc(col(WebhookDelivery.id)))
                .limit(MAX_LISTED_DELIVERIES)
            ).all()
            return [_delivery_record(session, r) for r in rows]

    def redeliver(self, hook_id: str, delivery_id: int, *, principal: Principal) -> DeliveryRecord:
        """Queue the same event body again, as a new delivery due now."""
        now = utcnow()
        with self.registry.db.write() as session:
            _visible_hook(session, hook_id, principal)
            old = session.get(WebhookDelivery, delivery_id)
            if old is None or old.hook_id != hook_id:
                raise NotFoundError(f"webhook {hook_id} has no delivery {delivery_id}")
            row = WebhookDelivery(
                hook_id=hook_id,
                event=old.event,
                event_id=old.event_id,
                body=bytes(old.body),
                status="pending",
                next_attempt_at=now,
                created=now,
            )
            session.add(row)
            session.flush()
            return _delivery_record(session, row)

    def deliver_due(self, *, worker: str, limit: int = 20, **options: float) -> int:
        """Send the deliveries that are due (one claim, then one request each); return how many were tried.

        ``options``: ``lease_s``, ``timeout_s``, ``backoff_s`` (see ``webhook_delivery.deliver_due``).
        """
        return webhook_delivery.deliver_due(
            self.registry.db, worker=worker, allow=self.allow, limit=limit, **options
        )


def who(principal: Principal) -> str:
    """The name logs and hooks record: the user behind a token when known, else ``token:<id>``."""
    return principal.user or f"token:{principal.token_id}"


def _events(events: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(sorted(set(events)))
    if not chosen:
        raise InputError(f"a webhook needs at least one event type: {', '.join(EVENTS)}")
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise InputError(f"unknown webhook event {unknown[0][:40]!r}; expected some of {', '.join(EVENTS)}")
    return chosen


def _require_manage(principal: Principal, namespace: str | None) -> None:
    if namespace is None:
        if not principal.allows("admin"):
            raise ForbiddenError("only admins register webhooks for every namespace; name your namespace")
        return
    check_namespace(namespace)
    principal.require("publish", namespace=namespace)


def _may_manage(principal: Principal, row: Webhook) -> bool:
    if principal.allows("admin") or row.owner == who(principal):
        return True
    return row.namespace is not None and principal.allows("publish", namespace=row.namespace)


def _visible_hook(
    session: Session, hook_id: str, principal: Principal, *, include_deleted: bool = False
) -> Webhook:
    row = session.get(Webhook, hook_id)
    if row is None or (row.deleted_at is not None and not include_deleted) or not _may_manage(principal, row):
        raise NotFoundError(f"no webhook {hook_id[:40]!r} that this token may manage")
    return row


def _hook_record(row: Webhook) -> WebhookRecord:
    return WebhookRecord(row.id, row.url, tuple(row.events), row.namespace, row.owner, row.created)


def _delivery_record(session: Session, row: WebhookDelivery) -> DeliveryRecord:
    attempts = session.exec(
        select(WebhookAttempt)
        .where(col(WebhookAttempt.delivery_id) == row.id)
        .order_by(col(WebhookAttempt.id))
    )
    log = tuple(
        {"at": _iso(a.at), "status_code": a.status_code, "error": a.error, "duration_ms": a.duration_ms}
        for a in attempts
    )
    assert row.id is not None
    return DeliveryRecord(
        row.id,
        row.hook_id,
        row.event,
        row.event_id,
        row.status,
        row.attempts,
        row.next_attempt_at,
        row.last_status,
        row.created,
        row.delivered_at,
        log,
    )
