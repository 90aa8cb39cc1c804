"""Drafting a manifest for an imported file: facts from the tensors, claims from sidecars, unknowns unknown.

Rules (issue #13): what the tensors show (family, format, rank, targets, digests) is computed and wins — a
sidecar's base model that contradicts it is kept in the report as a contradicted claim, not used; what the
sidecars claim (trigger words, description, creator, Civitai permissions, ids) is used and listed with its
source; what nothing says — consent, dataset — stays ``unknown`` or absent, never guessed. Civitai's
permission fields map onto the licence flags: ``allowCommercialUse`` (a list of uses, or ``"None"``) to
``commercial_use``, ``allowDerivatives`` to ``derivatives``, ``allowNoCredit`` to the inverse of
``attribution_required``. No permission fields: licence ``unknown`` with the most restrictive flags.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from lorareg.client.folders.sidecars import CIVITAI_URL, Claim, Sidecars
from lorareg.manifest.model import (
    MAX_DESCRIPTION_CHARS,
    MAX_LINE_CHARS,
    MAX_TRIGGER_WORD_CHARS,
    MAX_TRIGGER_WORDS,
    UNKNOWN_LICENSE,
)

CIVITAI_PERMISSIONS_LICENSE = "LicenseRef-Civitai-Permissions"  # Civitai states permissions, not a licence id
MAX_SLUG_CHARS = 64
_SLUG_RUN = re.compile(r"[^a-z0-9]+")
_BAD_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_FAMILY_WORDS = (("flux", "flux1"), ("sdxl", "sdxl"), ("pony", "sdxl"), ("illustrious", "sdxl"),
                 ("sd 3", "sd3"), ("sd3", "sd3"), ("sd 2", "sd2"), ("sd2", "sd2"), ("sd 1", "sd1"),
                 ("sd1", "sd1"))  # fmt: skip
_METADATA_CLAIMS = {"modelspec.title": "title", "ss_output_name": "title", "modelspec.author": "creator",
                    "modelspec.description": "description", "modelspec.trigger_phrase": "trigger_word",
                    "modelspec.license": "license"}  # fmt: skip


def slug(stem: str) -> str:
    """A file stem as an adapter name: lower-case ASCII letters, digits and single hyphens (≤ 64 chars)."""
    ascii_text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode("ascii")
    text = _SLUG_RUN.sub("-", ascii_text.lower()).strip("-")[:MAX_SLUG_CHARS].strip("-")
    return text or "adapter"


def metadata_claims(metadata: dict[str, str]) -> list[Claim]:
    """kohya ``ss_*`` / ``modelspec.*`` strings in the file's header, as claims of ``file-metadata``."""
    claims = []
    for key, name in _METADATA_CLAIMS.items():
        value = metadata.get(key)
        if isinstance(value, str) and value.strip():
            values = value.split(",") if name == "trigger_word" else [value]
            claims += [Claim(name, v.strip(), "file-metadata") for v in values if v.strip()]
    return claims


def draft_values(
    *, name: str, version: str, family: str, sidecars: Sidecars
) -> tuple[dict[str, Any], list[str]]:
    """The draft manifest dict for one import, and the claims it could not use (contradictions)."""
    values: dict[str, Any] = {"name": name, "version": version}
    values["license"] = _license(sidecars)
    poi = sidecars.first("poi")
    values["consent"] = {"subject": "likeness" if poi is not None and poi.value is True else "unknown",
                         "status": "unknown"}  # fmt: skip
    words = _unique([_line(c.value, MAX_TRIGGER_WORD_CHARS) for c in sidecars.all("trigger_word")])
    if words:
        values["trigger_words"] = words[:MAX_TRIGGER_WORDS]
    description = sidecars.first("description")
    if description is not None:
        values["description"] = _BAD_TEXT.sub("", str(description.value))[:MAX_DESCRIPTION_CHARS]
    creators = _unique([_line(c.value, MAX_LINE_CHARS) for c in sidecars.all("creator")])
    if creators:
        values["creators"] = [{"name": c, "role": "original creator (claimed)"} for c in creators[:8]]
    values["origin"] = _origin(sidecars, creators[0] if creators else None)
    return values, _contradictions(sidecars, family)


def _license(sidecars: Sidecars) -> dict[str, Any]:
    commercial = sidecars.first("allowCommercialUse")
    derivatives = sidecars.first("allowDerivatives")
    no_credit = sidecars.first("allowNoCredit")
    if commercial is None and derivatives is None and no_credit is None:
        return {
            "id": UNKNOWN_LICENSE,
            "commercial_use": False,
            "derivatives": False,
            "attribution_required": True,
        }
    return {
        "id": CIVITAI_PERMISSIONS_LICENSE,
        "commercial_use": _commercial(commercial.value if commercial else None),
        "derivatives": derivatives is not None and derivatives.value is True,
        "attribution_required": not (no_credit is not None and no_credit.value is True),
    }


def _commercial(value: Any) -> bool:
    """Civitai's ``allowCommercialUse``: a list of uses (``["Image", "Rent", "Sell"]``), or one word."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value.strip().lower() not in ("", "none")
    if isinstance(value, list):
        return any(isinstance(v, str) and v.strip().lower() not in ("", "none") for v in value)
    return False


def _origin(sidecars: Sidecars, creator: str | None) -> dict[str, Any]:
    model_id, version_id = sidecars.first("civitai_model_id"), sidecars.first("civitai_version_id")
    origin: dict[str, Any] = {"source": "civitai" if model_id is not None else "local"}
    if model_id is not None:
        origin["model_id"] = _line(model_id.value, MAX_LINE_CHARS)
        digest = sidecars.digests.get(model_id.source)
        if digest:
            origin["sidecar_sha256"] = digest
        if version_id is not None and str(model_id.value).isdigit() and str(version_id.value).isdigit():
            origin["url"] = CIVITAI_URL.format(model_id=model_id.value, version_id=version_id.value)
    elif sidecars.digests:
        origin["sidecar_sha256"] = next(iter(sidecars.digests.values()))
    if version_id is not None:
        origin["version_id"] = _line(version_id.value, MAX_LINE_CHARS)
    if creator:
        origin["creator"] = creator
    return origin


def _contradictions(sidecars: Sidecars, family: str) -> list[str]:
    out = []
    for claim in sidecars.all("base_model"):
        claimed = claimed_family(str(claim.value))
        if claimed is not None and family != "unknown" and claimed != family:
            out.append(
                f"{claim.source} says base model {claim.value!r} ({claimed}); the tensors show {family}"
            )
    return out


def claimed_family(text: str) -> str | None:
    """The family a sidecar's base-model text names (Civitai ``SDXL 1.0``, A1111 ``SD1``), if any."""
    lowered = text.lower()
    return next((family for word, family in _FAMILY_WORDS if word in lowered), None)


def _line(value: Any, limit: int) -> str:
    return " ".join(_BAD_TEXT.sub(" ", str(value)).split())[:limit].strip()


def _unique(values: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        if v and v not in seen:
            seen[v] = None
    return list(seen)
