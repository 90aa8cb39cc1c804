"""Sidecar files UI tools keep beside a LoRA, read as *claims*: what they say, where it came from.

Three formats are understood, all JSON written by tools artists use (public formats, read field by field;
nothing here executes or trusts them):

* ComfyUI LoRA Manager's ``<stem>.metadata.json``: its own keys (``model_name``, ``base_model``,
  ``modelDescription``, ``notes``, ``preview_url``) and a ``civitai`` object holding Civitai's model-version
  JSON (``id``, ``modelId``, ``trainedWords``, ``baseModel``, ``creator``, ``model`` with
  ``allowCommercialUse`` / ``allowDerivatives`` / ``allowNoCredit`` / ``poi``);
* Civitai Helper's ``<stem>.civitai.info``: Civitai's model-version JSON itself;
* A1111's ``<stem>.json``: ``description``, ``activation text``, ``preferred weight``, ``sd version``,
  ``notes``.

Previews are ``<stem>.preview.{png,jpg,jpeg,webp}`` or ``<stem>.{png,jpg,jpeg,webp}``. A sidecar that is too
big, not JSON or not an object is reported as a problem and otherwise ignored: a broken sidecar never stops
an import. Deliberately not here: deciding what wins (``draft.py``: tensors win, unknowns stay unknown).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_SIDECAR_BYTES = 4 * 2**20  # Civitai info files with many images run to a few hundred KiB
LORA_MANAGER_SUFFIX = ".metadata.json"
CIVITAI_INFO_SUFFIX = ".civitai.info"
A1111_SUFFIX = ".json"
PREVIEW_SUFFIXES = (".preview.png", ".preview.jpg", ".preview.jpeg", ".preview.webp", ".png", ".jpg",
                    ".jpeg", ".webp")  # fmt: skip
CIVITAI_URL = "https://civitai.com/models/{model_id}?modelVersionId={version_id}"
_TAGS = re.compile(r"<[^>]{0,2000}>")


@dataclass(frozen=True, slots=True)
class Claim:
    """One value a sidecar (or the file's metadata) states, and which one said it."""

    field: str
    value: Any
    source: str

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "source": self.source}


@dataclass(slots=True)
class Sidecars:
    """Everything found beside one model file: the sidecar paths, their claims, problems, previews."""

    paths: list[Path] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    previews: list[Path] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)  # source name -> SHA-256 of that sidecar file

    def first(self, name: str) -> Claim | None:
        """The first claim of ``name`` (sources are read most specific first)."""
        return next((c for c in self.claims if c.field == name), None)

    def all(self, name: str) -> list[Claim]:
        return [c for c in self.claims if c.field == name]


def sidecar_paths(model: Path) -> list[Path]:
    """Every sidecar or preview path that belongs to ``model`` (existing or not), for moving them along."""
    stem = model.with_suffix("")
    names = [LORA_MANAGER_SUFFIX, CIVITAI_INFO_SUFFIX, A1111_SUFFIX, ".credit.txt", *PREVIEW_SUFFIXES]
    return [Path(f"{stem}{suffix}") for suffix in names] + [Path(f"{model}.sig")]


def read_sidecars(model: Path) -> Sidecars:
    """Read the sidecars of ``model`` that exist; never raises for a bad sidecar (see module docstring)."""
    found = Sidecars()
    stem = model.with_suffix("")
    readers = (
        (LORA_MANAGER_SUFFIX, "lora-manager", _lora_manager),
        (CIVITAI_INFO_SUFFIX, "civitai-info", _civitai_version),
        (A1111_SUFFIX, "a1111", _a1111),
    )
    for suffix, source, reader in readers:
        path = Path(f"{stem}{suffix}")
        data = _load(path, found)
        if data is not None:
            found.paths.append(path)
            found.digests[source] = data[1]
            found.claims += reader(data[0], source)
    found.previews = [p for p in (Path(f"{stem}{s}") for s in PREVIEW_SUFFIXES) if _is_file(p)][:1]
    return found


def _load(path: Path, found: Sidecars) -> tuple[dict[str, Any], str] | None:
    if not _is_file(path):
        return None
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SIDECAR_BYTES + 1)
    except OSError as e:
        found.problems.append(f"{path.name}: cannot read ({e.strerror})")
        return None
    if len(raw) > MAX_SIDECAR_BYTES:
        found.problems.append(f"{path.name}: over {MAX_SIDECAR_BYTES} bytes; ignored")
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        found.problems.append(f"{path.name}: not valid UTF-8 JSON; ignored")
        return None
    if not isinstance(data, dict):
        found.problems.append(f"{path.name}: not a JSON object; ignored")
        return None
    return data, hashlib.sha256(raw).hexdigest()


def _lora_manager(data: dict[str, Any], source: str) -> list[Claim]:
    claims: list[Claim] = []
    civitai = data.get("civitai")
    if isinstance(civitai, dict) and civitai:
        claims += _civitai_version(civitai, source)
    claims += _texts(source, description=data.get("modelDescription"), notes=data.get("notes"))
    claims += _texts(source, base_model=data.get("base_model"), title=data.get("model_name"))
    words = data.get("trigger_words") or data.get("trainedWords")
    claims += _words(words, source)
    return claims


def _civitai_version(data: dict[str, Any], source: str) -> list[Claim]:
    """Civitai's model-version JSON (the API's ``/model-versions/{id}``), as both sidecar kinds carry it."""
    claims = _words(data.get("trainedWords"), source)
    claims += _texts(source, base_model=data.get("baseModel"), description=data.get("description"))
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    assert isinstance(model, dict)
    claims += _texts(source, title=model.get("name"), description=model.get("description"))
    for key in ("modelId", "id"):
        if isinstance(data.get(key), int | str) and not isinstance(data.get(key), bool):
            claims.append(Claim("civitai_" + ("model_id" if key == "modelId" else "version_id"),
                                str(data[key]), source))  # fmt: skip
    creator = data.get("creator") if isinstance(data.get("creator"), dict) else model.get("creator")
    if isinstance(creator, dict) and isinstance(creator.get("username"), str):
        claims.append(Claim("creator", creator["username"], source))
    for key in ("allowCommercialUse", "allowDerivatives", "allowNoCredit", "poi"):
        if key in model and isinstance(model[key], bool | str | list):
            claims.append(Claim(key, model[key], source))
    return claims


def _a1111(data: dict[str, Any], source: str) -> list[Claim]:
    claims = _texts(source, description=data.get("description"), notes=data.get("notes"))
    claims += _texts(source, base_model=data.get("sd version"))
    activation = data.get("activation text")
    if isinstance(activation, str):
        claims += _words([w for w in activation.split(",")], source)
    weight = data.get("preferred weight")
    if isinstance(weight, int | float) and not isinstance(weight, bool) and weight:
        claims.append(Claim("preferred_weight", float(weight), source))
    return claims


def _words(words: Any, source: str) -> list[Claim]:
    if isinstance(words, str):
        words = words.split(",")
    if not isinstance(words, list):
        return []
    cleaned = [" ".join(w.split()) for w in words if isinstance(w, str)]
    return [Claim("trigger_word", w, source) for w in cleaned if w]


def _texts(source: str, **values: Any) -> list[Claim]:
    out = []
    for name, value in values.items():
        if isinstance(value, str) and value.strip():
            text = _TAGS.sub(" ", value) if name == "description" else value
            out.append(Claim(name, " ".join(text.split()) if name != "description" else text.strip(), source))
    return out


def _is_file(path: Path) -> bool:
    try:
        return path.is_file() and not path.is_symlink()
    except OSError:
        return False
