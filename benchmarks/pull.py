"""Pull throughput and memory: ``lorareg pull --verify`` of a large adapter against ``curl -o`` of its blob.

One run: generate an adapter of ``--size-mib`` (default 1024), start ``lorareg serve`` on loopback, publish
it with ``lorareg publish`` (peak RSS of server and client sampled), then ``--runs`` times each: ``curl -o``
of the blob URL (the baseline: no hashing, no verification) and ``lorareg pull --verify`` into a fresh cache
(download, six hashes overlapped with it, revocation list, signature and policy checks). Prints medians,
the ratio (target <= 1.25x) and peak RSS (target < 150 MB for server and client).

    .venv/bin/python -m benchmarks.pull                 # 1 GiB, 5 runs each
    .venv/bin/python -m benchmarks.pull --size-mib 64 --runs 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

from lorareg.registry.service import open_registry
from lorareg.samples import write_large_adapter
from lorareg.signing.keys import generate
from lorareg.signing.trust import TrustStore

SAMPLE_INTERVAL_S = 0.02  # RSS sampling period
MIB = 2**20
MANIFEST = """name = "bench/large"
version = "1.0.0"
description = "benchmark adapter"
[license]
id = "CC0-1.0"
commercial_use = true
derivatives = true
attribution_required = false
[consent]
subject = "concept"
status = "not-required"
"""


class PeakRss:
    """Samples the resident set size of some processes on a thread; keeps the peak of each."""

    def __init__(self) -> None:
        self.peaks: dict[str, int] = {}
        self._procs: dict[str, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, label: str, pid: int) -> None:
        self._procs[label] = psutil.Process(pid)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for label, proc in list(self._procs.items()):
                try:
                    self.peaks[label] = max(self.peaks.get(label, 0), proc.memory_info().rss)
                except psutil.Error:
                    pass
            time.sleep(SAMPLE_INTERVAL_S)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed for the baseline")
    with tempfile.TemporaryDirectory(prefix="lorareg-bench-pull-") as tmp_name:
        run(Path(tmp_name), size=args.size_mib * MIB, runs=args.runs)


def run(tmp: Path, *, size: int, runs: int) -> None:
    adapter = tmp / "large.safetensors"
    started = time.perf_counter()
    write_large_adapter(adapter, size_bytes=size)
    print(f"adapter: {adapter.stat().st_size / MIB:.0f} MiB written in {time.perf_counter() - started:.1f} s")
    env, key_path, trust_path = _prepare_registry(tmp)
    (tmp / "manifest.toml").write_text(MANIFEST, encoding="utf-8")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*_lorareg(), "serve", "--data", str(tmp / "data"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    rss = PeakRss()
    rss.watch("server", server.pid)
    try:
        _wait_healthy(url)
        env = {**env, "LORAREG_REGISTRY": url}
        publish_s = _timed_process(
            [
                *_lorareg(),
                "publish",
                str(adapter),
                "--manifest",
                str(tmp / "manifest.toml"),
                "--key",
                str(key_path),
            ],
            env=env,
            rss=rss,
            label="publish client",
        )
        print(f"publish (sign + upload): {publish_s:.2f} s")
        blob_url = httpx.get(f"{url}/api/v1/resolve", params={"ref": "bench/large@1.0.0"}).json()["blob_url"]
        curl_s, pull_s = [], []
        for i in range(runs):
            out = tmp / "curl.out"
            curl_s.append(
                _timed_process(["curl", "-sSf", "-o", str(out), blob_url], env=env, rss=None, label="")
            )
            out.unlink()
            cache = tmp / f"cache-{i}"
            pull_env = {**env, "LORAREG_CACHE": str(cache)}
            pull_s.append(
                _timed_process(
                    [*_lorareg(), "pull", "bench/large@1.0.0", "--verify", "--trust", str(trust_path)],
                    env=pull_env,
                    rss=rss,
                    label="pull client",
                )
            )
            shutil.rmtree(cache)
    finally:
        rss.stop()
        server.terminate()
        server.wait(timeout=10)
    _report(size, publish_s, curl_s, pull_s, rss.peaks)


def _report(
    size: int, publish_s: float, curl_s: list[float], pull_s: list[float], peaks: dict[str, int]
) -> None:
    curl, pull = statistics.median(curl_s), statistics.median(pull_s)
    print(f"curl -o          median {curl:.2f} s  ({size / MIB / curl:,.0f} MiB/s)  runs {_fmt(curl_s)}")
    print(f"pull --verify    median {pull:.2f} s  ({size / MIB / pull:,.0f} MiB/s)  runs {_fmt(pull_s)}")
    print(f"ratio pull/curl: {pull / curl:.2f}x (target <= 1.25x)")
    for label, peak in sorted(peaks.items()):
        print(f"peak RSS {label:15} {peak / 1e6:6.0f} MB (target < 150 MB)")


def _fmt(values: list[float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


def _prepare_registry(tmp: Path) -> tuple[dict[str, str], Path, Path]:
    """Data dir with a publisher for ``bench``; returns (env with token), key path and trust file path."""
    registry = open_registry(tmp / "data")
    key = generate()
    key_path = tmp / "bench.key"
    key_path.write_bytes(key.to_pem())
    key_path.chmod(0o600)
    registry.add_publisher("bench", key.public_key.pem.decode("ascii"))
    token = registry.create_token(role="publisher", namespace="bench").secret
    from lorareg.signing.keys import load_public_key

    trust = TrustStore().with_key(key.public_key, label="bench", role="publisher", namespace="bench")
    for entry in registry.keys():
        trust = trust.with_key(
            load_public_key(entry["public_key"].encode()), label="registry", role="registry", namespace=None
        )
    trust_path = tmp / "trust.toml"
    trust.save(trust_path)
    env = {**os.environ, "LORAREG_TOKEN": token}
    return env, key_path, trust_path


def _timed_process(command: list[str], *, env: dict[str, str], rss: PeakRss | None, label: str) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if rss is not None:
        rss.watch(label, proc.pid)
    _, err = proc.communicate()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])}… failed ({proc.returncode}): {err.decode()[-500:]}")
    return elapsed


def _lorareg() -> list[str]:
    return [sys.executable, "-m", "lorareg"]


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    main()
