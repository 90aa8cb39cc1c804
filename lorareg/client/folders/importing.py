"""``lorareg import DIR``: walk a library, read each adapter's facts, hashes and sidecars, draft manifests.

One entry per distinct adapter: files with the same SHA-256 (the same adapter in two artists' folders) are
one entry with several paths; weight-level duplicates go through
:mod:`lorareg.client.folders.near_duplicates`. Pickles
and files that are not readable safetensors adapters are refused with the reason, never opened as pickle.
An entry whose draft leaves licence or consent unknown "needs review" (``Manifest.review_reasons``). Nothing
here touches the network: publishing is :mod:`lorareg.client.folders.publishing`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lorareg.adapter.foreign_formats import CONVERT_HINT
from lorareg.adapter.hashing import HASH_NAMES, FileHashes, hash_file
from lorareg.adapter.inspect import inspect_file
from lorareg.client.folders import near_duplicates
from lorareg.client.folders.draft import draft_values, metadata_claims, slug
from lorareg.client.folders.hashcache import FileKey, HashCache
from lorareg.client.folders.sidecars import Claim, read_sidecars
from lorareg.client.folders.tomlwrite import to_toml
from lorareg.client.folders.walk import walk_models
from lorareg.errors import LoraregError
from lorareg.manifest import Manifest, ManifestDraft, complete_manifest

DEFAULT_IMPORT_NAMESPACE = "local"  # drafts written without --namespace; publish needs the real one
DEFAULT_IMPORT_VERSION = "1.0.0"
REPORT_NAME = "import-report.json"
_FILLED_AT_SIGNING = ("created", "size", "adapter")  # filled (and checked) from the file when signed


@dataclass
class ImportEntry:
    """One distinct adapter found: its manifest draft (complete, unsigned) and where it came from."""

    sha256: str
    paths: list[Path]
    manifest: Manifest
    claims: list[Claim]
    contradicted: list[str]
    problems: list[str]
    previews: list[Path]
    ref: str | None = None  # set once published
    published: str | None = None  # "published" | "already published"

    @property
    def review(self) -> list[str]:
        return self.manifest.review_reasons()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.manifest.name,
            "version": self.manifest.version,
            "sha256": self.sha256,
            "paths": [str(p) for p in self.paths],
            "status": "needs-review" if self.review else "imported",
            "review": self.review,
            "family": self.manifest.base_model.family,
            "claims": [c.to_json() for c in self.claims],
            "contradicted": self.contradicted,
            "problems": self.problems,
            "previews": [str(p) for p in self.previews],
            "ref": self.ref,
            "published": self.published,
        }


@dataclass
class ImportReport:
    """What an import found: entries, duplicate paths, refusals (path and why)."""

    root: Path
    entries: list[ImportEntry] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return sum(len(e.paths) - 1 for e in self.entries)

    def counts(self) -> dict[str, int]:
        review = sum(1 for e in self.entries if e.review)
        return {"imported": len(self.entries), "duplicate": self.duplicates, "refused": len(self.refused),
                "needs_review": review}  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "counts": self.counts(),
            "adapters": [e.to_json() for e in self.entries],
            "refused": [{"path": str(p), "reason": r} for p, r in self.refused],
        }


def scan_library(
    root: Path,
    *,
    namespace: str = DEFAULT_IMPORT_NAMESPACE,
    version: str = DEFAULT_IMPORT_VERSION,
    cache: HashCache | None = None,
) -> ImportReport:
    """Walk ``root`` and draft one manifest per distinct adapter (module docstring).

    Raises:
        NotFoundError / InputError: ``root`` is missing or not a folder.
    """
    cache = cache or HashCache(None)
    report = ImportReport(root)
    by_digest: dict[str, ImportEntry] = {}
    names: set[str] = set()
    for found in walk_models(root):
        if found.kind == "pickle":
            report.refused.append((found.path, f"PyTorch pickle: never opened; {CONVERT_HINT}"))
        elif found.kind == "outside":
            report.refused.append((found.path, "symbolic link out of the folder: not followed"))
        else:
            _add(report, by_digest, names, found.path, namespace=namespace, version=version, cache=cache)
    cache.save()
    return report


def _add(report: ImportReport, by_digest: dict[str, ImportEntry], names: set[str], path: Path, *,
         namespace: str, version: str, cache: HashCache) -> None:  # fmt: skip
    try:
        hashes = _hashes(path, cache)
        if hashes.sha256 in by_digest:
            by_digest[hashes.sha256].paths.append(path)
            return
        twin = near_duplicates.same_weights_as(path, [e.paths[0] for e in report.entries])
        if twin is not None:
            next(e for e in report.entries if twin in e.paths).paths.append(path)
            return
        entry = _draft(path, hashes, namespace=namespace, version=version, names=names)
    except LoraregError as e:
        report.refused.append((path, str(e)))
        return
    by_digest[hashes.sha256] = entry
    names.add(entry.manifest.name)
    report.entries.append(entry)


def _draft(path: Path, hashes: FileHashes, *, namespace: str, version: str, names: set[str]) -> ImportEntry:
    inspection = inspect_file(path, with_hashes=False)
    sidecars = read_sidecars(path)
    sidecars.claims += metadata_claims(dict(inspection.header.metadata))
    name = _unique_name(f"{namespace}/{slug(path.stem)}", names)
    family = inspection.facts.family
    values, contradicted = draft_values(name=name, version=version, family=family, sidecars=sidecars)
    manifest = complete_manifest(ManifestDraft.from_json(values), facts=inspection.facts, hashes=hashes,
                                 size=inspection.header.file_size)  # fmt: skip
    return ImportEntry(hashes.sha256, [path], manifest, sidecars.claims, contradicted, sidecars.problems,
                       sidecars.previews)  # fmt: skip


def _unique_name(name: str, taken: set[str]) -> str:
    """Two different files with the same stem in different folders get ``-2``, ``-3`` …"""
    if name not in taken:
        return name
    n = 2
    while f"{name[:60]}-{n}" in taken:
        n += 1
    return f"{name[:60]}-{n}"


def _hashes(path: Path, cache: HashCache) -> FileHashes:
    """All six hashes, from the persistent cache while (path, size, mtime_ns, inode) is unchanged."""
    key = FileKey.of(path)
    cached = {n: cache.get(key, n) for n in HASH_NAMES}
    if cached["sha256"] and cached["autov3"] and cached["blake3"]:
        cache.hits += 1
        return FileHashes(**{n: cached[n] for n in HASH_NAMES})  # type: ignore[arg-type]
    cache.misses += 1
    hashes = hash_file(path)
    cache.put(key, {n: v for n, v in hashes.to_json().items() if isinstance(v, str)})
    return hashes


def write_drafts(report: ImportReport, out: Path) -> list[Path]:
    """One ``<adapter>.toml`` draft per entry (``lorareg publish FILE --manifest`` reads it) and the report.

    The drafts are complete manifests less what signing fills in from the file again (``created``,
    ``size``, ``adapter``; the digests and family stay for the reader, and are checked then), so an
    owner can edit licence and consent, bump ``version`` and publish the reviewed version.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for entry in report.entries:
        values = {
            k: v for k, v in entry.manifest.to_json().items() if v != [] and k not in _FILLED_AT_SIGNING
        }
        target = out / f"{entry.manifest.name.split('/', 1)[1]}.toml"
        header = [f"# drafted by lorareg import from {entry.paths[0]}"]
        header += [f"# needs review: {reason}" for reason in entry.review]
        target.write_text("\n".join(header) + "\n" + to_toml(values), encoding="utf-8")
        written.append(target)
    (out / REPORT_NAME).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    return written
