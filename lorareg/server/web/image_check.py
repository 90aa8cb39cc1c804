"""The "check an image" page: drop a generated image, see which adapters made it and what became of them.

What ``lorareg provenance`` does, for people who will never open a terminal. The image is read for three
kinds of claim — lorareg's own chunk (full refs and digests), AUTOMATIC1111's ``Lora hashes`` (AutoV3
prefixes, which is what Civitai-style tools write) and a C2PA manifest's ingredients (``sha256:`` ids,
when c2pa-python is installed) — and each claim is looked up in this registry: credit line, licence and
current status (revoked or yanked since when, and why).

Caps as for previews (:func:`lorareg.registry.clean_image`: bytes, pixels, side). The image is not stored:
it is decoded from memory and, for the readers that take a path, written to a private temporary file that
is removed before the page is answered. Claims are unsigned text anyone can write; the page says so.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorareg.errors import InputError, LoraregError, PayloadTooLargeError
from lorareg.images.provenance import (
    AdapterStatus,
    AdapterUse,
    ImageProvenance,
    current_status,
    read_provenance,
)
from lorareg.registry import MAX_PREVIEW_UPLOAD_BYTES, Registry, VersionRecord, clean_image
from lorareg.server.web.views import adapter_url, credit_line

MAX_CHECK_BYTES = MAX_PREVIEW_UPLOAD_BYTES  # the same cap as a preview upload
_LORA_HASHES = re.compile(r'Lora hashes: "([^"]*)"')
_HASH_ENTRY = re.compile(r"\s*([^:,]+):\s*([0-9a-fA-F]{10,64})\s*")
_SOURCES = {"lorareg": "lorareg chunk", "a1111": "A1111 Lora hashes", "c2pa": "C2PA ingredient"}


@dataclass(frozen=True, slots=True)
class Finding:
    """One adapter an image claims, and this registry's answer about it."""

    source: str  # how the image named it: one of _SOURCES' values
    claimed: str  # what the image says (a ref, or "name: hash")
    status: str  # active, yanked, revoked, mismatch, unknown
    ref: str | None = None  # the registry's name@version
    url: str | None = None
    credit: str | None = None
    licence: str | None = None
    since: str | None = None  # revoked_at / yanked_at
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ImageCheck:
    """Everything the page shows: findings, the prompt the image records, and notes about the reading."""

    findings: list[Finding]
    prompt: str | None
    notes: list[str]


def check_image(registry: Registry, data: bytes) -> ImageCheck:
    """Read an uploaded image's claims and answer each from ``registry``.

    Raises:
        PayloadTooLargeError: over the byte, pixel or side caps.
        InputError: not an image Pillow can decode.
    """
    if len(data) > MAX_CHECK_BYTES:
        raise PayloadTooLargeError(f"image is {len(data)} bytes; the cap is {MAX_CHECK_BYTES}")
    clean_image(data)  # decodes within the caps, or raises
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lorareg-check-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        claimed = _read_claims(path, notes)
        c2pa_ids = _c2pa_digests(path)
    resolve = registry.resolve
    statuses = current_status(claimed, lambda ref: resolve(ref).to_json())
    findings = [_from_lorareg(s, resolve) for s in statuses]
    findings += _from_a1111(claimed, resolve)
    seen = {u.sha256 for u in claimed.adapters}
    findings += [_from_digest(d, "c2pa", d, resolve) for d in c2pa_ids if d not in seen]
    if not findings:
        notes.append("the image names no adapter: no lorareg chunk, no A1111 Lora hashes, no C2PA ingredient")
    return ImageCheck(findings, claimed.prompt or _prompt_of(claimed.parameters), notes)


def _read_claims(path: Path, notes: list[str]) -> ImageProvenance:
    try:
        return read_provenance(path)
    except InputError as e:
        notes.append(f"the image's provenance text could not be read: {_short(str(e))}")
        return ImageProvenance(None, ())


def _c2pa_digests(path: Path) -> list[str]:
    """``sha256:`` ingredient ids of the image's C2PA manifests (none without c2pa-python or a manifest)."""
    try:
        from lorareg.images.c2pa import read_c2pa

        store = read_c2pa(path)
    except LoraregError:
        return []
    return sorted(set(_ingredient_ids(store)))


def _ingredient_ids(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        value = node.get("instance_id")
        if isinstance(value, str) and re.fullmatch(r"sha256:[0-9a-f]{64}", value):
            yield value.removeprefix("sha256:")
        for child in node.values():
            yield from _ingredient_ids(child)
    elif isinstance(node, list):
        for child in node:
            yield from _ingredient_ids(child)


def _from_lorareg(status: AdapterStatus, resolve: Callable[[str], VersionRecord]) -> Finding:
    """A lorareg-chunk adapter; credit and licence from the registry's manifest when it knows the version."""
    use = status.adapter
    credit, licence = _credit_of(use), use.license
    if status.registry_ref:
        try:
            manifest = resolve(status.registry_ref).manifest
        except LoraregError:
            manifest = {}
        if manifest:
            credit = credit_line(manifest)
            licence = str((manifest.get("license") or {}).get("id") or "") or licence
    return Finding(
        source=_SOURCES["lorareg"],
        claimed=use.ref,
        status=status.status,
        ref=status.registry_ref,
        url=_url_of(status.registry_ref),
        credit=credit,
        licence=licence,
        since=status.revoked_at or status.yanked_at,
        reason=status.mismatch or status.reason,
    )


def _from_a1111(claimed: ImageProvenance, resolve: Callable[[str], VersionRecord]) -> list[Finding]:
    """``Lora hashes`` entries whose AutoV3 prefix is not already covered by the lorareg chunk."""
    match = _LORA_HASHES.search(claimed.parameters or "")
    if match is None:
        return []
    covered = {u.autov3[:12] for u in claimed.adapters}
    out = []
    for entry in match.group(1).split(","):
        parsed = _HASH_ENTRY.fullmatch(entry)
        if parsed is None:
            continue
        name, digest = parsed.group(1).strip(), parsed.group(2).lower()
        if digest[:12] not in covered:
            out.append(_from_digest(digest, "a1111", f"{name}: {digest}", resolve))
    return out


def _from_digest(digest: str, source: str, claimed: str, resolve: Callable[[str], VersionRecord]) -> Finding:
    try:
        record = resolve(digest)
    except LoraregError as e:
        return Finding(_SOURCES[source], claimed, "unknown", reason=_short(str(e)))
    return Finding(
        source=_SOURCES[source],
        claimed=claimed,
        status=record.status,
        ref=f"{record.name}@{record.version}",
        url=adapter_url(record.name, record.version),
        credit=credit_line(record.manifest),
        licence=str((record.manifest.get("license") or {}).get("id") or "") or None,
        since=_iso(record.revoked_at or record.yanked_at),
        reason=record.revocation_reason,
    )


def _credit_of(use: AdapterUse) -> str:
    """The credit line from what the image records (the registry does not know the version)."""
    creators = ", ".join(use.creators)
    line = f'LoRA "{use.name or use.ref}" {use.version or ""}'.rstrip()
    line += f" by {creators}" if creators else ""
    return line + (f", licensed {use.license}" if use.license else "")


def _url_of(ref: str | None) -> str | None:
    if not ref or "@" not in ref:
        return None
    name, version = ref.rsplit("@", 1)
    return adapter_url(name, version)


def _prompt_of(parameters: str | None) -> str | None:
    return parameters.split("\n", 1)[0] if parameters else None


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
