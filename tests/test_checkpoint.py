"""Checkpoints as C2SP signed notes: the text, ECDSA key hashes, unknown and bad signers, hostile notes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from lorareg.errors import VerificationError
from lorareg.signing.checkpoint import (
    MAX_NOTE_BYTES,
    Checkpoint,
    add_signature,
    key_hash,
    open_checkpoint,
    parse_note_body,
    sign_checkpoint,
)
from lorareg.signing.keys import generate

ROOT = hashlib.sha256(b"root").digest()


def test_checkpoint_note_has_the_c2sp_shape() -> None:
    key = generate()
    note = sign_checkpoint(Checkpoint("registry.example/log", 7, ROOT), key)
    text, _, sig_line = note.decode().partition("\n\n")
    assert text == f"registry.example/log\n7\n{base64.b64encode(ROOT).decode()}"
    assert sig_line.startswith("\u2014 registry.example/log ") and sig_line.endswith("\n")
    raw = base64.b64decode(sig_line.split(" ")[2])
    assert raw[:4] == key_hash(key.public_key)
    assert key.public_key.verify(raw[4:], (text + "\n").encode())  # covers the text and its last newline


def test_ecdsa_key_hash_is_sha256_of_the_der_public_key() -> None:
    key = generate().public_key
    der = serialization.load_pem_public_key(key.pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_hash(key) == hashlib.sha256(der).digest()[:4]


def test_signed_checkpoint_opens_with_the_registry_key() -> None:
    key = generate()
    opened = open_checkpoint(sign_checkpoint(Checkpoint("o", 3, ROOT), key), [key.public_key])
    assert opened.checkpoint == Checkpoint("o", 3, ROOT)
    assert opened.signers == (key.key_id,)


def test_checkpoint_signed_by_an_unknown_key_is_refused() -> None:
    note = sign_checkpoint(Checkpoint("o", 3, ROOT), generate())
    with pytest.raises(VerificationError, match="signed by an unknown key"):
        open_checkpoint(note, [generate().public_key])


def test_witness_cosignature_from_an_unknown_key_is_ignored() -> None:
    registry, witness = generate(), generate()
    note = add_signature(sign_checkpoint(Checkpoint("o", 3, ROOT), registry), witness, name="witness.example")
    assert open_checkpoint(note, [registry.public_key]).signers == (registry.key_id,)
    assert open_checkpoint(note, [registry.public_key, witness.public_key]).signers == (
        registry.key_id,
        witness.key_id,
    )


def test_forged_signature_under_a_trusted_key_hash_rejects_the_note() -> None:
    registry = generate()
    good = sign_checkpoint(Checkpoint("o", 3, ROOT), registry)
    forged_sig = base64.b64encode(key_hash(registry.public_key) + generate().sign(b"o\n3\n")).decode()
    note = good + f"\u2014 o {forged_sig}\n".encode()
    with pytest.raises(VerificationError, match="is invalid"):
        open_checkpoint(note, [registry.public_key])


def test_changed_size_breaks_the_signature() -> None:
    registry = generate()
    note = sign_checkpoint(Checkpoint("o", 3, ROOT), registry).replace(b"\n3\n", b"\n4\n", 1)
    with pytest.raises(VerificationError, match="is invalid"):
        open_checkpoint(note, [registry.public_key])


_SIG = "\u2014 o " + base64.b64encode(b"\x00" * 40).decode() + "\n"
_ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (f"o\n3\n{_ROOT64}\n" + _SIG, "not a signed note"),
        (f"o\n3\n{_ROOT64}\n\n", "unknown key"),
        (f"o\n3\n{_ROOT64}\n\n-- o AAAA\n", "malformed checkpoint signature line"),
        (f"o\n3\n{_ROOT64}\n\n\u2014 o AAAA\n", "too short"),
        (f"o\n3\n{_ROOT64}\n\n\u2014 o A\u00e9\n", "not base64"),
        (f"o\n3\n{_ROOT64}\n\n" + _SIG * 101, "more than 100 signature lines"),
        ("o" * (MAX_NOTE_BYTES + 1), "exceeds"),
    ],
    ids=[
        "no-blank-line",
        "no-signatures",
        "ascii-dashes",
        "short-signature",
        "sig-not-base64",
        "101-sigs",
        "huge",
    ],
)
def test_hostile_checkpoint_note_is_refused_with_a_reason(note: str, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason):
        open_checkpoint(note.encode(), [generate().public_key])


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"o\n03\n{_ROOT64}\n", "not a decimal"),
        (f"o\n-1\n{_ROOT64}\n", "not a decimal"),
        (f"o\n3\n{base64.b64encode(ROOT[:30]).decode()}\n", "has 30 bytes"),
        ("o\n3\nnot base64!\n", "not base64"),
        ("o\n3\n", "needs an origin"),
        (f"\n3\n{_ROOT64}\n", "not a printable line"),
    ],
    ids=[
        "leading-zero-size",
        "negative-size",
        "short-root",
        "root-not-base64",
        "missing-root",
        "empty-origin",
    ],
)
def test_registry_signed_but_malformed_checkpoint_is_refused(text: str, reason: str) -> None:
    key = generate()
    note = add_signature(text.encode() + b"\n", key, name="o")
    with pytest.raises(VerificationError, match=reason):
        open_checkpoint(note, [key.public_key])


def test_stored_note_body_parses_without_keys() -> None:
    note = sign_checkpoint(Checkpoint("o", 9, ROOT), generate())
    assert parse_note_body(note) == Checkpoint("o", 9, ROOT)
