"""Walking a UI's model folder: every adapter-looking file under a root, never leaving the root.

Directory symlinks are not followed (``os.walk(followlinks=False)``), and a file symlink counts only when
its target resolves inside the root: a link to ``/etc`` or to another user's drive is listed as skipped, so
importing or auditing a folder never reads outside it. Hidden entries (``.name``) and the quarantine
folder are skipped. Results come sorted, so reports are stable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lorareg.adapter.foreign_formats import PICKLE_SUFFIXES
from lorareg.errors import InputError, NotFoundError

SAFETENSORS_SUFFIX = ".safetensors"


@dataclass(frozen=True, slots=True)
class Found:
    """One file the walk found: ``kind`` is ``safetensors``, ``pickle`` or ``outside`` (a link out)."""

    path: Path
    kind: str
    stat: os.stat_result | None
    siblings: frozenset[str] = frozenset()  # the names in its folder: sidecar checks without failed opens


def walk_models(root: Path, *, skip: Path | None = None) -> list[Found]:
    """Every ``.safetensors`` and pickle file under ``root`` (see module docstring).

    Raises:
        NotFoundError: ``root`` does not exist.
        InputError: ``root`` is not a directory.
    """
    if not root.exists():
        raise NotFoundError(f"folder {root} does not exist")
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    real_root = root.resolve()
    real_skip = skip.resolve() if skip is not None and skip.exists() else None
    found: list[Found] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and (here / d).resolve() != real_skip
        )
        siblings = frozenset(filenames)
        for name in sorted(filenames):
            item = _classify(here / name, real_root, siblings)
            if item is not None:
                found.append(item)
    return sorted(found, key=lambda f: str(f.path))


def _classify(path: Path, real_root: Path, siblings: frozenset[str]) -> Found | None:
    name = path.name.lower()
    if name.startswith("."):
        return None
    if name.endswith(SAFETENSORS_SUFFIX):
        kind = "safetensors"
    elif any(name.endswith(s) for s in PICKLE_SUFFIXES):
        kind = "pickle"
    else:
        return None
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(real_root) or not target.is_file():
            return Found(path, "outside", None)
    try:
        st = path.stat()
    except OSError:
        return None
    return Found(path, kind, st, siblings)
