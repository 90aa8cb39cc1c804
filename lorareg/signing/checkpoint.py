"""Log checkpoints as C2SP signed notes (``tlog-checkpoint`` over ``signed-note``), signed with ECDSA P-256.

A checkpoint is three text lines — the log's origin, the tree size in decimal, the base64 root hash — each
ending in ``\\n``. A signed note appends a blank line and one line per signature:
``— <key name> <base64(4-byte key hash || signature)>`` (an em dash, U+2014, then a space). The signature
covers the text including its final newline, not the blank line.

ECDSA P-256 fits the format cleanly: signed-note leaves the signature bytes to the key's type, and for
ECDSA keys the 4-byte key hash is the first four bytes of SHA-256 over the DER SubjectPublicKeyInfo (the
layout Sigstore's Rekor v2 uses), so the registry's existing key signs checkpoints with no second key
type. The signature itself is the DER ECDSA signature over SHA-256 of the text, as everywhere in lorareg.

Verification follows the spec's rules for the receiving side: lines from unknown keys are ignored, but a
note needs at least one valid signature from a trusted key; a line from a trusted key (name and key hash
match) that fails to verify rejects the note. Pure: no I/O, no state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization

from lorareg.errors import VerificationError
from lorareg.signing.keys import PrivateKey, PublicKey

MAX_NOTE_BYTES = 64 * 2**10  # a checkpoint note larger than this is refused before parsing
MAX_SIGNATURE_LINES = 100  # the signed-note spec's cap on signature lines
MAX_ORIGIN_CHARS = 256
MEDIA_TYPE = "text/plain; charset=utf-8"

_SIG_PREFIX = "\u2014 "
_NAME_RE = re.compile(r"[^\s+\u2014]{1,256}")
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A log's state: which log (``origin``), how many leaves, and the Merkle root over them."""

    origin: str
    size: int
    root_hash: bytes

    def body(self) -> bytes:
        """The signed text: origin, size, base64 root hash, one line each."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n".encode()

    def to_json(self) -> dict[str, object]:
        return {"origin": self.origin, "size": self.size, "root_hash": self.root_hash.hex()}


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint whose note verified, the note's exact bytes, and the key ids that signed it."""

    checkpoint: Checkpoint
    note: bytes
    signers: tuple[str, ...]


def key_hash(key: PublicKey) -> bytes:
    """The signed-note key hash of an ECDSA key: SHA-256 of its DER SubjectPublicKeyInfo, first 4 bytes."""
    parsed = serialization.load_pem_public_key(key.pem)
    der = parsed.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()[:4]


def sign_checkpoint(checkpoint: Checkpoint, key: PrivateKey, *, name: str | None = None) -> bytes:
    """The checkpoint as a signed note, signed by ``key`` under ``name`` (default: the origin)."""
    return add_signature(checkpoint.body() + b"\n", key, name=name or checkpoint.origin)


def add_signature(note: bytes, key: PrivateKey, *, name: str) -> bytes:
    """Append one more signature line to a note (the same text, signed by another key)."""
    text, _ = _split(note)
    _check_name(name)
    sig = base64.b64encode(key_hash(key.public_key) + key.sign(text)).decode("ascii")
    return note + f"{_SIG_PREFIX}{name} {sig}\n".encode()


def open_checkpoint(note: bytes, keys: Sequence[PublicKey]) -> SignedCheckpoint:
    """Verify a checkpoint note against trusted registry keys and parse it.

    Raises:
        VerificationError: malformed note or checkpoint, a failing signature from a trusted key, or no
            signature from any trusted key ("signed by an unknown key").
    """
    text, lines = _split(note)
    by_hash = {key_hash(k): k for k in keys}
    signers: list[str] = []
    for name, raw in lines:
        key = by_hash.get(raw[:4])
        if key is None:
            continue  # another log's or a witness's key: ignored, as the spec says
        if not key.verify(raw[4:], text):
            raise VerificationError([f"checkpoint signature by {name} (key {key.key_id[:16]}…) is invalid"])
        signers.append(key.key_id)
    if not signers:
        names = ", ".join(sorted({n for n, _ in lines})) or "nobody"
        raise VerificationError(
            [f"checkpoint is signed by an unknown key ({names}), not a trusted registry key"]
        )
    return SignedCheckpoint(parse_body(text), note, tuple(signers))


def parse_note_body(note: bytes) -> Checkpoint:
    """The checkpoint in a note whose signatures were checked earlier (a client's stored checkpoint)."""
    return parse_body(_split(note)[0])


def parse_body(text: bytes) -> Checkpoint:
    """A note's text as a checkpoint: origin, decimal size, base64 root (extension lines ignored)."""
    try:
        lines = text.decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise VerificationError(["checkpoint text is not UTF-8"]) from e
    if len(lines) < 4 or lines[-1] != "":
        raise VerificationError(["checkpoint needs an origin, a size and a root hash line"])
    origin, size, root = lines[0], lines[1], lines[2]
    if not origin or len(origin) > MAX_ORIGIN_CHARS or not origin.isprintable():
        raise VerificationError([f"checkpoint origin {origin[:80]!r} is not a printable line"])
    if not _SIZE_RE.fullmatch(size):
        raise VerificationError([f"checkpoint size {size[:40]!r} is not a decimal number"])
    try:
        root_hash = base64.b64decode(root, validate=True)
    except (binascii.Error, ValueError) as e:
        raise VerificationError(["checkpoint root hash is not base64"]) from e
    if len(root_hash) != 32:
        raise VerificationError([f"checkpoint root hash has {len(root_hash)} bytes, expected 32"])
    return Checkpoint(origin, int(size), root_hash)


def _split(note: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    """``(signed text, [(key name, key hash + signature)])``: split at the last blank line."""
    if len(note) > MAX_NOTE_BYTES:
        raise VerificationError([f"checkpoint note of {len(note)} bytes exceeds {MAX_NOTE_BYTES}"])
    cut = note.rfind(b"\n\n")
    if cut < 0 or not note.endswith(b"\n"):
        raise VerificationError(["checkpoint is not a signed note (no blank line before signatures)"])
    text, block = note[: cut + 1], note[cut + 2 :]
    try:
        sig_lines = block.decode("utf-8").split("\n")[:-1]
    except UnicodeDecodeError as e:
        raise VerificationError(["checkpoint signature lines are not UTF-8"]) from e
    if len(sig_lines) > MAX_SIGNATURE_LINES:
        raise VerificationError([f"checkpoint has more than {MAX_SIGNATURE_LINES} signature lines"])
    return text, [_signature_line(line) for line in sig_lines]


def _signature_line(line: str) -> tuple[str, bytes]:
    name, _, sig = line.removeprefix(_SIG_PREFIX).partition(" ")
    if not line.startswith(_SIG_PREFIX) or not _NAME_RE.fullmatch(name):
        raise VerificationError([f"malformed checkpoint signature line {line[:80]!r}"])
    try:
        raw = base64.b64decode(sig, validate=True)
    except (binascii.Error, ValueError) as e:
        raise VerificationError([f"checkpoint signature by {name} is not base64"]) from e
    if len(raw) < 5:
        raise VerificationError([f"checkpoint signature by {name} is too short"])
    return name, raw


def _check_name(name: str) -> None:
    if not _NAME_RE.fullmatch(name):
        raise ValueError(f"signed-note key name {name!r} must be 1-256 characters without spaces or '+'")
