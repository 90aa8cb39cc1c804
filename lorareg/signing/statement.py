"""The signed payload: an in-toto Statement v1 in the OpenSSF model signing v1.0 format, for one file.

What ``model_signing`` 1.1 writes when it signs a single file (``files`` serialization), which this module
reproduces field for field so that its verifier accepts our signature files:

- ``predicate.resources`` is one entry ``{"name": ".", "algorithm": "sha256", "digest": <sha256 of the
  file>}``; the name is the file's path relative to itself;
- ``predicate.serialization`` is ``{"method": "files", "hash_type": "sha256", "allow_symlinks": false,
  "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore"]}`` (the git paths its CLI ignores);
- ``subject`` is one entry named after the file, whose ``sha256`` is SHA-256 over the concatenated raw
  resource digests (for one file: SHA-256 of the 32 digest bytes), not the file's own digest.

lorareg adds one predicate field, ``lorareg``: the manifest as a JSON object. OMS v1.0 verifiers ignore
fields they do not know, so the same signature covers both. The payload is canonical JSON (sorted keys, no
whitespace). Parsing is strict (duplicate keys and unknown fields refused) and reports every problem it
finds; it checks no signature and no file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lorareg.errors import InputError, VerificationError
from lorareg.manifest.canonical import canonical_json, strict_json_loads

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
SERIALIZATION_METHOD = "files"
SINGLE_FILE_RESOURCE = "."
GIT_IGNORE_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
RESOURCE_ALGORITHMS = ("sha256", "blake3")  # what model_signing's `files` method may record for a file
MAX_IGNORE_PATHS = 64
_HEX64 = re.compile(r"[0-9a-f]{64}")
_STATEMENT_FIELDS = frozenset({"_type", "subject", "predicateType", "predicate"})
_PREDICATE_FIELDS = frozenset({"serialization", "resources", "lorareg"})
_SERIALIZATION_FIELDS = frozenset({"method", "hash_type", "allow_symlinks", "ignore_paths"})


@dataclass(frozen=True, slots=True)
class Statement:
    """A parsed statement about one file. ``manifest`` is the raw ``lorareg`` object (None if absent)."""

    subject_name: str
    resource_algorithm: str
    resource_digest: str
    manifest: Mapping[str, Any] | None


def build_statement(*, subject_name: str, sha256: str, manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """Build the statement object for a file with digest ``sha256`` and an optional lorareg manifest."""
    predicate: dict[str, Any] = {
        "serialization": {
            "method": SERIALIZATION_METHOD,
            "hash_type": "sha256",
            "allow_symlinks": False,
            "ignore_paths": list(GIT_IGNORE_PATHS),
        },
        "resources": [{"name": SINGLE_FILE_RESOURCE, "algorithm": "sha256", "digest": sha256}],
    }
    if manifest is not None:
        predicate["lorareg"] = dict(manifest)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": subject_digest([sha256])}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def statement_payload(statement: Mapping[str, Any]) -> bytes:
    """The payload bytes to sign: canonical JSON of the statement."""
    return canonical_json(statement)


def subject_digest(resource_digests: list[str]) -> str:
    """OMS subject digest: SHA-256 over the raw bytes of every resource digest, in order."""
    h = hashlib.sha256()
    for digest in resource_digests:
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


def parse_statement(payload: bytes) -> Statement:
    """Parse a (signature-checked) payload strictly.

    Raises:
        VerificationError: every problem found (types, subject count, serialization, resources).
    """
    try:
        obj = strict_json_loads(payload)
    except InputError as e:
        raise VerificationError([f"payload is not valid JSON: {e}"]) from e
    if not isinstance(obj, dict):
        raise VerificationError([f"payload must be a JSON object, got {type(obj).__name__}"])
    reasons = _field_problems(obj, "statement", required=_STATEMENT_FIELDS, allowed=_STATEMENT_FIELDS)
    if obj.get("_type") != STATEMENT_TYPE:
        reasons.append(f"statement _type is {obj.get('_type')!r}; expected {STATEMENT_TYPE!r}")
    if obj.get("predicateType") != PREDICATE_TYPE:
        reasons.append(f"predicateType is {obj.get('predicateType')!r}; expected {PREDICATE_TYPE!r}")
    subject = _parse_subject(obj.get("subject"), reasons)
    resource = _parse_predicate(obj.get("predicate"), reasons)
    if reasons or subject is None or resource is None:
        raise VerificationError(reasons or ["statement is malformed"])
    name, digest = subject
    algorithm, resource_digest, manifest = resource
    if digest != subject_digest([resource_digest]):
        raise VerificationError([f"subject digest {digest} does not match the resource digest it summarises"])
    return Statement(name, algorithm, resource_digest, manifest)


def _parse_subject(value: object, reasons: list[str]) -> tuple[str, str] | None:
    if not isinstance(value, list):
        reasons.append("statement subject must be a list")
        return None
    if len(value) != 1:
        reasons.append(f"statement has {len(value)} subjects; expected exactly one")
        return None
    item = value[0]
    if not isinstance(item, dict) or _field_problems(item, "subject", required=_SUBJECT, allowed=_SUBJECT):
        reasons.append("subject must be {name, digest}")
        return None
    digest = item["digest"]
    if not isinstance(item["name"], str) or not isinstance(digest, dict) or set(digest) != {"sha256"}:
        reasons.append("subject must have a string name and exactly one digest, sha256")
        return None
    if not _is_hex64(digest["sha256"]):
        reasons.append("subject sha256 is not 64 lower-case hex digits")
        return None
    return item["name"], digest["sha256"]


def _parse_predicate(value: object, reasons: list[str]) -> tuple[str, str, Mapping[str, Any] | None] | None:
    if not isinstance(value, dict):
        reasons.append("statement predicate must be a JSON object")
        return None
    required = frozenset({"serialization", "resources"})
    reasons.extend(_field_problems(value, "predicate", required=required, allowed=_PREDICATE_FIELDS))
    hash_type = _parse_serialization(value.get("serialization"), reasons)
    resource = _parse_resources(value.get("resources"), reasons)
    manifest = value.get("lorareg")
    if manifest is not None and not isinstance(manifest, dict):
        reasons.append("predicate.lorareg must be a JSON object")
        return None
    if hash_type is None or resource is None:
        return None
    algorithm, digest = resource
    if algorithm != hash_type:
        reasons.append(f"resource algorithm {algorithm!r} differs from serialization hash_type {hash_type!r}")
        return None
    return algorithm, digest, manifest


def _parse_serialization(value: object, reasons: list[str]) -> str | None:
    """Check the serialization block; return its hash type."""
    if not isinstance(value, dict):
        reasons.append("predicate.serialization must be a JSON object")
        return None
    required = frozenset({"method", "hash_type", "allow_symlinks"})
    problems = _field_problems(value, "serialization", required=required, allowed=_SERIALIZATION_FIELDS)
    if value.get("method") != SERIALIZATION_METHOD:
        problems.append(f"serialization method is {value.get('method')!r}; expected {SERIALIZATION_METHOD!r}")
    if value.get("hash_type") not in RESOURCE_ALGORITHMS:
        problems.append(
            f"serialization hash_type is {value.get('hash_type')!r}; expected one of {RESOURCE_ALGORITHMS}"
        )
    if not isinstance(value.get("allow_symlinks"), bool):
        problems.append("serialization allow_symlinks must be true or false")
    paths = value.get("ignore_paths", [])
    if (
        not isinstance(paths, list)
        or len(paths) > MAX_IGNORE_PATHS
        or not all(isinstance(p, str) for p in paths)
    ):
        problems.append(f"serialization ignore_paths must be a list of at most {MAX_IGNORE_PATHS} strings")
    reasons.extend(problems)
    return None if problems else str(value["hash_type"])


def _parse_resources(value: object, reasons: list[str]) -> tuple[str, str] | None:
    """Check the single-file resource list; return (algorithm, digest)."""
    if not isinstance(value, list) or not value:
        reasons.append("predicate.resources must be a non-empty list")
        return None
    if len(value) != 1:
        reasons.append(f"signature covers {len(value)} files; lorareg verifies exactly one file")
        return None
    item = value[0]
    fields = frozenset({"name", "algorithm", "digest"})
    if not isinstance(item, dict) or _field_problems(item, "resource", required=fields, allowed=fields):
        reasons.append("resource must be {name, algorithm, digest}")
        return None
    if item["name"] != SINGLE_FILE_RESOURCE:
        reasons.append(
            f"resource name is {item['name']!r}; a single-file signature names {SINGLE_FILE_RESOURCE!r}"
        )
        return None
    if item["algorithm"] not in RESOURCE_ALGORITHMS or not _is_hex64(item["digest"]):
        reasons.append("resource digest must be sha256 or blake3 as 64 lower-case hex digits")
        return None
    return str(item["algorithm"]), str(item["digest"])


_SUBJECT = frozenset({"name", "digest"})


def _field_problems(
    obj: dict[str, Any], where: str, *, required: frozenset[str], allowed: frozenset[str]
) -> list[str]:
    problems = [f"{where} lacks {f}" for f in sorted(required - obj.keys())]
    problems += [f"{where} has unknown field {f!r}" for f in sorted(obj.keys() - allowed)]
    return problems


def _is_hex64(value: object) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None
