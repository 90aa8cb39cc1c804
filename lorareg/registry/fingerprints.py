"""The registry's use of weight fingerprints: store one per blob, refuse re-packaged copies of revoked
adapters, find similar adapters, and queue near-duplicates for review when a takedown is upheld.

A fingerprint (``lorareg.adapter.fingerprint``) is computed from the *stored* blob by range reads, one module
at a time, so a 1 GiB upload costs a streaming pass and bounded memory. Candidate retrieval never scans every
fingerprint:

- revoked copies: the pooled vectors of the revoked blobs of the same family (a join on ``revocations``,
  which stays small) are ranked, and the few above ``POOLED_CANDIDATE`` are scored from their sketches;
- similar adapters: the ``BANDS`` LSH band keys are looked up in ``fingerprint_bands`` (an indexed equality
  per band), the candidates' pooled vectors are ranked and the best ``RESCORED`` are scored from sketches.

Scores are the sketch estimates of ``compare`` (coverage and scale from exact per-module energies).
Deliberately not here: HTTP, HTML, and the takedown workflow itself (``takedown.py`` calls
:func:`near_duplicates_of`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlmodel import Session, col, select

from lorareg.adapter.fingerprint import Fingerprint, compare_fingerprints, fingerprint, open_adapter
from lorareg.adapter.fingerprint.sketch import POOLED_DIM
from lorareg.adapter.safetensors import MAX_HEADER_BYTES, SafetensorsHeader, parse_header
from lorareg.errors import GoneError, InputError
from lorareg.registry.blobs import BlobStore, FilesystemStore
from lorareg.registry.catalog import find_version, status_of, versions_of_blob
from lorareg.registry.db import Database, FingerprintBand, FingerprintRow, Revocation, SimilarityFlag, Version
from lorareg.registry.records import BlobRecord

NEAR_DUPLICATE_THRESHOLD = 0.9  # default of LORAREG_NEAR_DUPLICATE_THRESHOLD
MIN_COVERAGE = 0.5  # a near-duplicate must cover half of both adapters' ‖ΔW‖²
SIMILAR_FLOOR = 0.3  # below this a "similar" adapter is noise (unrelated adapters score ~0)
POOLED_CANDIDATE = 0.3  # pooled cosine above which a candidate is scored from its sketches
SIMILAR_LIMIT = 10
RESCORED = 40  # candidates scored from sketches per query
MAX_CANDIDATES = 20_000  # band matches read per query (unrelated blobs share a band with p ~ 2%)
_LENGTH_BYTES = 8


@dataclass(frozen=True, slots=True)
class Match:
    """A version similar to the query: who, its status, and the (sketch-estimated) score."""

    name: str
    version: str
    sha256: str
    status: str
    similarity: float
    coverage: float
    scale: float | None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "status": self.status,
            "similarity": round(self.similarity, 4),
            "coverage": round(self.coverage, 4),
            "scale": None if self.scale is None else round(self.scale, 4),
        }


def fingerprint_stored(store: BlobStore, blob: BlobRecord) -> Fingerprint | None:
    """The fingerprint of a stored blob, or ``None`` when it has no adapter module of a known kind.

    A file store is read in place by range (``pread``). Any other store (S3) is first streamed, in one
    request, into an anonymous temporary file: a fingerprint reads thousands of small tensors in module
    order, which would be thousands of object-store requests.
    """
    header = _stored_header(store, blob)
    if isinstance(store, FilesystemStore):
        return _fingerprint_file(store.path_of(blob.sha256), header)
    with tempfile.TemporaryFile(prefix="lorareg-fingerprint-") as spool:
        for chunk in store.open_range(blob.sha256):
            spool.write(chunk)
        spool.flush()
        return _fingerprint_fd(spool.fileno(), header)


def refuse_revoked_copy(session: Session, fp: Fingerprint, *, threshold: float) -> None:
    """Raise :class:`GoneError` when ``fp`` is a near-duplicate of a revoked adapter of its family.

    The message names the revoked version, the similarity and the takedown's public reason.
    """
    query = (
        select(FingerprintRow.sha256, FingerprintRow.pooled)
        .join(Revocation, col(Revocation.sha256) == col(FingerprintRow.sha256))
        .where(col(FingerprintRow.family) == fp.family)
    )
    for match in _scored(session, fp, session.exec(query).all(), floor=threshold, per_blob=1):
        if match.coverage < MIN_COVERAGE:
            continue
        reason = session.get(Revocation, match.sha256)
        raise GoneError(
            f"this adapter is a near-duplicate of the revoked {match.ref} (weight similarity "
            f"{match.similarity:.2f}, coverage {match.coverage:.2f}) and cannot be published: "
            f"{reason.reason if reason else 'revoked'}"
        )


def save(session: Session, sha256: str, fp: Fingerprint, *, now: datetime) -> None:
    """Store a blob's fingerprint and band keys once (a blob published again keeps its first row)."""
    if session.get(FingerprintRow, sha256) is not None:
        return
    session.add(
        FingerprintRow(
            sha256=sha256,
            family=fp.family,
            modules=len(fp.modules),
            pooled=fp.pooled.astype("<f4").tobytes(),
            sketch=fp.to_bytes(),
            created=now,
        )
    )
    session.flush()
    session.add_all(FingerprintBand(family=fp.family, band_key=k, sha256=sha256) for k in fp.band_keys())


def load(session: Session, sha256: str) -> Fingerprint | None:
    """The stored fingerprint of a blob (``None`` for blobs stored before fingerprints existed)."""
    row = session.get(FingerprintRow, sha256)
    return None if row is None else Fingerprint.from_bytes(row.sketch)


def similar(
    session: Session, fp: Fingerprint, *, exclude: tuple[str, str] | None = None, limit: int = SIMILAR_LIMIT
) -> list[Match]:
    """The versions most similar to ``fp`` (similarity ≥ ``SIMILAR_FLOOR``), best first, any status."""
    keys = fp.band_keys()
    shas = (
        select(FingerprintBand.sha256)
        .where(col(FingerprintBand.family) == fp.family, col(FingerprintBand.band_key).in_(keys))
        .distinct()
        .limit(MAX_CANDIDATES)
    )
    query = select(FingerprintRow.sha256, FingerprintRow.pooled).where(col(FingerprintRow.sha256).in_(shas))
    matches = _scored(session, fp, session.exec(query).all(), floor=SIMILAR_FLOOR, per_blob=limit + 1)
    return [m for m in matches if (m.name, m.version) != exclude][:limit]


def near_duplicates_of(session: Session, sha256: str, *, threshold: float) -> list[Match]:
    """Published, not revoked versions whose blob is a near-duplicate of blob ``sha256``."""
    fp = load(session, sha256)
    if fp is None:
        return []
    found = similar(session, fp, limit=MAX_CANDIDATES)
    return [
        m
        for m in found
        if m.sha256 != sha256
        and m.status != "revoked"
        and m.similarity >= threshold
        and m.coverage >= MIN_COVERAGE
    ]


def record_flags(
    session: Session,
    version_id: int,
    namespace: str,
    matches: Sequence[Match],
    *,
    threshold: float,
    now: datetime,
) -> None:
    """Flag, for reviewers, a high similarity to an *active* adapter of another namespace."""
    for m in matches:
        other = m.name.split("/", 1)[0]
        if (
            other != namespace
            and m.status == "active"
            and m.similarity >= threshold
            and m.coverage >= MIN_COVERAGE
        ):
            session.add(
                SimilarityFlag(
                    version_id=version_id,
                    similar_name=m.name,
                    similar_version=m.version,
                    similarity=m.similarity,
                    coverage=m.coverage,
                    created=now,
                )
            )


def flags_of(session: Session, name: str, version: str) -> list[SimilarityFlag]:
    """The flags recorded when ``name@version`` was published."""
    query = (
        select(SimilarityFlag)
        .join(Version, col(Version.id) == col(SimilarityFlag.version_id))
        .where(col(Version.name) == name, col(Version.version) == version)
        .order_by(sa.desc(col(SimilarityFlag.similarity)))
    )
    return list(session.exec(query).all())


# -- internals -------------------------------------------------------------------------------------------


def _scored(
    session: Session, fp: Fingerprint, rows: Iterable[tuple[str, bytes]], *, floor: float, per_blob: int
) -> list[Match]:
    """Rank candidates by pooled cosine, score the best from their sketches, expand blobs to versions.

    Each blob expands to at most ``per_blob`` versions (active, then newest, first): one blob published
    under 2*10^5 names made every publish read all of them (1.6 publishes/s with 4 publishers).
    """
    rows = list(rows)
    if not rows:
        return []
    pooled = np.stack([np.frombuffer(p, "<f4", POOLED_DIM) for _, p in rows])
    cosines = pooled @ fp.pooled
    chosen = [rows[i][0] for i in np.argsort(-cosines)[:RESCORED] if cosines[i] >= POOLED_CANDIDATE]
    if not chosen:
        return []
    query = select(FingerprintRow.sha256, FingerprintRow.sketch).where(col(FingerprintRow.sha256).in_(chosen))
    scored = {}
    for sha256, sketch in session.exec(query).all():  # one round trip for every candidate's sketch
        result = compare_fingerprints(fp, Fingerprint.from_bytes(sketch))
        if result.similarity >= floor:
            scored[sha256] = result
    if not scored:
        return []
    versions = [v for sha256 in scored for v in versions_of_blob(session, sha256, limit=per_blob)]
    matches = [
        Match(
            v.name,
            v.version,
            v.sha256,
            status_of(v),
            scored[v.sha256].similarity,
            scored[v.sha256].coverage,
            scored[v.sha256].scale,
        )
        for v in versions
    ]
    return sorted(matches, key=lambda m: (-m.similarity, m.name, m.version))


def _fingerprint_file(path: Path, header: SafetensorsHeader) -> Fingerprint | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return _fingerprint_fd(fd, header)
    finally:
        os.close(fd)


def _fingerprint_fd(fd: int, header: SafetensorsHeader) -> Fingerprint | None:
    def read(start: int, end: int) -> bytes:
        return os.pread(fd, end - start, start)

    try:
        return fingerprint(open_adapter(header, read))
    except InputError:
        return None


def _stored_header(store: BlobStore, blob: BlobRecord) -> SafetensorsHeader:
    prefix = b"".join(store.open_range(blob.sha256, 0, _LENGTH_BYTES))
    length = int.from_bytes(prefix, "little") if len(prefix) == _LENGTH_BYTES else 0
    head = prefix + b"".join(
        store.open_range(blob.sha256, _LENGTH_BYTES, _LENGTH_BYTES + min(length, MAX_HEADER_BYTES))
    )
    return parse_header(head, file_size=blob.size)


def similar_to_version(db: Database, name: str, version: str) -> tuple[bool, list[Match]]:
    """``(fingerprinted, matches)`` for a published version (matches exclude the version itself).

    Raises:
        NotFoundError: no such version.
    """
    with db.read() as session:
        row = find_version(session, name, version)
        fp = load(session, row.sha256)
        if fp is None:
            return False, []
        return True, similar(session, fp, exclude=(name, version))


def similar_to(db: Database, fp: Fingerprint) -> list[Match]:
    """The published versions most similar to a fingerprint computed elsewhere (``lorareg similar FILE``)."""
    with db.read() as session:
        return similar(session, fp)


def possible_reuploads(db: Database, name: str, version: str, *, threshold: float) -> list[Match]:
    """Revoked versions of which ``name@version`` looks like a re-upload, and the flags recorded at publish.

    What a reviewer sees on a request's page: revoked near-duplicates found now, plus active adapters of
    other namespaces that were flagged when this version was published.
    """
    fingerprinted, matches = similar_to_version(db, name, version)
    found = [m for m in matches if m.similarity >= threshold and m.coverage >= MIN_COVERAGE]
    with db.read() as session:
        flagged = {(f.similar_name, f.similar_version) for f in flags_of(session, name, version)}
    return [m for m in found if m.status == "revoked" or (m.name, m.version) in flagged]
