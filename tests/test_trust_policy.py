"""The trust file and the studio's policy: strict parsing, atomic writes, and every policy reason."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from lorareg.errors import ConflictError, InputError, NotFoundError
from lorareg.manifest import Manifest
from lorareg.signing.keys import PublicKey, generate
from lorareg.signing.policy import Policy, format_duration, parse_duration
from lorareg.signing.trust import TrustStore, default_trust_path, load_trust, parse_registry_keys
from tests.fixtures.keys import FOREIGN_KEY_TYPES, foreign_key_pems
from tests.test_manifest import complete_example


def _manifest(
    *,
    subject: str = "style",
    status: str = "not-required",
    licence: str = "CreativeML-OpenRAIL-M",
    commercial: bool = True,
) -> Manifest:
    manifest = complete_example()
    consent = dataclasses.replace(manifest.consent, subject=subject, status=status)
    license_ = dataclasses.replace(manifest.license, id=licence, commercial_use=commercial)
    return dataclasses.replace(manifest, consent=consent, license=license_)


@pytest.fixture
def publisher() -> PublicKey:
    return generate().public_key


@pytest.fixture
def store(publisher: PublicKey) -> TrustStore:
    registry = generate().public_key
    return (
        TrustStore.empty()
        .with_key(publisher, label="Acme Studio", role="publisher", namespace="acme")
        .with_key(registry, label="https://registry.example", role="registry", namespace=None)
    )


# ----- policy reasons -----


def test_default_policy_refuses_likeness_without_obtained_consent() -> None:
    for status in ("unknown", "not-required", "public-domain"):
        reasons = Policy().check(_manifest(subject="likeness", status=status))
        assert len(reasons) == 1 and "likeness adapter without obtained consent" in reasons[0]
        assert status in reasons[0]


def test_likeness_with_obtained_consent_passes_the_default_policy() -> None:
    assert Policy().check(_manifest(subject="likeness", status="obtained")) == []


def test_studio_may_switch_the_likeness_rule_off() -> None:
    policy = Policy(likeness_requires_consent=False)
    assert policy.check(_manifest(subject="likeness", status="unknown")) == []


def test_licence_outside_the_allow_list_is_refused() -> None:
    policy = Policy(allowed_licenses=("MIT", "Apache-2.0"))
    reasons = policy.check(_manifest(licence="CreativeML-OpenRAIL-M"))
    assert reasons == [
        "licence CreativeML-OpenRAIL-M is not allowed by policy (allowed_licenses: MIT, Apache-2.0)"
    ]
    assert policy.check(_manifest(licence="apache-2.0")) == []  # SPDX ids match case-insensitively


def test_commercial_use_required_refuses_a_non_commercial_licence() -> None:
    policy = Policy(require_commercial_use=True)
    reasons = policy.check(_manifest(commercial=False))
    assert len(reasons) == 1 and "does not allow commercial use" in reasons[0]
    assert policy.check(_manifest(commercial=True)) == []


def test_every_policy_reason_is_reported_together() -> None:
    policy = Policy(allowed_licenses=("MIT",), require_commercial_use=True)
    reasons = policy.check(_manifest(subject="likeness", status="unknown", commercial=False))
    assert len(reasons) == 3


def test_stacking_limits_warn_by_default_and_refuse_when_set() -> None:
    default = Policy().check_stack([0.8, 0.8, 1.2])
    assert default.reasons == [] and len(default.warnings) == 2  # three adapters > 2, weight 1.2 > 1.0
    strict = Policy(max_adapters=2, max_weight=1.0).check_stack([0.8, 0.8, -1.2])
    assert len(strict.reasons) == 2 and strict.warnings == []
    assert Policy(max_adapters=3).check_stack([0.5, 0.5, 0.5]) == Policy().check_stack([0.5, 0.5])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
    ],
)
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


# ----- trust file parsing -----


def test_trust_file_round_trips_keys_and_policy(tmp_path: Path, store: TrustStore) -> None:
    policy = Policy(allowed_licenses=("MIT",), max_weight=0.9, max_revocation_age=timedelta(days=7))
    store = dataclasses.replace(store, policy=policy)
    store.save(tmp_path / "trust.toml")
    again = load_trust(tmp_path / "trust.toml")
    assert again == store
    assert [k.role for k in again.keys()] == ["publisher", "registry"]
    assert len(again.registry_keys()) == 1


def test_missing_trust_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="lorareg trust add KEY.pub --role publisher --namespace acme"):
        load_trust(tmp_path / "nope.toml")


def test_trust_env_variable_overrides_the_default_path() -> None:
    assert default_trust_path({"LORAREG_TRUST": "/etc/studio/trust.toml"}) == Path("/etc/studio/trust.toml")
    assert default_trust_path({"HOME": "/home/x"}).name == "trust.toml"


def test_empty_trust_file_has_the_secure_default_policy() -> None:
    store = TrustStore.from_toml("")
    assert store.keys() == () and store.policy == Policy()
    assert store.policy.likeness_requires_consent and store.policy.require_lorareg_manifest


def _key_table(public: PublicKey, **fields: Any) -> str:
    entry = {
        "keyid": public.key_id,
        "label": "Acme",
        "role": "publisher",
        "namespace": "acme",
        "public_key": public.pem.decode(),
    } | fields
    lines = [f"{k} = {json.dumps(v)}" for k, v in entry.items() if v is not None]
    return "[[keys]]\n" + "\n".join(lines) + "\n"


HOSTILE_TRUST = [
    pytest.param(
        lambda k: "[policy]\nrequire_signature = true\n",
        "trust.policy.require_signature: unknown field",
        id="unknown-policy-key",
    ),
    pytest.param(
        lambda k: "[policy]\nallowed_licenses = []\n", 'expected "any" or a non-empty list', id="empty-allow"
    ),
    pytest.param(
        lambda k: '[policy]\nallowed_licenses = "all"\n', "trust.policy.allowed_licenses", id="all-not-any"
    ),
    pytest.param(
        lambda k: '[policy]\nmax_weight = "1.0"\n',
        "trust.policy.max_weight: expected a number",
        id="weight-as-text",
    ),
    pytest.param(lambda k: "[policy]\nmax_adapters = 0\n", "trust.policy.max_adapters", id="zero-adapters"),
    pytest.param(
        lambda k: '[policy]\nmax_revocation_age = "7 days"\n',
        "trust.policy.max_revocation_age",
        id="bad-duration",
    ),
    pytest.param(
        lambda k: '[policy]\nlikeness_requires_consent = "no"\n', "expected true/false", id="bool-text"
    ),
    pytest.param(lambda k: "owner = 1\n", "trust.owner: unknown field", id="unknown-top-level-key"),
    pytest.param(
        lambda k: _key_table(k, keyid="0" * 64),
        r"trust.keys\[0\].keyid: the file says 0000",
        id="keyid-of-another-key",
    ),
    pytest.param(
        lambda k: _key_table(k, role="admin"), r"trust.keys\[0\].role: expected one of", id="bad-role"
    ),
    pytest.param(
        lambda k: _key_table(k, namespace=None),
        r"trust.keys\[0\].namespace: missing",
        id="publisher-without-namespace",
    ),
    pytest.param(
        lambda k: _key_table(k, role="registry"),
        "a registry key has no namespace",
        id="registry-with-namespace",
    ),
    pytest.param(lambda k: _key_table(k, namespace="Acme"), "lower-case", id="bad-namespace"),
    pytest.param(
        lambda k: _key_table(k, label="Acme\x1b]0;pwned\x07"),
        r"trust.keys\[0\].label: control character",
        id="terminal-escape-in-label",
    ),
    pytest.param(
        lambda k: _key_table(k, public_key="-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
        "not a PEM public key",
        id="garbage-pem",
    ),
    pytest.param(
        lambda k: _key_table(k, expires="2030-01-01"),
        r"trust.keys\[0\].expires: unknown field",
        id="unknown-key-field",
    ),
    pytest.param(lambda k: "[policy\n", "not valid TOML", id="bad-toml"),
]


@pytest.mark.parametrize(("make", "message"), HOSTILE_TRUST)
def test_hostile_trust_file_is_refused(make: Any, message: str, publisher: PublicKey) -> None:
    with pytest.raises(InputError, match=message):
        TrustStore.from_toml(make(publisher))


@pytest.mark.parametrize("kind", FOREIGN_KEY_TYPES)
def test_trust_file_refuses_keys_of_other_types(kind: str) -> None:
    _, public_pem = foreign_key_pems(kind)
    import hashlib

    text = _key_table(
        generate().public_key, keyid=hashlib.sha256(public_pem).hexdigest(), public_key=public_pem.decode()
    )
    with pytest.raises(InputError, match="P-256"):
        TrustStore.from_toml(text)


# ----- editing the store -----


def test_adding_a_key_keeps_the_policy_intact(tmp_path: Path, publisher: PublicKey) -> None:
    path = tmp_path / "trust.toml"
    path.write_text(
        '[policy]\nallowed_licenses = ["MIT"]\nrequire_registry_signature = true\nmax_adapters = 3\n'
    )
    before = load_trust(path).policy
    load_trust(path).with_key(publisher, label="Acme", role="publisher", namespace="acme").save(path)
    after = load_trust(path)
    assert after.policy == before and after.get(publisher.key_id) is not None
    assert not list(tmp_path.glob(".trust.toml.*"))  # no temp file left behind


def test_new_trust_file_is_private_to_its_owner(tmp_path: Path, store: TrustStore) -> None:
    path = tmp_path / "config" / "lorareg" / "trust.toml"
    store.save(path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_re_adding_the_same_key_is_a_no_op_and_a_new_role_conflicts(
    store: TrustStore, publisher: PublicKey
) -> None:
    assert store.with_key(publisher, label="again", role="publisher", namespace="acme") is store
    with pytest.raises(ConflictError, match="already trusted as publisher for namespace acme"):
        store.with_key(publisher, label="x", role="publisher", namespace="other")


def test_remove_by_unique_prefix(store: TrustStore, publisher: PublicKey) -> None:
    smaller = store.without_key(publisher.key_id[:10])
    assert smaller.get(publisher.key_id) is None and len(smaller.keys()) == 1
    with pytest.raises(NotFoundError):
        store.without_key("f" * 64 if not publisher.key_id.startswith("f") else "0" * 64)
    with pytest.raises(InputError, match="too short"):
        store.find("ab")


def test_publisher_key_for_any_namespace_cannot_be_saved(tmp_path: Path, publisher: PublicKey) -> None:
    store = TrustStore.empty().with_key(publisher, label="adhoc", role="publisher", namespace=None)
    with pytest.raises(InputError, match="has no namespace"):
        store.save(tmp_path / "trust.toml")
    assert not (tmp_path / "trust.toml").exists()


# ----- a registry's /api/v1/keys answer -----


def _answer(*entries: dict[str, Any]) -> bytes:
    return json.dumps({"keys": list(entries)}).encode()


def test_registry_keys_answer_parses(publisher: PublicKey) -> None:
    keys = parse_registry_keys(
        _answer(
            {
                "keyid": publisher.key_id,
                "public_key": publisher.pem.decode(),
                "role": "registry",
                "created": "2025-01-01",
            }
        )
    )
    assert [k.key_id for k in keys] == [publisher.key_id]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda k: b'{"keys": []}', "1 to 16 keys", id="no-keys"),
        pytest.param(lambda k: b"[]", "expected", id="not-an-object"),
        pytest.param(
            lambda k: _answer({"keyid": "0" * 64, "public_key": k.pem.decode(), "role": "registry"}),
            "is not the id of its key",
            id="keyid-mismatch",
        ),
        pytest.param(
            lambda k: _answer({"keyid": k.key_id, "public_key": k.pem.decode(), "role": "publisher"}),
            'expected "registry"',
            id="wrong-role",
        ),
        pytest.param(
            lambda k: _answer({"keyid": k.key_id, "role": "registry"}), "needs text fields", id="no-pem"
        ),
        pytest.param(lambda k: b'{"keys": [], "keys": []}', "duplicate JSON key", id="duplicate-keys"),
    ],
)
def test_hostile_registry_keys_answer_is_refused(make: Any, message: str, publisher: PublicKey) -> None:
    with pytest.raises(InputError, match=message):
        parse_registry_keys(make(publisher))
