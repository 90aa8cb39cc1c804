"""Garbage collection: what crashed or abandoned uploads leave goes, published and young things stay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import col

from lorareg.registry.db import Blob, utcnow
from lorareg.registry.service import GC_GRACE_S, GarbageReport, Registry
from lorareg.registry.storage import FilesystemStore
from tests.fixtures.registry import BuiltAdapter, Publisher


def test_old_unpublished_blobs_and_temp_uploads_are_collected_the_rest_kept(
    registry: Registry, publisher: Publisher
) -> None:
    published = publisher.publish("kept")
    abandoned = _upload(registry, publisher, publisher.build("abandoned"))
    in_flight = _upload(registry, publisher, publisher.build("in-flight"))
    _age_blob(registry, abandoned.sha256, seconds=2 * GC_GRACE_S)
    stale_temp = _temp_upload(registry, age_s=2 * GC_GRACE_S)
    _temp_upload(registry, age_s=60)  # another replica's upload, still streaming

    assert registry.collect_garbage() == GarbageReport(temporary_uploads=1, unpublished_blobs=1)
    assert not stale_temp.exists()
    assert not registry.store.exists(abandoned.sha256)
    assert registry.store.exists(published.sha256) and registry.store.exists(in_flight.sha256)
    assert registry.get_blob(in_flight.sha256).sha256 == in_flight.sha256

    _, created = registry.upload_blob(abandoned.sha256, abandoned.chunks(), principal=publisher.principal)
    assert created  # collected for real: the retried upload stores it again, and it can be published
    assert (
        registry.publish("acme/abandoned", abandoned.bundle, principal=publisher.principal).version == "1.0.0"
    )


def test_admin_gc_collects_with_the_grace_period_given(
    registry: Registry, publisher: Publisher, database_url: str
) -> None:
    unpublished = _upload(registry, publisher, publisher.build("unpublished"))
    assert isinstance(registry.store, FilesystemStore)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAREG_")}
    command = [sys.executable, "-m", "lorareg", "admin", "gc", "--data", str(registry.store.root), "--json"]
    env["LORAREG_DATABASE_URL"] = database_url
    kept = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=True)
    assert json.loads(kept.stdout) == {"temporary_uploads": 0, "unpublished_blobs": 0}  # younger than 1d
    time.sleep(0.01)
    now = subprocess.run(
        [*command, "--older-than", "0s"], capture_output=True, text=True, timeout=60, env=env
    )
    assert json.loads(now.stdout) == {"temporary_uploads": 0, "unpublished_blobs": 1}, now.stderr
    assert not registry.store.exists(unpublished.sha256)


def _upload(registry: Registry, publisher: Publisher, built: BuiltAdapter) -> BuiltAdapter:
    registry.upload_blob(built.sha256, built.chunks(), principal=publisher.principal)
    return built


def _age_blob(registry: Registry, sha256: str, *, seconds: float) -> None:
    with registry.db.write() as session:
        session.execute(
            sa.update(Blob)
            .where(col(Blob.sha256) == sha256)
            .values(uploaded_at=utcnow() - timedelta(seconds=seconds))
        )


def _temp_upload(registry: Registry, *, age_s: float) -> Path:
    """A temp file as a process killed mid-upload leaves it (``tmp/<hex>.part``), aged ``age_s`` s."""
    assert isinstance(registry.store, FilesystemStore)
    path = registry.store.root / "tmp" / f"{uuid.uuid4().hex}.part"
    path.write_bytes(b"half an adapter")
    old = time.time() - age_s
    os.utime(path, (old, old))
    assert path in registry.store.temp_files()
    return path
