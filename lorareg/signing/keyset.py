"""Registry key rotation: key-set documents, and the rule a client follows from a key it trusts to a new one.

A rotation is announced by a key-set document: a DSSE envelope (payload type :data:`KEYSET_PAYLOAD_TYPE`)
over ``{"version", "keys": [PEM…], "replaces": [keyid…], "issued"}``, signed by the key being replaced
*and* by every key it introduces (TUF's rule for root rotation: the old key vouches for the new one, the
new one proves it exists). The registry serves the chain, oldest first.

:func:`follow_chain` walks the chain from the keys a client trusts: a document all of whose keys are
already trusted is skipped; any other must carry a valid signature by a trusted key it replaces and by each
new key, or the walk stops with a :class:`VerificationError` — so a key-set document signed only by the new
key (an attacker's) is refused. Keys it reaches are trusted *in addition* to the old ones, so
countersignatures and checkpoints made before the rotation keep verifying. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lorareg.errors import InputError, VerificationError
from lorareg.manifest.canonical import canonical_json, strict_json_loads
from lorareg.signing.dsse import Envelope, Signature
from lorareg.signing.keys import PrivateKey, PublicKey, load_public_key

KEYSET_PAYLOAD_TYPE = "application/vnd.lorareg.keyset+json"
MAX_KEYSET_KEYS = 8  # keys one document may introduce
MAX_CHAIN_DOCUMENTS = 1000  # rotations a client will follow in one go


@dataclass(frozen=True, slots=True)
class KeySet:
    """The registry's keys from ``version`` on, and the key ids they replace."""

    version: int
    keys: tuple[PublicKey, ...]
    replaces: tuple[str, ...]
    issued: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "keys": [k.pem.decode("ascii") for k in self.keys],
            "replaces": list(self.replaces),
            "issued": self.issued.isoformat().replace("+00:00", "Z"),
        }


def sign_keyset(keyset: KeySet, signers: Sequence[PrivateKey]) -> bytes:
    """The document as DSSE envelope JSON, signed by each of ``signers`` (the old key and the new ones)."""
    envelope = Envelope(canonical_json(keyset.to_json()), KEYSET_PAYLOAD_TYPE, ())
    for key in signers:
        envelope = envelope.with_signature(Signature(key.sign(envelope.pae()), key.key_id))
    return canonical_json(envelope.to_json())


def parse_keyset(document: bytes) -> tuple[KeySet, Envelope]:
    """The document's content, unverified (:func:`follow_chain` checks the signatures).

    Raises:
        VerificationError: not a key-set envelope, or a malformed payload.
    """
    try:
        envelope = Envelope.from_json(strict_json_loads(document))
        if envelope.payload_type != KEYSET_PAYLOAD_TYPE:
            raise VerificationError([f"key-set document has payload type {envelope.payload_type!r}"])
        obj = strict_json_loads(envelope.payload)
        keys = tuple(load_public_key(str(pem).encode("ascii")) for pem in obj["keys"])
        if not 1 <= len(keys) <= MAX_KEYSET_KEYS:
            raise VerificationError(
                [f"key-set document names {len(keys)} keys; 1-{MAX_KEYSET_KEYS} expected"]
            )
        issued = datetime.fromisoformat(str(obj["issued"]).replace("Z", "+00:00"))
        return KeySet(int(obj["version"]), keys, tuple(str(k) for k in obj["replaces"]), issued), envelope
    except (InputError, KeyError, TypeError, ValueError, UnicodeEncodeError) as e:
        raise VerificationError([f"key-set document is malformed: {e}"]) from e


def follow_chain(documents: Sequence[bytes], trusted: Sequence[PublicKey]) -> list[tuple[PublicKey, str]]:
    """Walk the chain from ``trusted``; return each newly reached key with the trusted key id that vouched.

    Raises:
        VerificationError: a document that adds keys is not signed by a trusted key it replaces, or not by
            every key it introduces, or the chain is out of order or too long.
    """
    if len(documents) > MAX_CHAIN_DOCUMENTS:
        raise VerificationError(
            [f"key-set chain of {len(documents)} documents exceeds {MAX_CHAIN_DOCUMENTS}"]
        )
    known = {k.key_id: k for k in trusted}
    reached: list[tuple[PublicKey, str]] = []
    last = 0
    for document in documents:
        keyset, envelope = parse_keyset(document)
        if keyset.version <= last:
            raise VerificationError([f"key-set chain is out of order at version {keyset.version}"])
        last = keyset.version
        new = [k for k in keyset.keys if k.key_id not in known]
        if not new:
            continue
        voucher = _signed_by(envelope, [known[i] for i in keyset.replaces if i in known])
        if voucher is None:
            signers = ", ".join(s.keyid[:16] + "…" for s in envelope.signatures) or "nobody"
            raise VerificationError(
                [
                    f"key-set document version {keyset.version} is not signed by a registry key this client "
                    f"trusts (signed by {signers}); re-establish trust out of band"
                ]
            )
        for key in new:
            if _signed_by(envelope, [key]) is None:
                raise VerificationError(
                    [
                        f"key-set document version {keyset.version} is not signed by its new key "
                        f"{key.key_id[:16]}…"
                    ]
                )
            known[key.key_id] = key
            reached.append((key, voucher))
    return reached


def _signed_by(envelope: Envelope, keys: Sequence[PublicKey]) -> str | None:
    """The id of the first of ``keys`` with a valid signature on ``envelope``, else None."""
    pae = envelope.pae()
    for key in keys:
        if any(s.keyid in ("", key.key_id) and key.verify(s.sig, pae) for s in envelope.signatures):
            return key.key_id
    return None
