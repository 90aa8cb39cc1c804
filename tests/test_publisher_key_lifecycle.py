"""Publisher keys going out of service: rotation keeps history valid, compromise revokes from the cutoff."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lorareg.errors import ForbiddenError, VerificationError
from lorareg.signing.keys import generate
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main


def _publish(server: LiveServer, token: str, version: str, key=None) -> None:
    path, bundle = server.adapter("acme/ink", version, key=key)
    with server.client(token) as client:
        client.publish(path, bundle)


def _admin(monkeypatch, capsys, server: LiveServer, *args: str) -> tuple[int, str, str]:
    return run_main(monkeypatch, capsys, "admin", "publisher", *args, "--data", str(server.data_dir))


def test_signature_made_with_a_revoked_publisher_key_after_the_cutoff_is_refused(
    live_server: LiveServer, monkeypatch, capsys, tmp_path: Path
) -> None:
    token = live_server.add_publisher("acme")
    stolen = live_server.publisher_keys["acme"]
    _publish(live_server, token, "1.0.0")
    time.sleep(0.01)
    cutoff = datetime.now(UTC)
    time.sleep(0.01)
    _publish(live_server, token, "1.1.0")  # the thief's upload, after the key leaked
    code, out, err = _admin(
        monkeypatch, capsys, live_server, "revoke-key", "acme", stolen.key_id[:12],
        "--compromised-since", cutoff.isoformat().replace("+00:00", "Z"), "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["revoked"] == ["acme/ink@1.1.0"]
    trust, policy = live_server.trust()
    with live_server.client(cache_dir=tmp_path / "cache") as client:
        assert client.pull("acme/ink@1.0.0", trust=trust, policy=policy).is_file()  # logged before: valid
        with pytest.raises(VerificationError, match=r"revoked: .*\(publisher key compromised\)"):
            client.pull("acme/ink@1.1.0", trust=trust, policy=policy)
    with pytest.raises(ForbiddenError, match="was revoked \\(compromised\\) on .* can no longer publish"):
        _publish(live_server, token, "1.2.0")
    trust_file = tmp_path / "trust.toml"
    trust.save(trust_file)
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "monitor"))
    code, out, _ = run_main(
        monkeypatch,
        capsys,
        "log",
        "verify",
        "--registry",
        live_server.url,
        "--trust",
        str(trust_file),
        "--json",
    )
    assert code == 0 and json.loads(out)["revoked"] == 1  # the revocation is in the log, as the API says


def test_rotated_publisher_key_keeps_what_it_signed_valid(
    live_server: LiveServer, monkeypatch, capsys, tmp_path: Path
) -> None:
    token = live_server.add_publisher("acme")
    old = live_server.publisher_keys["acme"]
    _publish(live_server, token, "1.0.0")
    new = generate()
    live_server.add_publisher("acme", new)  # step 1: add the new key
    _publish(live_server, token, "2.0.0", key=new)  # step 2: publish with it
    code, _, err = _admin(monkeypatch, capsys, live_server, "retire-key", "acme", old.key_id)  # step 3
    assert code == 0, err
    with pytest.raises(ForbiddenError, match="was retired on"):
        _publish(live_server, token, "3.0.0", key=old)
    trust, policy = live_server.trust()
    trust = trust.with_key(old.public_key, label="acme (old)", role="publisher", namespace="acme")
    with live_server.client(cache_dir=tmp_path / "cache") as client:
        for ref in ("acme/ink@1.0.0", "acme/ink@2.0.0"):
            assert client.pull(ref, trust=trust, policy=policy).is_file()


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (("revoke-key", "acme", "KEY", "--compromised-since", "2026-05-01T00:00:00"), 2, "needs a time zone"),
        (("revoke-key", "acme", "KEY", "--compromised-since", "last tuesday"), 2, "not an ISO 8601 time"),
        (
            ("revoke-key", "acme", "00000000", "--compromised-since", "2026-05-01T00:00:00Z"),
            3,
            "no publisher key",
        ),
        (("retire-key", "acme", "abc"), 2, "too short"),
    ],
    ids=["naive-time", "not-a-time", "unknown-key", "short-prefix"],
)
def test_bad_key_revocation_is_one_line_with_the_right_exit_code(
    live_server: LiveServer, monkeypatch, capsys, args: tuple[str, ...], exit_code: int, message: str
) -> None:
    live_server.add_publisher("acme")
    keyid = live_server.publisher_keys["acme"].key_id
    code, _, err = _admin(monkeypatch, capsys, live_server, *(keyid[:16] if a == "KEY" else a for a in args))
    assert code == exit_code and message in err and len(err.strip().splitlines()) == 1
