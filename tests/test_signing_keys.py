"""Keys: P-256 only, PKCS#8 PEM written 0600 and never overwritten, key ids as model_signing computes them."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from lorareg.errors import ConflictError, InputError
from lorareg.signing.keys import (
    generate,
    load_private_key,
    load_public_key,
    permission_warning,
    read_key_file,
    write_key_pair,
)
from tests.fixtures.keys import FOREIGN_KEY_TYPES, foreign_key_pems


def test_keygen_writes_private_key_0600_and_public_pem(tmp_path: Path) -> None:
    key = generate()
    paths = write_key_pair(tmp_path / "acme", key)
    assert stat.S_IMODE(paths.private.stat().st_mode) == 0o600
    assert paths.private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert load_public_key(paths.public.read_bytes()).key_id == key.key_id


def test_key_id_is_sha256_of_public_pem(tmp_path: Path) -> None:
    key = generate()
    paths = write_key_pair(tmp_path / "k", key)
    assert key.key_id == hashlib.sha256(paths.public.read_bytes()).hexdigest()


def test_key_id_ignores_pem_line_endings() -> None:
    key = generate()
    crlf = key.public_key.pem.replace(b"\n", b"\r\n")
    assert load_public_key(crlf).key_id == key.key_id


@pytest.mark.parametrize("existing", ["acme.key", "acme.pub"])
def test_keygen_refuses_to_overwrite_a_key_file(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_bytes(b"precious")
    with pytest.raises(ConflictError, match="refusing to overwrite"):
        write_key_pair(tmp_path / "acme", generate())
    assert (tmp_path / existing).read_bytes() == b"precious"


def test_keygen_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    (tmp_path / "acme.key").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConflictError):
        write_key_pair(tmp_path / "acme", generate())
    assert not (tmp_path / "elsewhere").exists()


def test_encrypted_key_needs_its_passphrase(tmp_path: Path) -> None:
    key = generate()
    paths = write_key_pair(tmp_path / "enc", key, password=b"correct horse")
    pem = paths.private.read_bytes()
    assert b"ENCRYPTED" in pem
    assert load_private_key(pem, password=b"correct horse").key_id == key.key_id
    with pytest.raises(InputError, match="encrypted"):
        load_private_key(pem)
    with pytest.raises(InputError, match="wrong passphrase"):
        load_private_key(pem, password=b"wrong")


@pytest.mark.parametrize("kind", FOREIGN_KEY_TYPES)
def test_key_of_the_wrong_type_is_refused(kind: str) -> None:
    private, public = foreign_key_pems(kind)
    with pytest.raises(InputError, match="P-256"):
        load_private_key(private)
    with pytest.raises(InputError, match="P-256"):
        load_public_key(public)


@pytest.mark.parametrize(
    "pem", [b"", b"not a key", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]
)
def test_garbage_public_key_is_refused(pem: bytes) -> None:
    with pytest.raises(InputError, match="P-256"):
        load_public_key(pem)


def test_world_readable_private_key_is_warned_about(tmp_path: Path) -> None:
    paths = write_key_pair(tmp_path / "k", generate())
    assert permission_warning(paths.private) is None
    os.chmod(paths.private, 0o644)
    warning = permission_warning(paths.private)
    assert warning is not None and "0644" in warning and "chmod 600" in warning


def test_oversized_key_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.key"
    big.write_bytes(b"A" * (65 * 1024))
    with pytest.raises(InputError, match="not a key"):
        read_key_file(big)


def test_signature_verifies_only_over_the_signed_bytes() -> None:
    key = generate()
    sig = key.sign(b"payload")
    assert key.public_key.verify(sig, b"payload")
    assert not key.public_key.verify(sig, b"payloaD")
    assert not generate().public_key.verify(sig, b"payload")
