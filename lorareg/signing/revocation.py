"""The signed revocation list: its model, signing, and the pure verifier clients run before trusting it.

A revocation list is a DSSE envelope (payload type :data:`PAYLOAD_TYPE`) over the canonical JSON
``{"version", "issued", "expires", "revoked": [{"sha256", "reason", "revoked_at"}]}``, signed by the registry
key. Clients keep the newest version they have seen and refuse, as python-tuf refuses stale timestamp
metadata:

- a list whose signature does not verify under a trusted registry key ("bad signature");
- a list older than the one they hold ("rollback": an attacker replays an old list without a revocation);
- a list past ``expires``, or issued longer ago than the policy's ``max_age`` ("freeze": an attacker keeps
  serving the last list from before a revocation).

Pure: bytes and keys in, a verified :class:`RevocationList` out. Fetching, storing the held version and
re-signing schedules belong to the client and the registry service.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lorareg.errors import InputError, VerificationError
from lorareg.manifest.canonical import canonical_json, strict_json_loads
from lorareg.signing.dsse import Envelope, Signature
from lorareg.signing.keys import PrivateKey, PublicKey

PAYLOAD_TYPE = "application/vnd.lorareg.revocations+json"
MAX_REVOCATION_LIST_BYTES = 64 * 2**20  # an envelope this large is not a revocation list
_PAYLOAD_FIELDS = frozenset({"version", "issued", "expires", "revoked"})
_ENTRY_FIELDS = frozenset({"sha256", "reason", "revoked_at"})


@dataclass(frozen=True, slots=True)
class RevokedDigest:
    """One revoked file: its SHA-256, the public reason, and when it was revoked."""

    sha256: str
    reason: str
    revoked_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "reason": self.reason, "revoked_at": format_time(self.revoked_at)}


@dataclass(frozen=True, slots=True)
class RevocationList:
    """A revocation list's content. Instances from :func:`verify_revocation_list` are verified."""

    version: int
    issued: datetime
    expires: datetime
    revoked: tuple[RevokedDigest, ...]

    def reason_for(self, sha256: str) -> str | None:
        """The public reason if ``sha256`` is revoked in this list, else None."""
        return next((r.reason for r in self.revoked if r.sha256 == sha256), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "issued": format_time(self.issued),
            "expires": format_time(self.expires),
            "revoked": [r.to_json() for r in self.revoked],
        }

    def to_payload(self) -> bytes:
        """The canonical JSON bytes that are signed."""
        return canonical_json(self.to_json())

    @classmethod
    def from_payload(cls, payload: bytes) -> RevocationList:
        """Parse a payload strictly (duplicate keys, unknown fields and bad types refused)."""
        obj = strict_json_loads(payload, max_bytes=MAX_REVOCATION_LIST_BYTES)
        _require_fields(obj, "revocation list", _PAYLOAD_FIELDS)
        version = obj["version"]
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise InputError(f"revocation list version is {version!r}; expected an integer >= 1")
        if not isinstance(obj["revoked"], list):
            raise InputError("revocation list 'revoked' must be a list")
        entries = tuple(_entry_from_json(e) for e in obj["revoked"])
        return cls(version, parse_time(obj["issued"]), parse_time(obj["expires"]), entries)


def sign_revocation_list(revocations: RevocationList, key: PrivateKey) -> bytes:
    """Sign a revocation list with the registry key; return the DSSE envelope as canonical JSON bytes."""
    payload = revocations.to_payload()
    envelope = Envelope(payload, PAYLOAD_TYPE, ())
    signature = Signature(key.sign(envelope.pae()), key.key_id)
    return canonical_json(envelope.with_signature(signature).to_json())


def verify_revocation_list(
    envelope_bytes: bytes,
    registry_keys: Iterable[PublicKey],
    *,
    held_version: int | None,
    now: datetime,
    max_age: timedelta | None,
) -> RevocationList:
    """Verify a fetched revocation list against trusted registry keys and the newest list held.

    Steps: (1) parse the envelope strictly; (2) require :data:`PAYLOAD_TYPE`; (3) require a signature over
    the DSSE PAE by one of ``registry_keys`` — only then (4) parse the payload; (5) rollback: ``version``
    must be at least ``held_version``; (6) freeze: ``now`` must be before ``expires`` and, when ``max_age``
    is given, no later than ``issued + max_age``.

    Raises:
        VerificationError: with reasons starting "bad signature", "rollback" or "freeze" (5 and 6 both
            reported when both apply).
    """
    envelope = _parse_envelope(envelope_bytes)
    check_registry_envelope(
        envelope, payload_type=PAYLOAD_TYPE, registry_keys=registry_keys, what="revocation list"
    )
    try:
        revocations = RevocationList.from_payload(envelope.payload)
    except InputError as e:
        raise VerificationError([f"bad signature: signed payload is malformed ({e})"]) from e
    reasons = _freshness_problems(revocations, held_version=held_version, now=now, max_age=max_age)
    if reasons:
        raise VerificationError(reasons, subject=f"revocation list version {revocations.version}")
    return revocations


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with seconds, ``2026-05-01T12:00:00Z`` (what the payload carries)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: object) -> datetime:
    """Parse :func:`format_time` output (an RFC 3339 UTC timestamp ending in ``Z``)."""
    if not isinstance(value, str) or not value.endswith("Z"):
        raise InputError(f"timestamp {value!r} is not RFC 3339 UTC (YYYY-MM-DDTHH:MM:SSZ)")
    try:
        return datetime.fromisoformat(value[:-1] + "+00:00")
    except ValueError as e:
        raise InputError(f"timestamp {value!r} is not RFC 3339 UTC: {e}") from e


def _freshness_problems(
    revocations: RevocationList, *, held_version: int | None, now: datetime, max_age: timedelta | None
) -> list[str]:
    reasons = []
    if held_version is not None and revocations.version < held_version:
        reasons.append(
            f"rollback: version {revocations.version} is older than version {held_version} already seen"
        )
    if now >= revocations.expires:
        reasons.append(
            f"freeze: list expired at {format_time(revocations.expires)}, now is {format_time(now)}"
        )
    elif max_age is not None and now - revocations.issued > max_age:
        reasons.append(
            f"freeze: list issued at {format_time(revocations.issued)} is older than the allowed {max_age}"
        )
    return reasons


def _parse_envelope(envelope_bytes: bytes) -> Envelope:
    try:
        return Envelope.from_json(strict_json_loads(envelope_bytes, max_bytes=MAX_REVOCATION_LIST_BYTES))
    except InputError as e:
        raise VerificationError([f"bad signature: not a DSSE envelope ({e})"]) from e


def _entry_from_json(obj: object) -> RevokedDigest:
    _require_fields(obj, "revocation entry", _ENTRY_FIELDS)
    assert isinstance(obj, dict)
    sha256, reason = obj["sha256"], obj["reason"]
    if not isinstance(sha256, str) or len(sha256) != 64 or not isinstance(reason, str):
        raise InputError(f"revocation entry has a bad sha256 or reason: {str(obj)[:120]}")
    return RevokedDigest(sha256, reason, parse_time(obj["revoked_at"]))


def _require_fields(obj: object, where: str, fields: frozenset[str]) -> None:
    if not isinstance(obj, dict):
        raise InputError(f"{where} must be a JSON object, got {type(obj).__name__}")
    if obj.keys() != fields:
        raise InputError(f"{where} has fields {sorted(obj)}; expected exactly {sorted(fields)}")


def check_registry_envelope(
    envelope: Envelope, *, payload_type: str, registry_keys: Iterable[PublicKey], what: str
) -> None:
    """Refuse an envelope of another payload type, or one no trusted registry key signed (no I/O).

    The one check behind every registry-signed statement a client reads (revocation lists, alias moves).

    Raises:
        VerificationError: a reason starting "bad signature" that names ``what``.
    """
    if envelope.payload_type != payload_type:
        raise VerificationError(
            [f"bad signature: payload type {envelope.payload_type!r}, expected {payload_type!r}"]
        )
    keys = list(registry_keys)
    if not any(k.verify(s.sig, envelope.pae()) for k in keys for s in envelope.signatures):
        ids = ", ".join(k.key_id[:16] for k in keys) or "none"
        raise VerificationError([f"bad signature: {what} is not signed by a trusted registry key ({ids})"])
