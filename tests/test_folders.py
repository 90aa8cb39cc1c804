"""Import, audit and install of UI model folders, without a registry: sidecars read as claims (tensors win,
unknowns stay unknown), hostile sidecars and links, the persistent hash cache, quarantine, the `origin`
manifest section and the unreviewed policy. The story over HTTP is ``test_folders_story.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from lorareg.client.folders.audit import audit_folder
from lorareg.client.folders.draft import slug
from lorareg.client.folders.hashcache import HashCache
from lorareg.client.folders.importing import scan_library, write_drafts
from lorareg.client.folders.quarantine import quarantine
from lorareg.client.folders.tomlwrite import to_toml
from lorareg.client.revocations import CheckedRevocations
from lorareg.errors import InputError, NotFoundError
from lorareg.manifest import Manifest, ManifestDraft
from lorareg.manifest.model import parse_toml
from lorareg.signing.keys import generate
from lorareg.signing.policy import Policy
from lorareg.signing.sign import sign_file
from lorareg.signing.trust import TrustStore
from tests.fixtures.server import draft_manifest
from tests.support.cli_runner import run_main
from tests.support.lora_factory import write_adapter
from tests.support.ui_folders import build_studio_library, civitai_version, write_json

NO_REVOCATIONS = CheckedRevocations(None, "none", note="test: no list")


def _entries(report: Any) -> dict[str, Any]:
    return {e.manifest.name.split("/", 1)[1]: e for e in report.entries}


def test_library_import_folds_duplicates_refuses_pickles_and_links_out(tmp_path: Path) -> None:
    paths = build_studio_library(tmp_path / "lib")
    report = scan_library(paths["root"], namespace="studio")
    entries = _entries(report)
    assert sorted(entries) == ["hero", "ink-lines-v2", "portrait"]
    assert entries["ink-lines-v2"].paths == [paths["ink"], paths["duplicate"]]
    assert report.counts() == {"imported": 3, "duplicate": 1, "refused": 2, "needs_review": 3}
    reasons = {p.name: r for p, r in report.refused}
    assert "convert it" in reasons["old-style.ckpt"]
    assert "not followed" in reasons["linked.safetensors"]


def test_sidecar_claims_are_used_with_their_source_and_tensors_win(tmp_path: Path) -> None:
    paths = build_studio_library(tmp_path / "lib")
    entries = _entries(scan_library(paths["root"], namespace="studio"))
    ink = entries["ink-lines-v2"].manifest
    assert ink.trigger_words == ("inklines", "bold ink")
    assert ink.license.commercial_use and ink.license.derivatives and ink.license.attribution_required
    assert ink.origin is not None and ink.origin.url == "https://civitai.com/models/777?modelVersionId=4242"
    sources = {(c.field, c.source) for c in entries["ink-lines-v2"].claims}
    assert ("trigger_word", "lora-manager") in sources
    portrait = entries["portrait"]
    assert portrait.manifest.base_model.family == "sdxl", "the tensors say sdxl; the A1111 json says SD1"
    assert any("SD1" in c and "sdxl" in c for c in portrait.contradicted)
    assert portrait.manifest.trigger_words == ("portrait style", "soft light")
    hero = entries["hero"].manifest
    assert (hero.license.commercial_use, hero.license.derivatives, hero.license.attribution_required) == (
        False,
        False,
        False,
    )


@pytest.mark.parametrize(
    ("commercial", "expected"),
    [
        (["Image", "RentCivit", "Rent", "Sell"], True),
        (["Image"], True),
        ([], False),
        ("None", False),
        ("Sell", True),
        (["None"], False),
    ],
    ids=["all-uses", "images-only", "empty-list", "none-word", "sell-word", "none-in-list"],
)
def test_civitai_commercial_permission_maps_to_the_licence_flag(
    tmp_path: Path, commercial: Any, expected: bool
) -> None:
    file = write_adapter(tmp_path / "a.safetensors", "sd1-kohya")
    info = civitai_version(
        version_id=1, model_id=2, name="A", base_model="SD 1.5", words=[], creator="x", commercial=commercial
    )
    write_json(file.with_suffix(".civitai.info"), info)
    (entry,) = scan_library(tmp_path).entries
    assert entry.manifest.license.commercial_use is expected


def test_nothing_said_stays_unknown_never_guessed(tmp_path: Path) -> None:
    write_adapter(tmp_path / "bare.safetensors", "sd1-kohya")
    (entry,) = scan_library(tmp_path).entries
    m = entry.manifest
    assert (m.license.id, m.consent.subject, m.consent.status) == ("unknown", "unknown", "unknown")
    assert m.dataset is None and m.origin is not None and m.origin.source == "local"
    assert len(entry.review) == 3


def test_a_civitai_person_of_interest_is_drafted_as_likeness(tmp_path: Path) -> None:
    file = write_adapter(tmp_path / "celeb.safetensors", "sd1-kohya")
    info = civitai_version(
        version_id=1, model_id=2, name="C", base_model="SD 1.5", words=[], creator="x", poi=True
    )
    write_json(file.with_suffix(".civitai.info"), info)
    (entry,) = scan_library(tmp_path).entries
    assert entry.manifest.consent.subject == "likeness"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "not valid UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe{}", "not valid"),
        (b'{"a": "' + b"x" * (4 * 2**20) + b'"}', "over"),
    ],
    ids=["broken-json", "array", "not-utf8", "oversized"],
)
def test_a_hostile_sidecar_is_reported_and_never_stops_the_import(
    tmp_path: Path, body: bytes, problem: str
) -> None:
    file = write_adapter(tmp_path / "a.safetensors", "sd1-kohya")
    file.with_suffix(".civitai.info").write_bytes(body)
    (entry,) = scan_library(tmp_path).entries
    assert any(problem in p for p in entry.problems)


def test_sidecar_text_with_terminal_controls_and_markup_is_cleaned(tmp_path: Path) -> None:
    file = write_adapter(tmp_path / "a.safetensors", "sd1-kohya")
    write_json(
        file.with_suffix(".json"),
        {"description": "<script>x</script>ok\x1b[2J\u202e", "activation text": "a\x07b, c"},
    )
    (entry,) = scan_library(tmp_path).entries
    assert entry.manifest.description is not None and "\x1b" not in entry.manifest.description
    assert "<script>" not in entry.manifest.description
    assert entry.manifest.trigger_words == ("a b", "c")


def test_a_directory_symlink_out_of_the_tree_is_not_walked(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    write_adapter(outside / "secret.safetensors", "sd1-kohya")
    root = tmp_path / "loras"
    root.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    report = scan_library(root)
    assert report.entries == [] and report.refused == []


def test_import_of_a_missing_folder_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        scan_library(tmp_path / "nope")


def test_drafts_are_valid_toml_manifests_with_review_notes(tmp_path: Path) -> None:
    paths = build_studio_library(tmp_path / "lib")
    report = scan_library(paths["root"], namespace="studio")
    written = write_drafts(report, tmp_path / "drafts")
    assert len(written) == 3 and (tmp_path / "drafts" / "import-report.json").is_file()
    text = (tmp_path / "drafts" / "hero.toml").read_text()
    assert "# needs review: its licence is unknown" not in text  # hero has Civitai permissions
    assert "# needs review: its consent status is unknown" in text
    draft = ManifestDraft.from_toml(text)
    assert draft.values["origin"]["model_id"] == "900"


def test_toml_writer_round_trips_nested_tables_and_unicode() -> None:
    values = {
        "name": 'a "q" \\ é 🎨',
        "n": 3,
        "x": 0.5,
        "ok": True,
        "words": ["a", "b"],
        "t": {"k": "v", "inner": {"z": 1}},
        "rows": [{"name": "r1"}, {"name": "r2", "role": "x"}],
    }
    assert parse_toml(to_toml(values)) == values


def test_slug_names_files_as_adapter_names() -> None:
    assert slug("My Style v2 (SDXL)") == "my-style-v2-sdxl"
    assert slug("Ünïcode__name") == "unicode-name"
    assert slug("!!!") == "adapter"
    assert len(slug("x" * 300)) == 64


# -- audit -------------------------------------------------------------------------------------------------


def _signed(tmp_path: Path, name: str = "acme/ink") -> tuple[Path, TrustStore]:
    key = generate()
    file = write_adapter(tmp_path / "loras" / "ink.safetensors", "sdxl-kohya", seed=5)
    Path(f"{file}.sig").write_bytes(
        sign_file(file, ManifestDraft.from_json(draft_manifest(name, "1.0.0")), key)
    )
    store = TrustStore((), Policy()).with_key(
        key.public_key, label="acme", role="publisher", namespace="acme"
    )
    return file, store


def test_audit_verifies_a_signed_file_and_flags_one_modified_after_signing(tmp_path: Path) -> None:
    file, store = _signed(tmp_path)
    cache = HashCache(tmp_path / "hashes.json")
    report = audit_folder(file.parent, trust=store, checked=NO_REVOCATIONS, client=None, cache=cache)
    assert [(i.status, i.ref) for i in report.items] == [("verified", "acme/ink@1.0.0")]
    data = bytearray(file.read_bytes())
    data[-1] ^= 1
    file.write_bytes(bytes(data))
    report = audit_folder(file.parent, trust=store, checked=NO_REVOCATIONS, client=None, cache=cache)
    assert report.items[0].status == "modified" and report.failed
    assert "ink.safetensors.sig says sha256" in str(report.items[0].reason)


def test_a_signature_from_an_untrusted_key_is_not_verified(tmp_path: Path) -> None:
    file, _ = _signed(tmp_path)
    report = audit_folder(
        file.parent, trust=TrustStore.empty(), checked=NO_REVOCATIONS, client=None, cache=HashCache(None)
    )
    assert report.items[0].status == "unknown" and "does not verify" in str(report.items[0].reason)
    assert not report.failed


def test_reaudit_of_an_unchanged_folder_reads_no_file_data(tmp_path: Path) -> None:
    folder = tmp_path / "loras"
    for i in range(5):
        write_adapter(folder / f"a{i}.safetensors", "sd1-kohya", seed=i)
    cache_file = tmp_path / "hashes.json"
    first = audit_folder(
        folder, trust=TrustStore.empty(), checked=NO_REVOCATIONS, client=None, cache=HashCache(cache_file)
    )
    assert (first.hashed, first.from_cache) == (5, 0)
    os.utime(cache_file, (0, 0))  # the cache's own age does not matter; only each file's key
    again = audit_folder(
        folder, trust=TrustStore.empty(), checked=NO_REVOCATIONS, client=None, cache=HashCache(cache_file)
    )
    assert (again.hashed, again.from_cache) == (0, 5)


def test_a_same_size_rewrite_is_rehashed_because_mtime_or_inode_changed(tmp_path: Path) -> None:
    file = write_adapter(tmp_path / "loras" / "a.safetensors", "sd1-kohya", seed=1)
    cache = HashCache(tmp_path / "hashes.json")
    before = cache.sha256(file)
    replacement = write_adapter(tmp_path / "other.safetensors", "sd1-kohya", seed=2)
    os.replace(replacement, file)  # same size, new inode
    assert HashCache(tmp_path / "hashes.json").sha256(file) != before


def test_a_corrupt_hash_cache_is_ignored_not_trusted(tmp_path: Path) -> None:
    file = write_adapter(tmp_path / "a.safetensors", "sd1-kohya")
    cache_file = tmp_path / "hashes.json"
    cache_file.write_text('{"format": 1, "entries": {"' + str(file.resolve()) + '": "bogus"}}')
    assert HashCache(cache_file).sha256(file) == __import__("hashlib").sha256(file.read_bytes()).hexdigest()


def test_quarantine_moves_file_and_sidecars_with_a_note_and_is_idempotent(tmp_path: Path) -> None:
    file, store = _signed(tmp_path)
    file.with_suffix(".civitai.info").write_text("{}")
    file.with_suffix(".preview.png").write_bytes(b"png")
    file.write_bytes(file.read_bytes() + b"tamper")
    root, qdir = file.parent, tmp_path / "q"
    report = audit_folder(
        root, trust=store, checked=NO_REVOCATIONS, client=None, cache=HashCache(None), skip=qdir
    )
    moved = quarantine(report.items, root=root, into=qdir)
    assert moved == [qdir / "ink.safetensors"]
    assert sorted(p.name for p in qdir.iterdir()) == [
        "ink.civitai.info",
        "ink.preview.png",
        "ink.safetensors",
        "ink.safetensors.quarantined.txt",
        "ink.safetensors.sig",
    ]
    assert list(root.iterdir()) == []
    again = audit_folder(
        root, trust=store, checked=NO_REVOCATIONS, client=None, cache=HashCache(None), skip=qdir
    )
    assert again.items == [] and quarantine(again.items, root=root, into=qdir) == []
    # the same name again later: the evidence already there is kept, the newcomer gets ".1"
    file, store = _signed(tmp_path)
    file.write_bytes(file.read_bytes() + b"tamper again")
    report = audit_folder(
        root, trust=store, checked=NO_REVOCATIONS, client=None, cache=HashCache(None), skip=qdir
    )
    assert quarantine(report.items, root=root, into=qdir) == [qdir / "ink.1.safetensors"]
    assert (qdir / "ink.1.safetensors.sig").is_file() and (qdir / "ink.safetensors.sig").is_file()


def test_audit_cli_exit_codes_pickle_unknown_modified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "cache"))
    TrustStore.empty().save(tmp_path / "trust.toml")
    monkeypatch.setenv("LORAREG_TRUST", str(tmp_path / "trust.toml"))
    monkeypatch.delenv("LORAREG_REGISTRY", raising=False)
    folder = tmp_path / "loras"
    write_adapter(folder / "plain.safetensors", "sd1-kohya")
    (folder / "old.pt").write_bytes(b"\x80\x02")
    code, out, err = run_main(monkeypatch, capsys, "audit", str(folder), "--json")
    assert code == 0, err
    assert {Path(f["path"]).name: f["status"] for f in json.loads(out)["files"]} == {
        "old.pt": "pickle",
        "plain.safetensors": "unknown",
    }
    sidecar = {"lorareg": {"ref": "a/b@1.0.0", "sha256": "0" * 64}}
    (folder / "plain.metadata.json").write_text(json.dumps(sidecar))
    code, out, _ = run_main(monkeypatch, capsys, "audit", str(folder), "--watch", "1", "--runs", "2")
    assert code == 1 and out.count("modified") == 2
    code, _, err = run_main(monkeypatch, capsys, "audit", str(tmp_path / "missing"))
    assert code == 3 and err.startswith("error:")


def test_import_cli_needs_namespace_and_key_to_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "cache"))
    code, _, err = run_main(monkeypatch, capsys, "import", str(tmp_path), "--publish")
    assert code == 2 and "--namespace" in err
    code, _, err = run_main(monkeypatch, capsys, "import", str(tmp_path), "--namespace", "Bad_NS")
    assert code == 2


# -- the manifest's origin and the unreviewed policy ---------------------------------------------------------


def _manifest(**extra: Any) -> Manifest:
    values = draft_manifest("acme/ink", "1.0.0", **extra)
    values.update(
        size=1,
        created="2026-01-01T00:00:00Z",
        digests={"sha256": "a" * 64, "autov3": "b" * 64},
        base_model={"family": "sdxl"},
        adapter={"format": "kohya", "type": "lora"},
    )
    return Manifest.from_json(values)


@pytest.mark.parametrize(
    ("origin", "fragment"),
    [
        ({"source": "ftp"}, "manifest.origin.source"),
        ({"source": "civitai", "sidecar_sha256": "xyz"}, "manifest.origin.sidecar_sha256"),
        ({"source": "local", "url": "javascript:alert(1)"}, "manifest.origin.url"),
        ({"source": "local", "extra": 1}, "manifest.origin"),
    ],
    ids=["unknown-source", "bad-digest", "script-url", "unknown-key"],
)
def test_a_bad_origin_is_refused_with_its_path(origin: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment.replace(".", r"\.")):
        _manifest(origin=origin)


def test_origin_round_trips_through_canonical_json() -> None:
    m = _manifest(origin={"source": "civitai", "model_id": "777", "url": "https://civitai.com/models/777"})
    assert Manifest.from_json_bytes(m.to_canonical_json()) == m


def test_only_imports_with_unknowns_are_unreviewed_and_refused_by_default() -> None:
    imported = _manifest(origin={"source": "local"}, consent={"subject": "unknown", "status": "unknown"})
    hand_written = _manifest(consent={"subject": "style", "status": "unknown"})
    reviewed = _manifest(origin={"source": "local"}, consent={"subject": "style", "status": "not-required"})
    assert any("unreviewed" in r for r in Policy().check(imported))
    assert Policy().check(hand_written) == [] and Policy().check(reviewed) == []
    assert Policy(allow_unreviewed=True).check(imported) == []
