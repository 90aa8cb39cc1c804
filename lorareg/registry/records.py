"""The plain records the registry service returns: frozen dataclasses with a ``to_json()`` each.

They are detached from the database session (built from rows inside the service), so routes, templates and
the CLI can hold them after the transaction ended. ``to_json()`` gives the exact JSON shapes of the HTTP API
(``docs/architecture.md``), so the server's routes stay thin. Nothing here touches a database or a disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

VersionStatus = Literal["active", "yanked", "revoked"]
SortOrder = Literal["newest", "name"]

DEFAULT_PAGE_LIMIT = 20  # items per search page when the caller gives none
MAX_PAGE_LIMIT = 100  # items per search page at most, whatever the caller asks


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class BlobRecord:
    """A stored blob: its size and the six hashes of DESIGN.md (``autov1`` is None under 2 MiB)."""

    sha256: str
    size: int
    autov1: str | None
    autov2: str
    autov3: str
    crc32: str
    blake3: str
    uploaded_at: datetime

    def hashes(self) -> dict[str, str | None]:
        """The six hashes by name, in ``lorareg.adapter.hashing.HASH_NAMES`` order."""
        return {
            "sha256": self.sha256,
            "autov1": self.autov1,
            "autov2": self.autov2,
            "autov3": self.autov3,
            "crc32": self.crc32,
            "blake3": self.blake3,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "size": self.size,
            "hashes": self.hashes(),
            "uploaded_at": _iso(self.uploaded_at),
        }


@dataclass(frozen=True, slots=True)
class VersionSummary:
    """One version as search results and adapter pages list it (no manifest, no signature bytes)."""

    name: str  # "namespace/adapter"
    version: str
    sha256: str
    size: int
    family: str
    license_id: str | None
    commercial_use: bool | None
    consent_subject: str | None
    consent_status: str | None
    creators: tuple[str, ...]
    trigger_words: tuple[str, ...]
    tags: tuple[str, ...]
    description: str
    published_at: datetime
    status: VersionStatus
    unreviewed: bool = False  # an import whose licence or consent nobody has stated yet (docs/folders.md)

    @property
    def ref(self) -> str:
        """``name@version``, the reference users type."""
        return f"{self.name}@{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "sha256": self.sha256,
            "size": self.size,
            "family": self.family,
            "license": self.license_id,
            "commercial_use": self.commercial_use,
            "consent_subject": self.consent_subject,
            "consent_status": self.consent_status,
            "creators": list(self.creators),
            "trigger_words": list(self.trigger_words),
            "tags": list(self.tags),
            "description": self.description,
            "published_at": _iso(self.published_at),
            "status": self.status,
            "unreviewed": self.unreviewed,
        }


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """Everything about one version: its summary, the verified manifest, hashes and the signature bundle.

    ``bundle`` is the countersigned Sigstore bundle JSON (publisher + registry signatures) exactly as served
    at ``…/signature``; ``signers`` are the key ids that signed it, publisher first.
    """

    summary: VersionSummary
    manifest: dict[str, Any]
    blob: BlobRecord
    bundle: bytes = field(repr=False)
    signers: tuple[str, ...]
    published_by: str | None  # token id of the publisher
    revocation_reason: str | None
    tlog_index: int | None
    revoked_at: datetime | None = None  # when its digest was revoked (the revocations row)
    yanked_at: datetime | None = None  # when the current yank was logged; None when not yanked

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def version(self) -> str:
        return self.summary.version

    @property
    def sha256(self) -> str:
        return self.summary.sha256

    @property
    def status(self) -> VersionStatus:
        return self.summary.status

    def to_json(self) -> dict[str, Any]:
        """The version detail of the API; the server adds ``blob_url`` and ``signature_url``."""
        return {
            **self.summary.to_json(),
            "manifest": self.manifest,
            "hashes": self.blob.hashes(),
            "revocation_reason": self.revocation_reason,
            "revoked_at": _iso(self.revoked_at),
            "yanked_at": _iso(self.yanked_at),
            "signers": list(self.signers),
            "published_by": self.published_by,
            "tlog_index": self.tlog_index,
        }


@dataclass(frozen=True, slots=True)
class AdapterRecord:
    """An adapter with every version, newest semver first (yanked and revoked ones flagged, not hidden)."""

    name: str
    namespace: str
    created: datetime
    versions: tuple[VersionSummary, ...]

    @property
    def latest(self) -> VersionSummary | None:
        """The version ``resolve("ns/name")`` picks: the highest active release, else pre-release."""
        active = [v for v in self.versions if v.status == "active"]
        releases = [v for v in active if "-" not in v.version.split("+", 1)[0]]
        return next(iter(releases or active), None)

    def to_json(self) -> dict[str, Any]:
        latest = self.latest
        return {
            "name": self.name,
            "namespace": self.namespace,
            "created": _iso(self.created),
            "latest": None if latest is None else latest.version,
            "versions": [v.to_json() for v in self.versions],
        }


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """A catalogue query: full text plus filters, a sort and a keyset cursor (all optional).

    ``text`` is matched as words (each word a prefix) over name, description, trigger words, creators and
    tags; it is never passed to the database as query syntax.
    """

    text: str | None = None
    family: str | None = None
    license: str | None = None
    commercial_use: bool | None = None
    consent_subject: str | None = None
    consent_status: str | None = None
    unreviewed: bool | None = None  # True: only unreviewed imports; False: none of them
    creator: str | None = None
    namespace: str | None = None  # one team's space (issue 14)
    sort: SortOrder = "newest"
    cursor: str | None = None  # opaque, from Page.next_cursor of the same query
    limit: int = DEFAULT_PAGE_LIMIT


@dataclass(frozen=True, slots=True)
class Page:
    """One page of search results; ``next_cursor`` is None on the last page."""

    items: tuple[VersionSummary, ...]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        return {"items": [v.to_json() for v in self.items], "next_cursor": self.next_cursor}


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """An API token as admins list it; the secret is never stored, so it is not here."""

    token_id: str
    role: str
    scopes: tuple[str, ...]
    namespace: str | None
    user: str | None
    created: datetime
    expires: datetime | None
    revoked_at: datetime | None
    last_used: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "role": self.role,
            "scopes": list(self.scopes),
            "namespace": self.namespace,
            "user": self.user,
            "created": _iso(self.created),
            "expires": _iso(self.expires),
            "revoked_at": _iso(self.revoked_at),
            "last_used": _iso(self.last_used),
        }


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just created: the only moment its secret (``lrg_…``) exists outside the caller's hands."""

    token_id: str
    secret: str = field(repr=False)
    record: TokenRecord


@dataclass(frozen=True, slots=True)
class UserRecord:
    name: str
    role: str
    created: datetime

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "role": self.role, "created": _iso(self.created)}


@dataclass(frozen=True, slots=True)
class PublisherKeyRecord:
    """A public key registered for a namespace: only bundles signed by such a key publish there."""

    namespace: str
    keyid: str
    public_pem: str
    added: datetime
    retired: datetime | None = None  # no longer publishes (rotated out or revoked)
    compromised_since: datetime | None = None  # versions it signed logged from then on are revoked

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "keyid": self.keyid,
            "public_key": self.public_pem,
            "added": _iso(self.added),
            "retired": _iso(self.retired),
            "compromised_since": _iso(self.compromised_since),
        }
