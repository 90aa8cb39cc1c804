"""The OpenAPI document says what the server does: schemathesis against a live server, SQLite and PostgreSQL.

Every documented operation is called with generated valid and invalid inputs (and undeclared methods),
with every check on: no 5xx, every status and header documented, every body matching its schema, invalid
input refused, ``Allow`` on 405. The budget is bounded (``--max-examples``, ``--max-time``) so each
backend's run stays within about a minute. The run is schemathesis's own CLI, exactly as a user would
start it against a deployment.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lorareg.registry import Takedowns
from tests.fixtures.registry import make_publisher
from tests.fixtures.server import LiveServer

EXAMPLES_PER_OPERATION = 10
# Operations whose schema-valid input can still be refused for what no JSON schema can say: a log range
# beyond the log's current size, a cursor the server never issued, a bundle not signed for the stored
# blob, an upload whose bytes are not a safetensors file hashing to the URL's digest, a preview that is no
# image. For these, schemathesis's "valid data is accepted" check also expects those refusals; every other
# check (and every other operation) keeps its defaults.
SEMANTIC_REFUSALS = {
    ("GET", "/api/v1/log/inclusion"): ("400",),
    ("GET", "/api/v1/log/consistency"): ("400",),
    ("GET", "/api/v1/log/entries"): ("400",),
    ("GET", "/api/v1/log/evidence"): ("400",),
    ("POST", "/api/v1/webhooks"): ("400",),  # a URL the server may not call, an event it does not send
    ("POST", "/api/v1/device/token"): ("400",),  # a device_code the server never issued: invalid_grant
    ("POST", "/api/v1/similar"): ("400", "413"),  # bytes that are no lorareg fingerprint
    ("GET", "/api/v1/adapters"): ("400",),
    ("POST", "/api/v1/adapters/{namespace}/{adapter}/versions"): ("400", "413", "422"),
    ("PUT", "/api/v1/blobs/sha256/{digest}"): ("400", "413", "422"),
    ("POST", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/previews"): ("400", "413"),
}
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429"]


def _config(path: Path, existing: dict[str, str]) -> Path:
    """A schemathesis.toml: half the path values name ``existing`` resources (so the run reaches them,
    not only 404s), and the per-operation expectations of :data:`SEMANTIC_REFUSALS`."""
    blocks = [f'[dictionaries.{name}]\nvalues = ["{value}"]\n' for name, value in existing.items()]
    blocks.append(
        "[parameters]\n"
        + "".join(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}\n' for name in existing)
    )
    for (method, route), extra in SEMANTIC_REFUSALS.items():
        statuses = ", ".join(f'"{s}"' for s in [*ACCEPTED, *extra])
        blocks.append(
            f'[[operations]]\ninclude-method = "{method}"\ninclude-path = "{route}"\n'
            f"checks.positive_data_acceptance.expected-statuses = [{statuses}]\n"
        )
    path.write_text("\n".join(blocks))
    return path


MAX_TIME_S = 50
SEED = 11


def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    live_server_factory: Callable[..., LiveServer], database_url: str, tmp_path: Path
) -> None:
    server = live_server_factory(database_url=database_url)
    record = make_publisher(server.registry, "acme").publish("pixel-art", "1.0.0")
    tracking = Takedowns(server.registry).file(
        ref=f"{record.name}@{record.version}",
        reason="other",
        claimant="x",
        contact="a@b.org",
        details="x",
        good_faith=True,
        client="t",
    )
    existing = {
        "namespace": "acme",
        "adapter": "pixel-art",
        "version": "1.0.0",
        "digest": record.sha256,
        "request_id": tracking.id,
    }
    admin = server.token("admin")
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(_config(tmp_path / "schemathesis.toml", existing)),
        "run",
        f"{server.url}/api/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--max-time",
        str(MAX_TIME_S),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {admin}",
        "--report-dir",
        str(tmp_path / "report"),
        "--no-color",
        "--generation-with-security-parameters",
        "false",
        "--generation-database",
        "none",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=MAX_TIME_S + 120, check=False)
    (tmp_path.parent / "schemathesis.out").write_text(run.stdout)
    assert run.returncode == 0, run.stdout[-12000:] + run.stderr[-2000:]
