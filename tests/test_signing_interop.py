"""Interoperability with the real OpenSSF tool (PyPI ``model-signing``, the ``dev`` extra), both directions.

``model_signing verify key --signature F.sig --public_key K.pub F`` must accept what ``lorareg sign`` writes,
also after the registry countersigned it, and refuse it after one adapter byte or one lorareg manifest field
changed. ``lorareg verify`` must check the integrity of what ``model_signing sign key`` writes and say that
it carries no lorareg manifest.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorareg.manifest.canonical import canonical_json
from lorareg.signing.policy import Policy
from lorareg.signing.sign import countersign
from lorareg.signing.trust import TrustStore
from tests.fixtures.keys import KeyFiles
from tests.support.lora_factory import write_adapter

MANIFEST_TOML = """\
name = "acme/pixel-art"
version = "1.2.0"
[license]
id = "CreativeML-OpenRAIL-M"
commercial_use = true
derivatives = true
attribution_required = false
[consent]
subject = "style"
status = "not-required"
"""


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"LORAREG_TRUST": "/nonexistent/lorareg-trust.toml"}  # never the developer's own
    return subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=120, env=env
    )


def model_signing(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run("-m", "model_signing", *args)


def lorareg(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run("-m", "lorareg", *args)


@pytest.fixture
def lorareg_signed(tmp_path: Path, publisher_key: KeyFiles) -> tuple[Path, Path]:
    adapter = write_adapter(tmp_path / "pixel.safetensors", "sd1-kohya")
    (tmp_path / "m.toml").write_text(MANIFEST_TOML)
    done = lorareg("sign", adapter, "--manifest", tmp_path / "m.toml", "--key", publisher_key.private_path)
    assert done.returncode == 0, done.stderr
    return adapter, Path(f"{adapter}.sig")


def ms_verify(adapter: Path, sig: Path, public: Path) -> subprocess.CompletedProcess[str]:
    return model_signing("verify", "key", "--signature", sig, "--public_key", public, adapter)


def test_model_signing_verifies_a_lorareg_signature(
    lorareg_signed: tuple[Path, Path], publisher_key: KeyFiles
) -> None:
    adapter, sig = lorareg_signed
    done = ms_verify(adapter, sig, publisher_key.public_path)
    assert done.returncode == 0 and "Verification succeeded" in done.stdout, done.stdout + done.stderr


def test_model_signing_verifies_after_registry_countersignature(
    lorareg_signed: tuple[Path, Path], publisher_key: KeyFiles, registry_key: KeyFiles
) -> None:
    adapter, sig = lorareg_signed
    sig.write_bytes(countersign(sig.read_bytes(), registry_key.key))
    assert len(json.loads(sig.read_bytes())["dsseEnvelope"]["signatures"]) == 2
    done = ms_verify(adapter, sig, publisher_key.public_path)
    assert done.returncode == 0 and "Verification succeeded" in done.stdout, done.stdout + done.stderr


def test_model_signing_refuses_after_one_adapter_byte_changes(
    lorareg_signed: tuple[Path, Path], publisher_key: KeyFiles
) -> None:
    adapter, sig = lorareg_signed
    data = bytearray(adapter.read_bytes())
    data[-5] ^= 0x40
    adapter.write_bytes(data)
    done = ms_verify(adapter, sig, publisher_key.public_path)
    assert done.returncode != 0 and "Hash mismatch" in done.stdout + done.stderr


def test_model_signing_refuses_after_one_manifest_field_changes(
    lorareg_signed: tuple[Path, Path], publisher_key: KeyFiles
) -> None:
    adapter, sig = lorareg_signed
    bundle = json.loads(sig.read_bytes())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["lorareg"]["license"]["commercial_use"] = False
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(canonical_json(statement)).decode()
    sig.write_text(json.dumps(bundle))
    done = ms_verify(adapter, sig, publisher_key.public_path)
    assert done.returncode != 0 and "Verification failed" in done.stdout + done.stderr  # InvalidSignature


@pytest.fixture
def model_signing_signed(tmp_path: Path, publisher_key: KeyFiles) -> tuple[Path, Path]:
    adapter = write_adapter(tmp_path / "plain.safetensors", "sd1-kohya")
    sig = tmp_path / "plain.safetensors.sig"
    done = model_signing(
        "sign", "key", "--private_key", publisher_key.private_path, "--signature", sig, adapter
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return adapter, sig


def test_lorareg_verify_reports_missing_lorareg_manifest_on_model_signing_signature(
    model_signing_signed: tuple[Path, Path], publisher_key: KeyFiles
) -> None:
    adapter, sig = model_signing_signed
    done = lorareg("verify", adapter, "--key", publisher_key.public_path, "--json")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["reasons"] == [
        "no lorareg manifest: the signature covers the file's integrity only"
    ]


def test_model_signing_signature_refused_for_no_manifest_still_names_its_signer(
    model_signing_signed: tuple[Path, Path], publisher_key: KeyFiles
) -> None:
    adapter, _ = model_signing_signed
    done = lorareg("verify", adapter, "--key", publisher_key.public_path, "--json")
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert [s["keyid"] for s in result["signers"]] == [publisher_key.key_id]
    assert result["manifest"] is None  # there is none to show: the file is signed, the provenance absent


def test_lorareg_checks_integrity_of_model_signing_signature(
    tmp_path: Path, model_signing_signed: tuple[Path, Path], publisher_key: KeyFiles
) -> None:
    adapter, sig = model_signing_signed
    trust = TrustStore(policy=Policy(require_lorareg_manifest=False))
    trust = trust.with_key(publisher_key.key.public_key, label="acme", role="publisher", namespace="acme")
    trust.save(tmp_path / "trust.toml")
    ok = lorareg("verify", adapter, "--trust", tmp_path / "trust.toml", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["signers"][0]["keyid"] == publisher_key.key_id
    data = bytearray(adapter.read_bytes())
    data[-1] ^= 1
    adapter.write_bytes(data)
    bad = lorareg("verify", adapter, "--trust", tmp_path / "trust.toml", "--json")
    assert bad.returncode == 1
    assert any(r.startswith("digest mismatch: file has sha256") for r in json.loads(bad.stdout)["reasons"])
