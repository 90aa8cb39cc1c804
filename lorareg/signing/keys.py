"""ECDSA P-256 keys: generation, PEM files, key ids, signing and signature checks.

lorareg uses one key type only, ECDSA over NIST P-256 with SHA-256 and DER signatures, because it is the
curve that the OpenSSF model-signing tool and Sigstore both accept: one key verifies with either tool.
Private keys are PKCS#8 PEM, optionally encrypted with a passphrase; public keys are SubjectPublicKeyInfo
PEM. A key id is the hex SHA-256 of the public key's PEM bytes as this module writes them (the value
``model_signing`` puts in a bundle's ``publicKey.hint``), so a re-wrapped or CRLF copy of a ``.pub`` file
still has the same id.

This module does not prompt for passphrases or read the environment (the CLI does) and keeps no key
store (``trust.py`` does).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from lorareg.errors import ConflictError, InputError, NotFoundError, PayloadTooLargeError

MAX_KEY_FILE_BYTES = 64 * 1024  # a PEM key is < 1 KiB; anything this large is not a key
PRIVATE_KEY_MODE = 0o600  # owner read/write only
PUBLIC_KEY_MODE = 0o644
KEY_CURVE = "secp256r1"  # NIST P-256, the only curve lorareg accepts
_EXPECTED = "an ECDSA P-256 (secp256r1) key"


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A P-256 public key; ``pem`` is always the canonical SubjectPublicKeyInfo PEM."""

    pem: bytes
    _key: ec.EllipticCurvePublicKey

    @property
    def key_id(self) -> str:
        """Hex SHA-256 of the canonical PEM bytes."""
        return key_id(self.pem)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """Return whether ``signature`` (DER ECDSA) is valid over ``data`` (SHA-256)."""
        try:
            self._key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """A P-256 private key that signs; never printed, only written by :func:`write_key_pair`."""

    _key: ec.EllipticCurvePrivateKey

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        return _wrap_public(self._key.public_key())

    @property
    def key_id(self) -> str:
        """The key id of the matching public key."""
        return self.public_key.key_id

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with ECDSA P-256 / SHA-256; returns the DER-encoded signature."""
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def to_pem(self, *, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted with the best available scheme when ``password`` is given."""
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )


@dataclass(frozen=True, slots=True)
class KeyPairPaths:
    """Where :func:`write_key_pair` put the two files."""

    private: Path
    public: Path


def key_id(public_pem: bytes) -> str:
    """Return the key id of a public key PEM: hex SHA-256 of its bytes.

    Callers holding a PEM from elsewhere should pass :attr:`PublicKey.pem` (canonical) rather than the
    file's raw bytes, so that whitespace differences do not change the id.
    """
    return hashlib.sha256(public_pem).hexdigest()


def generate() -> PrivateKey:
    """Generate a fresh P-256 private key."""
    return PrivateKey(ec.generate_private_key(ec.SECP256R1()))


def load_public_key(pem: bytes) -> PublicKey:
    """Parse a public key PEM and require P-256.

    Raises:
        InputError: not a PEM public key, or a key of another type or curve.
    """
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as e:
        raise InputError(f"not a PEM public key ({e}); expected {_EXPECTED}") from e
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise InputError(f"public key is {_describe(key)}; lorareg accepts only {_EXPECTED}")
    _require_p256(key.curve)
    return _wrap_public(key)


def load_private_key(pem: bytes, *, password: bytes | None = None) -> PrivateKey:
    """Parse a PKCS#8 (or SEC1) private key PEM and require P-256.

    Raises:
        InputError: not a PEM key, wrong or missing passphrase, or a key of another type or curve.
    """
    if password is None and is_encrypted_pem(pem):
        raise InputError("private key is encrypted: a passphrase is needed (set LORAREG_KEY_PASSWORD)")
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except TypeError as e:  # a passphrase given for an unencrypted key
        raise InputError(f"private key is not encrypted but a passphrase was given ({e})") from e
    except (ValueError, UnsupportedAlgorithm) as e:
        raise InputError(f"cannot read private key: bad PEM or wrong passphrase ({e})") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InputError(f"private key is {_describe(key)}; lorareg accepts only {_EXPECTED}")
    _require_p256(key.curve)
    return PrivateKey(key)


def is_encrypted_pem(pem: bytes) -> bool:
    """Whether a private key PEM is passphrase-protected (PKCS#8 or legacy OpenSSL encryption)."""
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem or b"Proc-Type: 4,ENCRYPTED" in pem


def read_key_file(path: Path) -> bytes:
    """Read a key file with a size cap.

    Raises:
        NotFoundError: the file does not exist.
        PayloadTooLargeError: the file is larger than :data:`MAX_KEY_FILE_BYTES`.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except FileNotFoundError as e:
        raise NotFoundError(f"key file {path} does not exist") from e
    except OSError as e:
        raise InputError(f"cannot read key file {path}: {e.strerror}") from e
    if len(data) > MAX_KEY_FILE_BYTES:
        raise PayloadTooLargeError(f"key file {path} is over {MAX_KEY_FILE_BYTES} bytes; not a key")
    return data


def permission_warning(path: Path) -> str | None:
    """Return a warning when a private key file is readable or writable by group or others, else None."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return (
            f"private key {path} has mode {mode:04o}; other users can read it. "
            f"Run: chmod {PRIVATE_KEY_MODE:o} {path}"
        )
    return None


def write_key_pair(prefix: Path, key: PrivateKey, *, password: bytes | None = None) -> KeyPairPaths:
    """Write ``PREFIX.key`` (mode 0600, PKCS#8 PEM) and ``PREFIX.pub``; never overwrite either.

    Raises:
        ConflictError: either file already exists.
    """
    paths = KeyPairPaths(private=Path(f"{prefix}.key"), public=Path(f"{prefix}.pub"))
    for path in (paths.private, paths.public):
        if path.exists() or path.is_symlink():
            raise ConflictError(f"{path} already exists; refusing to overwrite a key file")
    _write_new(paths.private, key.to_pem(password=password), mode=PRIVATE_KEY_MODE)
    _write_new(paths.public, key.public_key.pem, mode=PUBLIC_KEY_MODE)
    return paths


def _write_new(path: Path, data: bytes, *, mode: int) -> None:
    """Create ``path`` exclusively with ``mode`` (never following a planted symlink) and write ``data``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as e:
        raise ConflictError(f"{path} already exists; refusing to overwrite a key file") from e
    except OSError as e:
        raise InputError(f"cannot create {path}: {e.strerror}") from e
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)  # the umask may have narrowed it; never widened beyond `mode`
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _wrap_public(key: ec.EllipticCurvePublicKey) -> PublicKey:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(pem, key)


def _require_p256(curve: ec.EllipticCurve) -> None:
    if curve.name != KEY_CURVE:
        raise InputError(f"key is ECDSA on curve {curve.name}; lorareg accepts only {_EXPECTED}")


def _describe(key: object) -> str:
    """A short human name of a foreign key type for error messages (Ed25519, RSA, ...)."""
    name = type(key).__name__.lstrip("_")
    for prefix in ("Ed25519", "Ed448", "RSA", "DSA", "X25519", "X448"):
        if name.startswith(prefix):
            return f"a {prefix} key"
    return f"a {name}"
