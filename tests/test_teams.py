"""Namespaces as teams: an admin gives a team its space, members act there with their own tokens and only
there, removal takes effect at once, and the catalogue filters by namespace."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from lorareg.errors import ForbiddenError, InputError, NotFoundError
from lorareg.registry import Registry, SearchQuery, Teams
from lorareg.registry.service import open_registry
from lorareg.signing.keys import generate
from tests.fixtures.registry import Publisher, build_adapter
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main


def _team(registry: Registry) -> Teams:
    registry.add_user("alice", role="publisher")
    registry.add_user("bob", role="publisher")
    teams = Teams(registry)
    teams.add_namespace("vfx", owners=["alice"])
    teams.add_member("vfx", "bob", role="publisher")
    return teams


def _publish(registry: Registry, secret: str, name: str, key) -> None:  # type: ignore[no-untyped-def]
    principal = registry.authenticate(secret)
    built = build_adapter(key, name, "1.0.0")
    registry.upload_blob(built.sha256, built.chunks(), principal=principal)
    registry.publish(name, built.bundle, principal=principal)


def test_member_token_publishes_in_its_team_namespace_only(registry: Registry, publisher: Publisher) -> None:
    _team(registry)
    key = generate()
    registry.add_publisher("vfx", key.public_key.pem.decode())
    bob = registry.create_token(role="publisher", user="bob").secret  # no --namespace: acts in bob's teams
    _publish(registry, bob, "vfx/smoke", key)
    assert registry.resolve("vfx/smoke").published_by == registry.authenticate(bob).token_id
    with pytest.raises(ForbiddenError, match="namespace"):
        _publish(registry, bob, "acme/intruder", publisher.key)


def test_removed_member_loses_the_namespace_at_once(registry: Registry) -> None:
    teams = _team(registry)
    bob = registry.create_token(role="publisher", user="bob").secret
    assert registry.authenticate(bob).allows("publish", namespace="vfx")
    teams.remove_member("vfx", "bob")
    assert not registry.authenticate(bob).allows("publish", namespace="vfx")


def test_team_token_needs_a_team(registry: Registry) -> None:
    registry.add_user("carol", role="publisher")
    with pytest.raises(InputError, match="--namespace"):
        registry.create_token(role="publisher", user="carol")


def test_owners_are_listed_first_and_must_be_users(registry: Registry) -> None:
    teams = _team(registry)
    assert [(m.user, m.role) for m in teams.members("vfx")] == [("alice", "owner"), ("bob", "publisher")]
    with pytest.raises(InputError, match="does not exist"):
        teams.add_namespace("sfx", owners=["nobody"])
    with pytest.raises(InputError, match="not one of"):
        teams.add_member("vfx", "bob", role="emperor")
    with pytest.raises(NotFoundError):
        teams.add_member("nowhere", "bob", role="publisher")
    with pytest.raises(InputError):
        teams.add_namespace("Bad Name", owners=["alice"])


def test_catalogue_filters_by_namespace(registry: Registry, publisher: Publisher) -> None:
    _team(registry)
    key = generate()
    registry.add_publisher("vfx", key.public_key.pem.decode())
    publisher.publish("pixel-art", "1.0.0")
    _publish(registry, registry.create_token(role="publisher", user="alice").secret, "vfx/smoke", key)
    assert [i.name for i in registry.search(SearchQuery(namespace="vfx")).items] == ["vfx/smoke"]
    assert [i.name for i in registry.search(SearchQuery(namespace="acme")).items] == ["acme/pixel-art"]
    assert registry.search(SearchQuery(namespace="vf")).items == ()  # a prefix of a namespace is not it


def test_admin_namespace_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    registry = open_registry(data)
    registry.add_user("alice", role="publisher")
    registry.add_user("bob", role="publisher")
    code, out, err = run_main(
        monkeypatch, capsys, "admin", "namespace", "add", "vfx", "--owner", "alice", "--data", data, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["members"][0] == {
        **json.loads(out)["members"][0],
        "user": "alice",
        "role": "owner",
    }
    code, _, err = run_main(
        monkeypatch, capsys, "admin", "namespace", "member", "add", "vfx", "bob", "--data", data
    )
    assert code == 0, err
    code, out, _ = run_main(
        monkeypatch, capsys, "admin", "namespace", "member", "list", "vfx", "--data", data
    )
    assert out.splitlines() == ["vfx  alice  owner", "vfx  bob  publisher"]
    code, _, err = run_main(
        monkeypatch, capsys, "admin", "namespace", "add", "sfx", "--owner", "ghost", "--data", data
    )
    assert code == 2 and err.startswith("error: ") and "ghost" in err
    code, _, err = run_main(
        monkeypatch, capsys, "admin", "namespace", "member", "remove", "vfx", "carol", "--data", data
    )
    assert code == 3 and err.startswith("error: ")


def test_api_catalogue_and_page_filter_by_namespace(live_server: LiveServer) -> None:
    acme = live_server.add_publisher("acme")
    other = live_server.add_publisher("other")
    for token, name in ((acme, "acme/pixel-art"), (other, "other/thing")):
        path, bundle = live_server.adapter(name, "1.0.0")
        with live_server.client(token) as client:
            client.publish(path, bundle)
    items = httpx.get(f"{live_server.url}/api/v1/adapters", params={"namespace": "other"}).json()["items"]
    assert [i["name"] for i in items] == ["other/thing"]
    page = httpx.get(f"{live_server.url}/", params={"namespace": "other"}).text
    assert "other/thing" in page and "acme/pixel-art" not in page
