"""``lorareg pull REF --into DIR``: put a verified adapter where ComfyUI or A1111 will find it.

The file is pulled and verified into the cache first (``Client.pull``), then placed as
``<adapter>-<version>.safetensors`` by reflink or hard link from the cache (else a copy), with its
``.sig`` (so ``lorareg verify`` and ``lorareg audit`` can check it later), a ``.credit.txt`` line, and the
sidecars the UI reads:

* ``comfyui``: LoRA Manager's ``<stem>.metadata.json`` (``model_name``, ``base_model``, ``modelDescription``,
  ``notes``, ``preview_url``, ``sha256``, ``civitai.trainedWords``…);
* ``a1111``: ``<stem>.json`` (``description``, ``activation text``, ``preferred weight``, ``sd version``,
  ``notes``);
* ``plain``: no UI sidecar.

Both UI sidecars carry a ``lorareg`` object (ref, sha256) that ``audit`` checks. A preview, when the version
has one, is written as ``<stem>.preview.<ext>``. If DIR is a UI root (``models/loras`` for ComfyUI,
``models/Lora`` for A1111 exists under it) the files go there. A different file already at the target name
is never replaced without ``force``; the same bytes are left alone. Writes are atomic (temp, rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorareg.client.folders.audit import LOREG_SIDECAR_KEY
from lorareg.client.folders.hashcache import sha256_file
from lorareg.client.placing import place
from lorareg.errors import ConflictError, InputError, LoraregError

if TYPE_CHECKING:
    from lorareg.client.api_client import Client
    from lorareg.client.transport import Progress
    from lorareg.signing.policy import Policy
    from lorareg.signing.trust import TrustStore

LAYOUTS = ("comfyui", "a1111", "plain")
UI_SUBFOLDERS = {"comfyui": ("models", "loras"), "a1111": ("models", "Lora")}
SD_VERSIONS = {"sd1": "SD1", "sd2": "SD2", "sdxl": "SDXL"}  # A1111's "sd version" values; others "Unknown"
LORA_MANAGER_BASE = {"sd1": "SD 1.5", "sd2": "SD 2.1", "sdxl": "SDXL 1.0", "sd3": "SD 3", "flux1": "Flux.1 D"}
PREVIEW_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpeg", "image/webp": ".webp"}
DEFAULT_WEIGHT = 1.0


@dataclass(frozen=True)
class Installed:
    """What ``pull --into`` wrote: the adapter file, how (``reflink``/``link``/``copy``/``unchanged``), every
    sidecar."""

    path: Path
    how: str
    files: list[Path]

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "how": self.how, "files": [str(f) for f in self.files]}


def install(
    client: Client,
    ref: str,
    into: Path,
    *,
    layout: str,
    trust: TrustStore | None,
    policy: Policy | None,
    force: bool = False,
    progress: Progress | None = None,
) -> Installed:
    """Pull ``ref`` verified and install it under ``into`` (module docstring).

    Raises:
        InputError: unknown layout, or ``into`` is not a folder.
        ConflictError: a different file (or sidecar) already has the target name and ``force`` is off.
        plus every error of ``Client.pull`` (verification, not found, network).
    """
    if layout not in LAYOUTS:
        raise InputError(f"--layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    folder = _target_folder(into, layout)
    detail = client.resolve(ref)  # then pull that exact version: a publish in between changes nothing
    cached = client.pull(str(detail["ref"]), trust=trust, policy=policy, progress=progress)
    manifest: dict[str, Any] = detail.get("manifest") or {}
    stem = f"{str(detail['name']).split('/', 1)[1]}-{detail['version']}"
    target = folder / f"{stem}.safetensors"
    how = _place(cached, target, sha256=str(detail["sha256"]), force=force)
    files = [target]
    bundle = client.cache.bundle_path(str(detail["sha256"])).read_bytes()
    files.append(_write(Path(f"{target}.sig"), bundle, force=force))
    credit = credit_line(detail, manifest)
    files.append(_write(folder / f"{stem}.credit.txt", (credit + "\n").encode(), force=force))
    preview = _preview(client, str(detail["ref"]), folder, stem, force=force) if layout != "plain" else None
    if preview is not None:
        files.append(preview)
    sidecar = _sidecar(layout, detail, manifest, credit=credit, target=target, preview=preview)
    if sidecar is not None:
        files.append(_write(sidecar[0], sidecar[1], force=force))
    return Installed(target, how, files)


def credit_line(detail: dict[str, Any], manifest: dict[str, Any]) -> str:
    """``acme/ink@1.2.0 by Jo Park (trainer); licence CC-BY-4.0, commercial use yes; lorareg sha256:…``."""
    creators = ", ".join(
        f"{c.get('name')}" + (f" ({c['role']})" if c.get("role") else "")
        for c in manifest.get("creators", [])
    )
    licence = manifest.get("license") or {}
    commercial = "yes" if licence.get("commercial_use") else "no"
    by = f" by {creators}" if creators else ""
    origin = manifest.get("origin") or {}
    source = f"; originally {origin['url']}" if origin.get("url") else ""
    return (f"{detail['ref']}{by}; licence {licence.get('id')}, commercial use {commercial}{source}; "
            f"lorareg sha256:{detail['sha256']}")  # fmt: skip


def _target_folder(into: Path, layout: str) -> Path:
    if into.exists() and not into.is_dir():
        raise InputError(f"{into} is not a folder")
    into.mkdir(parents=True, exist_ok=True)
    ui = UI_SUBFOLDERS.get(layout)
    if ui is not None and (into / ui[0] / ui[1]).is_dir():
        return into / ui[0] / ui[1]
    return into


def _place(cached: Path, target: Path, *, sha256: str, force: bool) -> str:
    if target.is_dir() and not target.is_symlink():
        raise ConflictError(f"{target} is a folder; --force never replaces a folder")
    if target.exists():
        if target.is_file() and sha256_file(target) == sha256:
            return "unchanged"
        if not force:
            raise ConflictError(f"{target} exists and is a different file; use --force to replace it")
    how = place(cached, target)  # reflink, hard link, else copy: one write at most
    return "link" if how == "hardlink" else how


def _write(path: Path, data: bytes, *, force: bool) -> Path:
    if path.is_dir() and not path.is_symlink():
        raise ConflictError(f"{path} is a folder; --force never replaces a folder")
    if path.exists():
        if path.is_file() and path.read_bytes() == data:
            return path
        if not force:
            raise ConflictError(f"{path} exists with other content; use --force to replace it")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path


def _preview(client: Client, ref: str, folder: Path, stem: str, *, force: bool) -> Path | None:
    try:
        items = client.previews(ref)
        if not items:
            return None
        first = items[0]
        data = client.preview_bytes(str(first.get("url")))
    except LoraregError:
        return None  # a preview is a convenience: its absence never fails an install
    ext = PREVIEW_EXTENSIONS.get(str(first.get("media_type")), ".png")
    if hashlib.sha256(data).hexdigest() != first.get("sha256"):
        return None
    return _write(folder / f"{stem}.preview{ext}", data, force=force)


def _sidecar(layout: str, detail: dict[str, Any], manifest: dict[str, Any], *, credit: str, target: Path,
             preview: Path | None) -> tuple[Path, bytes] | None:  # fmt: skip
    ours = {"ref": detail["ref"], "sha256": detail["sha256"], "registry_credit": credit}
    family = str((manifest.get("base_model") or {}).get("family", "unknown"))
    words = list(manifest.get("trigger_words", []))
    description = str(manifest.get("description") or "")
    stem = target.with_suffix("")
    if layout == "comfyui":
        data: dict[str, Any] = {
            "file_name": stem.name, "model_name": detail["ref"], "file_path": str(target),
            "size": detail.get("size"), "sha256": detail["sha256"],
            "base_model": LORA_MANAGER_BASE.get(family, "Unknown"),
            "preview_url": str(preview) if preview else "", "notes": credit, "modelDescription": description,
            "tags": list(manifest.get("tags", [])), "from_civitai": False,
            "civitai": {"trainedWords": words, "baseModel": LORA_MANAGER_BASE.get(family, "Unknown")},
            LOREG_SIDECAR_KEY: ours,
        }  # fmt: skip
        return Path(f"{stem}.metadata.json"), (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
    if layout == "a1111":
        data = {"description": description, "sd version": SD_VERSIONS.get(family, "Unknown"),
                "activation text": ", ".join(words), "preferred weight": DEFAULT_WEIGHT, "notes": credit,
                LOREG_SIDECAR_KEY: ours}  # fmt: skip
        return Path(f"{stem}.json"), (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
    return None
