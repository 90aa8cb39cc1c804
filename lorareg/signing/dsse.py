"""DSSE envelopes: the pre-authentication encoding (PAE) that is signed, and the envelope's JSON form.

Follows DSSE v1 (secure-systems-lab/dsse, ``protocol.md`` and ``envelope.md``): a signature is made over
``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` with lengths as ASCII decimals,
so the payload type is authenticated with the payload and no JSON canonicalisation is needed to check it.
The JSON form holds ``payload`` (base64), ``payloadType`` and ``signatures`` [{``sig`` (base64), ``keyid``}].

Decoding is strict: standard base64 with padding only, re-encoded and compared so that one signature file
has one reading; unknown fields refused; counts and sizes capped. This module checks no signature (the
verifier does) and knows nothing about in-toto or Sigstore bundles.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lorareg.errors import InputError, PayloadTooLargeError

MAX_PAYLOAD_BYTES = 512 * 1024  # decoded statement; a manifest with long descriptions is < 64 KiB
MAX_SIGNATURES = 8  # publisher + registry, with room for key rotation; more is an attack
MAX_SIGNATURE_BYTES = 256  # a DER P-256 signature is at most 72 bytes
MAX_KEYID_CHARS = 128  # a hex SHA-256 key id is 64
_ENVELOPE_FIELDS = frozenset({"payload", "payloadType", "signatures"})
_SIGNATURE_FIELDS = frozenset({"sig", "keyid"})


@dataclass(frozen=True, slots=True)
class Signature:
    """One DSSE signature: DER bytes and the (unauthenticated) id of the key that claims to have made it."""

    sig: bytes
    keyid: str = ""


@dataclass(frozen=True, slots=True)
class Envelope:
    """A DSSE envelope. ``payload`` is the exact signed byte string; nothing here has been verified."""

    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...]

    def pae(self) -> bytes:
        """The bytes every signature of this envelope is over."""
        return pae(self.payload_type, self.payload)

    def with_signature(self, signature: Signature) -> Envelope:
        """A copy with ``signature`` appended; earlier signatures and the payload are untouched."""
        if len(self.signatures) >= MAX_SIGNATURES:
            raise InputError(
                f"envelope already has {len(self.signatures)} signatures; the cap is {MAX_SIGNATURES}"
            )
        return Envelope(self.payload, self.payload_type, (*self.signatures, signature))

    def to_json(self) -> dict[str, Any]:
        """The envelope's JSON object (``keyid`` always written, empty when unknown)."""
        return {
            "payload": _b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"sig": _b64(s.sig), "keyid": s.keyid} for s in self.signatures],
        }

    @classmethod
    def from_json(cls, obj: object) -> Envelope:
        """Parse an envelope object strictly.

        Raises:
            InputError: a missing, unknown or mistyped field, bad base64, or no signature.
            PayloadTooLargeError: payload, signature count or a signature over its cap.
        """
        env = _require_object(obj, "dsseEnvelope", required=_ENVELOPE_FIELDS, allowed=_ENVELOPE_FIELDS)
        payload = b64decode_strict(
            _require_str(env["payload"], "dsseEnvelope.payload"), "dsseEnvelope.payload"
        )
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLargeError(f"payload is {len(payload)} bytes; the cap is {MAX_PAYLOAD_BYTES}")
        payload_type = _require_str(env["payloadType"], "dsseEnvelope.payloadType")
        raw_sigs = env["signatures"]
        if not isinstance(raw_sigs, list) or not raw_sigs:
            raise InputError("dsseEnvelope.signatures must be a non-empty list")
        if len(raw_sigs) > MAX_SIGNATURES:
            raise PayloadTooLargeError(
                f"envelope has {len(raw_sigs)} signatures; the cap is {MAX_SIGNATURES}"
            )
        sigs = tuple(_signature_from_dict(s, i) for i, s in enumerate(raw_sigs))
        return cls(payload, payload_type, sigs)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding of ``payload`` with ``payload_type``."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def b64decode_strict(text: str, where: str) -> bytes:
    """Decode standard, padded base64 and refuse anything that does not re-encode to the same text.

    Raises:
        InputError: characters outside the alphabet, bad padding, or a non-canonical encoding.
    """
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise InputError(f"{where} is not valid base64 ({e})") from e
    if _b64(data) != text:
        raise InputError(f"{where} is not canonical base64 (padding or trailing bits differ)")
    return data


def _signature_from_dict(obj: object, index: int) -> Signature:
    where = f"dsseEnvelope.signatures[{index}]"
    fields = _require_object(obj, where, required=frozenset({"sig"}), allowed=_SIGNATURE_FIELDS)
    sig = b64decode_strict(_require_str(fields["sig"], f"{where}.sig"), f"{where}.sig")
    if not sig or len(sig) > MAX_SIGNATURE_BYTES:
        raise PayloadTooLargeError(f"{where}.sig is {len(sig)} bytes; expected 1 to {MAX_SIGNATURE_BYTES}")
    keyid = _require_str(fields.get("keyid", ""), f"{where}.keyid")
    if len(keyid) > MAX_KEYID_CHARS:
        raise PayloadTooLargeError(f"{where}.keyid is {len(keyid)} characters; the cap is {MAX_KEYID_CHARS}")
    return Signature(sig, keyid)


def _require_object(
    obj: object, where: str, *, required: frozenset[str], allowed: frozenset[str]
) -> Mapping[str, object]:
    """Check that ``obj`` is a JSON object with every ``required`` and only ``allowed`` keys."""
    if not isinstance(obj, dict):
        raise InputError(f"{where} must be a JSON object, got {type(obj).__name__}")
    missing = sorted(required - obj.keys())
    unknown = sorted(obj.keys() - allowed)
    if missing:
        raise InputError(f"{where} lacks {', '.join(missing)}")
    if unknown:
        raise InputError(f"{where} has unknown field(s) {', '.join(unknown)}")
    return obj


def _require_str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{where} must be a string, got {type(value).__name__}")
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
