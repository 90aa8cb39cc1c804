"""Publisher keys going out of service: rotation (retire) and compromise (revoke with a cutoff).

Retiring a key stops it publishing and changes nothing else: what it signed stays valid, which is how a
publisher rotates (add the new key, publish with it, retire the old one).

A compromised key is retired too, and every version it signed whose *log entry* is not older than the
cutoff is revoked like an upheld takedown (reason :data:`COMPROMISED_REASON`: a logged ``revoke`` leaf and
a new signed revocation list, which is how clients learn it). The transparency log is what makes the
cutoff meaningful: a version's leaf time was fixed when it was appended and every client has checked the
leaf is in the log, so a thief cannot back-date a signature to before the cutoff. A version with no log
entry cannot prove its age and is revoked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from lorareg.errors import InputError, NotFoundError
from lorareg.registry import revoking
from lorareg.registry.db import PublisherKey, TlogLeaf, Version
from lorareg.signing.keys import PrivateKey

COMPROMISED_REASON = "publisher key compromised"
MIN_KEYID_PREFIX = 8  # hex characters a key id may be abbreviated to
_UNPROVEN = datetime.max.replace(tzinfo=UTC)  # the log time of a version without a leaf: after any cutoff


def retire_key(session: Session, namespace: str, keyid: str, *, now: datetime) -> PublisherKey:
    """Stop ``keyid`` publishing into ``namespace`` (idempotent: the first retirement time stays)."""
    row = find_key(session, namespace, keyid)
    if row.retired is None:
        row.retired = now
        session.add(row)
    return row


def revoke_key(
    session: Session,
    namespace: str,
    keyid: str,
    *,
    compromised_since: datetime,
    key: PrivateKey,
    now: datetime,
    validity: timedelta,
) -> tuple[PublisherKey, list[Version]]:
    """Retire the key, record the cutoff, and revoke what it signed from the cutoff on; return the hits."""
    if compromised_since.tzinfo is None:
        raise InputError("--compromised-since needs a time zone (e.g. 2026-05-01T00:00:00Z)")
    row = retire_key(session, namespace, keyid, now=now)
    if row.compromised_since is None or compromised_since < row.compromised_since:
        row.compromised_since = compromised_since
        session.add(row)
    hit = [v for v in signed_by(session, namespace, row.keyid) if _logged_at(session, v) >= compromised_since]
    for digest in sorted({v.sha256 for v in hit}):
        revoking.revoke(
            session, digest, reason=COMPROMISED_REASON, actor="admin", key=key, now=now, validity=validity
        )
    return row, hit


def find_key(session: Session, namespace: str, keyid: str) -> PublisherKey:
    """The namespace's key by full id or a unique prefix of at least :data:`MIN_KEYID_PREFIX` characters."""
    wanted = keyid.strip().lower()
    if len(wanted) < MIN_KEYID_PREFIX:
        raise InputError(f"key id {keyid!r} is too short: give at least {MIN_KEYID_PREFIX} hex characters")
    rows = session.exec(select(PublisherKey).where(col(PublisherKey.namespace) == namespace)).all()
    found = [r for r in rows if r.keyid.startswith(wanted)]
    if not found:
        raise NotFoundError(f"namespace {namespace!r} has no publisher key {keyid!r}")
    if len(found) > 1:
        raise InputError(
            f"key id prefix {keyid!r} matches {len(found)} keys of {namespace!r}; give more of it"
        )
    return found[0]


def signed_by(session: Session, namespace: str, keyid: str) -> list[Version]:
    """The namespace's versions whose bundle carries a signature by ``keyid``."""
    rows = session.exec(select(Version).where(col(Version.name).startswith(f"{namespace}/"))).all()
    return [r for r in rows if keyid in (r.signers or [])]


def _logged_at(session: Session, version: Version) -> datetime:
    """When the version's publish leaf was appended; a version with no leaf counts as "now or later"."""
    if version.tlog_index is None:
        return _UNPROVEN
    leaf = session.get(TlogLeaf, version.tlog_index)
    return leaf.created if leaf is not None else _UNPROVEN
