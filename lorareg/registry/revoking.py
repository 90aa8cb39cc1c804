"""Yank, unyank and revoke, and the registry's signed revocation list kept in the database.

A yank is the publisher's choice and reversible; a revocation is a takedown's verdict and final: the
digest goes into ``revocations`` (so no upload or publish under any name can bring it back), every version
with it is marked, and a new revocation list with the next version number is signed in the same
transaction. The current list lives in one row; re-signing near expiry replaces it with an optimistic
``UPDATE … WHERE version = old``, so racing replicas agree on one list per version.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lorareg.errors import ConflictError, InputError
from lorareg.registry import catalog, logstore, webhook_events
from lorareg.registry.blobs import check_sha256
from lorareg.registry.db import Revocation, RevocationListState, Version
from lorareg.signing.keys import PrivateKey
from lorareg.signing.revocation import RevocationList, RevokedDigest, sign_revocation_list

MAX_REASON_CHARS = 2000  # a public revocation reason longer than this is refused


def set_yanked(session: Session, name: str, version: str, *, yanked: bool, now: datetime) -> Version:
    """Yank or unyank one version and log it; a no-op (and no log entry) if already in that state."""
    row = catalog.find_version(session, name, version)
    if row.revoked:
        raise ConflictError(f"{name}@{version} is revoked; yanking or unyanking it changes nothing")
    if row.yanked != yanked:
        row.yanked = yanked
        session.add(row)
        body = {"name": name, "version": version, "sha256": row.sha256}
        logstore.append(session, "yank" if yanked else "unyank", body, now=now)
        if yanked:
            webhook_events.enqueue(session, "version.yanked", body, namespaces=[name.split("/")[0]], now=now)
    return row


def revoke(
    session: Session,
    target: str,
    *,
    reason: str,
    actor: str,
    key: PrivateKey,
    now: datetime,
    validity: timedelta,
) -> list[Version]:
    """Revoke a digest or ``name@version`` (see the module docstring); return every version it hits."""
    reason = reason.strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise InputError(f"a revocation needs a public reason of 1-{MAX_REASON_CHARS} characters")
    sha256 = _target_digest(session, target)
    rows = list(session.exec(select(Version).where(col(Version.sha256) == sha256)).all())
    if session.get(Revocation, sha256) is not None:
        return rows
    session.add(Revocation(sha256=sha256, reason=reason, revoked_at=now, revoked_by=actor))
    for row in rows:
        row.revoked, row.revocation_reason = True, reason
        session.add(row)
    session.flush()
    refs = [f"{r.name}@{r.version}" for r in rows]
    logstore.append(session, "revoke", {"sha256": sha256, "reason": reason, "versions": refs}, now=now)
    event = {"sha256": sha256, "reason": reason, "versions": refs}
    webhook_events.enqueue(
        session, "version.revoked", event, namespaces={r.name.split("/")[0] for r in rows}, now=now
    )
    issue_list(session, key, now=now, validity=validity)
    return rows


def current_list(session: Session) -> RevocationListState | None:
    return session.get(RevocationListState, 1)


def needs_resigning(state: RevocationListState | None, *, now: datetime, resign_before: timedelta) -> bool:
    return state is None or state.expires - now <= resign_before


def issue_list(session: Session, key: PrivateKey, *, now: datetime, validity: timedelta) -> bytes:
    """Sign a list of every revoked digest with the next version and store it as the current list."""
    state = current_list(session)
    rows = session.exec(select(Revocation).order_by(Revocation.sha256)).all()
    revoked = tuple(RevokedDigest(r.sha256, r.reason, r.revoked_at) for r in rows)
    version = 1 if state is None else state.version + 1
    envelope = sign_revocation_list(RevocationList(version, now, now + validity, revoked), key)
    if state is None:
        session.add(
            RevocationListState(id=1, version=version, issued=now, expires=now + validity, envelope=envelope)
        )
        _flush_or_conflict(session)
        return envelope
    result = session.execute(
        sa.update(RevocationListState)
        .where(col(RevocationListState.id) == 1, col(RevocationListState.version) == state.version)
        .values(version=version, issued=now, expires=now + validity, envelope=envelope)
    )
    if getattr(result, "rowcount", 1) != 1:
        raise logstore.LogRaceError("revocation list re-signed concurrently")
    return envelope


def _target_digest(session: Session, target: str) -> str:
    target = target.strip()
    if "@" in target:
        name, _, version = target.partition("@")
        return catalog.find_version(session, name, version).sha256
    if "/" in target:
        raise InputError(f"revocation target {target!r} needs an exact @VERSION (or give the sha256)")
    try:
        return check_sha256(target.lower())
    except InputError as e:
        raise InputError(f"revocation target {target[:80]!r} is neither name@version nor a sha256") from e


def _flush_or_conflict(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as e:
        raise logstore.LogRaceError("revocation list created concurrently") from e
