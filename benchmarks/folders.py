"""Benchmark: ``lorareg import`` and ``lorareg audit`` on UI folders (issue 13).

Three measurements, each through the real CLI in a child process (start-up included):

(a) ``lorareg import DIR --publish`` of ``--adapters`` (500) small adapters, each with a Civitai Helper
    ``.civitai.info`` and an A1111 ``.json`` sidecar, into a ``lorareg serve`` on loopback (walk, six hashes,
    sidecars, drafts, sign, upload, publish) — target < 60 s; the same without ``--publish`` is printed too;
(b) the first ``lorareg audit DIR`` of a ``--audit-gib`` (2) GiB folder (16 adapters, empty hash cache,
    page cache warm) against ``openssl dgst -sha256`` of the same files, run alternately — target: audit
    throughput >= 80% of openssl's (medians of ``--runs``);
(c) the re-audit of an unchanged ``--files`` (2,000) file folder, hash cache warm — target < 2 s.

Exits 1 when a target is missed. Data goes to ``benchmarks/_data/folders`` (or ``--dir``).
Run: .venv/bin/python -m benchmarks.folders [--adapters 500] [--audit-gib 2] [--files 2000] [--runs 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root: ``benchmarks._server``

import argparse  # noqa: E402
import compileall  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import lorareg  # noqa: E402
from benchmarks._server import free_port, wait_healthy  # noqa: E402
from lorareg.demo.samples import sample_adapter_bytes, write_large_adapter  # noqa: E402
from lorareg.registry.service import open_registry  # noqa: E402
from lorareg.signing.keys import generate  # noqa: E402
from lorareg.signing.trust import TrustStore  # noqa: E402

IMPORT_TARGET_S = 60.0
AUDIT_THROUGHPUT_TARGET = 0.80  # of openssl dgst -sha256
REAUDIT_TARGET_S = 2.0
AUDIT_FILES = 16
FAMILIES = ("sd1", "sdxl", "flux1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapters", type=int, default=500)
    parser.add_argument("--audit-gib", type=float, default=2.0)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent / "_data" / "folders")
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    compileall.compile_dir(
        Path(lorareg.__file__).parent, quiet=1
    )  # no first-run bytecode compile in a timing
    try:
        ok = [
            bench_import(args.dir, args.adapters),
            bench_audit(args.dir, args.audit_gib, args.runs),
            bench_reaudit(args.dir, args.files, args.runs),
        ]
    finally:
        shutil.rmtree(args.dir, ignore_errors=True)
    sys.exit(0 if all(ok) else 1)


def bench_import(root: Path, count: int) -> bool:
    library = root / "library"
    for i in range(count):
        folder = library / f"set{i % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / f"Adapter {i:04d}.safetensors"
        file.write_bytes(sample_adapter_bytes(FAMILIES[i % 3], seed=i))
        info = {
            "id": 10000 + i,
            "modelId": 500 + i,
            "baseModel": "SDXL 1.0",
            "trainedWords": [f"word{i}"],
            "model": {
                "name": f"Adapter {i}",
                "type": "LORA",
                "allowCommercialUse": ["Image"],
                "allowDerivatives": True,
                "allowNoCredit": False,
                "poi": False,
            },
            "creator": {"username": f"artist{i % 7}"},
        }
        file.with_suffix(".civitai.info").write_text(json.dumps(info))
        a1111 = {
            "description": f"adapter {i}",
            "activation text": f"word{i}",
            "preferred weight": 0.8,
            "sd version": "SDXL",
        }
        file.with_suffix(".json").write_text(json.dumps(a1111))
    env, key = _prepare_registry(root)
    drafts_s = _timed(_lorareg("import", str(library), "--out", str(root / "drafts"), "--json"), env=env)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*_lorareg("serve", "--data", str(root / "data"), "--port", str(port))],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(url)
        env = {
            **env,
            "LORAREG_CACHE": str(root / "cache-publish"),
        }  # a cold hash cache: hash everything again
        publish_s = _timed(
            _lorareg(
                "import",
                str(library),
                "--publish",
                "--namespace",
                "bench",
                "--key",
                str(key),
                "--registry",
                url,
                "--json",
            ),
            env=env,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    ok = publish_s < IMPORT_TARGET_S
    print(
        f"(a) import of {count} adapters with sidecars: drafts only {drafts_s:.1f} s; "
        f"with --publish {publish_s:.1f} s (target < {IMPORT_TARGET_S:.0f} s) {'ok' if ok else 'MISSED'}"
    )
    return ok


def bench_audit(root: Path, gib: float, runs: int) -> bool:
    folder = root / "big"
    folder.mkdir()
    each = int(gib * 2**30) // AUDIT_FILES
    files = [folder / f"big{i:02d}.safetensors" for i in range(AUDIT_FILES)]
    for i, file in enumerate(files):
        write_large_adapter(file, size_bytes=each, seed=i)
    env = _env(root)
    _timed(["openssl", "dgst", "-sha256", *map(str, files)], env=env)  # warm the page cache
    audit_times, openssl_times = [], []
    for run in range(runs):
        openssl_times.append(_timed(["openssl", "dgst", "-sha256", *map(str, files)], env=env))
        cold = {**env, "LORAREG_CACHE": str(root / f"cache-audit-{run}")}
        audit_times.append(_timed(_lorareg("audit", str(folder), "--json"), env=cold))
    audit_s, openssl_s = statistics.median(audit_times), statistics.median(openssl_times)
    ratio = openssl_s / audit_s
    total = each * AUDIT_FILES / 2**30
    ok = ratio >= AUDIT_THROUGHPUT_TARGET
    verdict = "ok" if ok else "MISSED"
    print(
        f"(b) first audit of {total:.2f} GiB in {AUDIT_FILES} files: {audit_s:.2f} s "
        f"({total / audit_s:.2f} GiB/s); openssl dgst -sha256 {openssl_s:.2f} s "
        f"({total / openssl_s:.2f} GiB/s); throughput {ratio:.0%} of openssl "
        f"(target >= {AUDIT_THROUGHPUT_TARGET:.0%}) {verdict}"
    )
    shutil.rmtree(folder)
    return ok


def bench_reaudit(root: Path, count: int, runs: int) -> bool:
    folder = root / "many"
    for i in range(count):
        sub = folder / f"d{i % 40:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"a{i:05d}.safetensors").write_bytes(sample_adapter_bytes("sd1", seed=i))
    env = {**_env(root), "LORAREG_CACHE": str(root / "cache-reaudit")}
    first = _timed(_lorareg("audit", str(folder), "--json"), env=env)
    again = statistics.median(_timed(_lorareg("audit", str(folder), "--json"), env=env) for _ in range(runs))
    cpu = statistics.median(CPU_SECONDS[-runs:])
    ok = again < REAUDIT_TARGET_S
    print(
        f"(c) audit of {count} files: first {first:.2f} s; unchanged re-audit {again:.2f} s wall, "
        f"{cpu:.2f} s CPU (load average {os.getloadavg()[0]:.1f}; target < {REAUDIT_TARGET_S:.0f} s wall, "
        f"process start-up included) {'ok' if ok else 'MISSED'}"
    )
    return ok


def _prepare_registry(root: Path) -> tuple[dict[str, str], Path]:
    registry = open_registry(root / "data")
    key = generate()
    key_path = root / "bench.key"
    key_path.write_bytes(key.to_pem())
    key_path.chmod(0o600)
    registry.add_publisher("bench", key.public_key.pem.decode("ascii"))
    token = registry.create_token(role="publisher", namespace="bench").secret
    return {**_env(root), "LORAREG_TOKEN": token}, key_path


def _env(root: Path) -> dict[str, str]:
    trust = root / "trust.toml"
    if not trust.exists():
        TrustStore().save(trust)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAREG_")}
    return {**env, "LORAREG_TRUST": str(trust), "LORAREG_CACHE": str(root / "cache")}


CPU_SECONDS: list[float] = []  # user + system seconds of each timed child, in order


def _timed(command: list[str], *, env: dict[str, str]) -> float:
    """Wall seconds of one child process; its CPU seconds are appended to ``CPU_SECONDS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_SECONDS.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command[:4])}… failed ({done.returncode}): {done.stderr.decode()[-500:]}"
        )
    return elapsed


def _lorareg(*args: str) -> list[str]:
    return [sys.executable, "-m", "lorareg", *args]


if __name__ == "__main__":
    main()
