"""The registry commands end to end: publish, search, pull, yank and ``serve --demo`` as processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lorareg.demo.samples import sample_adapter_bytes
from tests.fixtures.server import LiveServer

LORAREG = [sys.executable, "-m", "lorareg"]

MANIFEST_TOML = """
name = "acme/pixel-art"
version = "1.0.0"
description = "Crisp pixel art"
trigger_words = ["pixelart"]

[license]
id = "CreativeML-OpenRAIL-M"
commercial_use = true
derivatives = true
attribution_required = false

[consent]
subject = "style"
status = "not-required"
"""


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*LORAREG, *args], capture_output=True, text=True, env=env, timeout=60)


def test_publish_search_pull_yank_from_the_command_line(live_server: LiveServer, tmp_path: Path) -> None:
    token = live_server.add_publisher("acme")
    key_path = tmp_path / "acme.key"
    key_path.write_bytes(live_server.publisher_keys["acme"].to_pem())
    key_path.chmod(0o600)
    adapter = tmp_path / "pixel.safetensors"
    adapter.write_bytes(sample_adapter_bytes("sdxl", seed=42))
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(MANIFEST_TOML, encoding="utf-8")
    trust, _ = live_server.trust()
    trust_path = tmp_path / "trust.toml"
    trust.save(trust_path)
    env = {**os.environ, "LORAREG_REGISTRY": live_server.url, "LORAREG_TOKEN": token,
           "LORAREG_CACHE": str(tmp_path / "cache")}  # fmt: skip

    published = _run("publish", str(adapter), "--manifest", str(manifest), "--key", str(key_path), env=env)
    assert published.returncode == 0, published.stderr
    ref, digest = published.stdout.split()
    assert ref == "acme/pixel-art@1.0.0" and digest.startswith("sha256:")

    found = _run("search", "pixel", "--json", env=env)
    assert [i["ref"] for i in json.loads(found.stdout)["items"]] == ["acme/pixel-art@1.0.0"]

    pulled = _run(
        "pull", "acme/pixel-art", "--trust", str(trust_path), "--out", str(tmp_path / "out"), env=env
    )
    assert pulled.returncode == 0, pulled.stderr
    assert Path(pulled.stdout.strip()).read_bytes() == adapter.read_bytes()

    again = _run("publish", str(adapter), "--manifest", str(manifest), "--key", str(key_path), env=env)
    assert again.returncode == 2 and again.stderr.startswith("error: ")

    yanked = _run("yank", "acme/pixel-art@1.0.0", env=env)
    assert yanked.stdout.strip() == "acme/pixel-art@1.0.0 yanked"
    missing = _run("pull", "acme/pixel-art", "--trust", str(trust_path), env=env)
    assert missing.returncode == 3 and missing.stderr.startswith("error: ")


def test_unreachable_registry_exits_4(tmp_path: Path) -> None:
    result = _run("search", "--registry", f"http://127.0.0.1:{_free_port()}")
    assert result.returncode == 4
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_serve_demo_starts_and_lists_the_seeded_catalogue(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [*LORAREG, "serve", "--demo", "--data", str(tmp_path / "data"), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc)
        items = httpx.get(f"{url}/api/v1/adapters", params={"limit": 100}).json()["items"]
        families = {item["family"] for item in items}
        assert len(items) == 12  # 13 seeded (one a re-packaged copy), one yanked
        assert {"sd1", "sdxl", "sd3", "flux1", "flux2"} <= families
        assert {"CreativeML-OpenRAIL-M", "CC-BY-4.0", "proprietary"} <= {item["license"] for item in items}
        assert httpx.get(f"{url}/api/v1/adapters/acme/pixel-art").json()["versions"][1]["status"] == "yanked"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"lorareg registry at {url}" in out
    assert "reviewer token: lrg_" in out and "admin token:    lrg_" in out


def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail("serve did not become healthy")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
