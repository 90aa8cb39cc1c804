"""Pull throughput and memory: ``lorareg pull --verify`` of a large adapter against ``curl -o`` of its blob.

One run: generate an adapter of ``--size-mib`` (default 1024), start ``lorareg serve`` on loopback, publish
it with ``lorareg publish`` (peak RSS of server and client sampled), then ``--runs`` rounds of: ``curl -o``
of the blob URL (the baseline: no hashing, no verification) and ``lorareg pull --verify`` into a fresh cache
(revocation list, download with the one digest the signature check needs computed as the bytes arrive,
signature, facts and policy checks) and ``lorareg pull --verify --out DIR`` (the same, plus the verified
file placed in DIR by reflink or hard link: issue 18's one write per pull), each going first in turn, each
started with no dirty pages left by the previous one (``sync``), so none pays for another's writes. Prints
medians, the ratios (pull/curl target <= 1.25x; pull --out / pull target <= 1.1x), CPU seconds per
command, the CLI's start-up floor (``lorareg --help``) and peak RSS (target < 150 MB for server and
clients); exits 1 when a target is missed.

    .venv/bin/python -m benchmarks.pull                 # 1 GiB, 5 rounds
    .venv/bin/python -m benchmarks.pull --size-mib 64 --runs 3

Run it with ``-m`` (or as a script: it takes its own directory off ``sys.path``, where ``inspect.py`` would
shadow the standard library's ``inspect``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds scripts named like stdlib modules (inspect.py): keep it off the import path before
# importing anything that imports ``inspect`` (dataclasses does).
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root: ``benchmarks._server``

import argparse  # noqa: E402
import compileall  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from urllib.parse import urljoin  # noqa: E402

import httpx  # noqa: E402
import psutil  # noqa: E402

import lorareg  # noqa: E402
from benchmarks._server import free_port, wait_healthy  # noqa: E402
from lorareg.demo.samples import write_large_adapter  # noqa: E402
from lorareg.registry.service import open_registry  # noqa: E402
from lorareg.signing.keys import generate  # noqa: E402
from lorareg.signing.trust import TrustStore  # noqa: E402

SAMPLE_INTERVAL_S = 0.02  # RSS sampling period
MIB = 2**20
TARGET_RATIO = 1.25  # pull --verify / curl -o, medians
TARGET_OUT_RATIO = 1.1  # pull --verify --out DIR / pull --verify (issue 18: one write per pull)
TARGET_RSS_BYTES = 150 * 10**6  # peak RSS of the server and of each client
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


@dataclass
class Timings:
    """Wall and CPU seconds of each run of one command."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # Time the CLI as installed (pip compiles on install), not a recompile in every process when the
    # shell sets PYTHONDONTWRITEBYTECODE: write current .pyc files once, up front.
    compileall.compile_dir(str(Path(lorareg.__file__).parent), quiet=1)
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
    port = free_port()
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
        wait_healthy(url)
        env = {**env, "LORAREG_REGISTRY": url}
        publish_s, _ = _timed_process(
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
        answer = httpx.get(f"{url}/api/v1/resolve", params={"ref": "bench/large@1.0.0"}).json()
        blob_url = urljoin(f"{url}/", answer["blob_url"])  # relative unless LORAREG_PUBLIC_URL is set
        curl = ["curl", "-sSf", "-o", str(tmp / "curl.out"), blob_url]
        pull = [*_lorareg(), "pull", "bench/large@1.0.0", "--verify", "--trust", str(trust_path)]
        timings = {"curl": Timings(), "pull": Timings(), "pull-out": Timings(), "help": Timings()}
        for i in range(runs):
            pull_env = {**env, "LORAREG_CACHE": str(tmp / f"cache-{i}")}
            out_env = {**env, "LORAREG_CACHE": str(tmp / f"cache-out-{i}")}
            order = [
                ("curl", curl, env),
                ("pull", pull, pull_env),
                ("pull-out", [*pull, "--out", str(tmp / f"out-{i}")], out_env),
            ]
            for name, command, command_env in order[i % 3 :] + order[: i % 3]:  # each goes first in turn
                os.sync()  # the previous command's writes are not this one's cost
                label = "pull client" if name != "curl" else ""
                timings[name].add(*_timed_process(command, env=command_env, rss=rss, label=label))
            (tmp / "curl.out").unlink()
            for leftover in (f"cache-{i}", f"cache-out-{i}", f"out-{i}"):
                shutil.rmtree(tmp / leftover)
            timings["help"].add(*_timed_process([*_lorareg(), "--help"], env=env, rss=None, label=""))
    finally:
        rss.stop()
        server.terminate()
        server.wait(timeout=10)
    if not _report(size, timings, rss.peaks):
        sys.exit(1)


def _report(size: int, timings: dict[str, Timings], peaks: dict[str, int]) -> bool:
    """Print the results; return whether every target was met."""
    curl, pull, out = (statistics.median(timings[n].wall) for n in ("curl", "pull", "pull-out"))
    titles = (("curl", "curl -o"), ("pull", "pull --verify"), ("pull-out", "pull --verify --out"))
    for name, title in titles:
        runs = timings[name]
        wall = statistics.median(runs.wall)
        print(
            f"{title:20} median {wall:.2f} s ({size / MIB / wall:,.0f} MiB/s), "
            f"CPU {statistics.median(runs.cpu):.2f} s; runs {_fmt(runs.wall)}"
        )
    print(f"lorareg --help       median {statistics.median(timings['help'].wall):.2f} s (CLI start-up floor)")
    ratio = pull / curl
    print(f"ratio pull/curl: {ratio:.2f}x (target <= {TARGET_RATIO}x)")
    out_ratio = out / pull
    print(f"ratio pull --out / pull: {out_ratio:.2f}x (target <= {TARGET_OUT_RATIO}x)")
    for label, peak in sorted(peaks.items()):
        print(f"peak RSS {label:15} {peak / 1e6:6.0f} MB (target < {TARGET_RSS_BYTES / 1e6:.0f} MB)")
    within = ratio <= TARGET_RATIO and out_ratio <= TARGET_OUT_RATIO
    return within and all(peak < TARGET_RSS_BYTES for peak in peaks.values())


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


def _timed_process(
    command: list[str], *, env: dict[str, str], rss: PeakRss | None, label: str
) -> tuple[float, float]:
    """Run ``command``; return (wall seconds, CPU seconds: user + system of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if rss is not None and label:
        rss.watch(label, proc.pid)
    _, err = proc.communicate()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])}… failed ({proc.returncode}): {err.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def _lorareg() -> list[str]:
    return [sys.executable, "-m", "lorareg"]


if __name__ == "__main__":
    main()
