"""``lorareg admin …`` in the exact forms scripts use, run as a real process against a data directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorareg.registry.service import open_registry
from lorareg.signing.keys import generate


def admin(
    *args: str, data: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    extra = ["--data", str(data)] if data is not None else []
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lorareg", "admin", *args, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
    )


@pytest.fixture
def pub_key(tmp_path: Path) -> Path:
    path = tmp_path / "acme.pub"
    path.write_bytes(generate().public_key.pem)
    return path


def test_publisher_add_registers_the_key_and_prints_a_publish_token(tmp_path: Path, pub_key: Path) -> None:
    data = tmp_path / "data"
    result = admin("publisher", "add", "acme", "--key", str(pub_key), "--json", data=data)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"token", "token_id", "namespace", "keyid"} and out["token"].startswith("lrg_")
    registry = open_registry(data)
    principal = registry.authenticate(out["token"])
    assert (principal.role, principal.namespace) == ("publisher", "acme")
    assert [k.keyid for k in registry.publisher_keys("acme")] == [out["keyid"]]


def test_token_create_list_and_revoke(tmp_path: Path) -> None:
    data = tmp_path / "data"
    created = admin("token", "create", "--role", "reviewer", "--expires", "30d", "--json", data=data)
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    assert set(token) == {"token", "token_id", "role", "expires"} and token["role"] == "reviewer"
    assert token["expires"].endswith("Z")
    listed = json.loads(admin("token", "list", "--json", data=data).stdout)["tokens"]
    assert [t["token_id"] for t in listed] == [token["token_id"]]
    assert token["token"] not in json.dumps(listed)  # secrets are never listed
    assert admin("token", "revoke", token["token_id"], data=data).returncode == 0
    with pytest.raises(Exception, match="revoked"):
        open_registry(data).authenticate(token["token"])


def test_data_directory_comes_from_lorareg_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = admin("user", "add", "ada", "--role", "admin", env={"LORAREG_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert [u.name for u in open_registry(home).list_users()] == ["ada"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["token", "create", "--role", "root"], 2, "unknown role"),
        (["token", "create", "--role", "publisher"], 2, "needs --namespace"),
        (["token", "create", "--role", "admin", "--expires", "soon"], 2, "bad duration"),
        (["token", "revoke", "000000000000"], 3, "does not exist"),
        (["publisher", "add", "Bad_NS", "--key", "/nonexistent.pub"], 3, "does not exist"),
    ],
    ids=["unknown-role", "publisher-without-namespace", "bad-expiry", "unknown-token", "missing-key-file"],
)
def test_bad_admin_requests_fail_with_one_error_line(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = admin(*args, data=tmp_path / "data")
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
