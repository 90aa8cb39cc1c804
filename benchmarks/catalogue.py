"""Catalogue search latency at 1,000 and 100,000 versions, and publish throughput with 4 publishers at
once, on SQLite and — with ``--backend postgres`` — on PostgreSQL beside it in one run (SQLite: baseline).

For each backend and catalogue size: a fresh data dir (and database), the demo catalogue published for real
through the service (so the template rows are exactly what publishing writes), then clones with varied names,
families, licences, creators and descriptions bulk-inserted (search index included, through the service's
own ``index_versions``; seeding through HTTP would take hours and is not what is measured). A ``lorareg
serve`` process then answers a fixed mix of searches, filters, sorts and second pages (p50/p95). At the
largest size, 4 threads publish pre-signed adapters through HTTP at once (upload + publish each), each in its
own namespace: publishes per second and the median publish latency.

    .venv/bin/python -m benchmarks.catalogue                                  # SQLite only
    .venv/bin/python -m benchmarks.catalogue --backend postgres               # SQLite, then PostgreSQL
    .venv/bin/python -m benchmarks.catalogue --backend postgres --counts 1000,10000 --publishes 25

PostgreSQL is a throwaway cluster with durable defaults (``benchmarks/_postgres.py``) unless
``--database-url`` names a server (the benchmark creates its databases there). Blobs are files on both.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from benchmarks import _bulk as bulk
from benchmarks._postgres import fresh_database, throwaway_cluster
from benchmarks._server import free_port, wait_healthy
from lorareg.demo.catalogue import seed_demo
from lorareg.demo.samples import sample_adapter_bytes
from lorareg.manifest.drafting import ManifestDraft
from lorareg.registry.db import Namespace, TlogLeaf, Version
from lorareg.registry.service import default_database_url, open_registry
from lorareg.signing.keys import generate
from lorareg.signing.sign import sign_file

WORDS = (
    "pixel ink wash neon city forest portrait anime comic watercolor sketch clay isometric retro "
    "cyberpunk noir pastel glitch vapor oil charcoal marble glass paper moss ember frost dune lunar "
    "solar coral velvet chrome rust amber jade onyx ivory cobalt crimson misty gothic baroque"
).split()
FAMILIES = ("sd1", "sdxl", "sd3", "flux1", "flux2")
LICENSES = ("CreativeML-OpenRAIL-M", "CC-BY-4.0", "proprietary", "CC0-1.0", "Apache-2.0")
SUBJECTS = ("style", "likeness", "character", "product", "concept")
STATUSES = ("obtained", "not-required", "public-domain", "unknown")
CREATORS = tuple(
    f"{a} {b}" for a in ("Mara", "Hana", "Leo", "Ilya", "Sam", "Noor") for b in ("Quist", "Sato", "Marsh")
)
BATCH = 10_000  # versions per bulk transaction (executemany / COPY)
PUBLISHERS = 4  # concurrent publishing clients
TARGET_P95_MS = 50.0  # search p95 at the largest size
TARGET_RATIO = 2.0  # search p95 at the largest size over p95 at the smallest
TARGET_PUBLISH_S = 30.0  # publishes per second, 4 publishers, at the largest size
DATA = Path(__file__).parent / "_data"  # git-ignored; each size's data dir is deleted after it
QUERIES = [  # the mix; each is run `--rounds` times per size
    {"q": "pixel"},
    {"q": "ink wash"},
    {"q": "neon", "family": "sdxl"},
    {"family": "flux1"},
    {"license": "CC-BY-4.0", "commercial_use": "true"},
    {"consent_subject": "likeness", "consent_status": "obtained"},
    {"creator": "Hana Sato"},
    {"sort": "name"},
    {"q": "forest portrait", "sort": "name"},
    {"family": "sd3", "license": "proprietary"},
]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="1000,100000", help="catalogue sizes, comma-separated")
    parser.add_argument("--million", action="store_true", help="the same as --counts 1000,1000000")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite",
                        help="postgres: measure PostgreSQL beside the SQLite baseline")  # fmt: skip
    parser.add_argument("--database-url", help="a PostgreSQL server URL to use instead of a throwaway one")
    parser.add_argument("--rounds", type=int, default=20, help="repetitions of the query mix per size")
    parser.add_argument("--publishes", type=int, default=50, help="publishes per publisher (4 publishers)")
    parser.add_argument("--per-query", action="store_true", help="also print p95 of each query of the mix")
    args = parser.parse_args()
    counts = [1000, 1_000_000] if args.million else [int(c) for c in args.counts.split(",")]
    backends = ["sqlite", "postgres"] if args.backend == "postgres" else ["sqlite"]
    results: dict[str, dict[str, float]] = {}
    with contextlib.ExitStack() as stack:
        server = None
        if "postgres" in backends:
            server = args.database_url or stack.enter_context(throwaway_cluster())
        for backend in backends:
            results[backend] = run_backend(
                backend, server, counts, rounds=args.rounds, each=args.publishes, per_query=args.per_query
            )
    missed = _summary(results, counts)
    if missed:
        print("missed: " + "; ".join(missed))
    sys.exit(1 if missed else 0)


def run_backend(
    backend: str, server: str | None, counts: list[int], *, rounds: int, each: int, per_query: bool = False
) -> dict[str, float]:
    """Search p50/p95 per size and, at the largest size, publish throughput; keys like ``p95@100000``."""
    out: dict[str, float] = {}
    for count in counts:
        DATA.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="lorareg-bench-cat-", dir=DATA) as tmp:
            data = Path(tmp)
            url = fresh_database(server) if backend == "postgres" and server else default_database_url(data)
            started = time.perf_counter()
            seed(data, url, count)
            print(
                f"[{backend}] seeded {count:,} versions in {time.perf_counter() - started:.1f} s", flush=True
            )
            with running_server(data, url) as base:
                p50, p95, by_query = measure(base, rounds=rounds)
                out[f"p50@{count}"], out[f"p95@{count}"] = p50, p95
                if per_query:
                    _print_per_query(backend, count, by_query)
                print(
                    f"[{backend}] {count:>9,} versions: search p50 {p50:6.1f} ms  p95 {p95:6.1f} ms",
                    flush=True,
                )
                if count == max(counts):
                    rate, median = measure_publishing(data, url, base, each=each)
                    out["publish/s"], out["publish p50"] = rate, median
                    print(f"[{backend}] {PUBLISHERS} publishers x {each}: {rate:.1f} publishes/s, "
                          f"median publish {median:.1f} ms (at {count:,} versions)", flush=True)  # fmt: skip
    return out


def _summary(results: dict[str, dict[str, float]], counts: list[int]) -> list[str]:
    """Print the table, the targets and the ratios; return the targets missed."""
    smallest, largest = min(counts), max(counts)
    missed: list[str] = []
    print("\nbackend    " + "  ".join(f"p95@{c:,}" for c in counts) + "   publishes/s  publish p50")
    for backend, r in results.items():
        cells = "  ".join(f"{r[f'p95@{c}']:>{len(f'p95@{c:,}')}.1f}" for c in counts)
        print(f"{backend:<10} {cells}   {r['publish/s']:>11.1f}  {r['publish p50']:>8.1f} ms")
    for backend, r in results.items():
        p95, ratio, rate = r[f"p95@{largest}"], r[f"p95@{largest}"] / r[f"p95@{smallest}"], r["publish/s"]
        checks = [
            (f"search p95 at {largest:,} = {p95:.1f} ms", p95 < TARGET_P95_MS, f"< {TARGET_P95_MS:.0f} ms"),
            (f"p95 {largest:,}/{smallest:,} = {ratio:.2f}x", ratio <= TARGET_RATIO,
             f"<= {TARGET_RATIO:.0f}x"),
            (f"{PUBLISHERS} publishers at {largest:,} = {rate:.1f}/s", rate >= TARGET_PUBLISH_S,
             f">= {TARGET_PUBLISH_S:.0f}/s"),
        ]  # fmt: skip
        for what, ok, target in checks:
            print(f"{backend}: {what} ({'meets' if ok else 'MISSES'} the {target} target)")
            if not ok:
                missed.append(f"{backend}: {what}")
    if "postgres" in results:
        pg, lite = results["postgres"], results["sqlite"]
        search = pg[f"p95@{largest}"] / lite[f"p95@{largest}"]
        publish = pg["publish/s"] / lite["publish/s"]
        print(f"ratios postgres/sqlite: search p95 at {largest:,} {search:.2f}x, publishes/s {publish:.2f}x")
    return missed


def seed(data_dir: Path, url: str, count: int) -> None:
    """The demo catalogue (real publishes), then clones of its rows up to ``count`` versions."""
    registry = open_registry(data_dir, database_url=url)
    seed_demo(registry, data_dir)
    engine = registry.db.engine
    with engine.begin() as conn:
        template = dict(conn.execute(sa.select(Version.__table__).limit(1)).mappings().one())
        next_id = conn.execute(sa.select(sa.func.max(Version.__table__.c.id))).scalar_one() + 1
        existing = conn.execute(sa.select(sa.func.count()).select_from(Version.__table__)).scalar_one()
    rng = random.Random(7)
    now = datetime.now(UTC)
    namespaces = [f"bench-{i}" for i in range(50)]
    with engine.begin() as conn:
        conn.execute(sa.insert(Namespace.__table__), [{"name": n, "created": now} for n in namespaces])
    with engine.begin() as conn:
        first_leaf = conn.execute(sa.select(sa.func.max(TlogLeaf.__table__.c.idx))).scalar_one() + 1

    def batches() -> Iterator[list[dict[str, Any]]]:
        start, end = next_id, next_id + count - existing
        for low in range(start, end, BATCH):
            yield [_clone(template, i, rng, namespaces, now) for i in range(low, min(low + BATCH, end))]

    bulk.load(engine, batches(), first_leaf=first_leaf, now=now)
    _analyse(engine)
    engine.dispose()


def _analyse(engine: sa.Engine) -> None:
    """One ANALYZE after the load (PostgreSQL: VACUUM ANALYZE, and the id sequence moved past the clones)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT setval('versions_id_seq', (SELECT max(id) FROM versions))"))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))


def _clone(
    template: dict[str, Any], row_id: int, rng: random.Random, namespaces: list[str], now: datetime
) -> dict[str, Any]:
    words = rng.sample(WORDS, 3)
    name = f"{rng.choice(namespaces)}/{words[0]}-{words[1]}-{row_id}"
    creators = [rng.choice(CREATORS)]
    return {
        **template,
        "id": row_id,
        "name": name,
        "version": "1.0.0",
        "family": rng.choice(FAMILIES),
        "license_id": rng.choice(LICENSES),
        "commercial_use": rng.random() < 0.5,
        "consent_subject": rng.choice(SUBJECTS),
        "consent_status": rng.choice(STATUSES),
        "creators": creators,
        "trigger_words": [words[2]],
        "tags": [words[0]],
        "description": " ".join(rng.sample(WORDS, 8)),
        "published_at": now - timedelta(seconds=row_id),
        "yanked": rng.random() < 0.02,
    }


@contextlib.contextmanager
def running_server(data_dir: Path, url: str) -> Iterator[str]:
    """``lorareg serve`` on ``data_dir`` and database ``url``; yields its base URL."""
    port = free_port()
    env = {**os.environ, "LORAREG_DATABASE_URL": url}
    server = subprocess.Popen(
        [sys.executable, "-m", "lorareg", "serve", "--data", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)


def measure(url: str, *, rounds: int) -> tuple[float, float, dict[str, list[float]]]:
    """Run the query mix against the server at ``url``; (p50, p95) in ms, and each query's timings."""
    by_query: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        for params in QUERIES:  # warm-up
            http.get("/api/v1/adapters", params=params)
        for _ in range(rounds):
            for params in QUERIES:
                label = "&".join(f"{k}={v}" for k, v in params.items())
                by_query.setdefault(label, []).append(_timed(http, params))
                cursor = http.get("/api/v1/adapters", params=params).json()["next_cursor"]
                if cursor:  # the second page, keyset-paginated
                    page2 = by_query.setdefault(f"{label} (page 2)", [])
                    page2.append(_timed(http, {**params, "cursor": cursor}))
    timings = sorted(t for ts in by_query.values() for t in ts)
    return statistics.median(timings), _p95(timings), by_query


def _p95(timings: list[float]) -> float:
    ordered = sorted(timings)
    return ordered[max(int(len(ordered) * 0.95) - 1, 0)]


def _print_per_query(backend: str, count: int, by_query: dict[str, list[float]]) -> None:
    """One line per query of the mix (and its second page), slowest first, to find what to fix."""
    for label, ts in sorted(by_query.items(), key=lambda item: -_p95(item[1])):
        print(
            f"[{backend}] {count:>9,}   p50 {statistics.median(ts):6.1f} ms  p95 {_p95(ts):6.1f} ms  {label}"
        )


def measure_publishing(data_dir: Path, url: str, base: str, *, each: int) -> tuple[float, float]:
    """``PUBLISHERS`` threads, each publishing ``each`` pre-signed adapters; (publishes/s, median ms)."""
    registry = open_registry(data_dir, database_url=url)
    work: list[tuple[str, list[tuple[str, bytes, bytes]]]] = []
    for p in range(PUBLISHERS):
        key = generate()
        namespace = f"pub{p}"
        registry.add_publisher(namespace, key.public_key.pem.decode())
        token = registry.create_token(role="publisher", namespace=namespace).secret
        work.append(
            (token, [_signed(data_dir, f"{namespace}/a{i}", key, seed=p * 100_000 + i) for i in range(each)])
        )
    registry.db.engine.dispose()
    latencies: list[float] = []
    start = threading.Barrier(PUBLISHERS + 1)

    def publisher(token: str, items: list[tuple[str, bytes, bytes]]) -> None:
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
            start.wait()
            for name, data, bundle in items:
                began = time.perf_counter()
                sha = hashlib.sha256(data).hexdigest()
                http.put(f"/api/v1/blobs/sha256/{sha}", content=data).raise_for_status()
                http.post(f"/api/v1/adapters/{name}/versions", content=bundle).raise_for_status()
                latencies.append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=publisher, args=w) for w in work]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if len(latencies) != PUBLISHERS * each:
        raise SystemExit(f"only {len(latencies)} of {PUBLISHERS * each} publishes succeeded")
    return len(latencies) / elapsed, statistics.median(latencies)


def _signed(data_dir: Path, name: str, key: Any, *, seed: int) -> tuple[str, bytes, bytes]:
    path = data_dir / f"{name.replace('/', '_')}.safetensors"
    path.write_bytes(sample_adapter_bytes("sdxl", seed=seed))
    draft = ManifestDraft.from_json({
        "name": name, "version": "1.0.0", "description": f"benchmark adapter {name}",
        "license": {"id": "CC-BY-4.0", "commercial_use": True, "derivatives": True,
                    "attribution_required": True},
        "consent": {"subject": "style", "status": "not-required"},
        "creators": [{"name": "Bench Mark", "role": "trainer"}],
    })  # fmt: skip
    return name, path.read_bytes(), sign_file(path, draft, key)


def _timed(http: httpx.Client, params: dict[str, str]) -> float:
    started = time.perf_counter()
    response = http.get("/api/v1/adapters", params=params)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


if __name__ == "__main__":
    main()
