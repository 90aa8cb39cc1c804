"""Two ``lorareg serve`` replicas sharing one PostgreSQL database and one S3 bucket.

The stories a load balancer creates: the same ``name@version`` reaching both replicas at once (the database
decides: one 201, one 409, nothing orphaned), one file published under two names through different replicas
(one object), and a takedown upheld on one replica that the other enforces on its very next request
(blob 451, signed revocation list) — which holds only if no replica keeps shared state in its memory.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlmodel import func, select

from lorareg.registry.db import Blob, TlogLeaf, Version
from lorareg.registry.service import KEY_FILE
from lorareg.signing.revocation import verify_revocation_list
from tests.fixtures.deployments import Deployment, ServeProcess
from tests.fixtures.registry import BuiltAdapter, Publisher, build_adapter, make_publisher
from tests.fixtures.services import S3Bucket

HTTP_TIMEOUT_S = 30.0


@pytest.fixture
def replicas(
    tmp_path: Path, postgres_url: str, s3_bucket: S3Bucket, serve_process: Callable[..., ServeProcess]
) -> tuple[Deployment, ServeProcess, ServeProcess]:
    """Replica A (creates the schema and the registry key) and replica B (the same key, its own data dir)."""
    deployment = Deployment("postgres-s3", tmp_path / "replica-a", postgres_url, s3_bucket)
    first = serve_process(deployment)
    second_home = tmp_path / "replica-b"
    second_home.mkdir()
    shutil.copy2(deployment.home / KEY_FILE, second_home / KEY_FILE)  # the one registry key, mounted on both
    return deployment, first, serve_process(deployment, home=second_home)


def test_same_version_on_two_replicas_at_once_gives_one_201_and_one_409(
    replicas: tuple[Deployment, ServeProcess, ServeProcess],
) -> None:
    deployment, first, second = replicas
    publisher = make_publisher(deployment.registry(), "acme")
    built = build_adapter(publisher.key, "acme/race", "1.0.0")
    start = threading.Barrier(2)
    statuses: list[int] = []

    def publish(server: ServeProcess) -> None:
        with _http(server, publisher) as http:
            start.wait()
            upload = http.put(f"/api/v1/blobs/sha256/{built.sha256}", content=built.data)
            assert upload.status_code in (200, 201), upload.text
            statuses.append(
                http.post("/api/v1/adapters/acme/race/versions", content=built.bundle).status_code
            )

    threads = [threading.Thread(target=publish, args=(server,)) for server in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=HTTP_TIMEOUT_S)
    assert sorted(statuses) == [201, 409]
    assert _count(deployment, Version) == 1
    assert _count(deployment, Blob) == 1
    assert _count(deployment, TlogLeaf) == 1  # the loser's transaction left no log leaf either
    assert set(deployment.blob_objects()) == {built.sha256}
    assert deployment.temporary_uploads() == []


def test_one_file_under_two_names_on_two_replicas_is_one_object(
    replicas: tuple[Deployment, ServeProcess, ServeProcess],
) -> None:
    deployment, first, second = replicas
    publisher = make_publisher(deployment.registry(), "acme")
    one = build_adapter(publisher.key, "acme/one", "1.0.0", seed=424242)
    two = build_adapter(publisher.key, "acme/two", "1.0.0", seed=424242)
    assert one.sha256 == two.sha256
    assert _publish(first, publisher, "acme/one", one) == 201
    assert _publish(second, publisher, "acme/two", two) == 201
    assert list(deployment.blob_objects()) == [one.sha256]
    assert _count(deployment, Blob) == 1
    assert _count(deployment, Version) == 2


def test_takedown_upheld_on_one_replica_is_enforced_by_the_other_at_once(
    replicas: tuple[Deployment, ServeProcess, ServeProcess],
) -> None:
    deployment, first, second = replicas
    registry = deployment.registry()
    publisher = make_publisher(registry, "acme")
    built = build_adapter(publisher.key, "acme/contested", "1.0.0")
    assert _publish(first, publisher, "acme/contested", built) == 201
    blob_url = f"{second.url}/api/v1/blobs/sha256/{built.sha256}"
    assert httpx.get(blob_url, timeout=HTTP_TIMEOUT_S).status_code == 200  # B served it before

    reviewer = registry.create_token(role="reviewer").secret
    with httpx.Client(base_url=first.url, timeout=HTTP_TIMEOUT_S) as http:
        filed = http.post(
            "/api/v1/takedowns",
            json={
                "ref": "acme/contested@1.0.0",
                "reason": "license",
                "claimant": "Rights Holder Ltd",
                "contact": "legal@example.org",
                "details": "Trained on our catalogue without a licence.",
                "good_faith": True,
            },
        )
        assert filed.status_code == 201, filed.text
        decided = http.post(
            f"/api/v1/takedowns/{filed.json()['id']}/decision",
            json={"decision": "uphold", "reason": "licence violation confirmed"},
            headers={"Authorization": f"Bearer {reviewer}"},
        )
        assert decided.status_code == 200, decided.text

    assert httpx.get(blob_url, timeout=HTTP_TIMEOUT_S).status_code == 451
    envelope = httpx.get(f"{second.url}/api/v1/revocations", timeout=HTTP_TIMEOUT_S).content
    revocations = verify_revocation_list(
        envelope, [registry.key.public_key], held_version=None, now=datetime.now(UTC), max_age=None
    )
    assert revocations.reason_for(built.sha256) is not None


def _http(server: ServeProcess, publisher: Publisher) -> httpx.Client:
    headers = {"Authorization": f"Bearer {publisher.secret}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=HTTP_TIMEOUT_S)


def _publish(server: ServeProcess, publisher: Publisher, name: str, built: BuiltAdapter) -> int:
    with _http(server, publisher) as http:
        upload = http.put(f"/api/v1/blobs/sha256/{built.sha256}", content=built.data)
        assert upload.status_code in (200, 201), upload.text
        return http.post(f"/api/v1/adapters/{name}/versions", content=built.bundle).status_code


def _count(deployment: Deployment, table: type[Blob] | type[Version] | type[TlogLeaf]) -> int:
    registry = deployment.registry()
    try:
        with registry.db.read() as session:
            return int(session.exec(select(func.count()).select_from(table)).one())
    finally:
        registry.db.engine.dispose()
