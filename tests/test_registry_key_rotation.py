"""Registry key rotation: clients follow a chain signed by the key they trust, and refuse anything else."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lorareg.errors import VerificationError
from lorareg.registry.db import RegistryKeySet
from lorareg.signing.keys import generate, load_private_key
from lorareg.signing.keyset import KeySet, follow_chain, sign_keyset
from lorareg.signing.trust import load_trust
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main


@pytest.fixture
def studio(live_server: LiveServer, tmp_path: Path, monkeypatch) -> tuple[LiveServer, Path]:
    """acme/ink@1.0.0 published and pulled once through the CLI; returns (server, trust file)."""
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", "1.0.0")
    with live_server.client(token) as client:
        client.publish(path, bundle)
    trust_file = tmp_path / "trust.toml"
    live_server.trust()[0].save(trust_file)
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "cache"))
    return live_server, trust_file


def _pull(monkeypatch, capsys, server: LiveServer, trust: Path, ref: str) -> tuple[int, str, str]:
    return run_main(monkeypatch, capsys, "pull", ref, "--trust", str(trust), "--registry", server.url)


def _publish_v2(server: LiveServer) -> None:
    path, bundle = server.adapter("acme/ink", "2.0.0")
    with server.client(server.token("publisher", "acme")) as client:
        client.publish(path, bundle)


def test_client_trusting_the_old_key_follows_the_chain_and_says_so(studio, monkeypatch, capsys) -> None:
    server, trust = studio
    assert _pull(monkeypatch, capsys, server, trust, "acme/ink@1.0.0")[0] == 0
    old = server.registry.key.key_id
    server.registry.rotate_key(server.data_dir / "registry.key", password=None)  # as a restart would load
    _publish_v2(server)  # countersigned, and checkpoints signed, by the new key only
    code, _, err = _pull(monkeypatch, capsys, server, trust, "acme/ink@2.0.0")
    assert code == 0, err
    assert f"trust: registry key rotated: now trusting {server.registry.key.key_id[:16]}" in err
    registry_keys = {k.key_id for k in load_trust(trust).registry_keys()}
    assert registry_keys == {old, server.registry.key.key_id}
    code, _, err = _pull(monkeypatch, capsys, server, trust, "acme/ink@1.0.0")  # countersigned by the old key
    assert code == 0 and "rotated" not in err


def test_keyset_document_signed_only_by_the_new_key_is_refused(studio, monkeypatch, capsys) -> None:
    server, trust = studio
    old, thief = server.registry.key, generate()
    forged = sign_keyset(KeySet(1, (thief.public_key,), (old.key_id,), datetime.now(UTC)), [thief])
    with server.registry.db.write() as session:
        session.add(RegistryKeySet(version=1, envelope=forged, created=datetime.now(UTC)))
    server.registry.key = thief
    code, _, err = _pull(monkeypatch, capsys, server, trust, "acme/ink@1.0.0")
    assert (
        code == 1 and "key-set document version 1 is not signed by a registry key this client trusts" in err
    )
    assert {k.key_id for k in load_trust(trust).registry_keys()} == {old.key_id}


def test_new_registry_key_without_a_chain_is_refused(studio, monkeypatch, capsys) -> None:
    server, trust = studio
    server.registry.key = generate()
    code, _, err = _pull(monkeypatch, capsys, server, trust, "acme/ink@1.0.0")
    assert (
        code == 1 and "which no key-set document signed by a registry key this client trusts announces" in err
    )


def test_checkpoint_signed_by_an_unknown_registry_key_is_refused_by_the_log_check(
    studio, tmp_path: Path
) -> None:
    server, _ = studio
    trust, policy = server.trust()
    server.registry.key = generate()  # the library's pull (no chain following) meets the new key at once
    with server.client(cache_dir=tmp_path / "lib") as client, pytest.raises(VerificationError):
        client.pull("acme/ink@1.0.0", trust=trust, policy=policy)


def test_admin_rotate_swaps_key_files_and_the_chain_links_old_to_new(
    monkeypatch, capsys, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert (
        run_main(monkeypatch, capsys, "admin", "token", "list", "--data", str(data))[0] == 0
    )  # creates the key
    before = load_private_key((data / "registry.key").read_bytes())
    code, out, err = run_main(monkeypatch, capsys, "admin", "registry-key", "rotate", "--data", str(data))
    assert code == 0, err
    after = load_private_key((data / "registry.key").read_bytes())
    assert f"{before.key_id} -> {after.key_id}" in out
    assert (data / f"registry.key.{before.key_id[:16]}.retired").is_file()
    from lorareg.registry import open_registry

    chain = open_registry(data).key_chain()
    assert [k.key_id for k, _ in follow_chain(chain, [before.public_key])] == [after.key_id]
    assert follow_chain(chain, [after.public_key]) == []  # a client that already trusts it: nothing to add


def test_keyset_chain_out_of_order_or_missing_the_new_keys_signature_is_refused() -> None:
    a, b, c = generate(), generate(), generate()
    now = datetime.now(UTC)
    ab = sign_keyset(KeySet(1, (b.public_key,), (a.key_id,), now), [a, b])
    bc = sign_keyset(KeySet(2, (c.public_key,), (b.key_id,), now), [b, c])
    assert [k.key_id for k, _ in follow_chain([ab, bc], [a.public_key])] == [b.key_id, c.key_id]
    with pytest.raises(VerificationError, match="out of order at version 1"):
        follow_chain([ab, ab, bc], [a.public_key])  # a replayed link
    with pytest.raises(
        VerificationError, match="version 2 is not signed by a registry key this client trusts"
    ):
        follow_chain([bc, ab], [a.public_key])  # a link before the one that makes its signer trusted
    unproven = sign_keyset(KeySet(1, (b.public_key,), (a.key_id,), now), [a])
    with pytest.raises(VerificationError, match="not signed by its new key"):
        follow_chain([unproven], [a.public_key])
