"""The README's tour, run as a newcomer would: ``scripts/tour.sh`` against a live ``lorareg serve --demo``.

The script starts in an empty scratch directory, makes every file it uses (``lorareg sample``) and goes
from inspecting a file to a revoked adapter being refused. README.md shows the script's commands verbatim
(checked here), so the README cannot drift from what the suite runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lorareg.demo.example_manifest import EXAMPLE_MANIFEST

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "scripts" / "tour.sh"
STARTUP_TIMEOUT_S = 60
TOUR_TIMEOUT_S = 300


def _tour_lines(text: str) -> list[str]:
    """The lines between ``# tour:begin`` and ``# tour:end`` (the script) or the README's tour block."""
    match = re.search(r"# tour:begin\n(.*?)# tour:end\n", text, re.S)
    assert match is not None, "no tour:begin/tour:end block"
    return match.group(1).splitlines()


def test_readme_shows_exactly_the_tour_script() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n# tour:begin\n(.*?)# tour:end\n```", readme, re.S)
    assert block is not None, "README.md has no ```sh block holding the tour"
    assert block.group(1).splitlines() == _tour_lines(TOUR.read_text(encoding="utf-8"))


def test_example_manifest_in_docs_is_what_sample_writes() -> None:
    assert (ROOT / "docs" / "examples" / "manifest.toml").read_text(encoding="utf-8") == EXAMPLE_MANIFEST


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """``lorareg serve --demo`` as a user starts it (a process), on a free port; yields (url, data, env)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "lorareg"  # the worktree's lorareg under this interpreter, as `lorareg` on PATH
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lorareg "$@"\n')
    shim.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "TMPDIR": str(tmp_path),
    }
    for name in (
        "LORAREG_TOKEN",
        "LORAREG_TRUST",
        "LORAREG_CACHE",
        "LORAREG_DATABASE_URL",
        "LORAREG_STORAGE",
    ):
        env.pop(name, None)
    data = tmp_path / "demo-data"
    url = f"http://127.0.0.1:{port}"
    command = ["lorareg", "serve", "--demo", "--data", str(data), "--port", str(port)]
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_healthy(url, server)
        yield url, data, env
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_the_readme_tour_runs_as_written_against_a_live_demo(
    demo_server: tuple[str, Path, dict[str, str]], tmp_path: Path
) -> None:
    url, data, env = demo_server
    env = {**env, "LORAREG_REGISTRY": url, "LORAREG_HOME": str(data)}
    run = subprocess.run(
        ["bash", str(TOUR)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=TOUR_TIMEOUT_S
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "me/pixel-art@1.2.0" in run.stdout  # the example manifest published as-is
    assert "inkworks/ink-wash@2.0.0  weight 0.8  active" in run.stdout  # provenance before the takedown
    assert "weight 0.8  revoked since" in run.stdout  # and after it
    assert "error: inkworks/ink-wash@2.0.0: revoked" in run.stderr  # the pull refused
    scratch = re.search(r"tour: working in (\S+)", run.stdout)
    assert scratch is not None and Path(scratch.group(1)).parent == tmp_path  # not the repository
    assert not (ROOT / "me.key").exists()


def _wait_healthy(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"lorareg serve --demo exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"lorareg serve --demo did not answer on {url} within {STARTUP_TIMEOUT_S} s")
