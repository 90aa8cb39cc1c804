"""Fingerprint storage and lookups on both databases (SQLite and PostgreSQL), through the service.

The HTTP stories are in ``test_fingerprint_registry.py`` (SQLite); these run the same queries on
PostgreSQL too: the band-key candidate lookup, the revoked-copy check at publish, the takedown queue.
"""

from __future__ import annotations

import pytest

from lorareg.adapter.facts import compute_facts
from lorareg.adapter.hashing import StreamHasher
from lorareg.adapter.safetensors import parse_header, read_scalars
from lorareg.errors import GoneError
from lorareg.manifest import ManifestDraft, complete_manifest
from lorareg.registry import fingerprints
from lorareg.registry.auth import Principal
from lorareg.registry.records import VersionRecord
from lorareg.registry.service import Registry
from lorareg.registry.takedown import Takedowns
from lorareg.signing.sign import sign_manifest
from tests.fixtures.deployments import Deployment
from tests.fixtures.registry import Publisher, draft_manifest, make_publisher
from tests.support.lora_factory import adapter_bytes

KIND = "sdxl-kohya"


def _publish(publisher: Publisher, adapter: str, *, seed: int, alpha: float = 1.0) -> VersionRecord:
    """Publish a factory adapter whose ``.alpha`` scalars hold ``alpha`` (same factors for one seed)."""
    data = adapter_bytes(KIND, rank=2, blocks=2, seed=seed, alpha=alpha)
    header = parse_header(data, file_size=len(data))
    hasher = StreamHasher()
    hasher.update(data)
    hashes = hasher.finish()
    name = f"{publisher.namespace}/{adapter}"
    draft = ManifestDraft.from_json(draft_manifest(name, "1.0.0"))
    facts = compute_facts(header, read_scalars(data, header))
    manifest = complete_manifest(draft, facts=facts, hashes=hashes, size=len(data)).to_json()
    bundle = sign_manifest(
        subject_name="a.safetensors", sha256=hashes.sha256, manifest=manifest, key=publisher.key
    )
    publisher.registry.upload_blob(hashes.sha256, [data], principal=publisher.principal)
    return publisher.registry.publish(name, bundle, principal=publisher.principal)


def test_copy_with_raised_alpha_is_refused_after_revocation_and_queued_before(
    registry: Registry, publisher: Publisher, reviewer: Principal
) -> None:
    mallory = make_publisher(registry, "mallory")
    original = _publish(publisher, "ink", seed=11)
    early = _publish(mallory, "early", seed=11, alpha=8.0)  # same factors, 8x the strength: same direction
    _publish(mallory, "own", seed=12)
    assert original.sha256 != early.sha256

    with registry.db.read() as session:
        flags = fingerprints.flags_of(session, "mallory/early", "1.0.0")
    assert [(f.similar_name, f.similar_version) for f in flags] == [("acme/ink", "1.0.0")]
    _, matches = fingerprints.similar_to_version(registry.db, "acme/ink", "1.0.0")
    assert [m.ref for m in matches] == ["mallory/early@1.0.0"]
    assert matches[0].scale == pytest.approx(8.0, rel=0.05)

    takedowns = Takedowns(registry)
    filed = takedowns.file(
        ref="acme/ink@1.0.0", reason="likeness", claimant="J. Doe", contact="j@example.org",
        details="my face", good_faith=True, client="198.51.100.7",
    )  # fmt: skip
    takedowns.decide(filed.id, decision="uphold", reason="likeness without consent", principal=reviewer)
    queued = [r for r in takedowns.list_requests(principal=reviewer, status="pending")]
    assert [(r.name, r.reason) for r in queued] == [("mallory/early", "likeness")]
    assert registry.get_version("mallory/early", "1.0.0").status == "active"

    with pytest.raises(GoneError, match=r"acme/ink@1\.0\.0.*likeness without consent"):
        _publish(mallory, "again", seed=11, alpha=3.0)
    takedowns.decide(queued[0].id, decision="reject", reason="licensed copy", principal=reviewer)
    assert [r.status for r in takedowns.list_requests(principal=reviewer, status="pending")] == []


def test_fingerprint_is_stored_from_a_file_store_and_from_s3(deployment: Deployment) -> None:
    """S3 blobs are spooled once to a temporary file, files are read in place: same fingerprint."""
    registry = deployment.registry()
    acme = make_publisher(registry, "acme")
    record = _publish(acme, "ink", seed=21)
    with registry.db.read() as session:
        stored = fingerprints.load(session, record.sha256)
    assert stored is not None and stored.family == "sdxl" and len(stored.modules) > 10
    direct = fingerprints.fingerprint_stored(registry.store, record.blob)
    assert direct is not None and direct.modules == stored.modules
