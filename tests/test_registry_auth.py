"""Tokens, users, publishers and the registry key: what authenticates and what is refused."""

from __future__ import annotations

import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lorareg.errors import AuthError, ConflictError, ForbiddenError, InputError
from lorareg.registry.auth import parse_duration
from lorareg.registry.db import Token
from lorareg.registry.service import Registry, open_registry
from lorareg.signing.revocation import verify_revocation_list
from tests.fixtures.registry import Publisher


def test_token_authenticates_with_its_role_scopes_and_namespace(
    registry: Registry, publisher: Publisher
) -> None:
    principal = registry.authenticate(publisher.secret)
    assert (principal.role, principal.namespace) == ("publisher", "acme")
    assert principal.scopes == {"publish", "yank"}
    assert publisher.secret.startswith("lrg_")


def test_only_the_hash_of_a_token_is_stored(registry: Registry, publisher: Publisher) -> None:
    with registry.db.read() as s:
        row = s.get(Token, publisher.principal.token_id)
    assert row is not None and publisher.secret not in row.secret_sha256
    assert publisher.secret.split("_", 2)[2] not in (registry.db.engine.url.database or "")


def test_expired_token_is_refused(registry: Registry, publisher: Publisher) -> None:
    issued = registry.create_token(
        role="publisher", namespace="acme", expires=datetime.now(UTC) + timedelta(hours=1)
    )
    registry.authenticate(issued.secret)
    with pytest.raises(AuthError, match="expired"):
        registry.authenticate(issued.secret, now=datetime.now(UTC) + timedelta(hours=2))


def test_revoked_token_is_refused_at_once(registry: Registry, publisher: Publisher) -> None:
    registry.revoke_token(publisher.principal.token_id)
    with pytest.raises(AuthError, match="revoked"):
        registry.authenticate(publisher.secret)
    (listed,) = [t for t in registry.list_tokens() if t.token_id == publisher.principal.token_id]
    assert listed.revoked_at is not None


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "lrg_",
        "Bearer lrg_x",
        "lrg_000000000000_" + "A" * 43,
        "lrg_zzzzzzzzzzzz_" + "A" * 43,
        "x" * 10_000,
    ],
    ids=["empty", "prefix-only", "with-scheme", "unknown-id", "bad-id", "huge"],
)
def test_malformed_or_unknown_tokens_are_refused(registry: Registry, secret: str) -> None:
    with pytest.raises(AuthError):
        registry.authenticate(secret)


def test_right_id_with_wrong_secret_is_refused(registry: Registry, publisher: Publisher) -> None:
    forged = publisher.secret[:-4] + ("AAAA" if not publisher.secret.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthError, match="unknown token"):
        registry.authenticate(forged)


@pytest.mark.parametrize(
    ("role", "namespace", "scopes", "message"),
    [
        ("root", None, None, "unknown role"),
        ("publisher", None, None, "needs --namespace"),
        ("publisher", "nowhere", None, "not registered"),
        ("reviewer", None, ("publish",), "cannot hold"),
    ],
    ids=["unknown-role", "publisher-without-namespace", "unregistered-namespace", "scope-above-role"],
)
def test_bad_token_requests_are_refused(
    registry: Registry, role: str, namespace: str | None, scopes: tuple[str, ...] | None, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        registry.create_token(role=role, namespace=namespace, scopes=scopes)


def test_admin_token_acts_in_every_namespace(registry: Registry) -> None:
    admin = registry.authenticate(registry.create_token(role="admin").secret)
    assert admin.allows("publish", namespace="acme") and admin.allows("review")


def test_publisher_cannot_revoke(registry: Registry, publisher: Publisher) -> None:
    record = publisher.publish()
    with pytest.raises(ForbiddenError):
        registry.revoke(record.sha256, reason="mine", principal=publisher.principal)


def test_users_are_unique(registry: Registry) -> None:
    registry.add_user("ada", role="reviewer")
    with pytest.raises(ConflictError):
        registry.add_user("ada", role="admin")
    assert [(u.name, u.role) for u in registry.list_users()] == [("ada", "reviewer")]
    issued = registry.create_token(role="reviewer", user="ada")
    assert registry.authenticate(issued.secret).user == "ada"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "1y", "1.5d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InputError):
        parse_duration(text)


def test_registry_key_is_created_once_with_owner_only_mode(tmp_path: Path) -> None:
    first = open_registry(tmp_path / "d")
    mode = stat.S_IMODE((tmp_path / "d" / "registry.key").stat().st_mode)
    assert mode == 0o600
    assert open_registry(tmp_path / "d").key.key_id == first.key.key_id
    assert first.keys()[0]["keyid"] == first.key.key_id


def test_revocation_list_is_resigned_near_expiry(registry: Registry) -> None:
    now = datetime.now(UTC)
    first = registry.revocation_list(now=now)
    assert registry.revocation_list(now=now + timedelta(hours=1)) == first
    later = now + timedelta(hours=23, minutes=30)  # within an hour of expiry
    resigned = registry.revocation_list(now=later)
    keys = [registry.key.public_key]
    verified = verify_revocation_list(resigned, keys, held_version=1, now=later, max_age=None)
    assert verified.version == 2 and verified.expires == (later + timedelta(hours=24)).replace(microsecond=0)


def test_concurrent_publishes_of_one_version_give_one_winner(
    registry: Registry, publisher: Publisher
) -> None:
    builds = [publisher.build(version="3.0.0") for _ in range(4)]
    for built in builds:
        registry.upload_blob(built.sha256, built.chunks(), principal=publisher.principal)
    outcomes: list[str] = []
    barrier = threading.Barrier(len(builds))

    def attempt(bundle: bytes) -> None:
        barrier.wait()
        try:
            registry.publish("acme/pixel-art", bundle, principal=publisher.principal)
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")

    threads = [threading.Thread(target=attempt, args=(b.bundle,)) for b in builds]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    assert len(registry.get_adapter("acme/pixel-art").versions) == 1
    assert [e.kind for e in registry.log_entries(0, 100)] == ["publish"]


def test_concurrent_publishes_of_different_versions_all_land_in_the_log(
    registry: Registry, publisher: Publisher
) -> None:
    builds = [publisher.build(version=f"1.0.{i}") for i in range(6)]
    for built in builds:
        registry.upload_blob(built.sha256, built.chunks(), principal=publisher.principal)
    threads = [
        threading.Thread(
            target=registry.publish,
            args=("acme/pixel-art", b.bundle),
            kwargs={"principal": publisher.principal},
        )
        for b in builds
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    entries = registry.log_entries(0, 100)
    assert [e.index for e in entries] == list(range(6))
    head_size = len(entries)
    proof = registry.log_consistency(2, head_size)
    assert proof.second == head_size


def test_revoking_twice_changes_nothing(registry: Registry, publisher: Publisher) -> None:
    reviewer = registry.authenticate(registry.create_token(role="reviewer").secret)
    record = publisher.publish()
    registry.revoke(record.sha256, reason="first", principal=reviewer)
    before = registry.revocation_list()
    registry.revoke(record.sha256, reason="second", principal=reviewer)
    assert registry.revocation_list() == before
    assert registry.is_revoked(record.sha256) == "first"
    assert [e.kind for e in registry.log_entries(0, 10)] == ["publish", "revoke"]
