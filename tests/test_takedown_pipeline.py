"""An upheld takedown reaches pipelines: the CLI forms scripts rely on, ``pull --verify`` refusing the
adapter even from its cache, and the two attacks on the revocation list itself (rollback and freeze)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lorareg.errors import VerificationError
from lorareg.signing.revocation import RevocationList, RevokedDigest, sign_revocation_list
from tests.fixtures.server import LiveServer

LORAREG = [sys.executable, "-m", "lorareg"]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LORAREG, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def published(live_server: LiveServer) -> tuple[LiveServer, str]:
    """``acme/ink@1.0.0`` published on a live server; returns the server and the blob's sha256."""
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", "1.0.0")
    with live_server.client(token) as client:
        sha256 = str(client.publish(path, bundle)["sha256"])
    return live_server, sha256


def test_takedown_cli_request_status_list_decide_then_pull_verify_is_refused(
    published: tuple[LiveServer, str], tmp_path: Path
) -> None:
    server, _ = published
    trust, _ = server.trust()
    trust_path = tmp_path / "trust.toml"
    trust.save(trust_path)
    env = {**os.environ, "LORAREG_REGISTRY": server.url, "LORAREG_CACHE": str(tmp_path / "cache")}
    env.pop("LORAREG_TOKEN", None)
    pulled = _run("pull", "acme/ink@1.0.0", "--verify", "--trust", str(trust_path), env=env)
    assert pulled.returncode == 0, pulled.stderr  # now in the local cache

    filed = _run(
        "takedown", "request", "acme/ink@1.0.0", "--reason", "style", "--claimant", "A. Painter",
        "--contact", "painter@example.org", "--details", "Trained on my portfolio.", "--good-faith", "--json",
        env=env,
    )  # fmt: skip
    assert filed.returncode == 0, filed.stderr
    tracking = json.loads(filed.stdout)["id"]
    assert list(json.loads(filed.stdout)) == ["id"]
    plain = _run(
        "takedown", "request", "acme/ink@1.0.0", "--reason", "other", "--claimant", "B",
        "--contact", "b@example.org", "--details", "x", "--good-faith", env=env,
    )  # fmt: skip
    assert plain.stdout.strip().startswith("td_")

    status = _run("takedown", "status", tracking, env=env)
    assert status.returncode == 0 and "pending" in status.stdout

    reviewer_env = {**env, "LORAREG_TOKEN": server.token("reviewer")}
    queue = _run("takedown", "list", "--status", "pending", "--json", env=reviewer_env)
    assert tracking in [item["id"] for item in json.loads(queue.stdout)["items"]]
    denied = _run("takedown", "list", env={**env, "LORAREG_TOKEN": server.token("publisher", "acme")})
    assert denied.returncode == 2 and denied.stderr.startswith("error: ")

    decided = _run("takedown", "decide", tracking, "--uphold", "--reason", "style copied", env=reviewer_env)
    assert decided.returncode == 0, decided.stderr
    assert "upheld" in _run("takedown", "status", tracking, env=env).stdout

    refused = _run("pull", "acme/ink@1.0.0", "--verify", "--trust", str(trust_path), env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "revoked" in refused.stderr


def test_decide_needs_exactly_one_decision(published: tuple[LiveServer, str]) -> None:
    server, _ = published
    env = {**os.environ, "LORAREG_REGISTRY": server.url, "LORAREG_TOKEN": server.token("reviewer")}
    both = _run("takedown", "decide", "td_" + "0" * 32, "--uphold", "--reject", "--reason", "x", env=env)
    assert both.returncode == 2 and "exactly one" in both.stderr


def test_revocation_list_rollback_is_refused(published: tuple[LiveServer, str], tmp_path: Path) -> None:
    server, _ = published
    trust, policy = server.trust()
    with server.client(cache_dir=tmp_path / "cache") as client:
        client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
        held = client.cache.held_revocation_version(client.registry_url)
        assert held is not None
        client.cache.remember_revocation_version(client.registry_url, held + 5)  # we saw a newer list
        with pytest.raises(VerificationError, match="rollback"):
            client.pull("acme/ink@1.0.0", trust=trust, policy=policy)


def test_frozen_revocation_list_is_refused(published: tuple[LiveServer, str], tmp_path: Path) -> None:
    """A mirror replays a list that was validly signed but expired two days ago (a freeze attack)."""
    server, sha256 = published
    trust, policy = server.trust()
    issued = datetime.now(UTC) - timedelta(days=3)
    stale = sign_revocation_list(
        RevocationList(1, issued, issued + timedelta(days=1), (RevokedDigest("0" * 64, "old", issued),)),
        server.registry.key,
    )
    transport = _ReplayRevocations(stale)
    with server.client(cache_dir=tmp_path / "cache") as honest:
        honest.pull("acme/ink@1.0.0", trust=trust, policy=policy)  # works against the live list
    from lorareg.client import Client

    with Client(server.url, cache_dir=tmp_path / "cache", transport=transport) as frozen:
        with pytest.raises(VerificationError, match="freeze"):
            frozen.pull("acme/ink@1.0.0", trust=trust, policy=policy)
    assert transport.replayed


class _ReplayRevocations(httpx.BaseTransport):
    """Passes requests to the real server, but answers the revocation list with old bytes."""

    def __init__(self, envelope: bytes) -> None:
        self.envelope = envelope
        self.replayed = 0
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/revocations":
            self.replayed += 1
            return httpx.Response(200, content=self.envelope, headers={"Content-Type": "application/json"})
        return self._real.handle_request(request)

    def close(self) -> None:
        self._real.close()
