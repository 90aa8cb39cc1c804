"""Folders meet weight fingerprints: a re-packaged copy of a revoked adapter in a UI folder is found by
``audit`` (exit 1, ``near-duplicate``), and ``import`` folds two byte-different copies of one adapter into one
entry. Only the fingerprint goes to the registry, never the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tests.support.fingerprint_variants as v
from lorareg.manifest.drafting import ManifestDraft
from lorareg.signing.sign import sign_file
from tests.fixtures.server import LiveServer, draft_manifest
from tests.support.cli_runner import run_main

BASE = "sdxl"


@pytest.fixture
def revoked_original(live_server: LiveServer, tmp_path: Path) -> tuple[v.Adapter, v.Adapter]:
    """acme/ink published and then revoked (an upheld takedown); an unrelated adapter for contrast."""
    mods = v.layout(BASE, blocks=1)
    original, unrelated = v.trained(mods, seed=0), v.trained(mods, seed=7)
    token = live_server.add_publisher("acme")
    path = v.write(tmp_path / "ink.safetensors", original, base=BASE, alpha=1.0)
    bundle = sign_file(
        path, ManifestDraft.from_json(draft_manifest("acme/ink", "1.0.0")), live_server.publisher_keys["acme"]
    )
    with live_server.client(token) as client:
        client.publish(path, bundle)
    reviewer = live_server.registry.authenticate(live_server.token("reviewer"))
    live_server.registry.revoke("acme/ink@1.0.0", reason="likeness without consent", principal=reviewer)
    return original, unrelated


def test_audit_finds_a_repackaged_copy_of_a_revoked_adapter(
    live_server: LiveServer,
    revoked_original: tuple[v.Adapter, v.Adapter],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    original, unrelated = revoked_original
    loras = tmp_path / "ComfyUI" / "models" / "loras"
    loras.mkdir(parents=True)
    v.write(loras / "ink_bf16_peft.safetensors", original, base=BASE, fmt="peft", dtype="BF16")
    v.write(loras / "other.safetensors", unrelated, base=BASE)
    store, _ = live_server.trust()
    store.save(tmp_path / "trust.toml")
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LORAREG_TRUST", str(tmp_path / "trust.toml"))
    code, out, err = run_main(
        monkeypatch, capsys, "audit", str(loras), "--registry", live_server.url, "--json"
    )
    assert code == 1, err
    verdicts = {Path(f["path"]).name: f for f in json.loads(out)["files"]}
    copy = verdicts["ink_bf16_peft.safetensors"]
    assert copy["status"] == "near-duplicate" and copy["ref"] == "acme/ink@1.0.0"
    assert "acme/ink@1.0.0" in copy["reason"]
    assert verdicts["other.safetensors"]["status"] == "unknown"


def test_import_folds_byte_different_copies_of_one_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mods = v.layout(BASE, blocks=1)
    original, unrelated = v.trained(mods, seed=0), v.trained(mods, seed=7)
    library = tmp_path / "library"
    library.mkdir()
    v.write(library / "ink.safetensors", original, base=BASE, alpha=1.0)
    v.write(library / "ink_fp16_diffusers.safetensors", original, base=BASE, fmt="diffusers", dtype="F16")
    v.write(library / "other.safetensors", unrelated, base=BASE)
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "cache"))
    code, out, err = run_main(
        monkeypatch, capsys, "import", str(library), "--out", str(tmp_path / "drafts"), "--json"
    )
    assert code == 0, err
    entries = json.loads(out)["adapters"]
    assert len(entries) == 2
    paths = sorted(sorted(Path(p).name for p in e["paths"]) for e in entries)
    assert paths == [["ink.safetensors", "ink_fp16_diffusers.safetensors"], ["other.safetensors"]]
