"""Catalogue search latency through the HTTP API at 1,000 and 100,000 versions.

For each catalogue size: a fresh data dir, one adapter published for real through the service (so the
template rows are exactly what publishing writes), then N-1 clones with varied names, families, licences,
creators and descriptions inserted directly with bulk SQL (seeding through HTTP would take hours and is not
what is measured). A ``lorareg serve`` process then answers a fixed mix of searches, filters, sorts and
second pages; the script prints p50/p95 per size and the p95 ratio between the largest and smallest size.

    .venv/bin/python -m benchmarks.catalogue                      # 1,000 and 100,000 versions, SQLite
    .venv/bin/python -m benchmarks.catalogue --counts 1000,10000  # quicker
``--backend postgres`` is reserved for the scale-out work (LORAREG_DATABASE_URL); only sqlite runs here.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from lorareg.demo import seed_demo
from lorareg.registry.db import FTS_TABLE, Adapter, Namespace, Version, VersionCreator
from lorareg.registry.service import open_registry

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
BATCH = 5000  # rows per executemany
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
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rounds", type=int, default=20, help="repetitions of the query mix per size")
    args = parser.parse_args()
    if args.backend != "sqlite":
        sys.exit("only --backend sqlite is implemented here; postgres belongs to the scale-out benchmark")
    results: dict[int, tuple[float, float]] = {}
    for count in (int(c) for c in args.counts.split(",")):
        with tempfile.TemporaryDirectory(prefix="lorareg-bench-cat-") as tmp:
            started = time.perf_counter()
            seed(Path(tmp), count)
            print(f"seeded {count:,} versions in {time.perf_counter() - started:.1f} s", flush=True)
            results[count] = measure(Path(tmp), rounds=args.rounds)
        p50, p95 = results[count]
        print(f"{count:>9,} versions: p50 {p50:6.1f} ms  p95 {p95:6.1f} ms", flush=True)
    sizes = sorted(results)
    if len(sizes) > 1:
        ratio = results[sizes[-1]][1] / results[sizes[0]][1]
        print(
            f"p95 ratio {sizes[-1]:,} / {sizes[0]:,}: {ratio:.2f}x (target <= 2x); "
            f"p95 at {sizes[-1]:,}: {results[sizes[-1]][1]:.1f} ms (target < 50 ms)"
        )


def seed(data_dir: Path, count: int) -> None:
    """The demo catalogue (real publishes), then clones of its rows up to ``count`` versions."""
    registry = open_registry(data_dir)
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
    remaining = count - existing
    while remaining > 0:
        size = min(BATCH, remaining)
        rows = [_clone(template, next_id + i, rng, namespaces, now) for i in range(size)]
        _insert(engine, rows, now)
        next_id += size
        remaining -= size


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


def _insert(engine: sa.Engine, rows: list[dict[str, Any]], now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Adapter.__table__),
            [{"name": r["name"], "namespace": r["name"].split("/")[0], "created": now} for r in rows],
        )
        conn.execute(sa.insert(Version.__table__), rows)
        conn.execute(
            sa.insert(VersionCreator.__table__),
            [{"version_id": r["id"], "name_key": c.lower()} for r in rows for c in r["creators"]],
        )
        conn.execute(
            sa.text(
                f"INSERT INTO {FTS_TABLE} (rowid, name, description, trigger_words, creators, tags) "  # noqa: S608
                "VALUES (:rowid, :name, :description, :trigger_words, :creators, :tags)"
            ),
            [
                {
                    "rowid": r["id"],
                    "name": r["name"].replace("/", " "),
                    "description": r["description"],
                    "trigger_words": " ".join(r["trigger_words"]),
                    "creators": " ".join(r["creators"]),
                    "tags": " ".join(r["tags"]),
                }
                for r in rows
            ],
        )


def measure(data_dir: Path, *, rounds: int) -> tuple[float, float]:
    """Run the query mix against ``lorareg serve`` on ``data_dir``; return (p50, p95) in ms."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "lorareg", "serve", "--data", str(data_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url)
        timings: list[float] = []
        with httpx.Client(base_url=url, timeout=30) as http:
            for params in QUERIES:  # warm-up
                http.get("/api/v1/adapters", params=params)
            for _ in range(rounds):
                for params in QUERIES:
                    timings.append(_timed(http, params))
                    cursor = http.get("/api/v1/adapters", params=params).json()["next_cursor"]
                    if cursor:  # the second page, keyset-paginated
                        timings.append(_timed(http, {**params, "cursor": cursor}))
    finally:
        server.terminate()
        server.wait(timeout=10)
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.95) - 1]


def _timed(http: httpx.Client, params: dict[str, str]) -> float:
    started = time.perf_counter()
    response = http.get("/api/v1/adapters", params=params)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


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
