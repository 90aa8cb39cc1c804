"""Custody of the registry signing key: encrypted at rest, or kept outside the data directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorareg.errors import InputError, StorageError
from lorareg.registry.service import open_registry
from lorareg.server.app import open_registry_for
from lorareg.server.config import settings_from_env
from lorareg.signing.keys import generate


def test_a_passphrase_encrypts_the_new_registry_key_and_reopens_it(tmp_path: Path) -> None:
    first = open_registry(tmp_path, key_password=b"correct horse")
    pem = (tmp_path / "registry.key").read_bytes()
    assert b"ENCRYPTED" in pem and (tmp_path / "registry.key").stat().st_mode & 0o077 == 0
    again = open_registry(tmp_path, key_password=b"correct horse")
    assert again.key.key_id == first.key.key_id


def test_an_encrypted_registry_key_without_its_passphrase_is_refused_by_name(tmp_path: Path) -> None:
    open_registry(tmp_path, key_password=b"correct horse")
    with pytest.raises(InputError, match="LORAREG_REGISTRY_KEY_PASSWORD"):
        open_registry(tmp_path)
    with pytest.raises(InputError):
        open_registry(tmp_path, key_password=b"wrong")


def test_a_key_kept_outside_the_data_dir_is_used_and_none_is_created_inside(tmp_path: Path) -> None:
    secret = tmp_path / "secrets" / "registry.pem"
    secret.parent.mkdir()
    key = generate()
    secret.write_bytes(key.to_pem(password=b"s3cret"))
    settings = settings_from_env(
        {
            "LORAREG_HOME": str(tmp_path / "data"),
            "LORAREG_REGISTRY_KEY_FILE": str(secret),
            "LORAREG_REGISTRY_KEY_PASSWORD": "s3cret",
        }
    )
    assert "s3cret" not in repr(settings)
    registry = open_registry_for(settings)
    assert registry.key.key_id == key.key_id
    assert not (tmp_path / "data" / "registry.key").exists()


def test_a_missing_external_key_file_is_refused_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "registry.pem"
    with pytest.raises(StorageError, match="does not exist"):
        open_registry(tmp_path / "data", key_file=missing)
    assert not missing.exists()
