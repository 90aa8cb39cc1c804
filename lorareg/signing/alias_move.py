"""Signed alias moves: the registry's statement that ``ns/name@prod`` now means one exact version.

An alias (``prod``, ``staging``) is a pointer a pipeline follows, so moving it is as sensitive as
publishing: a registry that could repoint ``@prod`` silently could hand a studio any version it likes. Each
move (or deletion) is therefore a DSSE envelope (payload type :data:`PAYLOAD_TYPE`) over the canonical JSON
``{"name", "alias", "version", "sha256", "previous", "moved_by", "moved_at"}`` signed by the registry key,
and the same fields go into the transparency log. ``version`` and ``sha256`` are null for a deletion.

A client that pulls ``ns/name@prod`` verifies the envelope under its trusted registry keys and checks that
it names the version and digest it was served (:func:`verify_alias_move`), so the alias cannot be swapped
between the resolve and the download either.

Pure: keys and bytes in, a verified :class:`AliasMove` out; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lorareg.errors import InputError, VerificationError
from lorareg.manifest.canonical import canonical_json, strict_json_loads
from lorareg.manifest.ids import check_alias, check_name
from lorareg.signing.dsse import Envelope, Signature
from lorareg.signing.keys import PrivateKey, PublicKey
from lorareg.signing.revocation import check_registry_envelope, format_time, parse_time

PAYLOAD_TYPE = "application/vnd.lorareg.alias+json"
MAX_ALIAS_ENVELOPE_BYTES = 16 * 1024  # a move is a few hundred bytes; anything this large is not one
_FIELDS = frozenset({"name", "alias", "version", "sha256", "previous", "moved_by", "moved_at"})


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One alias move; ``version``/``sha256`` None means the alias was deleted."""

    name: str
    alias: str
    version: str | None
    sha256: str | None
    previous: str | None
    moved_by: str
    moved_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "version": self.version,
            "sha256": self.sha256,
            "previous": self.previous,
            "moved_by": self.moved_by,
            "moved_at": format_time(self.moved_at),
        }

    @classmethod
    def from_json(cls, obj: object) -> AliasMove:
        """Parse strictly: exactly the seven fields, each of its type."""
        if not isinstance(obj, dict) or set(obj) != _FIELDS:
            raise InputError(f"alias move must have exactly the fields {', '.join(sorted(_FIELDS))}")
        texts = {k: obj[k] for k in ("version", "sha256", "previous")}
        if any(v is not None and not isinstance(v, str) for v in texts.values()):
            raise InputError("alias move: version, sha256 and previous must be strings or null")
        if not isinstance(obj["moved_by"], str) or not isinstance(obj["name"], str):
            raise InputError("alias move: name and moved_by must be strings")
        alias = obj["alias"] if isinstance(obj["alias"], str) else ""
        return cls(
            name=check_name(obj["name"], "alias move name"),
            alias=check_alias(alias, "alias move alias"),
            version=texts["version"],
            sha256=texts["sha256"],
            previous=texts["previous"],
            moved_by=obj["moved_by"],
            moved_at=parse_time(obj["moved_at"]),
        )


def sign_alias_move(move: AliasMove, key: PrivateKey) -> bytes:
    """Sign a move with the registry key; return the DSSE envelope as canonical JSON bytes."""
    envelope = Envelope(canonical_json(move.to_json()), PAYLOAD_TYPE, ())
    signature = Signature(key.sign(envelope.pae()), key.key_id)
    return canonical_json(envelope.with_signature(signature).to_json())


def verify_alias_move(
    envelope_bytes: bytes,
    registry_keys: Iterable[PublicKey],
    *,
    name: str,
    alias: str,
    version: str,
    sha256: str,
) -> AliasMove:
    """Verify that a trusted registry key signed "``name@alias`` is ``version`` with ``sha256``".

    Steps: (1) parse the envelope strictly; (2) require :data:`PAYLOAD_TYPE`; (3) a signature by one of
    ``registry_keys`` over the DSSE PAE — only then (4) parse the payload; (5) name, alias, version and
    digest must equal what the registry served.

    Raises:
        VerificationError: every reason, starting "bad signature" or "alias mismatch".
    """
    try:
        envelope = Envelope.from_json(strict_json_loads(envelope_bytes, max_bytes=MAX_ALIAS_ENVELOPE_BYTES))
    except InputError as e:
        raise VerificationError([f"bad signature: alias move is not a DSSE envelope ({e})"]) from e
    check_registry_envelope(
        envelope, payload_type=PAYLOAD_TYPE, registry_keys=registry_keys, what="alias move"
    )
    try:
        move = AliasMove.from_json(strict_json_loads(envelope.payload, max_bytes=MAX_ALIAS_ENVELOPE_BYTES))
    except InputError as e:
        raise VerificationError([f"bad signature: signed alias move is malformed ({e})"]) from e
    served = (name, alias, version, sha256)
    signed = (move.name, move.alias, move.version, move.sha256)
    if served != signed:
        raise VerificationError(
            [
                f"alias mismatch: the signed move says {move.name}@{move.alias} is {move.version} "
                f"(sha256 {str(move.sha256)[:16]}…); the registry served {name}@{alias} as {version} "
                f"(sha256 {sha256[:16]}…)"
            ],
            subject=f"{name}@{alias}",
        )
    return move
