"""Pipeline aliases (``ns/name@prod``): who may move them, how every path resolves them, and how a pull
refuses an alias it cannot trust (a forged move, a target yanked or revoked after the move)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from lorareg.client.aliases import checked_alias_target, split_alias
from lorareg.errors import ConflictError, ForbiddenError, InputError, NotFoundError, VerificationError
from lorareg.manifest.canonical import canonical_json
from lorareg.registry import Aliases, Registry
from lorareg.signing.alias_move import AliasMove, sign_alias_move, verify_alias_move
from lorareg.signing.keys import generate
from tests.fixtures.registry import Publisher, make_publisher
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main


# -- the service (SQLite and PostgreSQL) ------------------------------------------------------------------
def test_alias_resolves_everywhere_a_version_does(registry: Registry, publisher: Publisher) -> None:
    publisher.publish("pixel-art", "1.0.0")
    second = publisher.publish("pixel-art", "2.1.0")
    Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=publisher.principal)
    assert registry.resolve("acme/pixel-art@prod").version == "1.0.0"
    assert registry.get_version("acme/pixel-art", "prod").version == "1.0.0"
    moved = Aliases(registry).set("acme/pixel-art", "prod", "2.1.0", principal=publisher.principal)
    assert moved.sha256 == second.sha256
    assert registry.resolve("acme/pixel-art@prod").version == "2.1.0"
    assert [a.alias for a in Aliases(registry).of("acme/pixel-art")] == ["prod"]


def test_alias_move_is_signed_and_logged_with_who_moved_it(registry: Registry, publisher: Publisher) -> None:
    publisher.publish("pixel-art", "1.0.0")
    record = Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=publisher.principal)
    move = verify_alias_move(
        record.envelope,
        [registry.key.public_key],
        name="acme/pixel-art",
        alias="prod",
        version="1.0.0",
        sha256=record.sha256,
    )
    assert move.moved_by == f"token:{publisher.principal.token_id}" and move.previous is None
    leaf = registry.log_entries(record.tlog_index, record.tlog_index + 1)[0]
    body = json.loads(leaf.body)
    assert leaf.kind == "alias" and body["alias"] == "prod" and body["version"] == "1.0.0"
    assert body["moved_by"] == move.moved_by


def test_moving_to_the_same_version_adds_no_log_entry(registry: Registry, publisher: Publisher) -> None:
    publisher.publish("pixel-art", "1.0.0")
    first = Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=publisher.principal)
    again = Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=publisher.principal)
    assert again.tlog_index == first.tlog_index


def test_deleting_an_alias_is_logged_and_it_stops_resolving(registry: Registry, publisher: Publisher) -> None:
    publisher.publish("pixel-art", "1.0.0")
    Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=publisher.principal)
    gone = Aliases(registry).delete("acme/pixel-art", "prod", principal=publisher.principal)
    assert gone.version == "1.0.0"
    last = registry.log_entries(0, 1000)[-1]
    assert last.kind == "alias" and json.loads(last.body)["version"] is None
    with pytest.raises(NotFoundError, match="no alias 'prod'"):
        registry.resolve("acme/pixel-art@prod")


def test_publisher_of_another_namespace_cannot_move_an_alias(
    registry: Registry, publisher: Publisher
) -> None:
    publisher.publish("pixel-art", "1.0.0")
    other = make_publisher(registry, "evil")
    with pytest.raises(ForbiddenError):
        Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=other.principal)
    reviewer = registry.authenticate(registry.create_token(role="reviewer").secret)
    with pytest.raises(ForbiddenError):
        Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=reviewer)


def test_admin_may_move_any_namespaces_alias(registry: Registry, publisher: Publisher) -> None:
    publisher.publish("pixel-art", "1.0.0")
    admin = registry.authenticate(registry.create_token(role="admin").secret)
    assert Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=admin).version == "1.0.0"


def test_alias_cannot_point_at_a_yanked_version(registry: Registry, publisher: Publisher) -> None:
    publisher.publish("pixel-art", "1.0.0")
    registry.yank("acme/pixel-art", "1.0.0", principal=publisher.principal)
    with pytest.raises(ConflictError, match="yanked"):
        Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=publisher.principal)


@pytest.mark.parametrize(
    "alias",
    ["1.0.0", "Prod", "-prod", "prod_1", "p" * 64, "", "prod/x", "pröd"],
    ids=["version", "upper", "leading-dash", "underscore", "too-long", "empty", "slash", "non-ascii"],
)
def test_malformed_alias_is_refused(registry: Registry, publisher: Publisher, alias: str) -> None:
    publisher.publish("pixel-art", "1.0.0")
    with pytest.raises(InputError, match="not an alias"):
        Aliases(registry).set("acme/pixel-art", alias, "1.0.0", principal=publisher.principal)


def test_alias_at_a_missing_version_or_adapter_is_not_found(registry: Registry, publisher: Publisher) -> None:
    publisher.publish("pixel-art", "1.0.0")
    with pytest.raises(NotFoundError):
        Aliases(registry).set("acme/pixel-art", "prod", "9.9.9", principal=publisher.principal)
    with pytest.raises(NotFoundError):
        Aliases(registry).of("acme/nothing")


# -- the pull's checks on an alias (pure) ------------------------------------------------------------------
def _answer(version: str = "2.1.0", sha256: str = "a" * 64, status: str = "active", key=None) -> dict:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    key = key or generate()
    move = AliasMove("acme/x", "prod", version, sha256, None, "alice", datetime.now(UTC))
    envelope = json.loads(sign_alias_move(move, key))
    target = {"name": "acme/x", "version": version, "sha256": sha256, "status": status}
    return {"alias": "prod", "version": version, "envelope": envelope, "target": target, "_key": key}


def test_alias_move_signed_by_an_untrusted_key_is_refused() -> None:
    answer = _answer()
    with pytest.raises(VerificationError, match="bad signature"):
        checked_alias_target(answer, [generate().public_key], name="acme/x", alias="prod")


def test_registry_serving_another_version_than_the_signed_move_is_refused() -> None:
    answer = _answer()
    answer["target"] = {**answer["target"], "version": "6.6.6"}  # a registry swapping the target
    with pytest.raises(VerificationError, match="alias mismatch"):
        checked_alias_target(answer, [answer["_key"].public_key], name="acme/x", alias="prod")


def test_tampered_alias_move_payload_is_refused() -> None:
    answer = _answer()
    answer["envelope"]["payload"] = answer["envelope"]["payload"][:-4] + "AAA="
    with pytest.raises(VerificationError, match="bad signature"):
        checked_alias_target(answer, [answer["_key"].public_key], name="acme/x", alias="prod")


@pytest.mark.parametrize("status", ["yanked", "revoked"])
def test_alias_pointing_at_withdrawn_version_is_refused(status: str) -> None:
    answer = _answer(status=status)
    with pytest.raises(VerificationError, match=f"which is {status}"):
        checked_alias_target(answer, [answer["_key"].public_key], name="acme/x", alias="prod")


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("acme/x@prod", ("acme/x", "prod")),
        ("acme/x@1.0.0", None),
        ("acme/x", None),
        ("a" * 64, None),
        ("acme/x@staging-eu", ("acme/x", "staging-eu")),
    ],
)
def test_only_ns_name_at_alias_reads_as_an_alias(ref: str, expected: tuple[str, str] | None) -> None:
    assert split_alias(ref) == expected


# -- end to end: HTTP, CLI, web page ----------------------------------------------------------------------
def _publish(live_server: LiveServer, token: str, version: str) -> dict:  # type: ignore[type-arg]
    path, bundle = live_server.adapter("acme/pixel-art", version)
    with live_server.client(token) as client:
        return client.publish(path, bundle)


def test_alias_commands_and_verified_pull_print_the_version_it_gave(
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = live_server.add_publisher("acme")
    _publish(live_server, token, "1.0.0")
    published = _publish(live_server, token, "2.1.0")
    trust, _ = live_server.trust()
    trust.save(tmp_path / "trust.toml")
    monkeypatch.setenv("LORAREG_REGISTRY", live_server.url)
    monkeypatch.setenv("LORAREG_TOKEN", token)
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "cache"))

    code, out, err = run_main(
        monkeypatch, capsys, "alias", "set", "acme/pixel-art", "prod", "2.1.0", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["version"] == "2.1.0"
    code, out, _ = run_main(monkeypatch, capsys, "alias", "list", "acme/pixel-art")
    assert code == 0 and out.startswith("acme/pixel-art@prod -> 2.1.0")

    code, out, err = run_main(
        monkeypatch,
        capsys,
        "pull",
        "acme/pixel-art@prod",
        "--verify",
        "--trust",
        str(tmp_path / "trust.toml"),
    )
    assert code == 0, err
    assert f"acme/pixel-art@prod gave acme/pixel-art@2.1.0 (sha256:{published['sha256']})" in err
    assert Path(out.strip()).is_file()

    code, _, err = run_main(monkeypatch, capsys, "alias", "set", "acme/pixel-art", "Prod!", "1.0.0")
    assert code == 2 and err.startswith("error: ") and "not an alias" in err
    code, out, _ = run_main(monkeypatch, capsys, "alias", "delete", "acme/pixel-art", "prod")
    assert code == 0 and "-> 2.1.0" in out
    code, _, err = run_main(
        monkeypatch, capsys, "pull", "acme/pixel-art@prod", "--trust", str(tmp_path / "trust.toml")
    )
    assert code == 3 and "no alias 'prod'" in err


def test_pull_refuses_an_alias_whose_version_was_yanked_or_revoked(
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = live_server.add_publisher("acme")
    published = _publish(live_server, token, "1.0.0")
    _publish(live_server, token, "2.0.0")
    trust, _ = live_server.trust()
    trust.save(tmp_path / "trust.toml")
    monkeypatch.setenv("LORAREG_REGISTRY", live_server.url)
    monkeypatch.setenv("LORAREG_TOKEN", token)
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "cache"))
    assert run_main(monkeypatch, capsys, "alias", "set", "acme/pixel-art", "prod", "1.0.0")[0] == 0
    assert run_main(monkeypatch, capsys, "alias", "set", "acme/pixel-art", "staging", "2.0.0")[0] == 0

    assert run_main(monkeypatch, capsys, "yank", "acme/pixel-art@2.0.0")[0] == 0
    code, _, err = run_main(
        monkeypatch, capsys, "pull", "acme/pixel-art@staging", "--trust", str(tmp_path / "trust.toml")
    )
    assert code == 1 and "points at 2.0.0, which is yanked" in err

    admin = live_server.registry.authenticate(live_server.token("admin"))
    live_server.registry.revoke(published["sha256"], reason="takedown upheld", principal=admin)
    code, _, err = run_main(
        monkeypatch, capsys, "pull", "acme/pixel-art@prod", "--trust", str(tmp_path / "trust.toml")
    )
    assert code == 1 and "points at 1.0.0, which is revoked" in err


def test_api_resolve_and_alias_routes(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    _publish(live_server, token, "1.0.0")
    base = f"{live_server.url}/api/v1/adapters/acme/pixel-art/aliases"
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.put(f"{base}/prod", json={"version": "1.0.0"}).status_code == 401
    form = httpx.put(f"{base}/prod", content=b"version=1.0.0", headers={**auth, "Content-Type": "text/plain"})
    assert form.status_code == 403
    assert httpx.put(f"{base}/prod", json={"version": "1.0.0"}, headers=auth).status_code == 200
    resolved = httpx.get(f"{live_server.url}/api/v1/resolve", params={"ref": "acme/pixel-art@prod"}).json()
    assert resolved["version"] == "1.0.0"
    detail = httpx.get(f"{live_server.url}/api/v1/adapters/acme/pixel-art/versions/prod").json()
    assert detail["version"] == "1.0.0"
    one = httpx.get(f"{base}/prod").json()
    assert one["target"]["version"] == "1.0.0"
    verify_alias_move(
        canonical_json(one["envelope"]),
        [live_server.registry.key.public_key],
        name="acme/pixel-art",
        alias="prod",
        version="1.0.0",
        sha256=one["sha256"],
    )
    other = live_server.add_publisher("evil")
    refused = httpx.put(
        f"{base}/prod", json={"version": "1.0.0"}, headers={"Authorization": f"Bearer {other}"}
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"]


def test_adapter_page_lists_aliases_and_alias_urls_work(live_server: LiveServer) -> None:
    token = live_server.add_publisher("acme")
    _publish(live_server, token, "1.0.0")
    with live_server.client(token) as client:
        client.set_alias("acme/pixel-art", "prod", "1.0.0")
    page = httpx.get(f"{live_server.url}/adapters/acme/pixel-art")
    assert page.status_code == 200
    assert "<code>@prod</code>" in page.text and "Aliases" in page.text
    by_alias = httpx.get(f"{live_server.url}/adapters/acme/pixel-art/prod")
    assert by_alias.status_code == 200 and "acme/pixel-art@1.0.0" in by_alias.text
