"""Rotating the registry's own key: the key-set chain in the database, and the key file swap.

``lorareg admin registry-key rotate`` (``Registry.rotate_key``) does, in this order, so a crash at any point
leaves a registry that still starts and a chain clients can follow:

1. generate the new key and write it beside the current key file (``<file>.new``, mode 0600, encrypted
   with the same password when there is one);
2. append a key-set document (``lorareg.signing.keyset``) naming the new key and replacing the current one,
   signed by both, to ``registry_keysets`` (one transaction; version = last + 1);
3. move the current key file to ``<file>.<keyid16>.retired`` and the new one into its place.

Replicas pick the new key up when restarted; until then they sign with the old key, which clients still
trust. The retired private key is no longer needed for anything (old signatures verify with the public
key): destroy it once every replica runs with the new one.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lorareg.errors import StorageError
from lorareg.registry.db import RegistryKeySet
from lorareg.signing.keys import PrivateKey
from lorareg.signing.keyset import KeySet, sign_keyset

KEY_FILE_MODE = 0o600


def chain(session: Session) -> list[bytes]:
    """Every key-set document, oldest first."""
    rows = session.exec(select(RegistryKeySet).order_by(col(RegistryKeySet.version)))
    return [bytes(r.envelope) for r in rows]


def announce(session: Session, old: PrivateKey, new: PrivateKey, *, now: datetime) -> bytes:
    """Step 2: append the document that hands over from ``old`` to ``new``, signed by both."""
    last = session.exec(select(sa.func.max(col(RegistryKeySet.version)))).one()
    version = 1 if last is None else int(last) + 1
    document = sign_keyset(KeySet(version, (new.public_key,), (old.key_id,), now), [old, new])
    session.add(RegistryKeySet(version=version, envelope=document, created=now))
    session.flush()
    return document


def stage_key_file(path: Path, key: PrivateKey, *, password: bytes | None) -> Path:
    """Step 1: write ``key`` to ``<path>.new`` (never overwriting an existing file)."""
    staged = path.with_name(path.name + ".new")
    try:
        fd = os.open(
            staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), KEY_FILE_MODE
        )
        with os.fdopen(fd, "wb") as handle:
            handle.write(key.to_pem(password=password))
            handle.flush()
            os.fsync(handle.fileno())
    except FileExistsError as e:
        raise StorageError(
            f"{staged} exists: an earlier rotation did not finish; inspect and remove it"
        ) from e
    except OSError as e:
        raise StorageError(f"cannot write the new registry key {staged}: {e}") from e
    return staged


def swap_key_files(path: Path, staged: Path, *, old_keyid: str) -> Path:
    """Step 3: the current key becomes ``<path>.<keyid16>.retired``, the staged one takes its place."""
    retired = path.with_name(f"{path.name}.{old_keyid[:16]}.retired")
    try:
        os.replace(path, retired)
        os.replace(staged, path)
    except OSError as e:
        raise StorageError(f"cannot swap registry key files {path} and {staged}: {e}") from e
    return retired
