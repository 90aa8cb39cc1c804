"""Weight fingerprints: cost of fingerprinting next to inspect's hashes, exact compare, and registry lookups.

(a) A 1 GiB SDXL kohya-shaped adapter (the layout of ``benchmarks/inspect.py``, finite F16 values so every
    module is sketched): ``inspect_file`` (facts and the six hashes), the same with the fingerprint computed
    beside it as ``lorareg inspect --fingerprint`` does, and ``fingerprint_file`` alone, each in a fresh
    child process, alternating; median wall time and each child's peak RSS.
    Targets: --fingerprint adds <= 25% to inspect's time; RSS < 200 MB.
(b) ``compare_files`` of two SDXL rank-32 adapters (~220 MB each, UNet and both text encoders).
    Target < 1 s (median).
(c) At 100,000 fingerprinted versions on SQLite and (``--backend postgres``) PostgreSQL: the near-duplicate
    check of a publish (``refuse_revoked_copy``: 1% of versions revoked) and the similar-adapters query
    (``similar``: LSH band lookup, pooled ranking, sketch scoring), in-process against the database, p50/p95
    of ``--queries`` each. Rows are bulk-inserted (versions, blobs, fingerprints with 16-module sketches and
    their 24 band keys): seeding through publish would take hours and is not what is measured.
    Target p95 < 100 ms.

    .venv/bin/python -m benchmarks.fingerprint                       # (a), (b), (c) on SQLite
    .venv/bin/python -m benchmarks.fingerprint --backend postgres    # (c) on PostgreSQL too
    .venv/bin/python -m benchmarks.fingerprint --size-mib 64 --versions 10000   # quick
"""

from __future__ import annotations

import os

# One BLAS thread per process, set before numpy loads: the products here are small (rank x k), and a
# multi-threaded OpenBLAS on a busy host spins threads against each other (measured 10x slower at load 9
# on 2 cores). Servers should run the same way (docs/fingerprints.md). Override by exporting the variable.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from benchmarks import inspect as bench_inspect

DATA_DIR = Path(__file__).resolve().parent / "_data"
MIB = 2**20
TARGET_RATIO = 0.25
TARGET_RSS_BYTES = 200 * 10**6
TARGET_COMPARE_S = 1.0
TARGET_LOOKUP_P95_S = 0.100
FAMILIES = ("sd1", "sdxl", "sd3", "flux1", "flux2")
SKETCH_MODULES = 16

_CHILD = """
import json, resource, sys, time
from lorareg.adapter.inspect import inspect_file
from lorareg.adapter.fingerprint import fingerprint_file
started = time.perf_counter()
if sys.argv[1] == "inspect":
    inspect_file(sys.argv[2])
elif sys.argv[1] == "fingerprint":
    assert len(fingerprint_file(sys.argv[2]).modules) > 900
else:  # what `lorareg inspect --fingerprint` does: the sketch beside the hashes, in a forked child
    from lorareg.cli.inspect_cmd import _beside, _fingerprint_summary
    with _beside() as pool:
        pending = pool.submit(_fingerprint_summary, sys.argv[2])
        inspect_file(sys.argv[2])
        assert pending.result()["modules"] > 900
print(json.dumps({"seconds": time.perf_counter() - started,
                  "maxrss": max(resource.getrusage(who).ru_maxrss * 1024
                              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: a, b, c, sqlite")
    args = parser.parse_args(argv)
    skip = set(args.skip.split(","))
    ok = True
    if "a" not in skip:
        ok &= part_a(args.size_mib, args.repeat)
    if "b" not in skip:
        ok &= part_b(args.repeat)
    if "c" not in skip:
        backends = ["sqlite"] + (["postgres"] if args.backend == "postgres" else [])
        backends = [b for b in backends if b not in skip]
        for backend in backends:
            ok &= part_c(backend, args.versions, args.queries)
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


# --- (a) fingerprint vs hashes --------------------------------------------------------------------------


def part_a(size_mib: int, repeat: int) -> bool:
    path = finite_adapter(size_mib * MIB, name=f"sdxl-kohya-finite-{size_mib}MiB")
    bench_inspect._warm_cache(path)
    runs: dict[str, list[dict[str, Any]]] = {"inspect": [], "inspect+fingerprint": [], "fingerprint": []}
    for _ in range(repeat):
        for kind in runs:
            runs[kind].append(_child(kind, path))
    median = {k: statistics.median(r["seconds"] for r in v) for k, v in runs.items()}
    rss = {k: max(r["maxrss"] for r in v) for k, v in runs.items()}
    added = median["inspect+fingerprint"] / median["inspect"] - 1
    print(f"(a) {path.name} ({path.stat().st_size / MIB:.0f} MiB, {os.cpu_count()} CPUs, load {_load():.1f})")
    for kind in runs:
        print(f"    {kind:<20} median {median[kind]:.2f} s, peak RSS {rss[kind] / 1e6:.0f} MB")
    print(f"    --fingerprint adds {added * 100:.0f}% to inspect (target <= {TARGET_RATIO * 100:.0f}%)")
    return added <= TARGET_RATIO and max(rss.values()) < TARGET_RSS_BYTES


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _child(kind: str, path: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _CHILD, kind, str(path)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(done.stderr)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def finite_adapter(size_bytes: int, *, name: str, rank: int | None = None, seed: int = 0) -> Path:
    """The SDXL kohya layout of ``benchmarks/inspect.py`` with finite F16 weights (written once)."""
    path = DATA_DIR / f"{name}.safetensors"
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    modules = list(bench_inspect._sdxl_kohya_modules())
    per_rank = sum(2 * (i + o) for _, i, o in modules)
    rank = rank or max(1, size_bytes // per_rank)
    tensors: list[tuple[str, list[int]]] = []
    for module, fan_in, fan_out in modules:
        tensors += [(f"{module}.alpha", []), (f"{module}.lora_down.weight", [rank, fan_in])]
        tensors.append((f"{module}.lora_up.weight", [fan_out, rank]))
    tensors.sort()
    header: dict[str, Any] = {}
    offset = 0
    for tensor, shape in tensors:
        nbytes = 2 * (shape[0] * shape[1] if shape else 1)
        header[tensor] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    pool = (np.random.default_rng(seed).standard_normal(4 * MIB) * 0.01).astype("<f2").tobytes()
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        out.write(len(raw).to_bytes(8, "little") + raw)
        for i, (_, shape) in enumerate(tensors):
            if not shape:
                out.write(np.float16(rank).tobytes())
                continue
            remaining, start = 2 * shape[0] * shape[1], (i * 4099 * 2) % (len(pool) // 2)
            while remaining:
                piece = min(remaining, len(pool) - start)
                out.write(pool[start : start + piece])
                remaining -= piece
                start = 0
    partial.rename(path)
    return path


# --- (b) compare ---------------------------------------------------------------------------------------


def part_b(repeat: int) -> bool:
    from lorareg.adapter.fingerprint import compare_files

    a = finite_adapter(0, name="sdxl-kohya-rank32-a", rank=32, seed=1)
    b = finite_adapter(0, name="sdxl-kohya-rank32-b", rank=32, seed=2)
    bench_inspect._warm_cache(a)
    bench_inspect._warm_cache(b)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = compare_files(a, b)
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    size = a.stat().st_size / MIB
    print(f"(b) compare two SDXL rank-32 adapters ({size:.0f} MiB each, {result.modules_shared} modules): ")
    print(f"    median {median:.3f} s (target < {TARGET_COMPARE_S} s); similarity {result.similarity:.3f}")
    return median < TARGET_COMPARE_S


# --- (c) registry lookups ------------------------------------------------------------------------------


def part_c(backend: str, versions: int, queries: int) -> bool:
    from lorareg.errors import GoneError
    from lorareg.registry import fingerprints
    from lorareg.registry.db import open_database

    with _database(backend) as url:
        db = open_database(url)
        started = time.perf_counter()
        targets = _seed(db.engine, versions)
        seeded_s = time.perf_counter() - started
        print(f"(c) {backend}: seeded {versions:,} fingerprinted versions in {seeded_s:.0f} s")
        with db.engine.connect() as conn:  # what autovacuum / lorareg's start-up statistics do in production
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        revoked_times, similar_times, refused = [], [], 0
        for i in range(queries):
            query = _near_copy(targets[i % len(targets)], seed=i)
            with db.read() as session:
                started = time.perf_counter()
                try:
                    fingerprints.refuse_revoked_copy(session, query, threshold=0.9)
                except GoneError:
                    refused += 1
                revoked_times.append(time.perf_counter() - started)
            with db.read() as session:
                started = time.perf_counter()
                found = fingerprints.similar(session, query)
                similar_times.append(time.perf_counter() - started)
            assert found, "a near copy found nothing"
        db.engine.dispose()
    ok = True
    for label, times in (
        ("near-duplicate check at publish", revoked_times),
        ("similar adapters", similar_times),
    ):
        p50, p95 = statistics.median(times), _p95(times)
        print(f"    {label}: p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms (target p95 < 100 ms)")
        ok &= p95 < TARGET_LOOKUP_P95_S
    print(f"    refused {refused} of {queries} near copies (every second query copies a revoked version)")
    return ok and refused == queries // 2


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


@contextlib.contextmanager
def _database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="lorareg-bench-fp-") as scratch:
            yield f"sqlite:///{scratch}/bench.db"
        return
    from benchmarks._postgres import fresh_database, throwaway_cluster

    with throwaway_cluster() as server:
        yield fresh_database(server)


def _seed(engine: sa.Engine, count: int) -> list[Any]:
    """Bulk-insert ``count`` versions with fingerprints; return fingerprints to copy, revoked and active
    alternately."""
    from lorareg.adapter.fingerprint import Fingerprint
    from lorareg.registry.db import Adapter, Blob, Namespace, Revocation, Version
    from lorareg.registry.db.fingerprint_tables import FingerprintBand, FingerprintRow

    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    revoked_targets: list[Fingerprint] = []
    active_targets: list[Fingerprint] = []
    with engine.begin() as conn:
        conn.execute(sa.insert(Namespace), [{"name": "bench", "created": now}])
    batch = 5_000
    for start in range(0, count, batch):
        rows: dict[str, list[dict[str, Any]]] = {
            k: [] for k in ("blob", "adapter", "version", "fp", "band", "rev")
        }
        for i in range(start, min(count, start + batch)):
            sha = f"{i:064x}"
            fp = _random_fingerprint(rng, FAMILIES[i % len(FAMILIES)])
            revoked = i % 100 == 0
            if i % 1000 in (0, 1):  # i % 100 == 0 is revoked: one revoked and one active target per 1000
                (revoked_targets if revoked else active_targets).append(fp)
            rows["blob"].append(_blob(sha, now))
            rows["adapter"].append({"name": f"bench/a{i}", "namespace": "bench", "created": now})
            rows["version"].append(_version(i, sha, fp.family, now, revoked=revoked))
            rows["fp"].append(
                {"sha256": sha, "family": fp.family, "modules": len(fp.modules), "created": now,
                 "pooled": fp.pooled.astype("<f4").tobytes(), "sketch": fp.to_bytes()}
            )  # fmt: skip
            rows["band"] += [{"family": fp.family, "band_key": k, "sha256": sha} for k in fp.band_keys()]
            if revoked:
                rows["rev"].append(
                    {"sha256": sha, "reason": "upheld takedown (benchmark)", "revoked_at": now}
                )
        with engine.begin() as conn:
            for key, table in (
                ("blob", Blob),
                ("adapter", Adapter),
                ("version", Version),
                ("fp", FingerprintRow),
            ):
                conn.execute(sa.insert(table), rows[key])
            conn.execute(sa.insert(FingerprintBand), rows["band"])
            if rows["rev"]:
                conn.execute(sa.insert(Revocation), rows["rev"])
    return [fp for pair in zip(revoked_targets, active_targets, strict=False) for fp in pair]


def _random_fingerprint(rng: np.random.Generator, family: str) -> Any:
    from lorareg.adapter.fingerprint import Fingerprint

    sketches = rng.standard_normal((SKETCH_MODULES, 8, 8)).astype(np.float32)
    pooled = rng.standard_normal(256).astype(np.float32)
    names = tuple(f"unet.down_blocks.0.attentions.0.transformer_blocks.0.m{j}" for j in range(SKETCH_MODULES))
    energies = np.sum(sketches**2, axis=(1, 2)).astype(np.float32)
    return Fingerprint(family, names, sketches, energies, pooled / np.linalg.norm(pooled))


def _near_copy(fp: Any, *, seed: int) -> Any:
    """``fp`` plus 20% noise: what a re-packaged, slightly retrained copy's fingerprint looks like."""
    from lorareg.adapter.fingerprint import Fingerprint

    rng = np.random.default_rng(1000 + seed)
    sketches = fp.sketches + 0.2 * rng.standard_normal(fp.sketches.shape).astype(np.float32)
    pooled = fp.pooled + 0.2 * rng.standard_normal(fp.pooled.shape).astype(np.float32) / 16
    energies = np.sum(sketches**2, axis=(1, 2)).astype(np.float32)
    return Fingerprint(fp.family, fp.modules, sketches, energies, pooled / np.linalg.norm(pooled))


def _blob(sha: str, now: datetime) -> dict[str, Any]:
    return {"sha256": sha, "size": 1, "autov1": None, "autov2": sha[:10], "autov3": sha, "crc32": sha[:8],
            "blake3": sha, "uploaded_at": now}  # fmt: skip


def _version(i: int, sha: str, family: str, now: datetime, *, revoked: bool) -> dict[str, Any]:
    return {
        "name": f"bench/a{i}", "version": "1.0.0", "semver_key": "1.0.0", "sha256": sha, "manifest": {},
        "bundle": b"", "signers": [], "family": family, "creators": [], "trigger_words": [], "tags": [],
        "description": "", "published_at": now, "yanked": False, "revoked": revoked,
    }  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
