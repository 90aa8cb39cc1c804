"""Garbage collection: what crashed or abandoned uploads leave goes, published and young things stay.

Leftovers: temporary uploads, blobs uploaded but never published, and objects committed under their content
address whose row never committed (a crash between the two). Kept: anything a version, a blob row or a
preview names, and anything younger than the grace period (another replica's upload in flight).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import col

from lorareg.errors import GoneError
from lorareg.registry import collecting
from lorareg.registry.auth import Principal
from lorareg.registry.blobs import FilesystemStore
from lorareg.registry.db import Blob, utcnow
from lorareg.registry.previews import Previews
from lorareg.registry.service import GC_GRACE_S, GarbageReport, Registry
from tests.fixtures.registry import BuiltAdapter, Publisher
from tests.fixtures.web import png_bytes

OLD_S = 2 * GC_GRACE_S  # the age of a leftover that the default grace period lets go


def test_old_unpublished_blobs_and_temp_uploads_are_collected_the_rest_kept(
    registry: Registry, publisher: Publisher
) -> None:
    published = publisher.publish("kept")
    abandoned = _upload(registry, publisher, publisher.build("abandoned"))
    in_flight = _upload(registry, publisher, publisher.build("in-flight"))
    _age_blob(registry, abandoned.sha256, seconds=2 * GC_GRACE_S)
    stale_temp = _temp_upload(registry, age_s=2 * GC_GRACE_S)
    _temp_upload(registry, age_s=60)  # another replica's upload, still streaming

    assert registry.collect_garbage() == GarbageReport(
        temporary_uploads=1, unpublished_blobs=1, orphan_objects=0, orphan_objects_spared=0
    )
    assert not stale_temp.exists()
    assert not registry.store.exists(abandoned.sha256)
    assert registry.store.exists(published.sha256) and registry.store.exists(in_flight.sha256)
    assert registry.get_blob(in_flight.sha256).sha256 == in_flight.sha256

    _, created = registry.upload_blob(abandoned.sha256, abandoned.chunks(), principal=publisher.principal)
    assert created  # collected for real: the retried upload stores it again, and it can be published
    assert (
        registry.publish("acme/abandoned", abandoned.bundle, principal=publisher.principal).version == "1.0.0"
    )


def test_orphan_object_left_by_a_crash_before_its_row_is_collected_once_old(
    registry: Registry, publisher: Publisher
) -> None:
    published = publisher.publish("kept")
    preview = Previews(registry).add("acme/kept", "1.0.0", png_bytes(), principal=publisher.principal)
    orphan = publisher.build("orphan")
    _commit_without_row(registry, orphan.data)  # the process died right after the blob's commit
    young = _commit_without_row(registry, b"another replica's upload; its row commits next")
    for digest in (published.sha256, preview.sha256, preview.thumb_sha256, orphan.sha256):
        _age_object(registry, digest, seconds=OLD_S)

    assert registry.collect_garbage() == GarbageReport(
        temporary_uploads=0, unpublished_blobs=0, orphan_objects=1, orphan_objects_spared=0
    )
    assert not registry.store.exists(orphan.sha256)
    for kept in (published.sha256, preview.sha256, preview.thumb_sha256, young):
        assert registry.store.exists(kept), kept

    _, created = registry.upload_blob(orphan.sha256, orphan.chunks(), principal=publisher.principal)
    assert created
    assert registry.publish("acme/orphan", orphan.bundle, principal=publisher.principal).version == "1.0.0"


def test_old_object_whose_row_is_young_is_kept_across_check_batches(
    registry: Registry, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An old orphan re-uploaded: its object is old, its fresh row says it is in use (and the row, not
    the object's age, is what the unpublished-blob collection measures)."""
    monkeypatch.setattr(collecting, "ORPHAN_CHECK_BATCH", 2)  # rows and orphans spread over many batches
    rowed = [_upload(registry, publisher, publisher.build(f"rowed-{i}")).sha256 for i in range(3)]
    orphans = [_commit_without_row(registry, f"orphan {i}".encode()) for i in range(5)]
    for digest in rowed + orphans:
        _age_object(registry, digest, seconds=OLD_S)

    assert registry.collect_garbage().orphan_objects == len(orphans)
    assert [registry.store.exists(d) for d in rowed] == [True] * len(rowed)
    assert [registry.store.exists(d) for d in orphans] == [False] * len(orphans)


def test_revoked_digest_keeps_its_published_blob_and_loses_its_orphan(
    registry: Registry, publisher: Publisher, reviewer: Principal
) -> None:
    """Revocations are not consulted, as for unpublished blobs: a version keeps its (451) blob; an object
    nothing names goes, and the revocation still refuses the digest."""
    revoked = publisher.publish("revoked")
    registry.revoke("acme/revoked@1.0.0", reason="takedown upheld", principal=reviewer)
    orphan = publisher.build("revoked-orphan")
    _commit_without_row(registry, orphan.data)
    registry.revoke(orphan.sha256, reason="takedown upheld before its publish", principal=reviewer)
    for digest in (revoked.sha256, orphan.sha256):
        _age_object(registry, digest, seconds=OLD_S)

    assert registry.collect_garbage().orphan_objects == 1
    assert registry.store.exists(revoked.sha256)
    assert registry.is_revoked(revoked.sha256) == "takedown upheld"
    assert not registry.store.exists(orphan.sha256)
    with pytest.raises(GoneError):
        registry.upload_blob(orphan.sha256, orphan.chunks(), principal=publisher.principal)


@pytest.mark.parametrize(
    ("rowed", "expect_deleted"),
    [
        pytest.param(80, True, id="crash-leftovers-among-many-blobs"),
        pytest.param(0, False, id="store-of-another-database"),
    ],
)
def test_orphans_too_many_to_be_crash_leftovers_are_spared(
    registry: Registry, rowed: int, expect_deleted: bool
) -> None:
    """A replica pointed at a fresh or wrong database sees every blob as an orphan: it must delete none."""
    orphans = [_commit_without_row(registry, f"adapter {i}".encode()) for i in range(25)]
    with registry.db.write() as session:
        for i in range(rowed):
            session.add(_blob_row(_commit_without_row(registry, f"catalogued {i}".encode())))
    for digest in registry.store.iter_blobs(older_than_s=0):
        _age_object(registry, digest, seconds=OLD_S)  # the rows stay young: the catalogue is in use

    report = registry.collect_garbage()
    deleted = len(orphans) if expect_deleted else 0
    assert (report.orphan_objects, report.orphan_objects_spared) == (deleted, len(orphans) - deleted)
    assert sum(registry.store.exists(d) for d in orphans) == len(orphans) - deleted


def test_admin_gc_collects_with_the_grace_period_given(
    registry: Registry, publisher: Publisher, database_url: str
) -> None:
    unpublished = _upload(registry, publisher, publisher.build("unpublished"))
    orphan = _commit_without_row(registry, b"a blob whose row never committed")
    assert isinstance(registry.store, FilesystemStore)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAREG_")}
    command = [sys.executable, "-m", "lorareg", "admin", "gc", "--data", str(registry.store.root), "--json"]
    env["LORAREG_DATABASE_URL"] = database_url
    kept = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=True)
    young = {"temporary_uploads": 0, "unpublished_blobs": 0, "orphan_objects": 0, "orphan_objects_spared": 0}
    assert json.loads(kept.stdout) == young  # younger than 1d
    time.sleep(0.01)
    now = subprocess.run(
        [*command, "--older-than", "0s"], capture_output=True, text=True, timeout=60, env=env
    )
    collected = {
        "temporary_uploads": 0,
        "unpublished_blobs": 1,
        "orphan_objects": 1,
        "orphan_objects_spared": 0,
    }
    assert json.loads(now.stdout) == collected, now.stderr
    assert not registry.store.exists(unpublished.sha256)
    assert not registry.store.exists(orphan)


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


def _commit_without_row(registry: Registry, data: bytes) -> str:
    """An object under its content address with no row, as a crash between the two leaves it."""
    digest = hashlib.sha256(data).hexdigest()
    pending = registry.store.begin()
    pending.write(data)
    pending.commit(digest)
    return digest


def _blob_row(sha256: str) -> Blob:
    """A young ``blobs`` row (the other hashes do not matter to garbage collection)."""
    return Blob(
        sha256=sha256,
        size=1,
        autov2=sha256[:10],
        autov3=sha256,
        crc32=sha256[:8],
        blake3=sha256,
        uploaded_at=utcnow(),
    )


def _age_object(registry: Registry, sha256: str, *, seconds: float) -> None:
    assert isinstance(registry.store, FilesystemStore)
    old = time.time() - seconds
    os.utime(registry.store.path_of(sha256), (old, old))


def _temp_upload(registry: Registry, *, age_s: float) -> Path:
    """A temp file as a process killed mid-upload leaves it (``tmp/<hex>.part``), aged ``age_s`` s."""
    assert isinstance(registry.store, FilesystemStore)
    path = registry.store.root / "tmp" / f"{uuid.uuid4().hex}.part"
    path.write_bytes(b"half an adapter")
    old = time.time() - age_s
    os.utime(path, (old, old))
    assert path in registry.store.temp_files()
    return path
