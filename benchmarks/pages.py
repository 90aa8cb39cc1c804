"""Server-side latency of the web pages at 100,000 versions (or 1,000,000: ``--count 1000000``): catalogue
(unfiltered and filtered) and an adapter page, with the JSON search of the same query measured in the same
run as the baseline, on SQLite or (``--backend postgres``) a throwaway PostgreSQL cluster.

The catalogue is seeded as ``benchmarks/catalogue.py`` does (the demo catalogue published for real, then
bulk clones). Requests go through ``create_app`` in process; a timing ASGI wrapper records the time from
the request's arrival to the last body byte inside the server, so client and network overhead are not
counted. Each page is measured at ``--baseline-count`` versions (1,000) and at ``--count``; prints p50/p95
per page, its p95 ratio to the JSON baseline and to the same page at the small size. Targets: every page's
p95 < 100 ms and within 2x of its p95 at the small size; exits 1 when one is missed.

    .venv/bin/python -m benchmarks.pages                                  # 100,000 versions
    .venv/bin/python -m benchmarks.pages --count 1000000 --backend postgres
    .venv/bin/python -m benchmarks.pages --count 10000                    # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from benchmarks._postgres import fresh_database, throwaway_cluster
from benchmarks.catalogue import seed
from lorareg.registry.service import default_database_url, open_registry
from lorareg.server.app import create_app
from lorareg.server.config import Settings

TARGET_P95_MS = 100.0
TARGET_RATIO = 2.0  # p95 at --count over p95 at --baseline-count
DATA = Path(__file__).parent / "_data"  # git-ignored; the seeded catalogues are deleted after each size
PAGES = {
    "json search (baseline)": "/api/v1/adapters",
    "catalogue": "/",
    "catalogue, 2nd page": "CURSOR",
    "catalogue ?family&commercial_use": "/?family=sdxl&commercial_use=true",
    "catalogue ?q=ink wash": "/?q=ink+wash",
    "catalogue ?creator&sort=name": "/?creator=Hana+Sato&sort=name",
    "adapter page (demo)": "/adapters/inkworks/ink-wash",
    "adapter page (clone)": "CLONE",
}


class _Timer:
    """ASGI wrapper that records server-side milliseconds per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.last_ms = (time.perf_counter() - started) * 1000

        await self.app(scope, receive, timed_send)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100_000, help="versions in the catalogue")
    parser.add_argument("--baseline-count", type=int, default=1000, help="the small catalogue of the ratio")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-url", help="a PostgreSQL server URL to use instead of a throwaway one")
    parser.add_argument("--rounds", type=int, default=60, help="requests per page")
    args = parser.parse_args()
    results: dict[int, dict[str, tuple[float, float]]] = {}
    with contextlib.ExitStack() as stack:
        server = None
        if args.backend == "postgres":
            server = args.database_url or stack.enter_context(throwaway_cluster())
        for count in (args.baseline_count, args.count):
            results[count] = _measure_size(server, count, rounds=args.rounds)
    small, large = results[args.baseline_count], results[args.count]
    baseline = large["json search (baseline)"][1]
    missed = []
    sizes = f"p95 at {args.count:,} / p95 at {args.baseline_count:,}"
    print(f"\n[{args.backend}] {args.count:,} versions (ratio: {sizes})")
    for label, (p50, p95) in large.items():
        growth = p95 / small[label][1]
        print(f"{label:36} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p95/baseline {p95 / baseline:5.2f}x  "
              f"ratio {growth:5.2f}x  (p50 ratio {p50 / small[label][0]:4.2f}x)")  # fmt: skip
        if "baseline" not in label and (p95 >= TARGET_P95_MS or growth > TARGET_RATIO):
            missed.append(label)
    worst = max(p95 for label, (_, p95) in large.items() if "baseline" not in label)
    verdict = "met" if not missed else "MISSED by " + ", ".join(missed)
    target = f"< {TARGET_P95_MS:.0f} ms and <= {TARGET_RATIO:.0f}x the p95 at {args.baseline_count:,}"
    print(f"[{args.backend}] worst page p95 {worst:.1f} ms at {args.count:,}: target {target}: {verdict}")
    sys.exit(1 if missed else 0)


def _measure_size(server: str | None, count: int, *, rounds: int) -> dict[str, tuple[float, float]]:
    """Seed ``count`` versions in a fresh data dir (and database); measure every page."""
    DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lorareg-bench-pages-", dir=DATA) as tmp:
        data = Path(tmp)
        url = fresh_database(server) if server else default_database_url(data)
        started = time.perf_counter()
        seed(data, url, count)
        print(f"seeded {count:,} versions in {time.perf_counter() - started:.1f} s", flush=True)
        results = measure(data, rounds=rounds, database_url=url)
        print(
            f"measured {count:,}: " + ", ".join(f"{k} p95 {v[1]:.1f} ms" for k, v in results.items()),
            flush=True,
        )
        return results


def measure(data_dir: Path, *, rounds: int, database_url: str) -> dict[str, tuple[float, float]]:
    """Request each page ``rounds`` times (after a warm-up); return (p50, p95) in ms per page."""
    registry = open_registry(data_dir, database_url=database_url)
    timer = _Timer(create_app(Settings(home=data_dir, database_url=database_url), registry=registry))
    client = TestClient(timer)
    paths = _resolve_paths(client, registry)
    results: dict[str, tuple[float, float]] = {}
    for label, path in paths.items():
        for _ in range(3):
            _get(client, path)
        timings = []
        for _ in range(rounds):
            _get(client, path)
            timings.append(timer.last_ms)
        timings.sort()
        results[label] = (statistics.median(timings), timings[max(0, int(len(timings) * 0.95) - 1)])
    client.close()
    registry.db.engine.dispose()  # the data dir (gigabytes at 10^6 versions) is deleted next
    return results


def _resolve_paths(client: TestClient, registry: Any) -> dict[str, str]:
    cursor = client.get("/api/v1/adapters").json()["next_cursor"]
    clone = client.get("/api/v1/adapters", params={"q": "forest"}).json()["items"][0]
    paths = dict(PAGES)
    paths["catalogue, 2nd page"] = f"/?cursor={cursor}"
    paths["adapter page (clone)"] = f"/adapters/{clone['name']}/{clone['version']}"
    return paths


def _get(client: TestClient, path: str) -> None:
    response = client.get(path)
    if response.status_code != 200:
        raise SystemExit(f"{path} answered {response.status_code}: {response.text[:200]}")


if __name__ == "__main__":
    main()
