"""Real UI model folders for tests: ComfyUI and A1111 trees with the sidecars artists' tools write.

The sidecars follow the public formats (``lorareg/client/folders/sidecars.py`` names them): ComfyUI LoRA
Manager's ``.metadata.json`` with its ``civitai`` object, Civitai Helper's ``.civitai.info`` (Civitai's
model-version JSON), A1111's ``<name>.json``. Adapters come from ``lora_factory`` (real key names and
shapes); previews are real PNGs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from tests.support.lora_factory import write_adapter


def png_bytes(color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A small real PNG."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16), color).save(out, format="PNG")
    return out.getvalue()


def civitai_version(
    *,
    version_id: int,
    model_id: int,
    name: str,
    base_model: str,
    words: list[str],
    creator: str,
    commercial: Any = ("Image", "Rent"),
    derivatives: bool = True,
    no_credit: bool = False,
    poi: bool = False,
) -> dict[str, Any]:
    """Civitai's model-version JSON as both sidecar kinds store it (``model`` with the permission fields)."""
    return {
        "id": version_id,
        "modelId": model_id,
        "name": "v1.0",
        "createdAt": "2024-05-01T10:00:00.000Z",
        "baseModel": base_model,
        "baseModelType": "Standard",
        "trainedWords": words,
        "description": "<p>First release.</p>",
        "model": {
            "name": name,
            "type": "LORA",
            "nsfw": False,
            "poi": poi,
            "allowNoCredit": no_credit,
            "allowCommercialUse": list(commercial) if isinstance(commercial, tuple) else commercial,
            "allowDerivatives": derivatives,
            "allowDifferentLicense": False,
        },
        "creator": {"username": creator, "image": None},
        "files": [
            {
                "name": f"{name}.safetensors",
                "id": version_id * 10,
                "sizeKB": 100.5,
                "type": "Model",
                "primary": True,
                "hashes": {"AutoV2": "0123456789", "SHA256": "AB" * 32},
            }
        ],
        "images": [],
        "downloadUrl": f"https://civitai.com/api/download/models/{version_id}",
    }


def lora_manager_metadata(file: Path, *, civitai: dict[str, Any] | None, base_model: str) -> dict[str, Any]:
    """ComfyUI LoRA Manager's ``<name>.metadata.json`` for ``file``."""
    return {
        "file_name": file.stem,
        "model_name": file.stem,
        "file_path": str(file).replace("\\", "/"),
        "size": file.stat().st_size,
        "modified": 1714557600.0,
        "sha256": "",
        "base_model": base_model,
        "preview_url": str(file.with_suffix(".preview.png")),
        "preview_nsfw_level": 0,
        "notes": "",
        "from_civitai": civitai is not None,
        "civitai": civitai or {},
        "tags": ["style"],
        "modelDescription": "<p>Bold ink lines.</p>",
        "civitai_deleted": False,
        "favorite": False,
        "exclude": False,
        "db_checked": False,
        "usage_tips": '{"strength": 0.8}',
    }


def a1111_json(*, activation: str, weight: float, sd_version: str, description: str) -> dict[str, Any]:
    """A1111's per-LoRA user metadata (``models/Lora/<name>.json``)."""
    return {
        "description": description,
        "sd version": sd_version,
        "activation text": activation,
        "preferred weight": weight,
        "negative text": "",
        "notes": "",
    }


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def build_studio_library(root: Path) -> dict[str, Path]:
    """A studio's library: a ComfyUI tree and an A1111 tree, nested folders, every sidecar kind, a pickle,
    a duplicate, and a symlink out of the tree. Returns the interesting paths by role."""
    comfy = root / "ComfyUI" / "models" / "loras"
    webui = root / "stable-diffusion-webui" / "models" / "Lora"
    ink = write_adapter(comfy / "styles" / "Ink Lines v2.safetensors", "sdxl-kohya", seed=1)
    ink_civitai = civitai_version(
        version_id=4242,
        model_id=777,
        name="Ink Lines",
        base_model="SDXL 1.0",
        words=["inklines", "bold ink"],
        creator="inkmaster",
    )
    write_json(
        ink.with_suffix(".metadata.json"),
        lora_manager_metadata(ink, civitai=ink_civitai, base_model="SDXL 1.0"),
    )
    ink.with_suffix(".preview.png").write_bytes(png_bytes())
    hero = write_adapter(comfy / "characters" / "hero.safetensors", "sd1-kohya", seed=2)
    hero_info = civitai_version(
        version_id=9001,
        model_id=900,
        name="Hero",
        base_model="SD 1.5",
        words=["hero_char"],
        creator="charsmith",
        commercial="None",
        derivatives=False,
        no_credit=True,
    )
    write_json(hero.with_suffix(".civitai.info"), hero_info)
    portrait = write_adapter(webui / "people" / "portrait.safetensors", "sdxl-kohya", seed=3)
    portrait_json = a1111_json(
        activation="portrait style, soft light", weight=0.7, sd_version="SD1", description="Soft portraits"
    )
    write_json(portrait.with_suffix(".json"), portrait_json)
    duplicate = webui / "ink-copy.safetensors"
    duplicate.write_bytes(ink.read_bytes())
    pickle = webui / "old-style.ckpt"
    pickle.write_bytes(b"\x80\x04\x95" + b"\x00" * 32)
    outside = root.parent / f"{root.name}-outside.safetensors"
    outside.write_bytes(ink.read_bytes())
    link = webui / "linked.safetensors"
    link.symlink_to(outside)
    return {
        "root": root,
        "comfy": comfy,
        "webui": webui,
        "ink": ink,
        "hero": hero,
        "portrait": portrait,
        "duplicate": duplicate,
        "pickle": pickle,
        "link": link,
    }
