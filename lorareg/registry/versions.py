"""Writing a published version: the row, its creators, its search entry and its log leaf, in one go.

:func:`new_version` turns a verified manifest into the column values (denormalised for search and
filters); :func:`insert` writes them inside the caller's transaction. The unique constraint on
``(name, version)`` decides a race between two publishes of one version: the loser's flush fails and it
gets :class:`ConflictError`, whatever the timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from lorareg.errors import ConflictError, GoneError
from lorareg.manifest.ids import semver_key
from lorareg.manifest.model import review_reasons
from lorareg.registry import catalog, logstore
from lorareg.registry.auth import Principal
from lorareg.registry.db import Adapter, Revocation, Version, VersionCreator
from lorareg.registry.records import BlobRecord, VersionRecord
from lorareg.registry.search import index_version


@dataclass(frozen=True, slots=True)
class NewVersion:
    """Everything about a version to publish, computed before the transaction starts."""

    name: str
    version: str
    manifest: dict[str, Any]
    blob: BlobRecord
    bundle: bytes
    signers: tuple[str, ...]
    published_by: str


def new_version(
    manifest: dict[str, Any],
    *,
    blob: BlobRecord,
    bundle: bytes,
    signers: tuple[str, ...],
    principal: Principal,
) -> NewVersion:
    return NewVersion(
        name=str(manifest["name"]),
        version=str(manifest["version"]),
        manifest=manifest,
        blob=blob,
        bundle=bundle,
        signers=signers,
        published_by=principal.token_id,
    )


def insert(session: Session, new: NewVersion, *, now: datetime) -> VersionRecord:
    """Write the version (refusing a revoked digest and an existing ``name@version``) and log it."""
    if session.get(Revocation, new.blob.sha256) is not None:  # re-checked inside the transaction
        raise GoneError(f"sha256:{new.blob.sha256} was revoked and cannot be published under any name")
    _ensure_adapter(session, new.name, now=now)
    row = _row(new, now=now)
    session.add(row)
    try:
        session.flush()
    except IntegrityError as e:
        raise ConflictError(f"{new.name}@{new.version} is already published; versions are immutable") from e
    assert row.id is not None  # assigned by the flush above
    index_version(session, row)
    for key in sorted({c.strip().lower() for c in row.creators if c.strip()}):
        session.add(VersionCreator(version_id=row.id, name_key=key))
    body = {"name": new.name, "version": new.version, "sha256": new.blob.sha256, "signers": list(new.signers)}
    row.tlog_index = logstore.append(session, "publish", body, now=now)
    session.add(row)
    session.flush()
    return catalog.version_record(session, row)


def _ensure_adapter(session: Session, name: str, *, now: datetime) -> None:
    if session.exec(select(Adapter.name).where(Adapter.name == name)).first() is not None:
        return
    session.add(Adapter(name=name, namespace=name.split("/", 1)[0], created=now))
    try:
        session.flush()
    except IntegrityError as e:  # another replica created it in the meantime: retry the transaction
        raise logstore.LogRaceError(f"adapter {name} created concurrently") from e


def _row(new: NewVersion, *, now: datetime) -> Version:
    m = new.manifest
    licence, consent = m.get("license") or {}, m.get("consent") or {}
    return Version(
        name=new.name,
        version=new.version,
        semver_key=semver_key(new.version),
        sha256=new.blob.sha256,
        manifest=m,
        bundle=new.bundle,
        signers=list(new.signers),
        family=str((m.get("base_model") or {}).get("family", "unknown")),
        license_id=licence.get("id"),
        commercial_use=licence.get("commercial_use"),
        consent_subject=consent.get("subject"),
        consent_status=consent.get("status"),
        creators=[str(c.get("name", "")) for c in m.get("creators") or []],
        trigger_words=[str(w) for w in m.get("trigger_words") or []],
        tags=[str(t) for t in m.get("tags") or []],
        description=str(m.get("description") or ""),
        created=str(m["created"]) if m.get("created") is not None else None,
        published_at=now,
        published_by=new.published_by,
        unreviewed=bool(review_reasons(m)),
    )
