"""The signature file: a Sigstore bundle v0.3 (JSON) holding a DSSE envelope and a public-key hint.

The shape is the one ``model_signing sign key`` writes and ``model_signing verify key`` reads::

    {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
     "verificationMaterial": {"publicKey": {"hint": "<key id>"}, "tlogEntries": []},
     "dsseEnvelope": {"payload": "<base64>", "payloadType": "application/vnd.in-toto+json",
                      "signatures": [{"sig": "<base64 DER>", "keyid": "<key id>"}, ...]}}

``model_signing`` parses bundles with pydantic models that forbid unknown fields and it checks only the
first signature, against the key whose id is the hint. So the registry's countersignature is carried as a
second entry of ``signatures`` (no new field would survive that parser) and the hint stays the publisher's.

Reading is strict and bounded: size cap before parsing, duplicate JSON keys refused, unknown fields refused,
no transparency-log entries or certificates (lorareg trusts keys, not a PKI it does not check). Nothing here
checks a signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lorareg.errors import InputError, PayloadTooLargeError
from lorareg.manifest.canonical import canonical_json, strict_json_loads
from lorareg.signing.dsse import MAX_KEYID_CHARS, Envelope

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
MAX_BUNDLE_BYTES = 1 * 2**20  # the registry's cap too; a real bundle is a few KiB
_BUNDLE_FIELDS = frozenset({"mediaType", "verificationMaterial", "dsseEnvelope"})
_MATERIAL_FIELDS = frozenset({"publicKey", "tlogEntries"})


@dataclass(frozen=True, slots=True)
class Bundle:
    """A parsed, unverified signature file. ``key_hint`` is the publisher's key id (unauthenticated)."""

    envelope: Envelope
    key_hint: str | None

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes of the bundle (sorted keys, no whitespace)."""
        return canonical_json(self.to_json())

    def to_json(self) -> dict[str, Any]:
        """The bundle's JSON object."""
        return {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {"publicKey": {"hint": self.key_hint}, "tlogEntries": []},
            "dsseEnvelope": self.envelope.to_json(),
        }

    @classmethod
    def from_bytes(cls, data: bytes) -> Bundle:
        """Parse a signature file.

        Raises:
            PayloadTooLargeError: over :data:`MAX_BUNDLE_BYTES`, or a part over its cap.
            InputError: not UTF-8 JSON, duplicate keys, wrong media type, missing or unknown fields.
        """
        if len(data) > MAX_BUNDLE_BYTES:
            raise PayloadTooLargeError(f"signature file is {len(data)} bytes; the cap is {MAX_BUNDLE_BYTES}")
        try:
            obj = strict_json_loads(data, max_bytes=MAX_BUNDLE_BYTES)
        except InputError as e:
            raise InputError(f"signature file is not valid JSON: {e}") from e
        if not isinstance(obj, dict):
            raise InputError(f"signature file must hold a JSON object, got {type(obj).__name__}")
        _check_fields(obj, "bundle", required=_BUNDLE_FIELDS, allowed=_BUNDLE_FIELDS)
        if obj["mediaType"] != BUNDLE_MEDIA_TYPE:
            raise InputError(f"bundle mediaType is {obj['mediaType']!r}; expected {BUNDLE_MEDIA_TYPE!r}")
        hint = _parse_material(obj["verificationMaterial"])
        return cls(Envelope.from_json(obj["dsseEnvelope"]), hint)


def _parse_material(obj: object) -> str | None:
    """Return the public-key hint; refuse certificates, tlog entries and anything else unchecked."""
    if not isinstance(obj, dict):
        raise InputError("bundle verificationMaterial must be a JSON object")
    _check_fields(obj, "verificationMaterial", required=frozenset({"publicKey"}), allowed=_MATERIAL_FIELDS)
    if obj.get("tlogEntries", []) != []:
        raise InputError("bundle carries transparency-log entries; lorareg signature files have none")
    key = obj["publicKey"]
    if not isinstance(key, dict):
        raise InputError("verificationMaterial.publicKey must be a JSON object")
    _check_fields(key, "verificationMaterial.publicKey", required=frozenset(), allowed=frozenset({"hint"}))
    hint = key.get("hint")
    if hint is not None and (not isinstance(hint, str) or len(hint) > MAX_KEYID_CHARS):
        raise InputError("verificationMaterial.publicKey.hint must be a key id string")
    return hint or None


def _check_fields(
    obj: dict[str, Any], where: str, *, required: frozenset[str], allowed: frozenset[str]
) -> None:
    missing = sorted(required - obj.keys())
    unknown = sorted(obj.keys() - allowed)
    if missing:
        raise InputError(f"{where} lacks {', '.join(missing)}")
    if unknown:
        raise InputError(f"{where} has unknown field(s) {', '.join(unknown)}")
