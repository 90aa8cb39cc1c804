"""Attack: ``X-Forwarded-For`` from loopback to dodge the takedown rate limit.

uvicorn believes forwarded headers from 127.0.0.1 by default, so anyone on the host could name a fresh
address per request. ``lorareg serve`` now believes them only from ``LORAREG_TRUSTED_PROXIES`` (default:
none). Both cases run against a real ``lorareg serve`` process.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from lorareg.errors import InputError
from lorareg.registry.takedown import RATE_LIMIT_REQUESTS
from lorareg.server.config import settings_from_env
from tests.fixtures.deployments import Deployment, ServeProcess
from tests.fixtures.registry import make_publisher


def _filing(server: ServeProcess, forwarded_for: str) -> int:
    answer = httpx.post(
        f"{server.url}/api/v1/takedowns",
        json={
            "ref": "acme/pixel-art@1.0.0",
            "reason": "other",
            "claimant": "x",
            "contact": "a@b.org",
            "details": "x",
            "good_faith": True,
        },
        headers={"x-forwarded-for": forwarded_for},
        timeout=30,
    )
    return answer.status_code


def _deployment(tmp_path: Path, name: str) -> Deployment:
    home = tmp_path / name
    deployment = Deployment("sqlite-files", home, f"sqlite:///{home / 'lorareg.db'}")
    home.mkdir()
    make_publisher(deployment.registry(), "acme").publish("pixel-art", "1.0.0")
    return deployment


def test_forwarded_for_from_an_untrusted_peer_does_not_reset_the_rate_limit(
    serve_process: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    server = serve_process(_deployment(tmp_path, "plain"))
    codes = [_filing(server, f"203.0.113.{i}") for i in range(RATE_LIMIT_REQUESTS + 1)]
    assert codes == [201] * RATE_LIMIT_REQUESTS + [429]


def test_forwarded_for_from_a_configured_proxy_names_the_client(
    serve_process: Callable[..., ServeProcess], tmp_path: Path
) -> None:
    server = serve_process(_deployment(tmp_path, "proxied"), env={"LORAREG_TRUSTED_PROXIES": "127.0.0.1"})
    assert [_filing(server, f"203.0.113.{i}") for i in range(RATE_LIMIT_REQUESTS + 1)] == [201] * (
        RATE_LIMIT_REQUESTS + 1
    )
    same = [_filing(server, "198.51.100.7") for _ in range(RATE_LIMIT_REQUESTS + 1)]
    assert same == [201] * RATE_LIMIT_REQUESTS + [429]


@pytest.mark.parametrize("value", ["*", "proxy.example", "10.0.0.1/8"])
def test_trusted_proxies_must_be_addresses_or_networks(value: str) -> None:
    with pytest.raises(InputError, match="LORAREG_TRUSTED_PROXIES"):
        settings_from_env({"LORAREG_TRUSTED_PROXIES": value})


def test_trusted_proxies_default_to_none_and_take_a_list() -> None:
    assert settings_from_env({}).trusted_proxies == ()
    parsed = settings_from_env({"LORAREG_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}).trusted_proxies
    assert parsed == ("10.0.0.0/8", "127.0.0.1")
