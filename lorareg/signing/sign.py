"""Signing: a publisher signs a file with its manifest; a registry countersigns an accepted signature file.

:func:`sign_file` reads the file once (header facts and every hash), completes the author's draft manifest
with what the file shows (refusing contradictions), builds the OpenSSF model-signing statement with the
``lorareg`` predicate field and signs DSSE PAE of its canonical JSON. :func:`countersign` appends one
signature over the same payload bytes, so every earlier signature stays valid and the bundle's key hint
(which ``model_signing`` checks against its ``--public_key``) stays the publisher's.

Neither function decides whom to trust: the registry verifies a bundle before countersigning it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorareg.errors import ConflictError, InputError, VerificationError
from lorareg.signing.bundle import Bundle
from lorareg.signing.dsse import Envelope, Signature
from lorareg.signing.keys import PrivateKey
from lorareg.signing.statement import PAYLOAD_TYPE, build_statement, statement_payload

if TYPE_CHECKING:
    from lorareg.manifest.drafting import ManifestDraft
    from lorareg.manifest.model import Manifest


def sign_file(path: Path, draft_manifest: ManifestDraft | Manifest, key: PrivateKey) -> bytes:
    """Sign the adapter at ``path`` with its completed manifest.

    Args:
        path: the safetensors adapter.
        draft_manifest: the author's draft (or a complete manifest); file facts are filled in.
        key: the publisher's private key; its key id becomes the bundle's hint.

    Returns:
        The signature file (Sigstore bundle JSON bytes).

    Raises:
        InputError: the file is not a readable safetensors adapter, or the draft contradicts the file.
    """
    from lorareg.adapter.inspect import inspect_file
    from lorareg.manifest.drafting import complete_manifest

    inspection = inspect_file(path)
    hashes = inspection.hashes
    if hashes is None:
        raise InputError(f"{path}: no hashes were computed")
    size = inspection.header.file_size
    manifest = complete_manifest(draft_manifest, facts=inspection.facts, hashes=hashes, size=size)
    return sign_manifest(subject_name=path.name, sha256=hashes.sha256, manifest=manifest.to_json(), key=key)


def sign_manifest(
    *, subject_name: str, sha256: str, manifest: dict[str, Any] | None, key: PrivateKey
) -> bytes:
    """Build and sign the statement for a file whose SHA-256 and completed manifest are already known.

    The registry and tests use this when they hold the digest already; :func:`sign_file` is the normal way.
    """
    statement = build_statement(subject_name=subject_name, sha256=sha256, manifest=manifest)
    payload = statement_payload(statement)
    envelope = Envelope(payload, PAYLOAD_TYPE, ())
    signed = envelope.with_signature(Signature(key.sign(envelope.pae()), key.key_id))
    return Bundle(signed, key.key_id).to_bytes()


def countersign(bundle_bytes: bytes, registry_key: PrivateKey) -> bytes:
    """Append ``registry_key``'s signature over the bundle's exact payload.

    The existing signatures are not checked here (the caller verified the bundle first), but a bundle that
    cannot be parsed, or that ``registry_key`` has already signed, is refused.

    Raises:
        VerificationError: the bundle is malformed.
        ConflictError: the key has already signed this bundle.
    """
    try:
        bundle = Bundle.from_bytes(bundle_bytes)
    except InputError as e:
        raise VerificationError([f"malformed signature file: {e}"]) from e
    envelope = bundle.envelope
    if any(s.keyid == registry_key.key_id for s in envelope.signatures):
        raise ConflictError(f"key {registry_key.key_id[:16]}… has already signed this signature file")
    signed = envelope.with_signature(Signature(registry_key.sign(envelope.pae()), registry_key.key_id))
    return Bundle(signed, bundle.key_hint).to_bytes()
