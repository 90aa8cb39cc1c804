"""The transparency-log checks' share of ``pull --verify`` of a small adapter (target < 20 ms).

One run: a data directory whose log already holds ``--log-size`` leaves, ``lorareg serve`` on loopback, one
small (~300 KiB) adapter published over HTTP. Then, ``--runs`` times each, medians of:

- ``pull --verify`` from a fresh cache (resolve, bundle, revocation list, log checks, download, verify);
- the log checks alone on first contact (checkpoint, leaf, inclusion proof: nothing stored yet);
- the log checks alone with a stored checkpoint one publication behind (adds a consistency proof);
- the log checks alone with the current checkpoint stored (the steady state of a busy studio).

Prints the numbers and exits 1 when a log-check median is over the target.

    .venv/bin/python -m benchmarks.log_check                 # 10,000 leaves, 30 runs
    .venv/bin/python -m benchmarks.log_check --log-size 1000 --runs 10
"""

from __future__ import annotations

import sys
from pathlib import Path

if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from benchmarks._server import free_port, wait_healthy  # noqa: E402
from lorareg.client import Client  # noqa: E402
from lorareg.client.checkpoints import CheckpointStore  # noqa: E402
from lorareg.client.logcheck import check_pull  # noqa: E402
from lorareg.demo.samples import sample_adapter_bytes  # noqa: E402
from lorareg.manifest.drafting import ManifestDraft  # noqa: E402
from lorareg.registry import logstore, open_registry  # noqa: E402
from lorareg.signing.keys import generate  # noqa: E402
from lorareg.signing.policy import Policy  # noqa: E402
from lorareg.signing.sign import sign_file  # noqa: E402
from lorareg.signing.trust import TrustStore  # noqa: E402

TARGET_S = 0.020
REF = "bench/small@1.0.0"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-size", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lorareg-bench-log-") as tmp:
        sys.exit(0 if run(Path(tmp), log_size=args.log_size, runs=args.runs) else 1)


def run(tmp: Path, *, log_size: int, runs: int) -> bool:
    data = tmp / "data"
    registry = open_registry(data)
    publisher = generate()
    registry.add_publisher("bench", publisher.public_key.pem.decode("ascii"))
    token = registry.create_token(role="publisher", namespace="bench").secret
    _pad_log(registry, log_size)
    trust = TrustStore((), Policy()).with_key(
        registry.key.public_key, label="r", role="registry", namespace=None
    )
    trust = trust.with_key(publisher.public_key, label="bench", role="publisher", namespace="bench")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    lorareg = [sys.executable, "-m", "lorareg", "serve", "--data", str(data), "--port", str(port)]
    server = subprocess.Popen(lorareg, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(url)
        return _measure(tmp, url, token, publisher_key=publisher, trust=trust, runs=runs)
    finally:
        server.terminate()
        server.wait(timeout=10)


def _measure(tmp: Path, url: str, token: str, *, publisher_key: object, trust: TrustStore, runs: int) -> bool:
    adapter = tmp / "small.safetensors"
    adapter.write_bytes(sample_adapter_bytes("flux1", seed=7))
    draft = ManifestDraft.from_json(
        {
            "name": "bench/small",
            "version": "1.0.0",
            "license": {
                "id": "CC0-1.0",
                "commercial_use": True,
                "derivatives": True,
                "attribution_required": False,
            },
            "consent": {"subject": "concept", "status": "not-required"},
        }
    )
    bundle = sign_file(adapter, draft, publisher_key)  # type: ignore[arg-type]
    behind = tmp / "behind.note"
    with Client(url, token, cache_dir=tmp / "warm") as client:
        behind.write_bytes(client._request("GET", "/api/v1/log/checkpoint").content)
        client.publish(adapter, bundle)
        detail, signed = client.resolve(REF), client.signature("bench/small", "1.0.0")
        store = CheckpointStore(client.cache.root)
        note_path = store.path(client.registry_url)

        def first_contact() -> None:
            note_path.unlink(missing_ok=True)
            check_pull(client, detail=detail, bundle=signed, trust=trust)

        def one_behind() -> None:
            shutil.copyfile(behind, note_path)
            check_pull(client, detail=detail, bundle=signed, trust=trust)

        def steady() -> None:
            check_pull(client, detail=detail, bundle=signed, trust=trust)

        def pull() -> None:
            cache = tmp / "fresh"
            with Client(url, cache_dir=cache) as fresh:
                fresh.pull(REF, trust=trust, policy=trust.policy)
            shutil.rmtree(cache)

        results = _medians(_cases(pull, first_contact, one_behind, steady), runs)
    size = adapter.stat().st_size
    print(f"adapter {size / 1024:.0f} KiB; log of {_log_size(detail)} leaves; medians of {runs} runs")
    for name, seconds in results.items():
        print(f"{name:38} {seconds * 1000:7.1f} ms")
    worst = max(results[n] for n in results if n.startswith("log checks"))
    share = results["log checks, one behind (consistency)"] / results["pull --verify, fresh cache"]
    print(
        f"log checks: worst {worst * 1000:.1f} ms (target < {TARGET_S * 1000:.0f} ms), "
        f"{share:.0%} of the pull"
    )
    return worst < TARGET_S


def _cases(*fns: Callable[[], None]) -> list[tuple[str, Callable[[], None]]]:
    names = [
        "pull --verify, fresh cache",
        "log checks, first contact",
        "log checks, one behind (consistency)",
        "log checks, checkpoint current",
    ]
    return list(zip(names, fns, strict=True))


def _medians(cases: list[tuple[str, Callable[[], None]]], runs: int) -> dict[str, float]:
    """Median seconds per case; the cases take turns in each round, so load on the machine hits all alike."""
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _, fn in cases:
        fn()  # warm-up: imports, connections
    for _ in range(runs):
        for name, fn in cases:
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def _log_size(detail: dict[str, object]) -> int:
    return int(str(detail["tlog_index"])) + 1


def _pad_log(registry: object, count: int) -> None:
    """``count`` unrelated leaves before the benchmark's own publication (other studios' history)."""
    now = datetime.now(UTC)
    with registry.db.write() as session:  # type: ignore[attr-defined]
        for i in range(count):
            body = {"name": f"other/a{i}", "version": "1.0.0", "sha256": f"{i:064x}", "signers": []}
            logstore.append(session, "publish", body, now=now)


if __name__ == "__main__":
    main()
