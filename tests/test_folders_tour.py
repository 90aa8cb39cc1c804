"""README's "Bring your library" tour runs as written: ``scripts/bring_your_library.sh`` against a live
registry, with a real ComfyUI/A1111 library built in the test, the ``lorareg`` command on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lorareg.signing.keys import generate, write_key_pair
from tests.fixtures.server import LiveServer
from tests.support.ui_folders import build_studio_library

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bring_your_library.sh"


def test_bring_your_library_tour_runs_as_written(live_server: LiveServer, tmp_path: Path) -> None:
    paths = build_studio_library(tmp_path / "library")
    key = generate()
    token = live_server.add_publisher("studio", key)
    key_path = write_key_pair(tmp_path / "studio", key).private
    store, _ = live_server.trust()
    store.save(tmp_path / "trust.toml")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "lorareg"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m lorareg "$@"\n')
    shim.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAREG_")}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        LORAREG_REGISTRY=live_server.url,
        LORAREG_TOKEN=token,
        LORAREG_TRUST=str(tmp_path / "trust.toml"),
        LORAREG_CACHE=str(tmp_path / "cache"),
        REVIEWER_TOKEN=live_server.token("reviewer"),
        LIBRARY=str(paths["root"]),
        NS="studio",
        KEY=str(key_path),
        ADAPTER="ink-lines-v2",
        WORK=str(work),
    )
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "revoked" in done.stdout and "studio/ink-lines-v2@1.0.1" in done.stdout
    quarantined = sorted(p.name for p in (work / "quarantine").iterdir())
    assert "ink-lines-v2-1.0.1.safetensors" in quarantined
    assert "ink-lines-v2-1.0.1.safetensors.quarantined.txt" in quarantined
    assert not (work / "ComfyUI" / "models" / "loras" / "ink-lines-v2-1.0.1.safetensors").exists()
