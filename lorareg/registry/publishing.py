"""The two steps of publishing: stream a blob into the store, then accept a signed bundle for it.

Step 1 (:func:`upload_blob`) trusts nothing about the bytes: they are hashed while written to a pending
blob, the digest must equal the one the client named, the safetensors header must parse strictly, and only
then is the blob committed and its row written. Any failure — including the client's stream raising on a
disconnect — aborts the pending blob, so nothing half-written is ever visible or left behind.

Step 2 (:func:`accept_bundle`) re-reads the header and the few scalar bytes it needs from the *stored* blob
(never from the request) to compute the file facts, verifies the bundle against the namespace's registered
publisher keys with those facts and the blob's hashes, and returns what the service writes in one
transaction. It does not write rows itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from lorareg.adapter.facts import AdapterFacts, compute_facts
from lorareg.adapter.hashing import FileHashes, StreamHasher
from lorareg.adapter.safetensors import (
    MAX_HEADER_BYTES,
    SafetensorsHeader,
    TensorInfo,
    parse_header,
    read_scalars,
)
from lorareg.errors import (
    ForbiddenError,
    InputError,
    PayloadTooLargeError,
    UnprocessableError,
    VerificationError,
)
from lorareg.registry.blobs import BlobStore, PendingBlob
from lorareg.registry.records import BlobRecord, PublisherKeyRecord
from lorareg.signing.bundle import Bundle
from lorareg.signing.keys import PublicKey, load_public_key
from lorareg.signing.statement import parse_statement
from lorareg.signing.verify import Signer, verify_bundle

_LENGTH_BYTES = 8  # the safetensors header-length prefix


@dataclass(frozen=True, slots=True)
class UploadedBlob:
    """What step 1 learnt from the bytes: their hashes, size and the parsed header."""

    hashes: FileHashes
    size: int
    header: SafetensorsHeader


@dataclass(frozen=True, slots=True)
class AcceptedBundle:
    """A bundle that verified against the stored blob: the manifest dict and who signed it."""

    manifest: dict[str, Any]
    signers: tuple[Signer, ...]


@dataclass(frozen=True, slots=True)
class _TrustedKey:
    keyid: str
    label: str
    role: str
    namespace: str | None
    public_key: PublicKey


class _NamespaceTrust:
    """The verifier's trust store for one publish: exactly the keys registered for the namespace."""

    def __init__(self, keys: list[PublisherKeyRecord]) -> None:
        self._keys = {
            k.keyid: _TrustedKey(
                k.keyid,
                f"publisher {k.namespace}",
                "publisher",
                k.namespace,
                load_public_key(k.public_pem.encode()),
            )
            for k in keys
        }

    def get(self, keyid: str) -> _TrustedKey | None:
        return self._keys.get(keyid)

    def keys(self) -> list[_TrustedKey]:
        return list(self._keys.values())


class _PublishPolicy:
    """At publish time only integrity and provenance count; studio policies apply when pulling."""

    require_registry_signature = False
    require_lorareg_manifest = True

    def check(self, manifest: object) -> list[str]:
        return []


def stream_to_store(
    store: BlobStore, expected_sha256: str, chunks: Iterable[bytes], *, max_bytes: int
) -> UploadedBlob:
    """Hash and store ``chunks`` under ``expected_sha256``; abort and raise on any failure (step 1)."""
    pending = store.begin()
    try:
        uploaded = _consume(pending, chunks, max_bytes=max_bytes)
        if uploaded.hashes.sha256 != expected_sha256:
            raise UnprocessableError(
                f"digest mismatch: the uploaded bytes have sha256 {uploaded.hashes.sha256}, "
                f"the upload URL says {expected_sha256}"
            )
        pending.commit(expected_sha256)
    except BaseException:
        pending.abort()
        raise
    return uploaded


def signed_digest(bundle_bytes: bytes) -> tuple[str, str]:
    """``(algorithm, digest)`` of the file a bundle claims to sign, read before verification.

    Only used to find the blob to verify against; everything is checked against that blob afterwards.
    A bundle that does not parse is bad input (400, as ``docs/api.md`` says), not an unprocessable one.
    """
    try:
        statement = parse_statement(Bundle.from_bytes(bundle_bytes).envelope.payload)
    except (InputError, VerificationError) as e:
        raise InputError(f"signature file is malformed: {e}") from e
    return statement.resource_algorithm, statement.resource_digest


def read_stored_facts(store: BlobStore, blob: BlobRecord) -> AdapterFacts:
    """Facts from the stored blob: its header and its 0-dim scalars, read by range, never the tensors."""
    prefix = b"".join(store.open_range(blob.sha256, 0, _LENGTH_BYTES))
    length = int.from_bytes(prefix, "little") if len(prefix) == _LENGTH_BYTES else 0
    head = prefix + b"".join(
        store.open_range(blob.sha256, _LENGTH_BYTES, _LENGTH_BYTES + min(length, MAX_HEADER_BYTES))
    )
    header = parse_header(head, file_size=blob.size)
    return compute_facts(header, _stored_scalars(store, blob.sha256, header, head))


def accept_bundle(
    bundle_bytes: bytes,
    *,
    blob: BlobRecord,
    facts: AdapterFacts,
    keys: list[PublisherKeyRecord],
    namespace: str,
) -> AcceptedBundle:
    """Verify a bundle for the stored blob under the namespace's keys (step 2's checks, no writes).

    Raises:
        ForbiddenError: no signature names a key registered for ``namespace``.
        VerificationError: signature, digest or fact checks failed (every reason).
    """
    trust = _NamespaceTrust([k for k in keys if k.retired is None])
    envelope = Bundle.from_bytes(bundle_bytes).envelope
    retired = {k.keyid: k for k in keys if k.retired is not None}
    if not any(trust.get(s.keyid) for s in envelope.signatures) and any(
        s.keyid in retired for s in envelope.signatures
    ):
        old = next(retired[s.keyid] for s in envelope.signatures if s.keyid in retired)
        why = "revoked (compromised)" if old.compromised_since is not None else "retired"
        raise ForbiddenError(
            f"publisher key {old.keyid[:16]}… of namespace {namespace!r} was {why} on "
            f"{old.retired:%Y-%m-%d %H:%M} UTC and can no longer publish; sign with a current key"
        )
    if not any(trust.get(s.keyid) for s in envelope.signatures):
        signed_by = ", ".join(s.keyid[:16] + "…" for s in envelope.signatures if s.keyid) or "no named key"
        raise ForbiddenError(
            f"signature file is signed by {signed_by}; "
            f"no key registered for namespace {namespace!r} signed it"
        )
    verified = verify_bundle(
        bundle_bytes,
        file_size=blob.size,
        file_digests=blob.hashes(),
        file_facts=facts,
        trust=trust,
        policy=_PublishPolicy(),
    )
    if verified.manifest is None:
        raise VerificationError(["signature file carries no lorareg manifest; the registry needs one"])
    return AcceptedBundle(verified.manifest.to_json(), tuple(verified.signers))


def _consume(pending: PendingBlob, chunks: Iterable[bytes], *, max_bytes: int) -> UploadedBlob:
    hasher = StreamHasher()
    head = bytearray()
    head_cap = _LENGTH_BYTES + MAX_HEADER_BYTES
    for chunk in chunks:
        if hasher.size + len(chunk) > max_bytes:
            raise PayloadTooLargeError(f"upload passed {max_bytes} bytes, the registry's cap for one file")
        if len(head) < head_cap:
            head += chunk[: head_cap - len(head)]
            if len(head) >= _LENGTH_BYTES:
                head_cap = min(head_cap, _LENGTH_BYTES + int.from_bytes(head[:_LENGTH_BYTES], "little"))
                del head[head_cap:]
        hasher.update(chunk)
        pending.write(chunk)
    header = parse_header(bytes(head), file_size=hasher.size)
    return UploadedBlob(hasher.finish(), hasher.size, header)


def _stored_scalars(
    store: BlobStore, sha256: str, header: SafetensorsHeader, head: bytes
) -> dict[str, float]:
    """Read only the 0-dim tensors, packed after the header into a compact buffer that ``read_scalars`` reads.

    ``read_scalars`` takes a buffer of the whole file; the compact buffer keeps the header bytes and puts
    each scalar at a remapped offset, so a 1 GiB blob costs a few small range reads, not 1 GiB of memory.
    """
    packed = bytearray()
    remapped: dict[str, TensorInfo] = {}
    for info in header.tensors.values():
        if info.shape != ():
            continue
        start = header.data_offset + info.begin
        raw = b"".join(store.open_range(sha256, start, start + info.nbytes))
        remapped[info.name] = replace(info, begin=len(packed), end=len(packed) + len(raw))
        packed += raw
    compact = replace(header, tensors=remapped, file_size=header.data_offset + len(packed))
    return read_scalars(bytes(head[: header.data_offset]) + bytes(packed), compact)
