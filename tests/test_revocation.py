"""The signed revocation list: attack stories in the style of TUF's timestamp tests."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from lorareg.errors import VerificationError
from lorareg.signing.keys import PrivateKey, generate
from lorareg.signing.revocation import (
    RevocationList,
    RevokedDigest,
    format_time,
    sign_revocation_list,
    verify_revocation_list,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
BAD = "ab" * 32


def _list(version: int, *, issued: datetime = T0, validity: timedelta = DAY) -> RevocationList:
    entry = RevokedDigest(BAD, "likeness without consent", issued)
    return RevocationList(version, issued, issued + validity, (entry,))


@pytest.fixture
def key() -> PrivateKey:
    return generate()


def _verify(envelope: bytes, key: PrivateKey, **kw: object) -> RevocationList:
    options: dict[str, object] = {"held_version": None, "now": T0 + timedelta(hours=1), "max_age": None}
    options.update(kw)
    return verify_revocation_list(envelope, [key.public_key], **options)  # type: ignore[arg-type]


def test_fresh_list_verifies_and_names_the_revoked_digest(key: PrivateKey) -> None:
    verified = _verify(sign_revocation_list(_list(3), key), key, held_version=3)
    assert verified.version == 3
    assert verified.reason_for(BAD) == "likeness without consent"
    assert verified.reason_for("cd" * 32) is None


def test_rollback_to_an_older_list_is_refused(key: PrivateKey) -> None:
    # rollback attack: replay version 4, from before the latest revocation, to a client that has seen 5
    with pytest.raises(VerificationError) as e:
        _verify(sign_revocation_list(_list(4), key), key, held_version=5)
    assert e.value.reasons[0].startswith("rollback")


def test_freeze_past_expiry_is_refused(key: PrivateKey) -> None:
    # freeze attack: keep serving the last list signed before a revocation, after it expired
    with pytest.raises(VerificationError) as e:
        _verify(sign_revocation_list(_list(5), key), key, held_version=5, now=T0 + DAY + timedelta(seconds=1))
    assert e.value.reasons[0].startswith("freeze")


def test_freeze_older_than_policy_max_age_is_refused(key: PrivateKey) -> None:
    envelope = sign_revocation_list(_list(5, validity=timedelta(days=30)), key)
    with pytest.raises(VerificationError) as e:
        _verify(envelope, key, now=T0 + timedelta(hours=7), max_age=timedelta(hours=6))
    assert e.value.reasons[0].startswith("freeze")


def test_rollback_and_freeze_are_both_reported(key: PrivateKey) -> None:
    with pytest.raises(VerificationError) as e:
        _verify(sign_revocation_list(_list(1), key), key, held_version=2, now=T0 + 2 * DAY)
    assert [r.split(":")[0] for r in e.value.reasons] == ["rollback", "freeze"]


def test_list_signed_by_another_key_is_refused(key: PrivateKey) -> None:
    with pytest.raises(VerificationError) as e:
        _verify(sign_revocation_list(_list(1), generate()), key)
    assert e.value.reasons[0].startswith("bad signature")


def _tamper(envelope: bytes, change: str) -> bytes:
    obj = json.loads(envelope)
    payload = json.loads(base64.b64decode(obj["payload"]))
    if change == "drop-entry":
        payload["revoked"] = []
    elif change == "extend-expiry":
        payload["expires"] = format_time(T0 + 365 * DAY)
    elif change == "bump-version":
        payload["version"] = 99
    obj["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    return json.dumps(obj).encode()


@pytest.mark.parametrize("change", ["drop-entry", "extend-expiry", "bump-version"])
def test_edited_payload_is_refused(key: PrivateKey, change: str) -> None:
    with pytest.raises(VerificationError) as e:
        _verify(_tamper(sign_revocation_list(_list(2), key), change), key)
    assert e.value.reasons[0].startswith("bad signature")


@pytest.mark.parametrize(
    "envelope",
    [b"", b"{}", b"not json", b'{"payload": "", "payloadType": "x", "signatures": []}'],
    ids=["empty", "empty-object", "not-json", "no-signatures"],
)
def test_malformed_envelope_is_refused(key: PrivateKey, envelope: bytes) -> None:
    with pytest.raises(VerificationError) as e:
        _verify(envelope, key)
    assert e.value.reasons[0].startswith("bad signature")


def test_payload_type_is_authenticated(key: PrivateKey) -> None:
    obj = json.loads(sign_revocation_list(_list(1), key))
    obj["payloadType"] = "application/vnd.in-toto+json"
    with pytest.raises(VerificationError):
        _verify(json.dumps(obj).encode(), key)
