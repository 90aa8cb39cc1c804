"""The whole story of issue #13 over HTTP: a studio imports its library, publishes it, installs adapters into
UI folders, a takedown is upheld, and the render node's audit catches the revoked and the tampered file.

Real parts only: a live registry over loopback, real adapter files in real ComfyUI and A1111 trees with the
sidecars artists' tools write, the CLI run through its entry point (exit codes, one-line errors).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lorareg.client.cache import BlobCache
from lorareg.manifest import ManifestDraft
from lorareg.signing.keys import generate, write_key_pair
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main
from tests.support.ui_folders import build_studio_library


@pytest.fixture
def studio(live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A library on disk, a publisher key file for namespace ``studio``, a trust file, env for the CLI."""
    paths = build_studio_library(tmp_path / "library")
    key = generate()
    token = live_server.add_publisher("studio", key)
    paths["key"] = write_key_pair(tmp_path / "studio", key).private
    store, _ = live_server.trust()
    paths["trust"] = tmp_path / "trust.toml"
    store.save(paths["trust"])
    paths["cache"] = tmp_path / "cache"
    monkeypatch.setenv("LORAREG_CACHE", str(paths["cache"]))
    monkeypatch.setenv("LORAREG_TRUST", str(paths["trust"]))
    monkeypatch.setenv("LORAREG_REGISTRY", live_server.url)
    monkeypatch.setenv("LORAREG_TOKEN", token)
    return paths


def test_import_publish_pull_into_takedown_then_audit_quarantines(
    studio: dict[str, Path],
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def lorareg(*args: str) -> tuple[int, str, str]:
        return run_main(monkeypatch, capsys, *args)

    drafts = tmp_path / "drafts"
    # 1. import: three adapters, the duplicate folded in, the pickle and the link out refused
    code, out, err = lorareg(
        "import",
        str(studio["root"]),
        "--out",
        str(drafts),
        "--publish",
        "--namespace",
        "studio",
        "--key",
        str(studio["key"]),
        "--json",
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["counts"] == {"imported": 3, "duplicate": 1, "refused": 2, "needs_review": 3}
    ink = next(a for a in report["adapters"] if a["name"] == "studio/ink-lines-v2")
    assert sorted(Path(p).name for p in ink["paths"]) == ["Ink Lines v2.safetensors", "ink-copy.safetensors"]
    assert ink["published"] == "published" and ink["ref"] == "studio/ink-lines-v2@1.0.0"
    refused = {Path(r["path"]).name: r["reason"] for r in report["refused"]}
    assert "pickle" in refused["old-style.ckpt"] and "not followed" in refused["linked.safetensors"]
    detail = live_server.client().resolve("studio/ink-lines-v2@1.0.0")
    origin = detail["manifest"]["origin"]
    assert origin["source"] == "civitai" and origin["model_id"] == "777" and origin["creator"] == "inkmaster"
    assert detail["manifest"]["license"]["commercial_use"] is True
    assert detail["manifest"]["consent"] == {"subject": "unknown", "status": "unknown"}
    assert live_server.client().previews("studio/ink-lines-v2@1.0.0"), (
        "the preview beside the file was uploaded"
    )

    # 2. resumable: a rerun publishes nothing again
    code, out, err = lorareg(
        "import",
        str(studio["root"]),
        "--publish",
        "--namespace",
        "studio",
        "--key",
        str(studio["key"]),
        "--json",
    )
    assert code == 0, err
    assert {a["published"] for a in json.loads(out)["adapters"]} == {"already published"}

    # 3. the default policy refuses an unreviewed import; the owner amends the draft and publishes 1.0.1
    comfy = tmp_path / "render-node" / "ComfyUI"
    (comfy / "models" / "loras").mkdir(parents=True)
    code, _, err = lorareg("pull", "studio/ink-lines-v2@1.0.0", "--into", str(comfy), "--layout", "comfyui")
    assert code == 1 and "unreviewed" in err
    draft = (drafts / "ink-lines-v2.toml").read_text()
    draft = draft.replace('version = "1.0.0"', 'version = "1.0.1"').replace(
        'subject = "unknown"\nstatus = "unknown"', 'subject = "style"\nstatus = "not-required"'
    )
    amended = drafts / "ink-lines-v2.toml"
    amended.write_text(draft)
    ManifestDraft.from_toml(draft)  # the draft is a valid manifest draft
    preview = str(studio["ink"].with_suffix(".preview.png"))
    code, out, err = lorareg(
        "publish",
        str(studio["ink"]),
        "--manifest",
        str(amended),
        "--key",
        str(studio["key"]),
        "--preview",
        preview,
    )
    assert code == 0, err

    # the catalogue shows the imports as unreviewed, filterable, until a reviewed version exists
    page = live_server.client().search(unreviewed=True)
    assert sorted(i["ref"] for i in page["items"]) == [
        "studio/hero@1.0.0",
        "studio/ink-lines-v2@1.0.0",
        "studio/portrait@1.0.0",
    ]
    reviewed = live_server.client().search(unreviewed=False)["items"]
    assert [(i["ref"], i["unreviewed"]) for i in reviewed] == [("studio/ink-lines-v2@1.0.1", False)]
    import httpx

    html = httpx.get(f"{live_server.url}/?unreviewed=true", timeout=10).text
    assert html.count('class="badge warn">unreviewed<') == 3

    # 4. pull --into: hard link from the verified cache, the sidecars ComfyUI LoRA Manager reads
    code, out, err = lorareg("pull", "studio/ink-lines-v2@1.0.1", "--into", str(comfy), "--layout", "comfyui")
    assert code == 0, err
    installed = Path(out.strip())
    assert installed == comfy / "models" / "loras" / "ink-lines-v2-1.0.1.safetensors"
    cached = BlobCache(studio["cache"]).lookup(ink["sha256"])
    assert cached is not None and os.stat(cached).st_ino == installed.stat().st_ino
    meta = json.loads(installed.with_suffix(".metadata.json").read_text())
    assert meta["civitai"]["trainedWords"] == ["inklines", "bold ink"] and meta["base_model"] == "SDXL 1.0"
    assert "inkmaster" in meta["notes"] and meta["lorareg"]["sha256"] == ink["sha256"]
    assert Path(f"{installed}.sig").is_file()
    assert [p.name for p in installed.parent.glob("*.preview.*")] == ["ink-lines-v2-1.0.1.preview.png"]

    # an unreviewed adapter installs when the studio's policy allows it (A1111 layout this time)
    allow = tmp_path / "allow.toml"
    allow.write_text(
        studio["trust"].read_text().replace("allow_unreviewed = false", "allow_unreviewed = true")
    )
    webui = tmp_path / "render-node" / "webui"
    (webui / "models" / "Lora").mkdir(parents=True)
    code, out, err = lorareg(
        "pull", "studio/hero@1.0.0", "--into", str(webui), "--layout", "a1111", "--trust", str(allow)
    )
    assert code == 0, err
    hero = Path(out.strip())
    a1111 = json.loads(hero.with_suffix(".json").read_text())
    assert a1111["activation text"] == "hero_char" and a1111["sd version"] == "SD1"
    # a different file of the same name is never overwritten without --force
    code, _, err = lorareg(
        "pull", "studio/hero@1.0.0", "--into", str(webui), "--layout", "plain", "--trust", str(allow)
    )
    assert code == 0, "the same bytes are left in place"
    hero.with_suffix(".credit.txt").write_text("someone else's notes\n")
    code, _, err = lorareg(
        "pull", "studio/hero@1.0.0", "--into", str(webui), "--layout", "a1111", "--trust", str(allow)
    )
    assert code == 2 and "--force" in err
    code, _, err = lorareg(
        "pull",
        "studio/hero@1.0.0",
        "--into",
        str(webui),
        "--layout",
        "a1111",
        "--trust",
        str(allow),
        "--force",
    )
    assert code == 0, err
    assert "lorareg sha256:" in hero.with_suffix(".credit.txt").read_text()

    # 5. a clean audit of the render node
    code, out, err = lorareg("audit", str(comfy), "--json")
    assert code == 0, err
    assert [f["status"] for f in json.loads(out)["files"]] == ["verified"]

    # 6. the hero file is modified after pull (not a hard link to the cache any more), ink is taken down
    data = bytearray(hero.read_bytes())
    data[-1] ^= 0xFF
    hero.unlink()
    hero.write_bytes(bytes(data))
    reviewer = live_server.client(live_server.token("reviewer"))
    request = live_server.client().file_takedown(
        "studio/ink-lines-v2@1.0.1",
        reason="style",
        claimant="Ink Rights Ltd",
        contact="legal@example.com",
        details="our style sheet",
        good_faith=True,
    )
    reviewer.decide_takedown(request["id"], decision="uphold", reason="copied style sheet", all_versions=True)

    # 7. audit exits 1 and quarantines both, with their sidecars and a note; a second run is clean
    quarantine = tmp_path / "quarantine"
    for folder in (comfy, webui):
        code, out, err = lorareg(
            "audit", str(folder), "--quarantine", str(quarantine / folder.name), "--json"
        )
        assert code == 1, err
    revoked = quarantine / "ComfyUI" / "models" / "loras" / "ink-lines-v2-1.0.1.safetensors"
    assert (
        revoked.is_file() and not installed.exists() and not installed.with_suffix(".metadata.json").exists()
    )
    assert revoked.with_suffix(".metadata.json").is_file() and Path(f"{revoked}.sig").is_file()
    assert "copied style sheet" in Path(f"{revoked}.quarantined.txt").read_text()
    modified = quarantine / "webui" / "models" / "Lora" / "hero-1.0.0.safetensors"
    assert "status: modified" in Path(f"{modified}.quarantined.txt").read_text()
    code, out, err = lorareg("audit", str(comfy), "--quarantine", str(quarantine / "ComfyUI"), "--json")
    assert code == 0 and json.loads(out)["files"] == []

    # 8. offline (no --registry): the cached revocation list still catches a copy, and says how old it is
    node = tmp_path / "offline-node"
    node.mkdir()
    (node / "renamed.safetensors").write_bytes(studio["ink"].read_bytes())
    monkeypatch.delenv("LORAREG_REGISTRY")
    code, out, err = lorareg("audit", str(node), "--json")
    assert code == 1
    result = json.loads(out)
    assert result["files"][0]["status"] == "revoked" and result["revocations"]["source"] == "cache"
    assert result["revocations"]["age_s"] is not None
