"""``lorareg log verify|watch`` against a live registry: an honest log passes, every lie is named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from lorareg.manifest.canonical import canonical_json
from lorareg.registry import Aliases
from lorareg.registry.db import Alias, TlogLeaf, Version
from lorareg.signing import merkle
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main


@pytest.fixture
def busy(live_server: LiveServer, tmp_path: Path) -> tuple[LiveServer, Path]:
    """Two adapters, a yank and a revocation in the log; a trust file with the registry key."""
    token = live_server.add_publisher("acme")
    for name, version in (("acme/ink", "1.0.0"), ("acme/ink", "1.1.0"), ("acme/fog", "2.0.0")):
        path, bundle = live_server.adapter(name, version)
        with live_server.client(token) as client:
            client.publish(path, bundle)
    with live_server.client(token) as client:
        client.yank("acme/ink@1.0.0")
    fog = live_server.registry.get_version("acme/fog", "2.0.0").sha256
    reviewer = live_server.registry.authenticate(live_server.token("reviewer"))
    live_server.registry.revoke(fog, reason="upheld takedown", principal=reviewer)
    trust_file = tmp_path / "trust.toml"
    live_server.trust()[0].save(trust_file)
    return live_server, trust_file


def _verify(monkeypatch, capsys, server: LiveServer, trust: Path, cache: Path) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("LORAREG_CACHE", str(cache))
    code, out, err = run_main(
        monkeypatch, capsys, "log", "verify", "--registry", server.url, "--trust", str(trust), "--json"
    )
    return code, json.loads(out) if out else {"error": err}


def test_honest_log_verifies_with_exit_0(busy, monkeypatch, capsys, tmp_path: Path) -> None:
    server, trust = busy
    code, report = _verify(monkeypatch, capsys, server, trust, tmp_path / "cache")
    assert code == 0, report
    assert report["ok"] and report["problems"] == []
    assert (report["entries"], report["versions"], report["revoked"]) == (5, 3, 1)


def test_version_served_without_a_log_entry_is_reported(busy, monkeypatch, capsys, tmp_path: Path) -> None:
    server, trust = busy
    with server.registry.db.write() as session:  # the operator rewrites the publish of 1.1.0 as another name
        leaf = session.exec(select(TlogLeaf).where(col(TlogLeaf.idx) == 1)).one()
        body = json.loads(bytes(leaf.body))
        body["version"] = "9.9.9"
        leaf.body = canonical_json(body)
        leaf.leaf_hash = merkle.leaf_hash(leaf.body)
        session.add(leaf)
    server.registry.log_tree.clear()
    code, report = _verify(monkeypatch, capsys, server, trust, tmp_path / "cache")
    assert code == 1
    assert "acme/ink@1.1.0 is served but has no entry in the log" in report["problems"]
    assert "acme/ink@9.9.9 is in the log but the registry does not serve it" in report["problems"]


def test_unlogged_yank_is_reported(busy, monkeypatch, capsys, tmp_path: Path) -> None:
    server, trust = busy
    with server.registry.db.write() as session:
        row = session.exec(select(Version).where(col(Version.version) == "1.1.0")).one()
        row.yanked = True
        session.add(row)
    code, report = _verify(monkeypatch, capsys, server, trust, tmp_path / "cache")
    assert code == 1
    assert report["problems"] == ["acme/ink@1.1.0: the log says active, the API serves it as yanked"]


def test_entries_that_do_not_hash_to_the_signed_root_are_reported(
    busy, monkeypatch, capsys, tmp_path: Path
) -> None:
    server, trust = busy
    code, _ = _verify(monkeypatch, capsys, server, trust, tmp_path / "cache")  # the tree is now cached
    with server.registry.db.write() as session:  # edited under a running server: it signs the old root
        leaf = session.exec(select(TlogLeaf).where(col(TlogLeaf.idx) == 0)).one()
        leaf.body = bytes(leaf.body).replace(b'"signers":[', b'"signers":["forged",')
        leaf.leaf_hash = merkle.leaf_hash(leaf.body)
        session.add(leaf)
    code, report = _verify(monkeypatch, capsys, server, trust, tmp_path / "cache")
    assert code == 1
    assert any("is not the checkpoint's root" in p for p in report["problems"])


def test_watch_keeps_checkpoints_and_exits_1_when_the_log_forks(
    busy, monkeypatch, capsys, tmp_path: Path
) -> None:
    server, trust = busy
    state = tmp_path / "state"
    args = (
        "log",
        "watch",
        "--registry",
        server.url,
        "--state",
        str(state),
        "--trust",
        str(trust),
        "--polls",
        "1",
    )
    code, out, _ = run_main(monkeypatch, capsys, *args)
    assert code == 0 and "5 entries" in out and "consistent" in out
    assert [p.name.rsplit("-", 1)[1] for p in (state / "checkpoints" / "history").iterdir()] == ["5.note"]
    with server.registry.db.write() as session:  # history rewritten, then the log grows past it
        leaf = session.exec(select(TlogLeaf).where(col(TlogLeaf.idx) == 3)).one()
        leaf.body = bytes(leaf.body).replace(b'"kind":"yank"', b'"kind":"unyank"')
        leaf.leaf_hash = merkle.leaf_hash(leaf.body)
        session.add(leaf)
    server.registry.log_tree.clear()
    with server.client(server.token("publisher", "acme")) as client:
        client.unyank("acme/ink@1.0.0")
    code, _, err = run_main(monkeypatch, capsys, *args)
    assert code == 1 and "split view: the registry's log of 6 entries" in err


def test_watch_with_no_registry_key_in_the_trust_file_is_bad_input(
    monkeypatch, capsys, tmp_path: Path
) -> None:
    trust = tmp_path / "trust.toml"
    trust.write_text("", encoding="utf-8")
    code, _, err = run_main(
        monkeypatch,
        capsys,
        "log",
        "watch",
        "--registry",
        "http://127.0.0.1:9",
        "--state",
        str(tmp_path),
        "--trust",
        str(trust),
    )
    assert code == 2 and "no registry key" in err


def test_alias_moves_replay_and_an_alias_served_off_the_log_is_reported(
    busy, monkeypatch, capsys, tmp_path: Path
) -> None:
    server, trust = busy
    admin = server.registry.authenticate(server.token("admin"))
    aliases = Aliases(server.registry)
    aliases.set("acme/ink", "prod", "1.1.0", principal=admin)
    aliases.set("acme/ink", "staging", "1.1.0", principal=admin)
    aliases.delete("acme/ink", "staging", principal=admin)
    code, report = _verify(monkeypatch, capsys, server, trust, tmp_path / "cache")
    assert code == 0, report
    with server.registry.db.write() as session:  # the operator points prod back without a logged move
        row = session.exec(select(Alias).where(col(Alias.alias) == "prod")).one()
        row.version, row.sha256 = "1.0.0", server.registry.get_version("acme/ink", "1.0.0").sha256
        session.add(row)
    code, report = _verify(monkeypatch, capsys, server, trust, tmp_path / "cache2")
    assert code == 1
    assert any("acme/ink@prod: the log says 1.1.0, the API serves 1.0.0" in p for p in report["problems"])
