"""Revocations that hold without the registry: the list kept in the client cache, ``lorareg verify`` and the
loader refusing revoked adapters offline, and the rollback and freeze attacks against the held list.

The attacker in these stories controls the network between the studio and its registry: it can cut it
(so only the cached list is left), replay an older signed list (rollback) or keep serving the last list from
before a revocation (freeze). ``fake_registry`` plays that network: a loopback HTTP server answering
``/api/v1/revocations`` with whatever signed envelope the story needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lorareg.client.cache import BlobCache
from lorareg.demo.samples import sample_adapter_bytes
from lorareg.errors import VerificationError
from lorareg.manifest import ManifestDraft
from lorareg.server.config import Settings
from lorareg.signing.keys import PrivateKey, generate
from lorareg.signing.policy import Policy
from lorareg.signing.revocation import RevocationList, RevokedDigest, sign_revocation_list
from lorareg.signing.sign import countersign, sign_file
from lorareg.signing.trust import TrustStore
from tests.fixtures.server import draft_manifest, run_server

REASON = "takedown upheld: likeness without consent"
NOW = datetime.now(UTC).replace(microsecond=0)
HOUR = timedelta(hours=1)


@dataclass
class Studio:
    """A registry key, a publisher key, a signed adapter on disk and the trust file that trusts both."""

    registry_key: PrivateKey
    adapter: Path
    sha256: str
    trust_path: Path
    cache_dir: Path

    def signed_list(self, version: int, *, issued: datetime, expires: datetime, revoke: bool) -> bytes:
        """A revocation list signed by the registry key, revoking the adapter when ``revoke``."""
        revoked = (RevokedDigest(self.sha256, REASON, issued),) if revoke else ()
        return sign_revocation_list(RevocationList(version, issued, expires, revoked), self.registry_key)

    def verify(self, *args: str) -> tuple[int, dict[str, Any]]:
        """``lorareg verify ADAPTER --json`` with this studio's trust file and cache; (exit code, JSON)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("LORAREG_")}
        env["LORAREG_CACHE"] = str(self.cache_dir)
        done = subprocess.run(
            [sys.executable, "-m", "lorareg", "verify", str(self.adapter), "--trust", str(self.trust_path),
             "--json", *args],
            capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        return done.returncode, json.loads(done.stdout)


@pytest.fixture
def studio(tmp_path: Path) -> Studio:
    return _studio(tmp_path, max_revocation_age=None)


def _studio(tmp_path: Path, *, max_revocation_age: str | None, trust_registry: bool = True) -> Studio:
    registry_key, publisher = generate(), generate()
    adapter = tmp_path / "ink.safetensors"
    adapter.write_bytes(sample_adapter_bytes("sdxl", seed=11))
    bundle = sign_file(adapter, ManifestDraft.from_json(draft_manifest("acme/ink", "1.0.0")), publisher)
    Path(f"{adapter}.sig").write_bytes(countersign(bundle, registry_key))
    policy = Policy.from_json({"max_revocation_age": max_revocation_age} if max_revocation_age else {})
    trust = TrustStore((), policy).with_key(
        publisher.public_key, label="acme", role="publisher", namespace="acme"
    )
    if trust_registry:
        trust = trust.with_key(registry_key.public_key, label="registry", role="registry", namespace=None)
    trust.save(tmp_path / "trust.toml")
    sha256 = hashlib.sha256(adapter.read_bytes()).hexdigest()
    return Studio(registry_key, adapter, sha256, tmp_path / "trust.toml", tmp_path / "cache")


class FakeRegistry:
    """Answers ``GET /api/v1/revocations`` with ``envelope``; everything else 404."""

    def __init__(self) -> None:
        self.envelope = b""
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's handler naming
                owner.requests += 1
                found = self.path == "/api/v1/revocations"
                body = owner.envelope if found else b'{"error": {"code": "not_found", "message": "no"}}'
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fake_registry() -> Iterator[FakeRegistry]:
    registry = FakeRegistry()
    yield registry
    registry.stop()


# -- lorareg verify ---------------------------------------------------------------------------------------


def test_verify_cli_refuses_revoked_file(studio: Studio, fake_registry: FakeRegistry) -> None:
    fake_registry.envelope = studio.signed_list(3, issued=NOW, expires=NOW + 24 * HOUR, revoke=True)
    code, online = studio.verify("--registry", fake_registry.url)
    assert code == 1 and online["verified"] is False
    assert any(r.startswith("revoked:") and REASON in r for r in online["reasons"]), online["reasons"]
    assert online["revocations"]["source"] == "registry" and online["revocations"]["version"] == 3

    fake_registry.stop()  # the network is cut: the list fetched above is all that is left
    code, offline = studio.verify()
    assert code == 1 and any(REASON in r for r in offline["reasons"])
    assert offline["revocations"] == {**online["revocations"], "source": "cache", "registry": None}

    code, unreachable = studio.verify("--registry", fake_registry.url)  # named but unreachable: its list
    assert code == 1 and any(REASON in r for r in unreachable["reasons"])
    assert unreachable["revocations"]["source"] == "cache"


def test_verify_cli_reports_which_revocation_list_it_used(
    studio: Studio, fake_registry: FakeRegistry
) -> None:
    code, before = studio.verify()
    assert code == 0 and before["revocations"] == {
        "version": None, "issued": None, "expires": None, "source": "none", "registry": None,
    }  # fmt: skip
    assert any("revocation was not checked" in note for note in before["notes"])

    fake_registry.envelope = studio.signed_list(2, issued=NOW, expires=NOW + 24 * HOUR, revoke=False)
    code, online = studio.verify("--registry", fake_registry.url)
    assert code == 0 and online["revocations"]["source"] == "registry"
    assert online["revocations"]["version"] == 2 and online["revocations"]["registry"] == fake_registry.url
    assert list(online)[:5] == ["verified", "reasons", "signers", "manifest", "notes"]  # keys kept, one added

    code, offline = studio.verify()
    assert (
        code == 0 and offline["revocations"]["source"] == "cache" and offline["revocations"]["version"] == 2
    )


def test_verify_without_a_trusted_registry_key_checks_no_list_and_asks_no_registry(
    tmp_path: Path, fake_registry: FakeRegistry
) -> None:
    studio = _studio(tmp_path, max_revocation_age=None, trust_registry=False)
    fake_registry.envelope = studio.signed_list(2, issued=NOW, expires=NOW + HOUR, revoke=True)
    code, result = studio.verify("--registry", fake_registry.url)  # LORAREG_REGISTRY exported, --key use
    assert code == 0 and result["revocations"]["source"] == "none"
    assert any("no registry key" in note for note in result["notes"])
    assert fake_registry.requests == 0


ROLLBACKS = [
    # (id, the registry is asked, list it serves / the cache holds) — the cache has seen version 5
    ("replayed-by-the-registry", True),
    ("held-list-below-the-version-seen", False),
]


@pytest.mark.parametrize("online", [r[1] for r in ROLLBACKS], ids=[r[0] for r in ROLLBACKS])
def test_revocation_list_rollback_is_refused(
    studio: Studio, fake_registry: FakeRegistry, online: bool
) -> None:
    # rollback attack: version 4, signed before the adapter was revoked, replayed after version 5 was seen
    old = studio.signed_list(4, issued=NOW - HOUR, expires=NOW + 23 * HOUR, revoke=False)
    cache = BlobCache(studio.cache_dir)
    if online:
        cache.remember_revocation_version(fake_registry.url, 5)
        fake_registry.envelope = old
        code, result = studio.verify("--registry", fake_registry.url)
    else:
        cache.remember_revocation_list(fake_registry.url, old, version=4)
        cache.remember_revocation_version(fake_registry.url, 5)
        code, result = studio.verify()
    assert code == 1 and any(r.startswith("rollback") for r in result["reasons"]), result["reasons"]
    assert result["revocations"] is None  # no list was used
    assert cache.held_revocation_version(fake_registry.url) == 5


FREEZES = [
    # (id, the registry is asked, issued (hours ago), expires (hours from now), policy max_revocation_age)
    ("expired-list-served-by-the-registry", True, 30, -6, None),
    ("expired-list-held-in-the-cache", False, 30, -6, None),
    ("held-list-older-than-the-policy-allows", False, 30, 24 * 6, "1d"),
]


@pytest.mark.parametrize(
    ("online", "issued_h", "expires_h", "max_age"), [f[1:] for f in FREEZES], ids=[f[0] for f in FREEZES]
)
def test_frozen_revocation_list_is_refused(
    tmp_path: Path,
    fake_registry: FakeRegistry,
    online: bool,
    issued_h: int,
    expires_h: int,
    max_age: str | None,
) -> None:
    # freeze attack: keep answering with the last list signed before the revocation
    studio = _studio(tmp_path, max_revocation_age=max_age)
    stale = studio.signed_list(7, issued=NOW - issued_h * HOUR, expires=NOW + expires_h * HOUR, revoke=False)
    if online:
        fake_registry.envelope = stale
        code, result = studio.verify("--registry", fake_registry.url)
    else:
        BlobCache(studio.cache_dir).remember_revocation_list(fake_registry.url, stale, version=7)
        code, result = studio.verify()
    assert code == 1 and any(r.startswith("freeze") for r in result["reasons"]), result["reasons"]


# -- the cache ----------------------------------------------------------------------------------------------


def test_cache_keeps_the_newest_verified_list_and_never_goes_back(studio: Studio) -> None:
    cache = BlobCache(studio.cache_dir)
    newer = studio.signed_list(6, issued=NOW, expires=NOW + HOUR, revoke=True)
    older = studio.signed_list(5, issued=NOW - HOUR, expires=NOW + HOUR, revoke=False)
    cache.remember_revocation_list("https://reg.example", newer, version=6)
    cache.remember_revocation_list("https://reg.example", older, version=5)  # a late writer loses
    assert cache.held_revocation_list("https://reg.example") == newer  # bytes as fetched: re-verifiable
    held = cache.held_revocations([studio.registry_key.public_key], now=NOW, max_age=None)
    assert held is not None and held.version == 6 and held.reason_for(studio.sha256) == REASON
    cache.remember_revocation_version("https://reg.example", 9)  # a newer list was seen, not kept
    assert cache.held_revocation_list("https://reg.example") == newer
    with pytest.raises(VerificationError, match="rollback"):
        cache.held_revocations([studio.registry_key.public_key], now=NOW, max_age=None)


def test_held_list_of_an_untrusted_registry_is_passed_over(studio: Studio) -> None:
    cache = BlobCache(studio.cache_dir)
    stranger = generate()
    foreign = sign_revocation_list(RevocationList(8, NOW, NOW + HOUR, ()), stranger)
    cache.remember_revocation_list("https://other.example", foreign, version=8)
    keys = [studio.registry_key.public_key]
    assert cache.held_revocations(keys, now=NOW, max_age=None) is None
    with pytest.raises(VerificationError, match="bad signature"):
        cache.held_revocations(keys, now=NOW, max_age=None, registry_id="https://other.example")


def test_state_from_before_lists_were_kept_still_guards_against_rollback(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path)
    state = cache._revocation_path("https://reg.example")  # the first format: the version only
    state.parent.mkdir(parents=True)
    state.write_text('{"version": 12}')
    assert cache.held_revocation_version("https://reg.example") == 12
    assert cache.held_revocation_list("https://reg.example") is None


# -- the loader ---------------------------------------------------------------------------------------------


def test_revoked_adapter_is_refused_offline_from_cache(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from lorareg import load_verified_lora, unload_lora
    from lorareg.client import Client
    from tests.support import tiny_pipelines as tiny

    pipe = tiny.sd_pipeline()
    adapter = tmp_path / "ink.safetensors"
    adapter.write_bytes(
        tiny.diffusers_lora_bytes(
            tiny.sd_unet(cross_attention_dim=768), component="unet", targets=tiny.SD_TARGETS
        )
    )
    with _live(tmp_path) as server:
        token = server.add_publisher("acme")
        draft = ManifestDraft.from_json(draft_manifest("acme/ink", "1.0.0"))
        with server.client(token) as publisher:
            publisher.publish(adapter, sign_file(adapter, draft, server.publisher_keys["acme"]))
        trust, _ = server.trust()
        client = Client(server.url, cache_dir=tmp_path / "cache", timeout=2.0)
        use = load_verified_lora(pipe, "acme/ink@1.0.0", registry=client, trust=trust)
        unload_lora(pipe, use.adapter_name)
        admin = server.registry.authenticate(server.token("admin"))
        server.registry.revoke(use.sha256, reason=REASON, principal=admin)
        client.verified_revocations(trust, max_age=None)  # the pipeline saw the new list once …
    base = tiny.render(pipe)
    cached = client.cache.lookup(use.sha256)
    assert cached is not None
    with client, pytest.raises(VerificationError, match=REASON):  # … then the registry went away
        load_verified_lora(pipe, cached, signature=client.cache.bundle_path(use.sha256), registry=client,
                           trust=trust)  # fmt: skip
    assert pipe.get_list_adapters() == {}
    assert torch.equal(tiny.render(pipe), base)


@contextlib.contextmanager
def _live(tmp_path: Path) -> Iterator[Any]:
    """A live registry that this test can stop (``live_server`` lives until the test ends)."""
    work = tmp_path / "work"
    work.mkdir()
    with run_server(Settings(home=tmp_path / "server"), work_dir=work) as server:
        yield server
