"""`lorareg dataset-hash`: a deterministic, documented digest that refuses what it cannot honestly hash."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lorareg.adapter.dataset import FORMAT, dataset_hash
from lorareg.errors import InputError, NotFoundError
from tests.support.cli_runner import run_main as run_cli

FILES = {"img/001.png": b"\x89PNG one", "img/001.txt": b"a cat, pixel art", "img/002.png": b"\x89PNG two"}
FILES |= {".hidden": b"x", "z.txt": b"", "sub/deeper/\u00e9t\u00e9.jpg": b"summer"}


def make_dataset(root: Path, files: dict[str, bytes], *, order: list[str] | None = None) -> Path:
    for rel in order or list(files):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[rel])
    return root


def test_digest_does_not_depend_on_file_creation_order(tmp_path: Path) -> None:
    a = make_dataset(tmp_path / "a", FILES)
    b = make_dataset(tmp_path / "b", FILES, order=sorted(FILES, reverse=True))
    os.utime(b / "z.txt", (1, 1))  # timestamps do not count either
    assert dataset_hash(a).sha256 == dataset_hash(b).sha256
    assert dataset_hash(a).files == len(FILES)


def test_digest_is_sha256_of_the_documented_listing(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", FILES)
    digest = dataset_hash(root)
    lines = [
        f"{hashlib.sha256(FILES[p]).hexdigest()}  {p}\n" for p in sorted(FILES, key=lambda p: p.encode())
    ]
    listing = FORMAT + "\n" + "".join(lines)
    assert digest.listing() == listing
    assert digest.sha256 == hashlib.sha256(listing.encode()).hexdigest()


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs GNU coreutils")
def test_documented_shell_pipeline_gives_the_same_digest(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", FILES)
    script = (
        "(printf 'lorareg-dataset-hash v1\\n'; cd \"$1\" && find . -type f -printf '%P\\0' |"
        " LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum"
    )
    result = subprocess.run(
        ["bash", "-c", script, "sh", str(root)], capture_output=True, text=True, check=True
    )
    assert result.stdout.split()[0] == dataset_hash(root).sha256


@pytest.mark.parametrize(
    "change",
    ["flip-one-byte", "rename", "add-empty-file", "remove-file"],
)
def test_any_change_to_names_or_contents_changes_the_digest(tmp_path: Path, change: str) -> None:
    root = make_dataset(tmp_path / "d", FILES)
    before = dataset_hash(root).sha256
    target = root / "img/002.png"
    if change == "flip-one-byte":
        data = bytearray(target.read_bytes())
        data[-1] ^= 1
        target.write_bytes(bytes(data))
    elif change == "rename":
        target.rename(root / "img/003.png")
    elif change == "add-empty-file":
        (root / "img/new.txt").write_bytes(b"")
    else:
        target.unlink()
    assert dataset_hash(root).sha256 != before


def test_empty_directories_do_not_count(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", FILES)
    before = dataset_hash(root).sha256
    (root / "empty" / "nested").mkdir(parents=True)
    assert dataset_hash(root).sha256 == before


def test_escaping_symlink_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    root = make_dataset(tmp_path / "d", FILES)
    (root / "img" / "leak.txt").symlink_to(secret)
    with pytest.raises(InputError, match="outside the dataset directory"):
        dataset_hash(root)
    code, out, err = run_cli(monkeypatch, capsys, "dataset-hash", str(root))
    assert (code, out) == (2, "") and err.startswith("error: symlink img/leak.txt points outside")


@pytest.mark.parametrize("kind", ["dangling", "to-directory", "relative-escape"])
def test_other_unhashable_symlinks_are_refused(tmp_path: Path, kind: str) -> None:
    root = make_dataset(tmp_path / "d", FILES)
    link = root / "link"
    target = {
        "dangling": root / "missing",
        "to-directory": root / "img",
        "relative-escape": Path("../../etc"),
    }
    link.symlink_to(target[kind])
    with pytest.raises(InputError, match="symlink link"):
        dataset_hash(root)


def test_symlink_inside_is_hashed_as_its_file_under_its_own_name(tmp_path: Path) -> None:
    linked = make_dataset(tmp_path / "linked", FILES)
    (linked / "copy.png").symlink_to("img/001.png")
    copied = make_dataset(tmp_path / "copied", FILES | {"copy.png": FILES["img/001.png"]})
    digest = dataset_hash(linked)
    assert digest.sha256 == dataset_hash(copied).sha256
    assert digest.followed_symlinks == ("copy.png",)


@pytest.mark.parametrize("name", ["new\nline.txt", "back\\slash.txt"], ids=["newline", "backslash"])
def test_names_that_break_the_line_format_are_refused(tmp_path: Path, name: str) -> None:
    root = make_dataset(tmp_path / "d", {name: b"x"})
    with pytest.raises(InputError, match="rename it"):
        dataset_hash(root)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_not_read(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "d", FILES)
    os.mkfifo(root / "pipe")
    with pytest.raises(InputError, match="not a regular file"):
        dataset_hash(root)


def test_missing_directory_is_not_found_and_a_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        dataset_hash(tmp_path / "nope")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(InputError, match="not a directory"):
        dataset_hash(tmp_path / "f")


def test_cli_json_and_list_report_what_was_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_dataset(tmp_path / "d", FILES)
    code, out, _ = run_cli(monkeypatch, capsys, "dataset-hash", str(root), "--json")
    doc = json.loads(out)
    assert code == 0
    assert doc == {
        "sha256": dataset_hash(root).sha256,
        "format": FORMAT,
        "files": len(FILES),
        "bytes": sum(map(len, FILES.values())),
        "followed_symlinks": [],
    }
    code, out, _ = run_cli(monkeypatch, capsys, "dataset-hash", str(root), "--list")
    assert code == 0 and out == dataset_hash(root).listing()
    code, out, _ = run_cli(monkeypatch, capsys, "dataset-hash", str(root))
    assert code == 0 and doc["sha256"] in out and f"{len(FILES)} regular files" in out
