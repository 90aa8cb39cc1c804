"""Webhook events enqueued inside the transaction of the change they announce (the outbox half).

Kept apart from ``webhooks.py`` (hook management) so the modules that make the changes — ``service.py``,
``revoking.py``, ``takedown.py``, ``aliases.py`` — can call :func:`enqueue` without importing the service.
The body is ``{"id", "type", "created", "data"}`` as canonical JSON; ``data`` per type is in
``docs/studio.md``. Reporter contact details of a takedown are never put in an event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from lorareg.manifest.canonical import canonical_json
from lorareg.registry.db import Webhook, WebhookDelivery

EVENTS = (
    "version.published",
    "version.yanked",
    "version.revoked",
    "takedown.filed",
    "takedown.decided",
    "alias.moved",
)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def enqueue(
    session: Session, event: str, data: dict[str, Any], *, namespaces: Iterable[str], now: datetime
) -> int:
    """Queue ``event`` for every live hook that wants it (global hooks and those of ``namespaces``).

    Called inside the transaction of the change itself (see the module docstring). Returns the count.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    scope = set(namespaces)
    hooks = session.exec(select(Webhook).where(col(Webhook.deleted_at).is_(None))).all()
    wanted = [h for h in hooks if event in h.events and (h.namespace is None or h.namespace in scope)]
    if not wanted:
        return 0
    event_id = uuid.uuid4().hex
    body = canonical_json({"id": event_id, "type": event, "created": _iso(now), "data": data})
    for hook in wanted:
        session.add(
            WebhookDelivery(
                hook_id=hook.id,
                event=event,
                event_id=event_id,
                body=body,
                status="pending",
                next_attempt_at=now,
                created=now,
            )
        )
    return len(wanted)


def namespace_of(ref: str) -> list[str]:
    """The namespace a reference names (``acme/x@1`` → ``["acme"]``), none for a bare hash."""
    return [ref.split("/", 1)[0]] if "/" in ref else []
