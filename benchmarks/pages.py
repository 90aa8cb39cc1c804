"""Server-side latency of the web pages at 100,000 versions: catalogue (unfiltered and filtered) and an
adapter page, with the JSON search of the same query measured in the same run as the baseline.

The catalogue is seeded as ``benchmarks/catalogue.py`` does (the demo catalogue published for real, then
bulk clones). Requests go through ``create_app`` in process; a timing ASGI wrapper records the time from
the request's arrival to the last body byte inside the server, so client and network overhead are not
counted. Prints p50/p95 per page and its p95 ratio to the JSON baseline; the target is p95 < 100 ms.

    .venv/bin/python -m benchmarks.pages                  # 100,000 versions
    .venv/bin/python -m benchmarks.pages --count 10000    # quicker
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from benchmarks.catalogue import seed
from lorareg.registry.service import open_registry
from lorareg.server.app import create_app
from lorareg.server.config import Settings

TARGET_P95_MS = 100.0
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
    parser.add_argument("--rounds", type=int, default=60, help="requests per page")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lorareg-bench-pages-") as tmp:
        started = time.perf_counter()
        seed(Path(tmp), f"sqlite:///{Path(tmp) / 'lorareg.db'}", args.count)
        print(f"seeded {args.count:,} versions in {time.perf_counter() - started:.1f} s", flush=True)
        results = measure(Path(tmp), rounds=args.rounds)
    baseline = results["json search (baseline)"][1]
    worst = 0.0
    for label, (p50, p95) in results.items():
        worst = max(worst, p95) if "baseline" not in label else worst
        print(f"{label:36} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p95/baseline {p95 / baseline:5.2f}x")
    verdict = "met" if worst < TARGET_P95_MS else "MISSED"
    print(
        f"worst page p95 {worst:.1f} ms at {args.count:,} versions: target < {TARGET_P95_MS:.0f} ms {verdict}"
    )


def measure(data_dir: Path, *, rounds: int) -> dict[str, tuple[float, float]]:
    """Request each page ``rounds`` times (after a warm-up); return (p50, p95) in ms per page."""
    registry = open_registry(data_dir)
    timer = _Timer(create_app(Settings(home=data_dir), registry=registry))
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
