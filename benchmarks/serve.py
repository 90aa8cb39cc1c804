"""Serving many clients at once: 16 concurrent ``curl -o /dev/null`` of one 1 GiB blob.

Three ways to serve the same bytes, measured in alternating rounds of one run:

- **nginx** (the baseline): a static nginx (2 workers, ``sendfile``) serving the adapter file itself;
- **built-in**: ``lorareg serve`` streaming the blob through its own route;
- **x-accel**: ``lorareg serve`` with ``LORAREG_BLOB_OFFLOAD=x-accel`` behind the documented nginx front
  (``docs/deploy/nginx-x-accel.conf``): lorareg decides, nginx streams.

For each: aggregate throughput (bytes of all clients / wall time), server CPU seconds (lorareg's process,
plus nginx's workers where nginx carries the bytes) and peak RSS of the lorareg process. Prints medians of
``--rounds`` (default 7) with their spread and the ratios against nginx; targets (issue 18): built-in
≥ 0.85x and x-accel ≥ 0.95x nginx's aggregate, server CPU per GiB ≤ 2x nginx's, lorareg RSS ≤ 150 MB.
The file is read once up front so every round serves from the page cache.

    .venv/bin/python -m benchmarks.serve                      # 1 GiB, 16 clients, 7 rounds
    .venv/bin/python -m benchmarks.serve --size-mib 256 --rounds 3
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # keep benchmarks/inspect.py off the path

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import ExitStack, contextmanager  # noqa: E402

import httpx  # noqa: E402
import psutil  # noqa: E402

from benchmarks._nginx import run_nginx  # noqa: E402
from benchmarks._server import free_port, wait_healthy  # noqa: E402
from benchmarks.pull import MANIFEST, PeakRss, _lorareg, _prepare_registry, _timed_process  # noqa: E402
from lorareg.demo.samples import write_large_adapter  # noqa: E402

MIB = 2**20
TARGET_BUILTIN = 0.85
TARGET_X_ACCEL = 0.95
TARGET_CPU_RATIO = 2.0
TARGET_RSS_BYTES = 150 * 10**6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed")
    with tempfile.TemporaryDirectory(prefix="lorareg-bench-serve-") as tmp:
        ok = run(Path(tmp), size=args.size_mib * MIB, clients=args.clients, rounds=args.rounds)
    sys.exit(0 if ok else 1)


def run(tmp: Path, *, size: int, clients: int, rounds: int) -> bool:
    adapter = tmp / "static" / "large.safetensors"
    adapter.parent.mkdir()
    write_large_adapter(adapter, size_bytes=size)
    env, key_path, _ = _prepare_registry(tmp)
    (tmp / "manifest.toml").write_text(MANIFEST, encoding="utf-8")
    rss = PeakRss()
    with ExitStack() as stack:
        builtin = stack.enter_context(_serve(tmp, env, offload="none"))
        accel = stack.enter_context(_serve(tmp, env, offload="x-accel"))
        publish = [
            *_lorareg(),
            "publish",
            str(adapter),
            "--manifest",
            str(tmp / "manifest.toml"),
            "--key",
            str(key_path),
        ]
        _timed_process(publish, env={**env, "LORAREG_REGISTRY": builtin.url}, rss=None, label="")
        path = httpx.get(f"{builtin.url}/api/v1/resolve", params={"ref": "bench/large@1.0.0"}).json()[
            "blob_url"
        ]
        path = "/api/v1/" + path.split("/api/v1/", 1)[1]
        nginx = stack.enter_context(
            run_nginx(
                tmp / "nginx",
                static_root=adapter.parent,
                upstream=accel.url.removeprefix("http://"),
                blobs=tmp / "data" / "blobs",
            )
        )
        rss.watch("lorareg built-in", builtin.process.pid)
        rss.watch("lorareg x-accel", accel.process.pid)
        subprocess.run(["cat", str(adapter)], stdout=subprocess.DEVNULL, check=True)  # into the page cache
        workers = psutil.Process(nginx.master_pid).children()
        modes = {
            "nginx": (f"{nginx.static_url}/large.safetensors", [], workers),
            "built-in": (f"{builtin.url}{path}", [psutil.Process(builtin.process.pid)], []),
            "x-accel": (f"{nginx.front_url}{path}", [psutil.Process(accel.process.pid)], workers),
        }
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in modes}
        names = list(modes)
        for i in range(rounds):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                url, lorareg_procs, nginx_procs = modes[name]
                results[name].append(_round(url, clients, [*lorareg_procs, *nginx_procs]))
    rss.stop()
    return _report(results, size * clients, rss.peaks)


class _Served:
    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url, self.process = url, process


@contextmanager
def _serve(tmp: Path, env: dict[str, str], *, offload: str) -> Iterator[_Served]:
    port = free_port()
    process = subprocess.Popen(
        [*_lorareg(), "serve", "--data", str(tmp / "data"), "--port", str(port)],
        env={**env, "LORAREG_BLOB_OFFLOAD": offload},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        yield _Served(url, process)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _round(url: str, clients: int, procs: list[psutil.Process]) -> tuple[float, float]:
    """(wall seconds, server CPU seconds) of ``clients`` concurrent curl downloads of ``url``."""
    os.sync()
    before = sum(_cpu(p) for p in procs)
    started = time.perf_counter()
    downloads = [
        subprocess.Popen(["curl", "-sSf", "-o", "/dev/null", url], stderr=subprocess.PIPE)
        for _ in range(clients)
    ]
    for download in downloads:
        _, err = download.communicate()
        if download.returncode != 0:
            raise SystemExit(f"curl {url} failed: {err.decode()[-300:]}")
    wall = time.perf_counter() - started
    return wall, sum(_cpu(p) for p in procs) - before


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _report(results: dict[str, list[tuple[float, float]]], total_bytes: int, peaks: dict[str, int]) -> bool:
    gib = total_bytes / 2**30
    summary: dict[str, tuple[float, float]] = {}
    for name, runs in results.items():
        rates = [total_bytes / wall / 1e9 for wall, _ in runs]
        cpus = [cpu / gib for _, cpu in runs]
        summary[name] = (statistics.median(rates), statistics.median(cpus))
        print(
            f"{name:9} aggregate median {summary[name][0]:.2f} GB/s "
            f"(spread {min(rates):.2f}-{max(rates):.2f}), "
            f"server CPU {summary[name][1]:.3f} s/GiB (spread {min(cpus):.3f}-{max(cpus):.3f})"
        )
    base_rate, base_cpu = summary["nginx"]
    ok = True
    for name, target in (("built-in", TARGET_BUILTIN), ("x-accel", TARGET_X_ACCEL)):
        rate_ratio = summary[name][0] / base_rate
        cpu_ratio = summary[name][1] / base_cpu if base_cpu else float("inf")
        print(
            f"{name:9} {rate_ratio:.2f}x nginx's aggregate (target >= {target}x), "
            f"CPU/GiB {cpu_ratio:.2f}x (target <= {TARGET_CPU_RATIO}x)"
        )
        ok = ok and rate_ratio >= target and cpu_ratio <= TARGET_CPU_RATIO
    for label, peak in sorted(peaks.items()):
        print(f"peak RSS {label:17} {peak / 1e6:6.0f} MB (target <= {TARGET_RSS_BYTES / 1e6:.0f} MB)")
        ok = ok and peak <= TARGET_RSS_BYTES
    return ok


if __name__ == "__main__":
    main()
