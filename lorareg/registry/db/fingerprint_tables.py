"""Tables of weight fingerprints: one fingerprint per blob, its LSH band keys, and reviewer flags.

Same ``SQLModel.metadata`` as ``tables.py`` (the ``db`` package imports this module). A fingerprint is a pure
function of the blob's bytes, so it is keyed by the blob's sha256 and written once. ``fingerprint_bands``
holds ``BANDS`` rows per blob; its primary key ``(family, band_key, sha256)`` is the index the candidate
search uses: "which blobs of this family share any band with this one" is ``BANDS`` index range scans on
SQLite and PostgreSQL alike, whatever the number of versions (``docs/fingerprints.md``).
``similarity_flags`` records, at publish, a high similarity to another namespace's active adapter: shown to
reviewers, never acted on automatically.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, LargeBinary
from sqlmodel import Field, SQLModel

from lorareg.registry.db.tables import dt_column


class FingerprintRow(SQLModel, table=True):
    """The stored fingerprint of one blob: family, pooled vector (float32) and per-module sketches."""

    __tablename__ = "fingerprints"
    sha256: str = Field(primary_key=True, foreign_key="blobs.sha256", max_length=64)
    family: str = Field(max_length=40, index=True)
    modules: int
    pooled: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sketch: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created: datetime = dt_column()


class FingerprintBand(SQLModel, table=True):
    """One LSH band key of a blob's pooled vector (``band << BAND_BITS | hyperplane bits``)."""

    __tablename__ = "fingerprint_bands"
    family: str = Field(primary_key=True, max_length=40)
    band_key: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    sha256: str = Field(primary_key=True, foreign_key="fingerprints.sha256", max_length=64)


class SimilarityFlag(SQLModel, table=True):
    """At publish: version ``version_id`` is very similar to another namespace's active ``name@version``."""

    __tablename__ = "similarity_flags"
    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="versions.id", index=True)
    similar_name: str = Field(max_length=200)
    similar_version: str = Field(max_length=100)
    similarity: float
    coverage: float
    created: datetime = dt_column()
