"""``lorareg audit DIR``: what each LoRA file in a UI's folder is, judged against the registry's record.

Per file, the first that applies (``STATUSES``):

1. ``pickle`` — a ``.ckpt``/``.pt``/``.bin``… file: never opened (it can run code when a UI loads it);
2. ``revoked`` — its SHA-256 is on the verified revocation list (with the takedown's public reason);
3. ``modified`` — a ``.sig`` or a lorareg-written sidecar beside it names one SHA-256, the bytes have another;
4. ``near-duplicate`` — a re-packaged copy of a revoked version (weight fingerprints: ``near_duplicates.py``);
5. ``verified`` — a ``.sig`` beside it verifies against the trust file's keys for these exact bytes;
6. ``yanked`` / ``known`` — the registry knows the digest (only when a registry is reachable);
7. ``unknown`` — nothing says what it is.

Revocations come from :func:`lorareg.client.revocations.current_revocations`: the registry's list, or offline
the newest verified list the cache holds (its age is reported). Digests come from the persistent
:class:`~lorareg.client.folders.hashcache.HashCache`, so an unchanged folder is re-audited from ``stat``
alone. Signatures are checked against the cached digest (``file_facts=None``: the facts are a function of
the very bytes the digest names, and the registry checked them at publish). Nothing here moves files:
:mod:`~lorareg.client.folders.quarantine` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorareg.client.folders import near_duplicates
from lorareg.client.folders.hashcache import HashCache
from lorareg.client.folders.sidecars import A1111_SUFFIX, LORA_MANAGER_SUFFIX
from lorareg.client.folders.walk import Found, walk_models
from lorareg.errors import LoraregError, NotFoundError, RemoteError, VerificationError

if TYPE_CHECKING:
    from lorareg.client.api_client import Client
    from lorareg.client.revocations import CheckedRevocations
    from lorareg.signing.trust import TrustStore

STATUSES = ("verified", "known", "revoked", "yanked", "near-duplicate", "modified", "unknown", "pickle")
FAILING = ("revoked", "near-duplicate", "modified")  # exit 1 when any file has one of these
LOREG_SIDECAR_KEY = "lorareg"  # the object `pull --into` writes into the sidecars it creates
MAX_SIG_BYTES = 1 * 2**20


@dataclass
class AuditItem:
    """One file's verdict and why."""

    path: Path
    status: str
    sha256: str | None = None
    ref: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "status": self.status, "sha256": self.sha256, "ref": self.ref,
                "reason": self.reason}  # fmt: skip


@dataclass
class AuditReport:
    """Every file's verdict, where the revocation list came from and how old it is, cache statistics."""

    root: Path
    items: list[AuditItem] = field(default_factory=list)
    revocations: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    hashed: int = 0
    from_cache: int = 0

    @property
    def failed(self) -> bool:
        return any(item.status in FAILING for item in self.items)

    def counts(self) -> dict[str, int]:
        return {s: n for s in STATUSES if (n := sum(1 for i in self.items if i.status == s))}

    def to_json(self) -> dict[str, Any]:
        return {"root": str(self.root), "ok": not self.failed, "counts": self.counts(),
                "files": [i.to_json() for i in self.items], "revocations": self.revocations,
                "notes": self.notes, "hashed": self.hashed, "from_cache": self.from_cache}  # fmt: skip


def audit_folder(
    root: Path,
    *,
    trust: TrustStore,
    checked: CheckedRevocations,
    client: Client | None,
    cache: HashCache,
    skip: Path | None = None,
    now: datetime | None = None,
) -> AuditReport:
    """Judge every LoRA file under ``root`` (module docstring). ``skip``: a folder not to walk (quarantine).

    Raises:
        NotFoundError / InputError: ``root`` is missing or not a folder.
    """
    report = AuditReport(root, revocations=_revocation_summary(checked, now or datetime.now(UTC)))
    if checked.note:
        report.notes.append(checked.note)
    revoked = checked.revoked()
    walked = walk_models(root, skip=skip)
    prefetched = cache.prefetch([(f.path, f.stat) for f in walked if f.kind == "safetensors" and f.stat])
    for found in walked:
        if found.kind == "pickle":
            report.items.append(
                AuditItem(found.path, "pickle", reason="PyTorch pickle: can run code; convert it")
            )
            continue
        if found.kind == "outside":
            report.items.append(
                AuditItem(found.path, "unknown", reason="symbolic link out of the folder: not read")
            )
            continue
        misses = cache.misses
        try:
            sha256 = cache.sha256(found.path, found.stat)
        except OSError as e:
            report.items.append(AuditItem(found.path, "unknown", reason=f"cannot read: {e.strerror}"))
            continue
        report.hashed += cache.misses - misses
        report.from_cache += 1 - (cache.misses - misses)
        item = _judge(found, sha256, revoked=revoked, trust=trust)
        if item.status == "unknown" and client is not None:
            item = _ask_registry(item, client, report)
        report.items.append(item)
    report.hashed += prefetched
    report.from_cache -= prefetched
    cache.save()
    return report


def _judge(found: Found, sha256: str, *, revoked: dict[str, str], trust: TrustStore) -> AuditItem:
    path = found.path
    if sha256 in revoked:
        return AuditItem(path, "revoked", sha256, reason=revoked[sha256])
    bundle = _read_small(Path(f"{path}.sig")) if f"{path.name}.sig" in found.siblings else None
    claimed = _claimed_sha256(path, bundle, found.siblings)
    for source, digest in claimed:
        if digest != sha256:
            return AuditItem(path, "modified", sha256,
                             reason=f"{source} says sha256 {digest}, the file has {sha256}")  # fmt: skip
    return _verify_signature(path, sha256, bundle, trust=trust, revoked=revoked)


def _verify_signature(
    path: Path, sha256: str, bundle: bytes | None, *, trust: TrustStore, revoked: dict[str, str]
) -> AuditItem:
    from lorareg.signing.policy import Policy
    from lorareg.signing.verify import verify_bundle

    if bundle is None:
        return AuditItem(path, "unknown", sha256, reason="no signature file beside it")
    signature_only = Policy(likeness_requires_consent=False, allow_unreviewed=True)
    try:
        verified = verify_bundle(
            bundle,
            file_size=path.stat().st_size,
            file_digests={"sha256": sha256},
            file_facts=None,
            trust=trust,
            policy=signature_only,
            revoked=revoked,
        )
    except VerificationError as e:
        return AuditItem(path, "unknown", sha256, reason="signature does not verify: " + "; ".join(e.reasons))
    manifest = verified.manifest
    return AuditItem(path, "verified", sha256, ref=manifest.ref if manifest is not None else None)


def _ask_registry(item: AuditItem, client: Client, report: AuditReport) -> AuditItem:
    try:
        detail = client.resolve(str(item.sha256))
    except NotFoundError:
        twin = near_duplicates.near_duplicate_of_revoked(item.path, client=client)
        if twin is None:
            return item
        return AuditItem(
            item.path,
            "near-duplicate",
            item.sha256,
            twin[0],
            f"near-duplicate of revoked {twin[0]}: {twin[1]}",
        )
    except RemoteError as e:
        note = f"registry unreachable ({e}); digests were not looked up"
        if note not in report.notes:
            report.notes.append(note)
        return item
    except LoraregError:
        return item
    status = str(detail.get("status"))
    ref = str(detail.get("ref"))
    if status == "revoked":
        return AuditItem(
            item.path, "revoked", item.sha256, ref, str(detail.get("revocation_reason") or "revoked")
        )
    return AuditItem(item.path, "yanked" if status == "yanked" else "known", item.sha256, ref, item.reason)


def _claimed_sha256(path: Path, bundle: bytes | None, siblings: frozenset[str]) -> list[tuple[str, str]]:
    """``(source, sha256)`` the ``.sig`` and lorareg-written sidecars beside ``path`` claim (unverified)."""
    out = []
    if bundle is not None:
        from lorareg.signing.filecheck import claimed_digests

        digest = claimed_digests(bundle)[1].get("sha256")
        if digest:
            out.append((f"{path.name}.sig", digest))
    stem = path.with_suffix("")
    for suffix in (LORA_MANAGER_SUFFIX, A1111_SUFFIX):
        if f"{stem.name}{suffix}" not in siblings:
            continue
        raw = _read_small(Path(f"{stem}{suffix}"))
        try:
            data = json.loads(raw) if raw is not None else None
        except ValueError:
            continue
        ours = data.get(LOREG_SIDECAR_KEY) if isinstance(data, dict) else None
        if isinstance(ours, dict) and isinstance(ours.get("sha256"), str):
            out.append((f"{stem.name}{suffix}", ours["sha256"]))
    return out


def _read_small(path: Path) -> bytes | None:
    try:
        with path.open("rb") as f:
            return f.read(MAX_SIG_BYTES)
    except OSError:
        return None


def _revocation_summary(checked: CheckedRevocations, now: datetime) -> dict[str, Any]:
    summary = checked.to_json()
    issued = checked.revocations.issued if checked.revocations is not None else None
    summary["age_s"] = int((now - issued).total_seconds()) if issued is not None else None
    return summary
