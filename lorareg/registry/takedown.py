"""Takedown requests: filing (anyone, rate-limited per client), review decisions, and the audit log.

A request names one exact adapter version. Anyone may file one without an account; the answer is an
unguessable tracking id whose status page shows the outcome but none of the claimant's contact details.
Reviewers (scope ``review``) list requests and decide: ``reject`` and ``uphold`` are final, ``more-info``
keeps the request open. Upholding calls :meth:`Registry.revoke` for the version's digest (or every version's
digest with ``all_versions``): that blocks the blob (HTTP 451), bars the digest from re-publication and
signs a new revocation list, so pipelines refuse the adapter even from their caches. It then queues every
published near-duplicate of the weights for review (``takedown_queue.py``).

Every change is one row appended to ``takedown_events``; nothing here updates or deletes an event. The rate
limit is counted in the database (``rate_limit_hits``), so all replicas share it; on PostgreSQL a
transaction-scoped advisory lock per client makes the count exact under concurrent bursts, SQLite's
``BEGIN IMMEDIATE`` serialises writers anyway.

Deliberately not here: HTML, HTTP, e-mail to claimants, and the revocation mechanics (``revoking.py``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lorareg.errors import ConflictError, InputError, NotFoundError, RateLimitedError
from lorareg.registry import webhook_events
from lorareg.registry.auth import Principal
from lorareg.registry.db import RateLimitHit, TakedownEvent, TakedownRequest, Version, utcnow
from lorareg.registry.service import Registry

REASONS: dict[str, str] = {
    "likeness": "likeness without consent",
    "character": "copyrighted character",
    "style": "artist style without consent",
    "license": "licence violation",
    "other": "other",
}
STATUSES = ("pending", "more-info", "upheld", "rejected")
OPEN_STATUSES = ("pending", "more-info")
DECISIONS: dict[str, str] = {"uphold": "upheld", "reject": "rejected", "more-info": "more-info"}

RATE_LIMIT_REQUESTS = 5  # takedown requests one client may file per window
RATE_LIMIT_WINDOW_S = 3600  # the window, in seconds
RATE_LIMIT_BUCKET = "takedown"
MAX_CLAIMANT_CHARS = 200
MAX_CONTACT_CHARS = 320  # the longest valid e-mail address
MAX_DETAILS_CHARS = 10_000
MAX_DECISION_REASON_CHARS = 2_000
TAKEDOWN_LIMITS = {  # field -> most characters, for the API's schema
    "claimant": MAX_CLAIMANT_CHARS,
    "contact": MAX_CONTACT_CHARS,
    "details": MAX_DETAILS_CHARS,
    "reason": MAX_DECISION_REASON_CHARS,
}
MAX_LIST = 500  # requests or events returned by one listing
TRACKING_ID_PREFIX = "td_"
TRACKING_ID_BYTES = 16  # 128 random bits: the id is the only key to a status page
GOOD_FAITH_STATEMENT = (
    "I state in good faith that the information in this request is accurate and that I am the person "
    "concerned or authorised to act for them."
)
PUBLIC_ACTOR = "public"

_EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']+\.[^@\s<>\"']+$")
_TRACKING_RE = re.compile(rf"^{TRACKING_ID_PREFIX}[0-9a-f]{{{TRACKING_ID_BYTES * 2}}}$")


@dataclass(frozen=True, slots=True)
class TakedownRecord:
    """A takedown request as reviewers see it; :meth:`to_public_json` is what anyone may see."""

    id: str
    name: str
    version: str
    sha256: str
    reason: str
    claimant: str
    contact: str
    details: str
    good_faith: bool
    status: str
    public_reason: str | None
    all_versions: bool
    created: datetime
    updated: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def reason_label(self) -> str:
        return REASONS.get(self.reason, self.reason)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_public_json(self) -> dict[str, Any]:
        """Status, target and outcome; no claimant identity, contact or details."""
        return {
            "id": self.id,
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "reason": self.reason,
            "status": self.status,
            "public_reason": self.public_reason,
            "created": _iso(self.created),
            "updated": _iso(self.updated),
        }

    def to_json(self) -> dict[str, Any]:
        """Everything, for reviewers."""
        return {
            **self.to_public_json(),
            "sha256": self.sha256,
            "claimant": self.claimant,
            "contact": self.contact,
            "details": self.details,
            "good_faith": self.good_faith,
            "all_versions": self.all_versions,
        }


@dataclass(frozen=True, slots=True)
class TakedownEventRecord:
    """One audit-log line."""

    id: int
    request_id: str
    action: str
    actor: str
    note: str
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request_id": self.request_id,
            "action": self.action,
            "actor": self.actor,
            "note": self.note,
            "at": _iso(self.at),
        }


class Takedowns:
    """The takedown workflow over one :class:`Registry` (stateless: build one per request if you like)."""

    def __init__(
        self,
        registry: Registry,
        *,
        rate_limit: int = RATE_LIMIT_REQUESTS,
        window_s: int = RATE_LIMIT_WINDOW_S,
    ) -> None:
        self.registry = registry
        self._limit = rate_limit
        self._window = timedelta(seconds=window_s)

    def file(
        self,
        *,
        ref: str,
        reason: str,
        claimant: str,
        contact: str,
        details: str,
        good_faith: bool,
        client: str,
    ) -> TakedownRecord:
        """File a request against ``ref`` (resolved to one exact version) for ``client`` (an address).

        Raises:
            InputError: an unknown reason, an empty or over-long field, a bad e-mail address, or the
                good-faith statement not affirmed.
            NotFoundError: ``ref`` does not resolve.
            RateLimitedError: the client filed ``rate_limit`` requests within the window already.
        """
        fields = _checked_fields(reason=reason, claimant=claimant, contact=contact, details=details)
        if not good_faith:
            raise InputError("the good-faith statement must be affirmed to file a takedown request")
        target = self.registry.resolve(ref)
        now = utcnow()
        row = TakedownRequest(
            id=TRACKING_ID_PREFIX + secrets.token_hex(TRACKING_ID_BYTES),
            name=target.name,
            version=target.version,
            sha256=target.sha256,
            reason=fields["reason"],
            claimant=fields["claimant"],
            contact=fields["contact"],
            details=fields["details"],
            good_faith=True,
            status="pending",
            created=now,
            updated=now,
        )
        with self.registry.db.write() as session:
            self._count_hit(session, client, now=now)
            session.add(row)
            session.flush()
            _append(session, row.id, "filed", PUBLIC_ACTOR, f"reason: {REASONS[row.reason]}", now)
            webhook_events.enqueue(session, "takedown.filed", _event_data(row), namespaces=_ns(row), now=now)
        return _record(row)

    def get(self, request_id: str) -> TakedownRecord:
        """One request by tracking id (callers decide how much of it to show). Raises NotFoundError."""
        with self.registry.db.read() as session:
            return _record(_find(session, request_id))

    def list_requests(self, *, principal: Principal, status: str | None = None) -> list[TakedownRecord]:
        """Requests, oldest first (a queue), optionally of one status. Needs scope ``review``."""
        principal.require("review")
        query = select(TakedownRequest).order_by(col(TakedownRequest.created), col(TakedownRequest.id))
        if status is not None:
            if status not in STATUSES:
                raise InputError(f"unknown takedown status {status!r}; expected one of {', '.join(STATUSES)}")
            query = query.where(col(TakedownRequest.status) == status)
        with self.registry.db.read() as session:
            return [_record(r) for r in session.exec(query.limit(MAX_LIST))]

    def events(self, *, principal: Principal, request_id: str | None = None) -> list[TakedownEventRecord]:
        """The audit log (newest first), of one request or of all. Needs scope ``review``."""
        principal.require("review")
        query = select(TakedownEvent).order_by(sa.desc(col(TakedownEvent.id)))
        if request_id is not None:
            query = query.where(col(TakedownEvent.request_id) == request_id)
        with self.registry.db.read() as session:
            return [_event_record(e) for e in session.exec(query.limit(MAX_LIST))]

    def decide(
        self,
        request_id: str,
        *,
        decision: str,
        reason: str,
        principal: Principal,
        all_versions: bool = False,
    ) -> TakedownRecord:
        """Decide an open request: ``uphold`` (revokes), ``reject`` or ``more-info``; the reason is public.

        Raises:
            ForbiddenError: the principal lacks scope ``review``.
            InputError: an unknown decision, or an empty or over-long reason.
            NotFoundError: no such request.
            ConflictError: the request was already upheld or rejected.
        """
        principal.require("review")
        if decision not in DECISIONS:
            raise InputError(f"unknown decision {decision!r}; expected one of {', '.join(DECISIONS)}")
        reason = _bounded(reason, "reason", MAX_DECISION_REASON_CHARS)
        check_tracking_id(request_id)

        def run(session: Session, now: datetime) -> TakedownRecord:
            row = _find_locked(session, request_id, self.registry.db.dialect)
            if row.status not in OPEN_STATUSES:  # decided before, or by a reviewer racing this one
                raise ConflictError(f"takedown {row.id} was already {row.status}; decisions are final")
            upheld = decision == "uphold"
            if upheld:
                self._revoke(
                    session, row, reason=reason, principal=principal, all_versions=all_versions, now=now
                )
            row.status, row.public_reason, row.updated = DECISIONS[decision], reason, now
            row.all_versions = all_versions and upheld
            session.add(row)
            note = reason + (" (all versions)" if row.all_versions else "")
            _append(session, row.id, decision, _actor(principal), note, now)
            webhook_events.enqueue(
                session, "takedown.decided", _event_data(row), namespaces=_ns(row), now=now
            )
            return _record(row)

        record = self.registry.write_retrying(run)
        if decision == "uphold":  # re-packaged copies published before the takedown: queued, not revoked
            from lorareg.registry.takedown_queue import queue_near_duplicates

            queue_near_duplicates(
                self.registry, record, prefix=TRACKING_ID_PREFIX, id_bytes=TRACKING_ID_BYTES
            )
        return record

    # -- internals ------------------------------------------------------------------------------------
    def _revoke(
        self,
        session: Session,
        request: TakedownRequest,
        *,
        reason: str,
        principal: Principal,
        all_versions: bool,
        now: datetime,
    ) -> None:
        """Revoke the version's digest, or every version's, in the decision's own transaction."""
        public = f"upheld takedown {request.id} ({REASONS.get(request.reason, request.reason)}): {reason}"
        digests = [request.sha256]
        if all_versions:
            query = select(Version.sha256).where(col(Version.name) == request.name).order_by(col(Version.id))
            digests += list(session.exec(query).all())
        for sha256 in dict.fromkeys(digests):
            self.registry.revoke_within(session, sha256, reason=public, principal=principal, now=now)

    def _count_hit(self, session: Session, client: str, *, now: datetime) -> None:
        """Refuse the client's request past the limit; otherwise count it. Prunes its expired hits."""
        key = hashlib.sha256(client.encode("utf-8")).hexdigest()
        if self.registry.db.dialect == "postgresql":
            session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(key[:15], 16)})
        since = now - self._window
        session.execute(
            sa.delete(RateLimitHit).where(
                col(RateLimitHit.bucket) == RATE_LIMIT_BUCKET,
                col(RateLimitHit.client) == key,
                col(RateLimitHit.at) < since,
            )
        )
        count = session.execute(
            sa.select(sa.func.count())
            .select_from(RateLimitHit)
            .where(col(RateLimitHit.bucket) == RATE_LIMIT_BUCKET, col(RateLimitHit.client) == key)
        ).scalar_one()
        if count >= self._limit:
            minutes = int(self._window.total_seconds() // 60)
            raise RateLimitedError(
                f"this client filed {count} takedown requests in the last {minutes} minutes; the limit is "
                f"{self._limit}. Try again later."
            )
        session.add(RateLimitHit(bucket=RATE_LIMIT_BUCKET, client=key, at=now))


def check_tracking_id(request_id: str) -> str:
    """Return ``request_id`` if it looks like a tracking id, else raise NotFoundError (never echo junk)."""
    if not _TRACKING_RE.match(request_id):
        raise NotFoundError("no takedown request has that tracking id")
    return request_id


def _checked_fields(*, reason: str, claimant: str, contact: str, details: str) -> dict[str, str]:
    if reason not in REASONS:
        raise InputError(f"unknown takedown reason {reason[:40]!r}; expected one of {', '.join(REASONS)}")
    contact = _bounded(contact, "contact", MAX_CONTACT_CHARS)
    if not _EMAIL_RE.match(contact):
        raise InputError(f"contact must be an e-mail address (name@example.org); got {contact[:80]!r}")
    return {
        "reason": reason,
        "claimant": _bounded(claimant, "claimant", MAX_CLAIMANT_CHARS),
        "contact": contact,
        "details": _bounded(details, "details", MAX_DETAILS_CHARS),
    }


def _bounded(value: str, what: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise InputError(f"{what} is empty; it needs 1-{limit} characters")
    if len(text) > limit:
        raise InputError(f"{what} has {len(text)} characters; the limit is {limit}")
    return text


def _find_locked(session: Session, request_id: str, dialect: str) -> TakedownRequest:
    """The request row, locked against a concurrent decision until this transaction ends.

    PostgreSQL takes a row lock (a racing decider waits, then re-reads the committed status); SQLite's
    ``BEGIN IMMEDIATE`` write transaction already serialises every writer.
    """
    query = select(TakedownRequest).where(col(TakedownRequest.id) == request_id)
    if dialect == "postgresql":
        query = query.with_for_update()
    row = session.exec(query).first()
    if row is None:
        raise NotFoundError("no takedown request has that tracking id")
    return row


def _find(session: Session, request_id: str) -> TakedownRequest:
    row = session.get(TakedownRequest, check_tracking_id(request_id))
    if row is None:
        raise NotFoundError("no takedown request has that tracking id")
    return row


def _append(session: Session, request_id: str, action: str, actor: str, note: str, now: datetime) -> None:
    session.add(TakedownEvent(request_id=request_id, action=action, actor=actor, note=note, at=now))


def _actor(principal: Principal) -> str:
    who = principal.user or f"token {principal.token_id}"
    return f"{who} ({principal.role})"


def _record(row: TakedownRequest) -> TakedownRecord:
    return TakedownRecord(
        id=row.id,
        name=row.name,
        version=row.version,
        sha256=row.sha256,
        reason=row.reason,
        claimant=row.claimant,
        contact=row.contact,
        details=row.details,
        good_faith=row.good_faith,
        status=row.status,
        public_reason=row.public_reason,
        all_versions=row.all_versions,
        created=row.created,
        updated=row.updated,
    )


def _event_record(row: TakedownEvent) -> TakedownEventRecord:
    assert row.id is not None  # noqa: S101 - rows read back from the database always have their id
    return TakedownEventRecord(row.id, row.request_id, row.action, row.actor, row.note, row.at)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _event_data(row: TakedownRequest) -> dict[str, str | None]:
    """A takedown as webhooks see it: no claimant name, contact or details (personal data)."""
    return {
        "id": row.id,
        "ref": f"{row.name}@{row.version}",
        "sha256": row.sha256,
        "reason": row.reason,
        "status": row.status,
        "public_reason": row.public_reason,
    }


def _ns(row: TakedownRequest) -> list[str]:
    return [row.name.split("/", 1)[0]]
