"""``kill -9`` of ``lorareg serve`` at each dangerous instant of a publish, then a restart.

Each crash point (``lorareg/registry/faults.py``) is hit by a real SIGKILL, on SQLite + files and on
PostgreSQL + S3. After the restart (whose start-up garbage collection runs with no grace period) nothing
may reference a missing blob, no object under a content address may hold other bytes than its digest says
or lack a row, no temporary upload may be left, and publishing the same adapter again must succeed.

Crash matrix (what the crash leaves → what the restart does):
  mid-upload          temp file / multipart upload       → collected at start-up
  after-blob-commit   blob object without its row        → orphan object collected; retry re-uploads
  during-countersign  blob + row, no version             → unpublished blob collected; retry re-uploads
  before-rows-commit  uncommitted version rows           → rolled back by the database; retry publishes
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
import pytest
from sqlmodel import select

from lorareg.registry.db import Blob, Version
from lorareg.registry.faults import MID_UPLOAD_BYTES, POINTS
from tests.fixtures.deployments import Deployment, ServeProcess
from tests.fixtures.registry import BuiltAdapter, build_adapter, make_publisher

LARGE_RANK = 10  # an 11 MiB adapter: past the mid-upload crash point and S3's first multipart part
HTTP_TIMEOUT_S = 30.0


@pytest.mark.parametrize("point", POINTS)
def test_publish_survives_kill_9_and_can_be_retried(
    deployment: Deployment, serve_process: Callable[..., ServeProcess], point: str
) -> None:
    admin = deployment.registry()
    publisher = make_publisher(admin, "acme")
    built = build_adapter(publisher.key, "acme/crash", "1.0.0", rank=LARGE_RANK, blocks=None)
    assert len(built.data) > MID_UPLOAD_BYTES

    doomed = serve_process(deployment, env={"LORAREG_FAULT": point})
    with pytest.raises(httpx.TransportError):
        _publish(doomed.url, publisher.secret, built)
    assert doomed.wait() == -signal.SIGKILL, doomed.log()
    if point == "mid-upload":
        assert deployment.temporary_uploads(), "the crash left no temporary upload: the test proves nothing"
    if point == "after-blob-commit":
        assert built.sha256 in deployment.blob_objects(), "the crash left no object: the test proves nothing"
        assert built.sha256 not in _blob_rows(deployment)

    restarted = serve_process(deployment, env={"LORAREG_GC_GRACE_S": "0"})
    assert deployment.temporary_uploads() == []
    assert deployment.partial_blobs() == []
    _assert_no_row_references_a_missing_blob(deployment)
    assert set(deployment.blob_objects()) <= _blob_rows(deployment), "an object without a row survived gc"

    assert _publish(restarted.url, publisher.secret, built) == 201
    pulled = httpx.get(f"{restarted.url}/api/v1/blobs/sha256/{built.sha256}", timeout=HTTP_TIMEOUT_S)
    assert pulled.status_code == 200
    assert pulled.content == built.data
    _assert_no_row_references_a_missing_blob(deployment)


def _publish(url: str, token: str, built: BuiltAdapter) -> int:
    """Upload the blob, then the bundle; return the publish status (raises on a dropped connection)."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=HTTP_TIMEOUT_S) as http:
        upload = http.put(f"/api/v1/blobs/sha256/{built.sha256}", content=built.chunks(2**20))
        assert upload.status_code in (200, 201), upload.text
        published = http.post("/api/v1/adapters/acme/crash/versions", content=built.bundle)
        assert published.status_code in (201, 409), published.text
        return published.status_code


def _blob_rows(deployment: Deployment) -> set[str]:
    registry = deployment.registry()
    try:
        with registry.db.read() as session:
            return set(session.exec(select(Blob.sha256)).all())
    finally:
        registry.db.engine.dispose()


def _assert_no_row_references_a_missing_blob(deployment: Deployment) -> None:
    objects = deployment.blob_objects()
    registry = deployment.registry()
    try:
        with registry.db.read() as session:
            blob_rows = set(session.exec(select(Blob.sha256)).all())
            version_blobs = set(session.exec(select(Version.sha256)).all())
    finally:
        registry.db.engine.dispose()
    assert blob_rows <= set(objects), "a blob row points at a missing object"
    assert version_blobs <= blob_rows
