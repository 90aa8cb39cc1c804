"""Publishing through the service: the happy path and every way a publish must be refused cleanly."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from lorareg.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    InputError,
    PayloadTooLargeError,
    UnprocessableError,
    VerificationError,
)
from lorareg.registry.auth import Principal
from lorareg.registry.blobs import FilesystemStore
from lorareg.registry.db import Blob, Version
from lorareg.registry.service import Registry
from lorareg.signing.bundle import Bundle
from lorareg.signing.keys import generate
from lorareg.signing.revocation import verify_revocation_list
from tests.fixtures.registry import Publisher, build_adapter, make_publisher


def _store(registry: Registry) -> FilesystemStore:
    assert isinstance(registry.store, FilesystemStore)
    return registry.store


def _counts(registry: Registry) -> tuple[int, int]:
    with registry.db.read() as s:
        return len(s.exec(Blob.__table__.select()).all()), len(s.exec(Version.__table__.select()).all())  # type: ignore[attr-defined]


def _nothing_left(registry: Registry, digest: str) -> None:
    assert not _store(registry).exists(digest)
    assert _store(registry).temp_files() == []
    with registry.db.read() as s:
        assert s.get(Blob, digest) is None


def test_publish_stores_countersigns_and_logs(registry: Registry, publisher: Publisher) -> None:
    built = publisher.build(version="1.2.0")
    blob, created = registry.upload_blob(built.sha256, built.chunks(), principal=publisher.principal)
    assert created and blob.size == len(built.data) and blob.hashes() == built.hashes.to_json()
    record = registry.publish("acme/pixel-art", built.bundle, principal=publisher.principal)
    assert (record.name, record.version, record.status) == ("acme/pixel-art", "1.2.0", "active")
    assert record.signers == (publisher.key.key_id, registry.key.key_id)
    signatures = Bundle.from_bytes(record.bundle).envelope.signatures
    assert [s.keyid for s in signatures] == [publisher.key.key_id, registry.key.key_id]
    assert record.tlog_index == 0 and registry.log_entries(0, 10)[0].kind == "publish"
    assert b"".join(registry.store.open_range(built.sha256)) == built.data
    assert record.manifest["base_model"]["family"] == "sd1"


def test_uploading_a_stored_blob_again_reads_nothing(registry: Registry, publisher: Publisher) -> None:
    built = publisher.build()
    registry.upload_blob(built.sha256, built.chunks(), principal=publisher.principal)

    def exploding() -> Iterator[bytes]:
        raise AssertionError("the body of an already stored blob must not be read")
        yield b""

    _, created = registry.upload_blob(built.sha256, exploding(), principal=publisher.principal)
    assert not created


def test_republishing_a_version_is_a_conflict(registry: Registry, publisher: Publisher) -> None:
    publisher.publish(version="1.0.0")
    again = publisher.build(version="1.0.0")
    registry.upload_blob(again.sha256, again.chunks(), principal=publisher.principal)
    with pytest.raises(ConflictError, match="immutable"):
        registry.publish("acme/pixel-art", again.bundle, principal=publisher.principal)
    assert registry.get_version("acme/pixel-art", "1.0.0").sha256 == publisher.published[0].sha256


def test_bundle_signed_by_an_unregistered_key_is_forbidden(registry: Registry, publisher: Publisher) -> None:
    rogue = build_adapter(generate(), "acme/pixel-art", "1.0.0")
    registry.upload_blob(rogue.sha256, rogue.chunks(), principal=publisher.principal)
    with pytest.raises(ForbiddenError, match="no key registered"):
        registry.publish("acme/pixel-art", rogue.bundle, principal=publisher.principal)
    assert _counts(registry)[1] == 0


def test_key_of_another_namespace_cannot_sign_for_this_one(registry: Registry, publisher: Publisher) -> None:
    other = make_publisher(registry, "globex")
    # globex's token and key, but the manifest and URL say acme
    forged = build_adapter(other.key, "acme/pixel-art", "1.0.0")
    registry.upload_blob(forged.sha256, forged.chunks(), principal=other.principal)
    with pytest.raises(ForbiddenError):
        registry.publish("acme/pixel-art", forged.bundle, principal=other.principal)
    # acme's own token, globex's key: still refused, the key is not registered for acme
    with pytest.raises(ForbiddenError, match="no key registered"):
        registry.publish("acme/pixel-art", forged.bundle, principal=publisher.principal)


def test_token_of_another_namespace_is_forbidden(registry: Registry, publisher: Publisher) -> None:
    other = make_publisher(registry, "globex")
    built = publisher.build()
    registry.upload_blob(built.sha256, built.chunks(), principal=publisher.principal)
    with pytest.raises(ForbiddenError, match="bound to namespace 'globex'"):
        registry.publish("acme/pixel-art", built.bundle, principal=other.principal)


def test_reviewer_token_cannot_upload(registry: Registry, publisher: Publisher, reviewer: Principal) -> None:
    built = publisher.build()
    with pytest.raises(ForbiddenError, match="publish"):
        registry.upload_blob(built.sha256, built.chunks(), principal=reviewer)


def test_manifest_name_must_match_the_url(registry: Registry, publisher: Publisher) -> None:
    built = publisher.build("pixel-art")
    registry.upload_blob(built.sha256, built.chunks(), principal=publisher.principal)
    with pytest.raises(UnprocessableError, match="manifest names"):
        registry.publish("acme/other-name", built.bundle, principal=publisher.principal)


def test_publish_before_upload_asks_for_the_blob(registry: Registry, publisher: Publisher) -> None:
    built = publisher.build()
    with pytest.raises(UnprocessableError, match="upload the blob first"):
        registry.publish("acme/pixel-art", built.bundle, principal=publisher.principal)


def test_digest_mismatch_leaves_nothing(registry: Registry, publisher: Publisher) -> None:
    built = publisher.build()
    claimed = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(UnprocessableError, match="digest mismatch"):
        registry.upload_blob(claimed, built.chunks(), principal=publisher.principal)
    _nothing_left(registry, claimed)
    _nothing_left(registry, built.sha256)


def test_oversize_upload_leaves_nothing(registry: Registry, publisher: Publisher) -> None:
    built = publisher.build()
    with pytest.raises(PayloadTooLargeError):
        registry.upload_blob(
            built.sha256, built.chunks(), principal=publisher.principal, max_bytes=len(built.data) - 1
        )
    _nothing_left(registry, built.sha256)


def test_client_disconnect_mid_upload_leaves_no_temp_file(registry: Registry, publisher: Publisher) -> None:
    built = publisher.build()

    def disconnecting() -> Iterator[bytes]:
        yield built.data[:1000]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        registry.upload_blob(built.sha256, disconnecting(), principal=publisher.principal)
    _nothing_left(registry, built.sha256)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80\x02}q\x00.", b"PK\x03\x04" + b"\x00" * 60, (10).to_bytes(8, "little") + b"{not json}"],
    ids=["empty", "pickle", "zip", "bad-json-header"],
)
def test_file_that_is_not_safetensors_is_refused_and_not_stored(
    registry: Registry, publisher: Publisher, data: bytes
) -> None:
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(InputError):
        registry.upload_blob(digest, iter([data]), principal=publisher.principal)
    _nothing_left(registry, digest)


def test_facts_contradicting_the_blob_are_refused(registry: Registry, publisher: Publisher) -> None:
    built = publisher.build()
    registry.upload_blob(built.sha256, built.chunks(), principal=publisher.principal)
    lying = dict(built.manifest, adapter=dict(built.manifest["adapter"], rank=64))
    from lorareg.signing.sign import sign_manifest

    bundle = sign_manifest(
        subject_name="a.safetensors", sha256=built.sha256, manifest=lying, key=publisher.key
    )
    with pytest.raises(VerificationError, match="rank"):
        registry.publish("acme/pixel-art", bundle, principal=publisher.principal)


def test_revoked_digest_cannot_come_back_under_another_name(
    registry: Registry, publisher: Publisher, reviewer: Principal
) -> None:
    first = publisher.publish("pixel-art", "1.0.0", seed=7)
    registry.revoke(first.sha256, reason="likeness without consent", principal=reviewer)
    renamed = publisher.build("innocent-name", "1.0.0", seed=7)
    assert renamed.sha256 == first.sha256
    with pytest.raises(GoneError):
        registry.upload_blob(renamed.sha256, renamed.chunks(), principal=publisher.principal)
    with pytest.raises(GoneError):
        registry.publish("acme/innocent-name", renamed.bundle, principal=publisher.principal)


def test_revocation_is_signed_into_a_new_list(
    registry: Registry, publisher: Publisher, reviewer: Principal
) -> None:
    from datetime import UTC, datetime

    before = verify_revocation_list(
        registry.revocation_list(),
        [registry.key.public_key],
        held_version=None,
        now=datetime.now(UTC),
        max_age=None,
    )
    record = publisher.publish()
    (hit,) = registry.revoke(
        f"{record.name}@{record.version}", reason="copyrighted character", principal=reviewer
    )
    assert hit.status == "revoked" and hit.revocation_reason == "copyrighted character"
    after = verify_revocation_list(
        registry.revocation_list(),
        [registry.key.public_key],
        held_version=before.version,
        now=datetime.now(UTC),
        max_age=None,
    )
    assert after.version == before.version + 1
    assert after.reason_for(record.sha256) == "copyrighted character"
    assert registry.is_revoked(record.sha256) == "copyrighted character"
    assert [e.kind for e in registry.log_entries(0, 10)] == ["publish", "revoke"]


def test_log_proves_every_change_against_a_signed_head(
    registry: Registry, publisher: Publisher, reviewer: Principal
) -> None:
    from lorareg.signing import merkle as tlog

    first = publisher.publish(version="1.0.0")
    registry.yank("acme/pixel-art", "1.0.0", principal=publisher.principal)
    old_head = tlog.verify_tree_head(registry.log_head(), [registry.key.public_key])
    registry.unyank("acme/pixel-art", "1.0.0", principal=publisher.principal)
    registry.revoke(first.sha256, reason="upheld takedown", principal=reviewer)
    head = tlog.verify_tree_head(registry.log_head(), [registry.key.public_key])
    entries = registry.log_entries(0, head.size)
    assert [e.kind for e in entries] == ["publish", "yank", "unyank", "revoke"]
    for entry in entries:
        proof = registry.log_inclusion(entry.index, head.size)
        tlog.verify_inclusion(
            leaf=entry.leaf_hash,
            index=entry.index,
            tree_size=head.size,
            proof=proof.hashes,
            root=head.root_hash,
        )
    consistency = registry.log_consistency(old_head.size, head.size)
    tlog.verify_consistency(
        first=old_head.size,
        second=head.size,
        first_root=old_head.root_hash,
        second_root=head.root_hash,
        proof=consistency.hashes,
    )
    with pytest.raises(InputError):
        registry.log_inclusion(0, head.size + 1)
