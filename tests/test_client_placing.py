"""`pull --out` places the verified cache file without a second write: reflink, else hard link, else copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lorareg.client.placing import PLACEMENTS, place
from lorareg.errors import StorageError, VerificationError
from tests.fixtures.server import LiveServer


def test_placing_on_one_filesystem_writes_no_second_copy(tmp_path: Path) -> None:
    source = tmp_path / "cache" / "blob"
    source.parent.mkdir()
    source.write_bytes(b"adapter bytes" * 1000)
    target = tmp_path / "out" / "ink-1.0.0.safetensors"
    target.parent.mkdir()
    how = place(source, target)
    assert how in ("reflink", "hardlink")
    assert target.read_bytes() == source.read_bytes()
    if how == "hardlink":
        assert os.stat(target).st_ino == os.stat(source).st_ino


def test_placing_across_filesystems_falls_back_to_a_copy(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.fail("this test needs /dev/shm on another filesystem than the temp directory")
    source = tmp_path / "blob"
    source.write_bytes(b"x" * 4096)
    target = shm / f"lorareg-placing-{os.getpid()}.safetensors"
    try:
        assert place(source, target) == "copy"
        assert target.read_bytes() == source.read_bytes()
        assert os.stat(target).st_ino != os.stat(source).st_ino
    finally:
        target.unlink(missing_ok=True)


def test_placing_replaces_a_stale_target_atomically_and_leaves_no_temporary(tmp_path: Path) -> None:
    source = tmp_path / "blob"
    source.write_bytes(b"new")
    target = tmp_path / "ink.safetensors"
    target.write_bytes(b"old and longer")
    assert place(source, target) in PLACEMENTS
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob", "ink.safetensors"]


def test_placing_into_an_unwritable_directory_is_a_storage_error(tmp_path: Path) -> None:
    source = tmp_path / "blob"
    source.write_bytes(b"x")
    with pytest.raises(StorageError, match="cannot write"):
        place(source, tmp_path / "missing-dir" / "ink.safetensors")


def test_pull_out_links_the_verified_cache_file_and_an_edited_copy_is_evicted(
    live_server: LiveServer, tmp_path: Path
) -> None:
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/ink", "1.0.0", family="sd1")
    with live_server.client(token) as client:
        client.publish(path, bundle)
    trust, policy = live_server.trust()
    with live_server.client(cache_dir=tmp_path / "cache") as client:
        out = client.pull("acme/ink@1.0.0", trust=trust, policy=policy, out_dir=tmp_path / "out")
        cached = client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
        assert out.read_bytes() == path.read_bytes()
        assert os.stat(out).st_ino == os.stat(cached).st_ino  # one inode: no second write
        with out.open("r+b") as handle:  # an edit through the placed copy reaches the shared inode ...
            handle.seek(-1, os.SEEK_END)
            handle.write(b"\xff")
        with pytest.raises(VerificationError, match="digest mismatch"):  # ... the cache notices and evicts
            client.pull("acme/ink@1.0.0", trust=trust, policy=policy)
        again = client.pull("acme/ink@1.0.0", trust=trust, policy=policy)  # and the next pull heals it
        assert again.read_bytes() == path.read_bytes()
