"""The manifest: lorareg's signed statement of what an adapter file is and where it came from.

This module is the public face of the manifest code, split by job into:

* :mod:`lorareg.manifest_model` — the v1 dataclasses, strict parsing (TOML, JSON, dicts), canonical JSON;
* :mod:`lorareg.manifest_complete` — the author's :class:`ManifestDraft` and :func:`complete_manifest`;
* :mod:`lorareg.manifest_ids` — names (``namespace/adapter``) and semantic versions;
* :mod:`lorareg.manifest_json` — :func:`canonical_json` and :func:`strict_json_loads` for all signed JSON;
* :mod:`lorareg.manifest_schema` — the small field-spec engine the model is declared with.

Every field, its limits and the canonical JSON rules are in ``docs/manifest.md``. Nothing here does I/O.
"""

from __future__ import annotations

from lorareg.manifest_complete import ManifestDraft, complete_manifest
from lorareg.manifest_ids import SemVer, check_name, check_namespace, version_key
from lorareg.manifest_json import canonical_json, strict_json_loads
from lorareg.manifest_model import (
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
    "SemVer",
    "canonical_json",
    "check_name",
    "check_namespace",
    "complete_manifest",
    "strict_json_loads",
    "version_key",
]
