"""``lorareg keygen / sign / verify`` as users and scripts run them: output, exit codes, passphrases."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.keys import KeyFiles, foreign_key_pems
from tests.support.lora_factory import write_adapter
from tests.test_signing_interop import MANIFEST_TOML


def lorareg(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "LORAREG_KEY_PASSWORD"}
    full_env["LORAREG_TRUST"] = "/nonexistent/lorareg-trust.toml"  # never the developer's own trust file
    full_env |= env or {}
    return subprocess.run(
        [sys.executable, "-m", "lorareg", *map(str, args)],
        capture_output=True, text=True, timeout=120, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    (tmp_path / "m.toml").write_text(MANIFEST_TOML)
    return write_adapter(tmp_path / "pixel.safetensors", "sd1-kohya")


def test_keygen_prints_the_key_id_of_the_public_pem(tmp_path: Path) -> None:
    done = lorareg("keygen", "--out", tmp_path / "acme")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == hashlib.sha256((tmp_path / "acme.pub").read_bytes()).hexdigest()
    assert oct((tmp_path / "acme.key").stat().st_mode & 0o777) == "0o600"


def test_keygen_json_and_refusal_to_overwrite(tmp_path: Path) -> None:
    first = lorareg("keygen", "--out", tmp_path / "k", "--json")
    assert json.loads(first.stdout)["private_key"].endswith("k.key")
    again = lorareg("keygen", "--out", tmp_path / "k")
    assert (
        again.returncode == 2
        and again.stderr.startswith("error:")
        and "refusing to overwrite" in again.stderr
    )


def test_keygen_encrypt_without_terminal_or_env_fails_clearly(tmp_path: Path) -> None:
    done = lorareg("keygen", "--out", tmp_path / "k", "--encrypt")
    assert done.returncode == 2 and "LORAREG_KEY_PASSWORD" in done.stderr and "not a terminal" in done.stderr
    assert not (tmp_path / "k.key").exists()


def test_encrypted_key_signs_with_passphrase_from_env(tmp_path: Path, adapter: Path) -> None:
    env = {"LORAREG_KEY_PASSWORD": "s3cret"}
    assert lorareg("keygen", "--out", tmp_path / "k", "--encrypt", env=env).returncode == 0
    assert b"ENCRYPTED" in (tmp_path / "k.key").read_bytes()
    args = ("sign", adapter, "--manifest", tmp_path / "m.toml", "--key", tmp_path / "k.key")
    no_password = lorareg(*args)
    assert no_password.returncode == 2 and "encrypted" in no_password.stderr
    assert lorareg(*args, env=env).returncode == 0


def test_sign_then_verify_with_key_flag(tmp_path: Path, adapter: Path, publisher_key: KeyFiles) -> None:
    signed = lorareg("sign", adapter, "--manifest", tmp_path / "m.toml", "--key", publisher_key.private_path)
    assert signed.returncode == 0, signed.stderr
    done = lorareg(
        "verify", adapter, "--key", publisher_key.public_path, env={"LORAREG_TRUST": str(tmp_path / "none")}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "verified:" in done.stdout and "licence: CreativeML-OpenRAIL-M" in done.stdout
    assert "consent: style, not-required" in done.stdout and publisher_key.key_id[:16] in done.stdout


def test_verify_json_lists_every_reason_and_exits_1(
    tmp_path: Path, adapter: Path, publisher_key: KeyFiles
) -> None:
    out = tmp_path / "custom.lorareg.json"
    lorareg(
        "sign",
        adapter,
        "--manifest",
        tmp_path / "m.toml",
        "--key",
        publisher_key.private_path,
        "--envelope",
        out,
    )
    data = bytearray(adapter.read_bytes())
    data[-2] ^= 1
    adapter.write_bytes(data)
    done = lorareg(
        "verify", adapter, "--envelope", out, "--key", publisher_key.public_path, "--family", "sdxl", "--json"
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["verified"] is False and len(result["reasons"]) == 2
    assert result["reasons"][0].startswith("digest mismatch")
    # the signature itself verified: the refusal still says who signed what (issue 3, item 6)
    assert result["signers"] == [
        {"keyid": publisher_key.key_id, "label": publisher_key.public_path.name, "role": "publisher"}
    ]
    assert result["manifest"]["name"] == "acme/pixel-art" and result["manifest"]["version"] == "1.2.0"


def test_policy_refusal_still_lists_signers_licence_and_consent(
    tmp_path: Path, adapter: Path, publisher_key: KeyFiles
) -> None:
    """A likeness adapter without consent: genuinely signed, refused by policy; the user sees both."""
    (tmp_path / "m.toml").write_text(
        MANIFEST_TOML.replace('subject = "style"', 'subject = "likeness"').replace("not-required", "unknown")
    )
    lorareg("sign", adapter, "--manifest", tmp_path / "m.toml", "--key", publisher_key.private_path)
    as_json = lorareg("verify", adapter, "--key", publisher_key.public_path, "--json")
    assert as_json.returncode == 1, as_json.stderr
    result = json.loads(as_json.stdout)
    assert [s["keyid"] for s in result["signers"]] == [publisher_key.key_id]
    consent = result["manifest"]["consent"]
    assert (consent["subject"], consent["status"]) == ("likeness", "unknown")
    assert len(result["reasons"]) == 1 and "likeness adapter without obtained consent" in result["reasons"][0]
    human = lorareg("verify", adapter, "--key", publisher_key.public_path)
    assert human.returncode == 1
    lines = human.stdout.splitlines()
    assert lines[0] == f"refused: {adapter} (acme/pixel-art@1.2.0)"
    assert f"  signed by publisher {publisher_key.public_path.name} ({publisher_key.key_id[:16]}…)" in lines
    assert "  licence: CreativeML-OpenRAIL-M (commercial use allowed)" in lines
    assert "  consent: likeness, unknown" in lines
    assert lines[-1].startswith("  - likeness adapter without obtained consent")


def test_signature_by_an_unknown_key_hands_out_no_signer_or_manifest(
    tmp_path: Path, adapter: Path, publisher_key: KeyFiles, make_key: Callable[..., KeyFiles]
) -> None:
    """Nothing unverified is shown: a manifest whose signature no trusted key made stays unread."""
    lorareg("sign", adapter, "--manifest", tmp_path / "m.toml", "--key", publisher_key.private_path)
    stranger = make_key("stranger")
    done = lorareg("verify", adapter, "--key", stranger.public_path, "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["signers"] == [] and result["manifest"] is None
    assert result["reasons"][0].startswith("no signature by a trusted key")


def test_verify_human_output_lists_reasons(tmp_path: Path, adapter: Path, publisher_key: KeyFiles) -> None:
    lorareg("sign", adapter, "--manifest", tmp_path / "m.toml", "--key", publisher_key.private_path)
    done = lorareg("verify", adapter, "--key", publisher_key.public_path, "--family", "flux1")
    assert done.returncode == 1 and "refused:" in done.stdout
    assert "  - adapter is for base family 'sd1'; expected 'flux1'" in done.stdout


def test_verify_without_trust_file_explains_how_to_create_one(tmp_path: Path, adapter: Path) -> None:
    done = lorareg("verify", adapter, env={"LORAREG_TRUST": str(tmp_path / "missing.toml")})
    assert done.returncode == 2 and "lorareg trust add" in done.stderr


def test_verify_missing_signature_file_is_unusable_input(
    tmp_path: Path, adapter: Path, publisher_key: KeyFiles
) -> None:
    done = lorareg(
        "verify", adapter, "--key", publisher_key.public_path, "--signature", tmp_path / "nope.sig"
    )
    assert done.returncode == 3 and "does not exist" in done.stderr


@pytest.mark.parametrize("kind", ["ed25519", "rsa", "p384"])
def test_key_of_the_wrong_type_is_refused_by_cli(tmp_path: Path, adapter: Path, kind: str) -> None:
    private, public = foreign_key_pems(kind)
    (tmp_path / "bad.key").write_bytes(private)
    (tmp_path / "bad.pub").write_bytes(public)
    signing = lorareg("sign", adapter, "--manifest", tmp_path / "m.toml", "--key", tmp_path / "bad.key")
    assert signing.returncode == 2 and "P-256" in signing.stderr
    verifying = lorareg("verify", adapter, "--key", tmp_path / "bad.pub")
    assert verifying.returncode == 2 and "P-256" in verifying.stderr


def test_sign_warns_about_a_world_readable_key(
    tmp_path: Path, adapter: Path, publisher_key: KeyFiles
) -> None:
    os.chmod(publisher_key.private_path, 0o644)
    done = lorareg("sign", adapter, "--manifest", tmp_path / "m.toml", "--key", publisher_key.private_path)
    assert done.returncode == 0 and "warning:" in done.stderr and "chmod 600" in done.stderr


def test_sign_refuses_a_manifest_that_contradicts_the_file(
    tmp_path: Path, adapter: Path, publisher_key: KeyFiles
) -> None:
    (tmp_path / "m.toml").write_text(
        MANIFEST_TOML.replace("[license]", '[base_model]\nfamily = "sdxl"\n[license]')
    )
    done = lorareg("sign", adapter, "--manifest", tmp_path / "m.toml", "--key", publisher_key.private_path)
    assert done.returncode == 2 and "base_model.family" in done.stderr
    assert not Path(f"{adapter}.sig").exists()
