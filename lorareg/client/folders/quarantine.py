"""Quarantine: move (never delete) revoked and modified files, with their sidecars, out of a UI's folder.

Each file goes to the same relative path under the quarantine folder, with every sidecar that belongs to it
(``sidecars.sidecar_paths``: LoRA Manager / Civitai Helper / A1111 JSON, previews, ``.sig``), and a note
``<file>.quarantined.txt`` beside it saying when and why. Idempotent: a file already moved is not in the
folder any more, so a second run finds nothing to move; a name already taken in the quarantine folder gets
``.1``, ``.2`` … rather than overwriting evidence. Same filesystem: a rename; otherwise copy then remove.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from lorareg.client.folders.audit import FAILING, AuditItem
from lorareg.client.folders.sidecars import sidecar_paths

NOTE_SUFFIX = ".quarantined.txt"


def quarantine(items: list[AuditItem], *, root: Path, into: Path, now: datetime | None = None) -> list[Path]:
    """Move every failing item (revoked, near-duplicate, modified) under ``into``; return the new paths."""
    moved = []
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for item in items:
        if item.status not in FAILING or not item.path.exists():
            continue
        relative = Path(os.path.abspath(item.path)).relative_to(os.path.abspath(root))
        target = _free(into / relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        _move(item.path, target)
        for sidecar in sidecar_paths(item.path):
            if sidecar.is_file() and not sidecar.is_symlink():
                _move(sidecar, _beside(target, item.path, sidecar))
        note = (f"quarantined by lorareg audit at {stamp}\nfrom: {item.path}\nstatus: {item.status}\n"
                f"sha256: {item.sha256}\nreason: {item.reason}\n")  # fmt: skip
        Path(f"{target}{NOTE_SUFFIX}").write_text(note, encoding="utf-8")
        item.reason = f"{item.reason} (quarantined to {target})"
        moved.append(target)
    return moved


def _beside(target: Path, original: Path, sidecar: Path) -> Path:
    """The sidecar's name for the moved file: ``x.safetensors.sig`` -> ``<target>.sig``, ``x.json`` ->
    ``<target stem>.json`` (the target may carry a ``.1`` suffix when the name was taken)."""
    if sidecar.name.startswith(original.name):
        return target.parent / (target.name + sidecar.name[len(original.name) :])
    return target.parent / (target.stem + sidecar.name[len(original.stem) :])


def _free(target: Path) -> Path:
    if not target.exists():
        return target
    n = 1
    while target.with_name(f"{target.stem}.{n}{target.suffix}").exists():
        n += 1
    return target.with_name(f"{target.stem}.{n}{target.suffix}")


def _move(source: Path, target: Path) -> None:
    try:
        os.replace(source, target)
    except OSError:
        shutil.copy2(source, target)
        source.unlink()
