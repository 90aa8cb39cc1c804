"""The registry service: the one place where publish, resolve, search, yank and revoke happen.

The HTTP routes (``lorareg/server/``), the web pages and the ``lorareg admin`` commands all call this class;
none of them touch the database or the blob store directly. Every method is a short transaction against the
database plus the blob store; no state is kept in process memory, so any number of replicas can share one
database and one store.

Publishing is two steps (OCI-style, see ``docs/architecture.md``): :meth:`Registry.upload_blob` streams the
file into the store under its verified SHA-256, then :meth:`Registry.publish` takes the signed bundle, checks
it against the stored blob and the namespace's registered keys, countersigns it and writes the rows and the
transparency-log leaf in ONE transaction. The database's unique constraints, not a check-then-insert, make
versions immutable: of two concurrent publishes of one ``name@version`` exactly one succeeds.

This module deliberately does not parse HTTP, read the environment or print.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lorareg.adapter.fingerprint import Fingerprint
from lorareg.errors import (
    GoneError,
    InputError,
    NotFoundError,
    PayloadTooLargeError,
    StorageError,
    UnprocessableError,
)
from lorareg.manifest.ids import check_name
from lorareg.registry import (
    accounts,
    catalog,
    collecting,
    fingerprints,
    keyrevoking,
    keyrotation,
    logstore,
    publishing,
    revoking,
    versions,
    webhook_events,
)
from lorareg.registry.auth import Principal
from lorareg.registry.blobs import BlobStore, FilesystemStore, check_sha256, open_store
from lorareg.registry.db import Blob, Database, open_database, utcnow
from lorareg.registry.faults import MID_UPLOAD_BYTES, crash_point
from lorareg.registry.lineage import check_lineage
from lorareg.registry.logtree import TreeCache
from lorareg.registry.records import (
    AdapterRecord,
    BlobRecord,
    IssuedToken,
    Page,
    PublisherKeyRecord,
    SearchQuery,
    TokenRecord,
    UserRecord,
    VersionRecord,
    VersionSummary,
)
from lorareg.registry.search import search_versions
from lorareg.signing.keys import PrivateKey, generate, is_encrypted_pem, load_private_key, read_key_file
from lorareg.signing.merkle import ConsistencyProof, InclusionProof, LogEntry
from lorareg.signing.sign import countersign

__all__ = [
    "AdapterRecord",
    "BlobRecord",
    "ConsistencyProof",
    "GarbageReport",
    "InclusionProof",
    "IssuedToken",
    "LogEntry",
    "Page",
    "Principal",
    "PublisherKeyRecord",
    "Registry",
    "SearchQuery",
    "TokenRecord",
    "UserRecord",
    "VersionRecord",
    "VersionSummary",
    "default_database_url",
    "open_registry",
]

MAX_BLOB_BYTES = 2 * 2**30  # default upload cap (2 GiB); the server passes its configured cap
MAX_BUNDLE_BYTES = 1 * 2**20  # a signed bundle larger than 1 MiB is refused before parsing
REVOCATION_VALIDITY_S = 24 * 3600  # a revocation list is valid for 24 h after it is issued
REVOCATION_RESIGN_BEFORE_S = 3600  # re-sign when less than 1 h of validity is left
WRITE_RETRIES = 5  # attempts of one write transaction when replicas race for the next log index
GC_GRACE_S = 24 * 3600  # leftovers younger than a day may be another replica's upload in progress
DATABASE_FILE = "lorareg.db"
KEY_FILE = "registry.key"
KEY_FILE_MODE = 0o600  # the registry signing key is readable by its owner only
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class GarbageReport:
    """What :meth:`Registry.collect_garbage` removed."""

    temporary_uploads: int  # temp files / multipart uploads / temp objects of crashed or abandoned uploads
    unpublished_blobs: int  # blobs uploaded before the grace period that no version references
    orphan_objects: int  # objects under a content address with no blobs/preview row (crash before the row)
    orphan_objects_spared: int  # orphans left alone: too many to be crash leftovers (wrong database?)

    def to_json(self) -> dict[str, int]:
        return {
            "temporary_uploads": self.temporary_uploads,
            "unpublished_blobs": self.unpublished_blobs,
            "orphan_objects": self.orphan_objects,
            "orphan_objects_spared": self.orphan_objects_spared,
        }


class Registry:
    """The registry's operations over one database, one blob store and the registry signing key."""

    def __init__(
        self,
        *,
        db: Database,
        store: BlobStore,
        key: PrivateKey,
        revocation_validity_s: int = REVOCATION_VALIDITY_S,
        near_duplicate_threshold: float = fingerprints.NEAR_DUPLICATE_THRESHOLD,
    ) -> None:
        self.db = db
        self.store = store
        self.key = key
        self.log_tree = TreeCache()  # leaf and subtree hashes of the log, shared by this process's requests
        self._validity = timedelta(seconds=revocation_validity_s)
        self.near_duplicate_threshold = near_duplicate_threshold

    # -- publishing ---------------------------------------------------------------------------------
    def upload_blob(
        self,
        expected_sha256: str,
        chunks: Iterable[bytes],
        *,
        principal: Principal,
        max_bytes: int = MAX_BLOB_BYTES,
    ) -> tuple[BlobRecord, bool]:
        """Stream an adapter file into the store under its SHA-256; return ``(record, created)``.

        Already stored → the existing record and ``created=False`` without reading ``chunks`` (HTTP 200).
        Otherwise the chunks are hashed (all six hashes) while written to a pending blob; the first bytes are
        kept to parse the safetensors header strictly. On any failure the pending blob is aborted, so nothing
        is left behind (also when the caller's iterator raises, e.g. a client disconnect).

        Raises:
            ForbiddenError: the principal lacks the ``publish`` scope.
            InputError: ``expected_sha256`` is not 64 lower-case hex, or the file is not a valid safetensors.
            PayloadTooLargeError: the running byte count passed ``max_bytes`` (raised as soon as it does).
            UnprocessableError: the bytes hash to another SHA-256 than ``expected_sha256``.
            GoneError: that digest was revoked by a takedown.
        """
        check_sha256(expected_sha256)
        principal.require("publish")
        with self.db.read() as session:
            reason = catalog.revocation_reason(session, expected_sha256)
            existing = session.get(Blob, expected_sha256)
        if reason is not None:
            raise GoneError(f"sha256:{expected_sha256} was revoked and cannot be uploaded again: {reason}")
        if existing is not None and self.store.exists(expected_sha256):
            return catalog.blob_record(existing), False
        uploaded = publishing.stream_to_store(
            self.store, expected_sha256, _crash_mid_upload(chunks), max_bytes=max_bytes
        )
        crash_point("after-blob-commit")
        return self._record_blob(uploaded, uploader=principal.token_id), True

    def publish(self, name: str, bundle_bytes: bytes, *, principal: Principal) -> VersionRecord:
        """Accept a signed bundle for ``name`` (``namespace/adapter``) whose blob was uploaded before.

        Steps: (1) token may publish into the namespace; (2) the blob named by the bundle's sha256 exists;
        (3) header and facts are re-read from the stored blob; (4) the bundle verifies under a key registered
        for the namespace, with the blob's hashes and facts; (5) the manifest name equals ``name``; (6) the
        digest is not revoked, nor are the weights a near-duplicate of a revoked adapter's (fingerprints);
        (7) the registry countersigns; (8) version row, search row, log leaf and fingerprint are written in
        one transaction.

        Raises:
            ForbiddenError: wrong scope or namespace, or the bundle's key is not registered for the namespace.
            PayloadTooLargeError: bundle over ``MAX_BUNDLE_BYTES``.
            UnprocessableError: blob not uploaded, name mismatch, facts that contradict the blob, a
                ``derived_from`` parent this registry lacks and that is not marked external.
            VerificationError: signature or digest checks failed (every reason listed).
            ConflictError: ``name@version`` exists already (versions are immutable).
            GoneError: the digest was revoked, or the weights are a near-duplicate of a revoked adapter.
        """
        check_name(name, "adapter name")
        namespace = name.split("/", 1)[0]
        principal.require("publish", namespace=namespace)
        if len(bundle_bytes) > MAX_BUNDLE_BYTES:
            raise PayloadTooLargeError(
                f"signature file is {len(bundle_bytes)} bytes; the cap is {MAX_BUNDLE_BYTES}"
            )
        blob = self._signed_blob(bundle_bytes)
        facts = publishing.read_stored_facts(self.store, blob)
        with self.db.read() as session:
            keys = accounts.publisher_keys(session, namespace)
        accepted = publishing.accept_bundle(
            bundle_bytes, blob=blob, facts=facts, keys=keys, namespace=namespace
        )
        if accepted.manifest["name"] != name:
            raise UnprocessableError(
                f"manifest names {accepted.manifest['name']!r}, but it was published to {name!r}"
            )
        fingerprint, similar = self._check_fingerprint(blob)
        countersigned = countersign(bundle_bytes, self.key)
        crash_point("during-countersign")
        signers = (*(s.keyid for s in accepted.signers), self.key.key_id)
        draft = versions.new_version(
            accepted.manifest, blob=blob, bundle=countersigned, signers=signers, principal=principal
        )

        def run(session: Session, now: datetime) -> VersionRecord:
            check_lineage(session, accepted.manifest)
            record = versions.insert(session, draft, now=now)
            if fingerprint is not None:
                self._store_fingerprint(session, record, fingerprint, similar, now=now)
            event = {"name": record.name, "version": record.version, "sha256": record.sha256}
            webhook_events.enqueue(session, "version.published", event, namespaces=[namespace], now=now)
            crash_point("before-rows-commit")
            return record

        return self._retrying(run)

    # -- reading ------------------------------------------------------------------------------------
    def resolve(self, ref: str) -> VersionRecord:
        """Find a version by ``ns/name`` (highest active semver), ``ns/name@version|@alias`` or any hash.

        Hashes: 64 hex (sha256, autov3 or blake3), 10 hex (autov2), 8 hex (autov1 or crc32), or a prefix of
        12+ hex of AutoV3 (as A1111's ``Lora hashes`` write it). An exact ``@version`` is returned whatever
        its status (the caller shows yanked/revoked); a bare name or a hash prefers active versions.

        Raises:
            InputError: the reference is neither a name nor a hash.
            NotFoundError: nothing matches (or a bare name has only yanked/revoked versions).
        """
        with self.db.read() as session:
            return catalog.version_record(session, catalog.resolve_ref(session, ref))

    def get_adapter(self, name: str) -> AdapterRecord:
        """The adapter ``ns/name`` with every version, highest semver first. Raises NotFoundError."""
        with self.db.read() as session:
            return catalog.adapter_record(session, name)

    def get_version(self, name: str, version: str) -> VersionRecord:
        """One exact version (or the one an alias such as ``prod`` names), whatever its status.

        Raises NotFoundError.
        """
        with self.db.read() as session:
            return catalog.version_record(session, catalog.find_version_or_alias(session, name, version))

    def derived_by(self, name: str, version: str, *, limit: int) -> list[tuple[str, str]]:
        """Live versions that declare they derive from exactly ``name@version`` (lineage, newest first)."""
        with self.db.read() as session:
            return catalog.derived_by(session, name, version, limit=limit)

    def version_counts(self, names: list[str]) -> dict[str, int]:
        """Versions per adapter name (any status), for the catalogue's "N versions"; one query."""
        with self.db.read() as session:
            return catalog.version_counts(session, names)

    def get_blob(self, sha256: str) -> BlobRecord:
        """The blob row for a digest, published or not (the service's own view; see :meth:`readable_blob`).

        Raises:
            InputError: not 64 lower-case hex.
            NotFoundError: not stored.
        """
        check_sha256(sha256)
        with self.db.read() as session:
            row = session.get(Blob, sha256)
            if row is None:
                raise NotFoundError(f"blob sha256:{sha256} is not stored")
            return catalog.blob_record(row)

    def blob_file(self, sha256: str) -> tuple[Path, Path] | None:
        """``(blob root, file)`` of a stored blob when the store is a local directory, else None.

        A front proxy that streams files itself (nginx ``X-Accel-Redirect``, ``X-Sendfile``) needs the path;
        an S3 store has none. The caller has already authorised the request (revocation checked).
        """
        if not isinstance(self.store, FilesystemStore):
            return None
        return self.store.root / "blobs", self.store.path_of(sha256)

    def blob_redirect(self, sha256: str, *, expires_s: int) -> str | None:
        """A presigned store URL for a stored blob when the store is S3, else None (the caller authorised)."""
        presign = getattr(self.store, "presigned_url", None)
        return presign(sha256, expires_s=expires_s) if presign is not None else None

    def readable_blob(self, sha256: str, *, reader: Principal | None) -> BlobRecord:
        """The blob row for a digest that ``reader`` may download (the server checks :meth:`is_revoked`).

        A blob is public once a version publishes it; before that only the token that uploaded it may
        read it, so an upload is not a way to hand out files the registry never vetted.

        Raises:
            InputError: not 64 lower-case hex.
            NotFoundError: not stored, or not published and ``reader`` is not its uploader.
        """
        check_sha256(sha256)
        with self.db.read() as session:
            row = session.get(Blob, sha256)
            if row is None or not (
                catalog.is_published(session, sha256)
                or (reader is not None and row.uploaded_by == reader.token_id)
            ):
                raise NotFoundError(f"blob sha256:{sha256} is not stored")
            return catalog.blob_record(row)

    def is_revoked(self, sha256: str) -> str | None:
        """The public revocation reason if the digest was revoked, else None (the server answers 451)."""
        with self.db.read() as session:
            return catalog.revocation_reason(session, sha256)

    def search(self, query: SearchQuery) -> Page:
        """Search active versions (yanked and revoked hidden) with keyset pagination.

        A cursor from one page, passed back with the same query, continues exactly after the last item even
        while versions are being published (new ones sort before it or are past the end).

        Raises:
            InputError: a malformed cursor or a limit below 1.
        """
        with self.db.read() as session:
            rows, cursor = search_versions(session, query)
            return Page(tuple(catalog.summaries(session, rows)), cursor)

    # -- publisher and reviewer actions ----------------------------------------------------------------
    def yank(self, name: str, version: str, *, principal: Principal) -> VersionRecord:
        """Hide a version from resolve-by-name and search; still loadable by exact version. Logged.

        Raises ForbiddenError (scope ``yank`` for the namespace), NotFoundError, ConflictError (revoked).
        """
        return self._set_yanked(name, version, yanked=True, principal=principal)

    def unyank(self, name: str, version: str, *, principal: Principal) -> VersionRecord:
        """Undo :meth:`yank`. Logged. Same errors."""
        return self._set_yanked(name, version, yanked=False, principal=principal)

    def revoke(self, target: str, *, reason: str, principal: Principal) -> list[VersionRecord]:
        """Revoke a digest (``sha256``) or ``name@version`` (its digest) everywhere; return the versions hit.

        Marks every version with that digest revoked, blocks the digest from any future upload or publish
        under any name, issues a new signed revocation list (next version) and appends a log leaf, all in one
        transaction. Revoking an already revoked digest is a no-op returning its versions. The takedown
        workflow calls this after a reviewer upholds a request.

        Raises ForbiddenError (scope ``review``), InputError, NotFoundError (an unknown name@version).
        """
        principal.require("review")

        def run(session: Session, now: datetime) -> list[VersionRecord]:
            rows = revoking.revoke(
                session,
                target,
                reason=reason,
                actor=principal.token_id,
                key=self.key,
                now=now,
                validity=self._validity,
            )
            return [catalog.version_record(session, r) for r in rows]

        return self._retrying(run)

    def revoke_within(
        self, session: Session, target: str, *, reason: str, principal: Principal, now: datetime
    ) -> None:
        """:meth:`revoke` inside the caller's write transaction (see :meth:`write_retrying`).

        A takedown decision uses it so that the verdict, the revocation, the log leaf and the audit entry
        commit together or not at all, whatever a concurrent reviewer does meanwhile.
        """
        principal.require("review")
        revoking.revoke(
            session,
            target,
            reason=reason,
            actor=principal.token_id,
            key=self.key,
            now=now,
            validity=self._validity,
        )

    def write_retrying(self, work: Callable[[Session, datetime], _T]) -> _T:
        """Run ``work(session, now)`` in one write transaction, retried when the log index was taken."""
        return self._retrying(work)

    def revocation_list(self, *, now: datetime | None = None) -> bytes:
        """The current signed revocation list (DSSE envelope JSON bytes).

        Re-signed with the next version when it is expired or expires within ``REVOCATION_RESIGN_BEFORE_S``;
        replicas racing to re-sign agree through the database (one wins, the others read its list).
        """
        moment = now or utcnow()
        resign_before = timedelta(seconds=REVOCATION_RESIGN_BEFORE_S)
        with self.db.read() as session:
            state = revoking.current_list(session)
        if state is not None and not revoking.needs_resigning(state, now=moment, resign_before=resign_before):
            return bytes(state.envelope)

        def run(session: Session, _now: datetime) -> bytes:
            fresh = revoking.current_list(session)  # another replica may have re-signed meanwhile
            if fresh is not None and not revoking.needs_resigning(
                fresh, now=moment, resign_before=resign_before
            ):
                return bytes(fresh.envelope)
            return revoking.issue_list(session, self.key, now=moment, validity=self._validity)

        return self._retrying(run)

    def keys(self) -> list[dict[str, str]]:
        """The registry's public keys: ``[{"keyid", "public_key" (PEM), "role": "registry"}]``."""
        public = self.key.public_key
        return [{"keyid": public.key_id, "public_key": public.pem.decode("ascii"), "role": "registry"}]

    def key_chain(self) -> list[bytes]:
        """The key-set documents of every registry key rotation, oldest first (empty before the first)."""
        with self.db.read() as session:
            return keyrotation.chain(session)

    def rotate_key(self, key_file: Path, *, password: bytes | None) -> tuple[str, str]:
        """Rotate the registry key kept in ``key_file`` (``lorareg.registry.keyrotation``); (old, new) ids.

        Raises StorageError (a staged key left by an unfinished rotation, unwritable files).
        """
        new = generate()
        staged = keyrotation.stage_key_file(key_file, new, password=password)
        old = self.key
        self._retrying(lambda session, now: keyrotation.announce(session, old, new, now=now))
        keyrotation.swap_key_files(key_file, staged, old_keyid=old.key_id)
        self.key = new
        return old.key_id, new.key_id

    # -- transparency log -------------------------------------------------------------------------------
    def log_head(self) -> bytes:
        """A freshly signed tree head (DSSE envelope JSON) over the whole log: size, root hash, timestamp."""
        with self.db.read() as session:
            return logstore.signed_head(session, self.key, now=utcnow(), cache=self.log_tree)

    def log_checkpoint(self, origin: str) -> bytes:
        """The whole log as a C2SP ``tlog-checkpoint`` signed note, signed by the registry key."""
        with self.db.read() as session:
            return logstore.checkpoint(session, self.key, origin=origin, cache=self.log_tree)

    def log_inclusion(self, index: int, tree_size: int) -> InclusionProof:
        """Inclusion proof of leaf ``index`` in the first ``tree_size`` leaves; InputError if out of range."""
        with self.db.read() as session:
            return logstore.inclusion(session, index, tree_size, cache=self.log_tree)

    def log_consistency(self, first: int, second: int) -> ConsistencyProof:
        """Consistency proof between tree sizes ``first`` <= ``second``. InputError if out of range."""
        with self.db.read() as session:
            return logstore.consistency(session, first, second, cache=self.log_tree)

    def log_evidence(self, origin: str, *, index: int, since: int) -> dict[str, Any]:
        """Checkpoint, leaf ``index`` and its inclusion proof, consistency from ``since``: one snapshot."""
        with self.db.read() as session:
            return logstore.evidence(
                session, self.key, origin=origin, index=index, since=since, cache=self.log_tree
            )

    def log_entries(self, start: int, end: int) -> list[LogEntry]:
        """Leaves ``start`` (inclusive) to ``end`` (exclusive), at most ``tlog.MAX_ENTRIES_PER_PAGE``."""
        with self.db.read() as session:
            return logstore.entries(session, start, end)

    # -- administration (the ``lorareg admin`` commands; no principal: the caller holds the data dir) -------
    def add_publisher(self, namespace: str, public_pem: str) -> PublisherKeyRecord:
        """Register ``namespace`` (created if new) and a publisher key for it; idempotent per key."""
        return accounts.add_publisher(self.db, namespace, public_pem)

    def retire_publisher_key(self, namespace: str, keyid: str) -> PublisherKeyRecord:
        """Rotation: the key (id or prefix) can no longer publish; what it signed stays valid."""

        def run(session: Session, now: datetime) -> PublisherKeyRecord:
            return accounts.key_record(keyrevoking.retire_key(session, namespace, keyid, now=now))

        return self._retrying(run)

    def revoke_publisher_key(
        self, namespace: str, keyid: str, *, compromised_since: datetime
    ) -> tuple[PublisherKeyRecord, list[VersionRecord]]:
        """Compromise: retire the key and revoke the versions it signed logged at or after the cutoff.

        Raises NotFoundError (no such key), InputError (ambiguous prefix, naive time).
        """

        def run(session: Session, now: datetime) -> tuple[PublisherKeyRecord, list[VersionRecord]]:
            row, hit = keyrevoking.revoke_key(
                session,
                namespace,
                keyid,
                compromised_since=compromised_since,
                key=self.key,
                now=now,
                validity=self._validity,
            )
            return accounts.key_record(row), [catalog.version_record(session, v) for v in hit]

        return self._retrying(run)

    def publisher_keys(self, namespace: str) -> list[PublisherKeyRecord]:
        """The keys registered for a namespace (empty if none)."""
        with self.db.read() as session:
            return accounts.publisher_keys(session, namespace)

    def create_token(
        self,
        *,
        role: str,
        namespace: str | None = None,
        scopes: tuple[str, ...] | None = None,
        expires: datetime | None = None,
        user: str | None = None,
    ) -> IssuedToken:
        """Create an API token; the secret is returned once and only its hash is stored.

        Raises InputError: unknown role, scopes above the role, a publisher token without a namespace, a
        namespace that is not registered, or an unknown user.
        """
        return accounts.create_token(
            self.db, role=role, namespace=namespace, scopes=scopes, expires=expires, user=user
        )

    def revoke_token(self, token_id: str) -> TokenRecord:
        """Revoke a token at once (every replica sees it on the next request). NotFoundError if unknown."""
        return accounts.revoke_token(self.db, token_id)

    def list_tokens(self) -> list[TokenRecord]:
        """Every token, newest first (no secrets: they are not stored)."""
        with self.db.read() as session:
            return accounts.list_tokens(session)

    def authenticate(self, secret: str, *, now: datetime | None = None) -> Principal:
        """Turn a bearer token into a :class:`Principal`; records ``last_used``.

        Raises AuthError: malformed, unknown, revoked or expired (constant-time hash comparison).
        """
        return accounts.authenticate(self.db, secret, now=now or utcnow())

    def add_user(self, name: str, *, role: str) -> UserRecord:
        """Add a user with a role (admin, reviewer, publisher). ConflictError if the name exists."""
        return accounts.add_user(self.db, name, role=role)

    def list_users(self) -> list[UserRecord]:
        """Every user, by name."""
        with self.db.read() as session:
            return accounts.list_users(session)

    # -- maintenance ----------------------------------------------------------------------------------
    def collect_garbage(self, *, older_than_s: float = GC_GRACE_S) -> GarbageReport:
        """Remove what crashed or abandoned uploads left behind, if older than ``older_than_s`` seconds.

        Three kinds: the store's temporary uploads (temp files, multipart uploads); blobs uploaded (step 1)
        but never published (step 2) — e.g. the loser of a 409, or a client that gave up; and objects
        committed under their content address whose row never committed (a crash in between). ``lorareg
        admin gc`` and every ``serve`` start call it. The grace period protects uploads in flight on other
        replicas; a day is far longer than any upload. Nothing that a version, a blob row or a preview
        names is deleted, and orphans too many to be crash leftovers (a database that is not this store's)
        are spared and counted; see ``registry/collecting.py`` for the order of deletes and its races.

        Raises:
            StorageError: the store or database failed.
        """
        temporary = self.store.collect_garbage(older_than_s)
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        unpublished = collecting.collect_unpublished(self.db, self.store, cutoff=cutoff)
        orphans, spared = collecting.collect_orphans(self.db, self.store, older_than_s=older_than_s)
        return GarbageReport(temporary, unpublished, orphans, spared)

    # -- internals ------------------------------------------------------------------------------------
    def _record_blob(self, uploaded: publishing.UploadedBlob, *, uploader: str) -> BlobRecord:
        """Write the blob row after the blob is committed; a concurrent upload's row is as good as ours."""
        h = uploaded.hashes
        row = Blob(
            sha256=h.sha256,
            size=uploaded.size,
            autov1=h.autov1,
            autov2=h.autov2,
            autov3=h.autov3,
            crc32=h.crc32,
            blake3=h.blake3,
            uploaded_at=utcnow(),
            uploaded_by=uploader,
        )
        try:
            with self.db.write() as session:
                session.add(row)
        except IntegrityError:
            with self.db.read() as session:
                stored = session.get(Blob, h.sha256)
                if stored is None:
                    raise
                return catalog.blob_record(stored)
        return catalog.blob_record(row)

    def _signed_blob(self, bundle_bytes: bytes) -> BlobRecord:
        """The stored blob the bundle claims to sign; 451 if revoked, 422 if not uploaded yet."""
        algorithm, digest = publishing.signed_digest(bundle_bytes)
        column = col(Blob.sha256) if algorithm == "sha256" else col(Blob.blake3)
        with self.db.read() as session:
            row = session.exec(select(Blob).where(column == digest)).first()
            reason = catalog.revocation_reason(session, row.sha256 if row else digest)
        if reason is not None:
            raise GoneError(
                f"{algorithm}:{digest} was revoked and cannot be published under any name: {reason}"
            )
        if row is None or not self.store.exists(row.sha256):
            raise UnprocessableError(f"blob {algorithm}:{digest} is not uploaded; upload the blob first")
        return catalog.blob_record(row)

    def _check_fingerprint(self, blob: BlobRecord) -> tuple[Fingerprint | None, list[fingerprints.Match]]:
        """Fingerprint the stored blob; refuse a near-duplicate of a revoked adapter (GoneError, 451)."""
        fingerprint = fingerprints.fingerprint_stored(self.store, blob)
        if fingerprint is None:
            return None, []
        with self.db.read() as session:
            fingerprints.refuse_revoked_copy(session, fingerprint, threshold=self.near_duplicate_threshold)
            return fingerprint, fingerprints.similar(session, fingerprint)

    def _store_fingerprint(
        self,
        session: Session,
        record: VersionRecord,
        fingerprint: Fingerprint,
        similar: list[fingerprints.Match],
        *,
        now: datetime,
    ) -> None:
        fingerprints.save(session, record.sha256, fingerprint, now=now)
        row = catalog.find_version(session, record.name, record.version)
        assert row.id is not None
        namespace = record.name.split("/", 1)[0]
        fingerprints.record_flags(
            session, row.id, namespace, similar, threshold=self.near_duplicate_threshold, now=now
        )

    def _set_yanked(self, name: str, version: str, *, yanked: bool, principal: Principal) -> VersionRecord:
        principal.require("yank", namespace=name.split("/", 1)[0])

        def run(session: Session, now: datetime) -> VersionRecord:
            row = revoking.set_yanked(session, name, version, yanked=yanked, now=now)
            return catalog.version_record(session, row)

        return self._retrying(run)

    def _retrying(self, work: Callable[[Session, datetime], _T]) -> _T:
        """Run ``work`` in one write transaction; retry when a concurrent writer took the next log index."""
        for _attempt in range(WRITE_RETRIES - 1):
            try:
                with self.db.write() as session:
                    return work(session, utcnow())
            except logstore.LogRaceError:
                continue
        with self.db.write() as session:
            return work(session, utcnow())


def _crash_mid_upload(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass chunks through; the test-only "mid-upload" crash point fires once enough were written."""
    written = 0
    for chunk in chunks:
        yield chunk  # the caller writes it to the pending blob before asking for the next one
        written += len(chunk)
        if written >= MID_UPLOAD_BYTES:
            crash_point("mid-upload")


def open_registry(
    data_dir: str | Path,
    *,
    database_url: str | None = None,
    storage: str | None = None,
    s3_endpoint: str | None = None,
    key_file: str | Path | None = None,
    key_password: bytes | None = None,
    near_duplicate_threshold: float = fingerprints.NEAR_DUPLICATE_THRESHOLD,
    key_uri: str | None = None,
    key_pin: str | None = None,
) -> Registry:
    """Open (creating on first use) the registry whose key lives in ``data_dir``.

    By default everything is embedded in ``data_dir``: ``lorareg.db`` (SQLite) and ``blobs/``.
    ``database_url`` (e.g. ``postgresql+psycopg://…``) and ``storage`` (``s3://bucket/prefix``, endpoint
    ``s3_endpoint``, or another directory) replace either. The registry signing key is
    ``data_dir/registry.key``, created (P-256, mode 0600, never overwritten, encrypted with ``key_password``
    when one is given) on first use; ``key_file`` names a key kept elsewhere (a mounted secret), which must
    exist: it is never created, so a mistyped path cannot silently mint a second registry identity.
    ``key_uri`` (``pkcs11:token=…;object=…``, PIN ``key_pin``) keeps the key in an HSM instead
    (``lorareg.registry.hsm``): every registry signature goes through the token.

    A database without any table gets the current schema (migrated and stamped); any other must already be
    at this lorareg's schema revision, else a one-line error says to run ``lorareg admin migrate``.

    Raises:
        StorageError: the directory, database or store cannot be opened, or the schema is behind or ahead.
    """
    root = Path(data_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create data directory {root}: {e}") from e
    db = open_database(database_url or default_database_url(root))
    store = FilesystemStore(root) if storage is None else open_store(storage, s3_endpoint=s3_endpoint)
    if key_uri is not None:
        from lorareg.registry.hsm import open_pkcs11_key  # python-pkcs11 only when an HSM is configured

        key = open_pkcs11_key(key_uri, pin=key_pin)
    elif key_file is not None:
        key = _existing_registry_key(Path(key_file), key_password)
    else:
        key = _registry_key(root / KEY_FILE, key_password)
    return Registry(db=db, store=store, key=key, near_duplicate_threshold=near_duplicate_threshold)


def default_database_url(data_dir: str | Path) -> str:
    """The embedded database of a data directory: ``sqlite:///DATA_DIR/lorareg.db``."""
    return f"sqlite:///{Path(data_dir) / DATABASE_FILE}"


def _existing_registry_key(path: Path, password: bytes | None) -> PrivateKey:
    """Load a registry key kept outside the data directory; refuse a missing one."""
    if not path.is_file():
        raise StorageError(f"registry key file {path} does not exist (LORAREG_REGISTRY_KEY_FILE)")
    return _load_registry_key(path, password)


def _registry_key(path: Path, password: bytes | None) -> PrivateKey:
    """Load the registry key, creating it (mode 0600, never overwriting) on first use."""
    if not path.exists():
        try:
            fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), KEY_FILE_MODE
            )
        except FileExistsError:
            pass  # another process created it just now; load theirs
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(generate().to_pem(password=password))
                handle.flush()
                os.fsync(handle.fileno())
    return _load_registry_key(path, password)


def _load_registry_key(path: Path, password: bytes | None) -> PrivateKey:
    pem = read_key_file(path)
    if password is None and is_encrypted_pem(pem):
        raise InputError(f"registry key {path} is encrypted: set LORAREG_REGISTRY_KEY_PASSWORD")
    return load_private_key(pem, password=password)
