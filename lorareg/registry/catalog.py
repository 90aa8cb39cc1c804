"""Reading the catalogue: rows to records, resolving references, adapters and versions.

Everything here runs inside a session the service opened and returns detached records
(``records.py``), so no caller ever holds a live row. Resolution rules live here in one place: a bare
name picks the highest active semver; an exact version, or an alias (``@prod``) followed to its version, is
returned whatever its status; a hash prefers
active versions and, among equals, the newest publication.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lorareg.errors import InputError, NotFoundError
from lorareg.manifest.ids import RELEASE_MARK, check_name, is_alias
from lorareg.registry.db import Adapter, Alias, Blob, Derivation, Revocation, TlogLeaf, Version
from lorareg.registry.records import (
    AdapterRecord,
    BlobRecord,
    VersionRecord,
    VersionStatus,
    VersionSummary,
)

MIN_AUTOV3_PREFIX_HEX = 12  # A1111's "Lora hashes" carry the first 12 hex of AutoV3
_HEX_RE = re.compile(r"^[0-9a-f]+$")
_STATUS_ORDER = (
    (False, False),
    (False, True),
    (True, False),
    (True, True),
)  # (revoked, yanked): active first


def blob_record(row: Blob) -> BlobRecord:
    return BlobRecord(
        sha256=row.sha256,
        size=row.size,
        autov1=row.autov1,
        autov2=row.autov2,
        autov3=row.autov3,
        crc32=row.crc32,
        blake3=row.blake3,
        uploaded_at=row.uploaded_at,
    )


def status_of(row: Version) -> VersionStatus:
    """Revoked beats yanked: a revoked version is gone whatever its publisher did."""
    if row.revoked:
        return "revoked"
    return "yanked" if row.yanked else "active"


def summary_of(row: Version, size: int) -> VersionSummary:
    return VersionSummary(
        name=row.name,
        version=row.version,
        sha256=row.sha256,
        size=size,
        family=row.family,
        license_id=row.license_id,
        commercial_use=row.commercial_use,
        consent_subject=row.consent_subject,
        consent_status=row.consent_status,
        creators=tuple(row.creators),
        trigger_words=tuple(row.trigger_words),
        tags=tuple(row.tags),
        description=row.description,
        published_at=row.published_at,
        status=status_of(row),
        unreviewed=row.unreviewed,
    )


def version_record(session: Session, row: Version) -> VersionRecord:
    blob = session.get(Blob, row.sha256)
    if blob is None:  # the foreign key makes this impossible unless the schema was tampered with
        raise NotFoundError(f"blob sha256:{row.sha256} of {row.name}@{row.version} is missing")
    return VersionRecord(
        summary=summary_of(row, blob.size),
        manifest=dict(row.manifest),
        blob=blob_record(blob),
        bundle=bytes(row.bundle),
        signers=tuple(row.signers),
        published_by=row.published_by,
        revocation_reason=row.revocation_reason,
        tlog_index=row.tlog_index,
        revoked_at=_revoked_at(session, row),
        yanked_at=_yanked_at(session, row),
    )


def summaries(session: Session, rows: Sequence[Version]) -> list[VersionSummary]:
    """Summaries for many rows with one query for their blob sizes."""
    digests = {r.sha256 for r in rows}
    sizes = dict(
        session.exec(select(col(Blob.sha256), col(Blob.size)).where(col(Blob.sha256).in_(digests))).all()
    )
    return [summary_of(r, sizes.get(r.sha256, 0)) for r in rows]


def find_version(session: Session, name: str, version: str) -> Version:
    row = session.exec(
        select(Version).where(col(Version.name) == name, col(Version.version) == version)
    ).first()
    if row is None:
        raise NotFoundError(f"{name}@{version} is not published")
    return row


def find_version_or_alias(session: Session, name: str, version: str) -> Version:
    """``name@version``, or ``name@alias`` (``prod``) followed to the version it names, whatever its status.

    An alias never shadows a version: a semver starts with a digit, an alias with a letter.
    """
    if not is_alias(version):
        return find_version(session, name, version)
    row = session.get(Alias, (name, version))
    if row is None:
        raise NotFoundError(f"{name} has no alias {version!r} (and {version!r} is not a version)")
    return find_version(session, name, row.version)


def adapter_record(session: Session, name: str) -> AdapterRecord:
    adapter = session.get(Adapter, name)
    if adapter is None:
        raise NotFoundError(f"adapter {name} does not exist")
    rows = session.exec(
        select(Version)
        .where(col(Version.name) == name)
        .order_by(sa.desc(col(Version.semver_key)), sa.desc(col(Version.id)))
    ).all()
    return AdapterRecord(adapter.name, adapter.namespace, adapter.created, tuple(summaries(session, rows)))


def resolve_ref(session: Session, ref: str) -> Version:
    """The version a reference names (rules in the module docstring).

    A bare name picks the highest active *release*; only when an adapter has no active release does it
    pick the highest active pre-release (as pip and npm do), so ``pull acme/x`` never hands out a release
    candidate when a stable version exists.
    """
    ref = ref.strip()
    if "/" in ref:
        name, at, version = ref.partition("@")
        check_name(name, "ref")
        return find_version_or_alias(session, name, version) if at else _latest(session, name)
    return _by_hash(session, ref.lower())


def is_published(session: Session, sha256: str) -> bool:
    """Whether any version (of any name, in any state) carries this digest."""
    return session.exec(select(Version.id).where(col(Version.sha256) == sha256).limit(1)).first() is not None


def revocation_reason(session: Session, sha256: str) -> str | None:
    row = session.get(Revocation, sha256)
    return None if row is None else row.reason


def _revoked_at(session: Session, row: Version) -> datetime | None:
    """The time the revocations row holds for this version's digest (revocation is by digest)."""
    if not row.revoked:
        return None
    revocation = session.get(Revocation, row.sha256)
    return None if revocation is None else revocation.revoked_at


def _yanked_at(session: Session, row: Version) -> datetime | None:
    """When the current yank was logged: the newest ``yank`` leaf for this version in the transparency log.

    The version row keeps only a flag; the log has the time of every yank, so no column is needed. Only
    yanks after the version's own publish leaf are read, newest first, stopping at the first match.
    """
    if not row.yanked:
        return None
    leaves = session.exec(
        select(TlogLeaf)
        .where(col(TlogLeaf.kind) == "yank", col(TlogLeaf.idx) >= (row.tlog_index or 0))
        .order_by(sa.desc(col(TlogLeaf.idx)))
    )
    for leaf in leaves:
        body = json.loads(bytes(leaf.body))
        if body.get("name") == row.name and body.get("version") == row.version:
            return leaf.created
    return None


def _latest(session: Session, name: str) -> Version:
    row = session.exec(
        select(Version)
        .where(
            col(Version.name) == name, col(Version.yanked) == sa.false(), col(Version.revoked) == sa.false()
        )
        .order_by(sa.desc(_is_release()), sa.desc(col(Version.semver_key)), sa.desc(col(Version.id)))
        .limit(1)
    ).first()
    if row is not None:
        return row
    if session.get(Adapter, name) is None:
        raise NotFoundError(f"adapter {name} does not exist")
    raise NotFoundError(
        f"adapter {name} has no active version (all yanked or revoked); name one with @VERSION"
    )


def _is_release() -> sa.ColumnElement[int]:
    """1 for a release, 0 for a pre-release (release sort keys end with ``~``, see ``semver.py``)."""
    return sa.case((col(Version.semver_key).endswith(RELEASE_MARK), 1), else_=0)


def _by_hash(session: Session, text: str) -> Version:
    if not _HEX_RE.match(text):
        raise InputError(f"reference {text[:80]!r} is neither namespace/name[@version] nor a hex digest")
    digests = session.exec(select(col(Blob.sha256)).where(_hash_condition(text))).all()
    best = [row for digest in digests for row in versions_of_blob(session, digest, limit=1)]
    if not best:
        raise NotFoundError(f"no published version has a hash {text}")
    return min(best, key=lambda r: (r.revoked, r.yanked, -r.published_at.timestamp(), -(r.id or 0)))


def versions_of_blob(session: Session, sha256: str, *, limit: int) -> list[Version]:
    """Up to ``limit`` versions publishing blob ``sha256``: active first, then yanked, then revoked; newest
    first within each.

    A blob may be published under any number of names, so this never reads them all: each status is an
    equality prefix of ``ix_versions_blob_status`` (migration 0008), read backwards until ``limit`` rows.
    """
    found: list[Version] = []
    for revoked, yanked in _STATUS_ORDER:
        if len(found) >= limit:
            break
        found += session.exec(
            select(Version)
            .where(
                col(Version.sha256) == sha256, col(Version.revoked) == revoked, col(Version.yanked) == yanked
            )
            .order_by(sa.desc(col(Version.published_at)), sa.desc(col(Version.id)))
            .limit(limit - len(found))
        ).all()
    return found


def _hash_condition(text: str) -> sa.ColumnElement[bool]:
    if len(text) == 64:
        return sa.or_(col(Blob.sha256) == text, col(Blob.autov3) == text, col(Blob.blake3) == text)
    if len(text) == 10:
        return col(Blob.autov2) == text
    if len(text) == 8:
        return sa.or_(col(Blob.autov1) == text, col(Blob.crc32) == text)
    if MIN_AUTOV3_PREFIX_HEX <= len(text) < 64:
        # A range instead of LIKE: portable and served by the autov3 index on every engine.
        return sa.and_(col(Blob.autov3) >= text, col(Blob.autov3) < text + "g")
    raise InputError(
        f"hash {text} has {len(text)} hex digits; expected 64 (sha256, autov3, blake3), 10 (autov2), "
        f"8 (autov1, crc32) or an AutoV3 prefix of {MIN_AUTOV3_PREFIX_HEX}+"
    )


def derived_by(session: Session, name: str, version: str, *, limit: int) -> list[tuple[str, str]]:
    """``(name, version)`` of live versions that declare they derive from exactly ``name@version``.

    Exact, not "any version of ``name``": otherwise a 2.0.0 derived from 1.0.0 would list itself.
    """
    query = (
        sa.select(col(Version.name), col(Version.version))
        .join(Derivation, col(Derivation.child_id) == col(Version.id))
        .where(
            col(Derivation.parent_name) == name,
            col(Derivation.parent_version) == version,
            col(Version.revoked).is_(False),
        )
        .order_by(col(Version.name), col(Version.semver_key).desc())
        .limit(limit)
    )
    return [(str(n), str(v)) for n, v in session.execute(query).all()]


def version_counts(session: Session, names: Sequence[str]) -> dict[str, int]:
    """How many versions (of any status) each adapter in ``names`` has, in one query (catalogue cards)."""
    if not names:
        return {}
    query = (
        sa.select(col(Version.name), sa.func.count())
        .where(col(Version.name).in_(list(names)))
        .group_by(col(Version.name))
    )
    return {str(n): int(c) for n, c in session.execute(query).all()}
