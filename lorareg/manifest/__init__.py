"""The manifest: lorareg's signed statement of what an adapter file is and where it came from.

This module is the public face of the manifest code, split by job into:

* :mod:`lorareg.manifest.model` — the v1 dataclasses, strict parsing (TOML, JSON, dicts), canonical JSON;
* :mod:`lorareg.manifest.drafting` — the author's :class:`ManifestDraft` and :func:`complete_manifest`;
* :mod:`lorareg.manifest.ids` — names (``namespace/adapter``) and semantic versions;
* :mod:`lorareg.manifest.canonical` — :func:`canonical_json` and :func:`strict_json_loads` for all signed
JSON; * :mod:`lorareg.manifest.fields` — the small field-spec engine the model is declared with.

Every field, its limits and the canonical JSON rules are in ``docs/manifest.md``. Nothing here does I/O.
"""

from __future__ import annotations

from lorareg.manifest.canonical import canonical_json, strict_json_loads
from lorareg.manifest.drafting import ManifestDraft, complete_manifest
from lorareg.manifest.ids import SemVer, check_name, check_namespace, version_key
from lorareg.manifest.model import (
    CONSENT_STATUSES,
    CONSENT_SUBJECTS,
    AdapterInfo,
    BaseModel,
    Consent,
    Creator,
    Dataset,
    Derivation,
    Digests,
    License,
    Manifest,
    Origin,
)

__all__ = [
    "CONSENT_STATUSES",
    "CONSENT_SUBJECTS",
    "AdapterInfo",
    "BaseModel",
    "Consent",
    "Creator",
    "Dataset",
    "Derivation",
    "Digests",
    "License",
    "Manifest",
    "ManifestDraft",
    "Origin",
    "SemVer",
    "canonical_json",
    "check_name",
    "check_namespace",
    "complete_manifest",
    "strict_json_loads",
    "version_key",
]
