"""The client against a malicious registry (``tests/support/malicious_registry.py``) over loopback.

Each test is one attack: the registry lies about a size, trickles, drops, floods, sends more than it
announced, returns names that climb out of the output directory, a NUL, a bad digest, or other bytes. The
client must end each with one ``error:`` line and exit 4 (1 when verification refuses), write nothing
outside its cache and output directory, never write more than the signed size, and stop in bounded time
and memory.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lorareg.client import Client
from lorareg.client.transport import MAX_JSON_BYTES
from lorareg.errors import RemoteError
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main
from tests.support.malicious_registry import (
    HUGE_BYTES,
    MaliciousRegistry,
    start_malicious_registry,
)

REF = "acme/ink@1.0.0"
TIME_LIMIT_S = 20.0  # every attack ends well within this (the deadline tests use a 1 s grace period)
RSS_LIMIT_BYTES = 150 * 2**20  # the CLI (~50 MB) with a capped 16 MiB answer; the flood is 256 MiB


@dataclass
class Hostile:
    """The malicious registry, the honest file behind it, and the client's directories."""

    registry: MaliciousRegistry
    adapter: bytes
    trust: Path
    work: Path

    @property
    def cache(self) -> Path:
        return self.work / "cache"

    @property
    def out(self) -> Path:
        return self.work / "out"

    def client(self, *, timeout: float = 10.0) -> Client:
        return Client(self.registry.url, cache_dir=self.cache, timeout=timeout)


@pytest.fixture
def hostile(live_server: LiveServer, tmp_path: Path) -> Iterator[Hostile]:
    """acme/ink@1.0.0 published on an honest registry, served through a malicious one."""
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", "1.0.0", family="sd1")
    with live_server.client(token) as client:
        client.publish(path, bundle)
    trust, _ = live_server.trust()
    work = tmp_path / "client"
    work.mkdir()
    trust_path = work / "trust.toml"
    trust.save(trust_path)
    registry, server = start_malicious_registry(live_server.url)
    try:
        yield Hostile(registry, path.read_bytes(), trust_path, work)
    finally:
        registry.stop.set()
        server.shutdown()
        server.server_close()


def _cli(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("LORAREG_CACHE", str(hostile.cache))
    monkeypatch.setenv("LORAREG_REGISTRY", hostile.registry.url)
    started = time.monotonic()
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert time.monotonic() - started < TIME_LIMIT_S
    return code, out, err


def _pull(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *, verify: bool
) -> tuple[int, str]:
    """``lorareg pull`` (verified, or ``--no-verify --out``); asserts the one-line error, returns code/err."""
    args = ["pull", REF, "--trust", str(hostile.trust)] if verify else ["pull", REF, "--no-verify"]
    code, out, err = _cli(hostile, monkeypatch, capsys, *args, "--out", str(hostile.out))
    if code != 0:
        assert out == "" and err.startswith("error: ") and err.count("\n") == 1, err
    return code, err


def _written(hostile: Hostile) -> dict[str, int]:
    """Every file the client wrote (relative path -> size), trust file aside."""
    return {
        str(p.relative_to(hostile.work)): p.stat().st_size
        for p in hostile.work.rglob("*")
        if p.is_file() and p.name != "trust.toml"
    }


def _assert_nothing_kept(hostile: Hostile) -> None:
    """No blob, no output file; part files (resumable) no larger than the signed size; nothing elsewhere.

    The cache may keep what the client verified before the download: revocation state (``.json``) and the
    registry's signed log checkpoint (``checkpoints/*.note``).
    """
    for name, size in _written(hostile).items():
        assert name.startswith(("cache/", "out/")), f"wrote {name} outside the cache and output directory"
        assert not name.startswith("cache/blobs/"), f"cached {name}"
        is_checkpoint = name.startswith("cache/checkpoints/") and name.endswith(".note")
        assert is_checkpoint or name.endswith((".part", ".lock", ".json")), f"kept {name}"
        assert size <= len(hostile.adapter), (
            f"{name} has {size} bytes; the signed size is {len(hostile.adapter)}"
        )


def test_honest_registry_behind_the_test_double_pulls_and_verifies(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _pull(hostile, monkeypatch, capsys, verify=True)
    assert code == 0, err
    assert (hostile.out / "ink-1.0.0.safetensors").read_bytes() == hostile.adapter


@pytest.mark.parametrize(("verify", "exit_code"), [(True, 1), (False, 4)], ids=["verified", "unverified"])
def test_resolve_announcing_300_mib_for_a_small_adapter_is_refused_before_downloading(
    hostile: Hostile,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    verify: bool,
    exit_code: int,
) -> None:
    hostile.registry.attack = "announce-huge-size"
    code, err = _pull(hostile, monkeypatch, capsys, verify=verify)
    assert code == exit_code and str(HUGE_BYTES) in err
    assert hostile.registry.blob_bytes_sent == []  # refused before any blob request
    _assert_nothing_kept(hostile)


@pytest.mark.parametrize(
    ("attack", "message"),
    [("announce-huge-length", "announces"), ("more-bytes", "more than")],
    ids=["announces-300-mib", "sends-more-than-signed"],
)
@pytest.mark.parametrize("verify", [True, False], ids=["verified", "unverified"])
def test_blob_answer_longer_than_signed_is_refused_and_never_written(
    hostile: Hostile,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    verify: bool,
    attack: str,
    message: str,
) -> None:
    hostile.registry.attack = attack
    code, err = _pull(hostile, monkeypatch, capsys, verify=verify)
    assert code == 4 and message in err
    _assert_nothing_kept(hostile)


def test_drop_mid_body_on_every_connection_gives_up_with_a_bounded_part_file(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("lorareg.client.download.RESUME_BACKOFF_S", 0.01)
    hostile.registry.attack = "drop"
    for _ in range(2):  # a second pull resumes the part file; it still never outgrows the signed size
        code, err = _pull(hostile, monkeypatch, capsys, verify=True)
        assert code == 4 and "kept failing" in err
        _assert_nothing_kept(hostile)
    assert any(name.endswith(".part") for name in _written(hostile))  # kept for a later resume


@pytest.mark.parametrize("transport", ["http.client", "httpx"])
def test_trickling_blob_is_cut_off_by_the_overall_deadline(hostile: Hostile, transport: str) -> None:
    import httpx

    hostile.registry.attack = "trickle-blob"
    trust, policy = _trust(hostile)
    started = time.monotonic()
    injected = httpx.HTTPTransport() if transport == "httpx" else None
    with Client(hostile.registry.url, cache_dir=hostile.cache, timeout=1.0, transport=injected) as client:
        with pytest.raises(RemoteError, match="too slow"):
            client.pull(REF, trust=trust, policy=policy)
    assert time.monotonic() - started < 6.0  # grace 1 s + a few bytes at 32 KiB/s, plus the API calls
    _assert_nothing_kept(hostile)


def test_trickling_json_answer_is_cut_off_by_the_overall_deadline(hostile: Hostile) -> None:
    hostile.registry.attack = "trickle-json"
    started = time.monotonic()
    with hostile.client(timeout=1.0) as client, pytest.raises(RemoteError, match="too slow"):
        client.resolve(REF)
    assert time.monotonic() - started < 4.0


def test_trickling_status_line_and_headers_are_cut_off_by_the_watchdog(hostile: Hostile) -> None:
    hostile.registry.attack = "trickle-headers"
    started = time.monotonic()
    with hostile.client(timeout=1.0) as client, pytest.raises(RemoteError, match="did not answer within"):
        client.resolve(REF)
    assert time.monotonic() - started < 4.0


@pytest.mark.parametrize("attack", ["oversized-json", "oversized-json-announced"])
def test_oversized_resolve_answer_is_refused_while_streaming(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], attack: str
) -> None:
    hostile.registry.attack = attack
    code, _, err = _cli(hostile, monkeypatch, capsys, "show", REF)
    assert code == 4 and err.count("\n") == 1 and str(MAX_JSON_BYTES) in err


# The CLI in a fresh interpreter that reports its own peak RSS at exit: VmHWM belongs to the process's own
# memory map, whereas ru_maxrss also counts the parent's pages the child had between fork and exec.
_CLI_WITH_PEAK = """
import atexit, sys
def _peak():
    hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")][0].split()[1]
    sys.stderr.write(f"peak-kib {hwm}\\n")
atexit.register(_peak)
sys.argv = ["lorareg", *sys.argv[1:]]
from lorareg.cli import main
main()
"""


def test_oversized_resolve_answer_keeps_the_cli_memory_bounded(hostile: Hostile) -> None:
    hostile.registry.attack = "oversized-json"
    env = {**os.environ, "LORAREG_CACHE": str(hostile.cache), "PYTHONPATH": os.getcwd()}
    result = subprocess.run(
        [sys.executable, "-c", _CLI_WITH_PEAK, "show", REF, "--registry", hostile.registry.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    error, peak = result.stderr.splitlines()
    assert result.returncode == 4 and error.startswith("error: ") and str(MAX_JSON_BYTES) in error, error
    peak_bytes = int(peak.removeprefix("peak-kib ")) * 1024
    assert peak_bytes < RSS_LIMIT_BYTES, f"peak RSS {peak_bytes // 2**20} MiB"


@pytest.mark.parametrize("attack", ["oversized-signature", "oversized-revocations"])
def test_oversized_signature_or_revocation_list_is_refused(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], attack: str
) -> None:
    hostile.registry.attack = attack
    code, err = _pull(hostile, monkeypatch, capsys, verify=True)
    assert code == 4 and "cap" in err
    assert hostile.registry.blob_bytes_sent == []
    _assert_nothing_kept(hostile)


NAME_ATTACKS = [
    "traversal-version",
    "traversal-name",
    "nul-version",
    "newline-digest",
    "traversal-digest",
    "boolean-size",
]


@pytest.mark.parametrize("attack", NAME_ATTACKS)
@pytest.mark.parametrize("verify", [True, False], ids=["verified", "unverified"])
def test_hostile_names_versions_and_digests_from_the_registry_never_touch_a_path_or_url(
    hostile: Hostile,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    attack: str,
    verify: bool,
) -> None:
    hostile.registry.attack = attack
    code, err = _pull(hostile, monkeypatch, capsys, verify=verify)
    assert code == 4, err
    assert "the registry answered" in err
    assert hostile.registry.blob_bytes_sent == []
    assert not list(hostile.work.parent.rglob("*escape*"))
    _assert_nothing_kept(hostile)


@pytest.mark.parametrize(
    "command",
    [
        ["show", REF],
        ["search", "ink"],
        ["takedown", "status", "td_x"],
        ["takedown", "list", "--token", "lrg_x"],
    ],
    ids=["show", "search", "takedown-status", "takedown-list"],
)
def test_answer_missing_its_fields_is_one_error_line_not_a_traceback(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    hostile.registry.attack = "missing-fields"
    code, _, err = _cli(hostile, monkeypatch, capsys, *command)
    assert code == 4 and err.startswith("error: ") and err.count("\n") == 1, err


@pytest.mark.parametrize(("verify", "exit_code"), [(True, 1), (False, 1)], ids=["verified", "unverified"])
def test_wrong_content_is_refused_and_nothing_is_kept(
    hostile: Hostile,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    verify: bool,
    exit_code: int,
) -> None:
    hostile.registry.attack = "wrong-content"
    code, err = _pull(hostile, monkeypatch, capsys, verify=verify)
    assert code == exit_code and "digest mismatch" in err
    _assert_nothing_kept(hostile)
    assert not any(name.endswith(".part") for name in _written(hostile))


def test_nul_in_a_user_typed_version_is_bad_input_not_a_traceback(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(hostile, monkeypatch, capsys, "yank", "acme/ink@1.0.0\x00", "--token", "lrg_x")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def test_cached_digest_with_a_trailing_newline_is_not_a_content_address(tmp_path: Path) -> None:
    from lorareg.client.cache import BlobCache
    from lorareg.errors import InputError

    digest = hashlib.sha256(b"x").hexdigest()
    cache = BlobCache(tmp_path)
    assert cache.blob_path(digest).name == digest
    with pytest.raises(InputError, match="64 lower-case hex"):
        cache.blob_path(digest + "\n")


def _trust(hostile: Hostile) -> tuple[object, object]:
    from lorareg.signing.trust import load_trust

    store = load_trust(hostile.trust)
    return store, store.policy
