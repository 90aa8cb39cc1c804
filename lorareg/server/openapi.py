"""The OpenAPI document says what the server does: every error status a route answers, in the one error
shape, the bearer scheme on the routes that need it, and the patterns and enums the server enforces.

FastAPI derives the document from the route signatures, which know neither the service's errors (a 404
from the registry, a 451 for a revoked digest) nor the edge checks (``guard.py``: 400 for a NUL or a token
in the URL), and it documents a 422 validation answer that this server never sends (it answers 400).
:func:`install_openapi` post-processes FastAPI's document once per app with the tables below; the
conformance test (``tests/test_openapi_conformance.py``, schemathesis against a live server on SQLite and
PostgreSQL) holds the two together. Change a route's errors here when you change the route.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from lorareg.adapter.facts.model import FAMILIES
from lorareg.manifest.ids import (
    MAX_ADAPTER_CHARS,
    MAX_ALIAS_CHARS,
    MAX_NAMESPACE_CHARS,
    MAX_VERSION_CHARS,
    MIN_NAMESPACE_CHARS,
)
from lorareg.manifest.model import CONSENT_STATUSES, CONSENT_SUBJECTS
from lorareg.registry import DECISIONS, REASONS, STATUSES, TAKEDOWN_LIMITS

_SLUG = r"[a-z0-9]+(-[a-z0-9]+)*"
_NUMBER = r"(0|[1-9][0-9]{0,18})"
_PRE_ID = r"(0|[1-9][0-9]{0,18}|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_BUILD_ID = r"[0-9A-Za-z-]+"
SEMVER = rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}(-{_PRE_ID}(\.{_PRE_ID})*)?(\+{_BUILD_ID}(\.{_BUILD_ID})*)?"
# Names in a ``ref`` (where lengths cannot be a separate keyword): a bounded subset of valid names.
NAME = r"[a-z0-9]{2,12}(-[a-z0-9]{1,12}){0,2}/[a-z0-9]{1,20}(-[a-z0-9]{1,20}){0,2}"
HEX_REF = r"[0-9a-fA-F]{8}|[0-9a-fA-F]{10}|[0-9a-fA-F]{12,64}"

PARAMETERS: dict[str, dict[str, Any]] = {
    "namespace": {
        "type": "string",
        "pattern": f"^{_SLUG}$",
        "minLength": MIN_NAMESPACE_CHARS,
        "maxLength": MAX_NAMESPACE_CHARS,
    },
    "adapter": {"type": "string", "pattern": f"^{_SLUG}$", "minLength": 1, "maxLength": MAX_ADAPTER_CHARS},
    "version": {"type": "string", "pattern": f"^{SEMVER}$", "maxLength": MAX_VERSION_CHARS},
    "digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "alias": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$", "minLength": 1, "maxLength": MAX_ALIAS_CHARS},
    "request_id": {"type": "string", "pattern": "^td_[0-9a-f]{32}$"},  # in the path (a filter: any text)
    "ref": {"type": "string", "pattern": f"^({NAME}(@{SEMVER})?|{HEX_REF})$", "maxLength": 300},
    "family": {"type": "string", "enum": ["", *FAMILIES]},
    "consent_subject": {"type": "string", "enum": ["", *CONSENT_SUBJECTS]},
    "consent_status": {"type": "string", "enum": ["", *CONSENT_STATUSES]},
}
_NO_NUL = "^[^\\x00]*$"  # guard.py refuses a NUL anywhere in a URL or body
_TEXT_PATTERN = "^[^\\x00]*\\S[^\\x00]*$"  # at least one non-space character, no NUL


def _text(limit: int) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": limit, "pattern": _TEXT_PATTERN}


TAKEDOWN_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["ref", "reason", "claimant", "contact", "details", "good_faith"],
    "properties": {
        "ref": {"type": "string", "pattern": f"^{NAME}@{SEMVER}$", "maxLength": 300},
        "reason": {"type": "string", "enum": list(REASONS)},
        "claimant": _text(TAKEDOWN_LIMITS["claimant"]),
        "contact": {
            "type": "string",
            "maxLength": TAKEDOWN_LIMITS["contact"],
            "pattern": "^[^@\\s<>\"'\\x00]{1,64}@[^@\\s<>\"'\\x00.]+\\.[^@\\s<>\"'\\x00]+$",
        },
        "details": _text(TAKEDOWN_LIMITS["details"]),
        "good_faith": {
            "type": "boolean",
            "enum": [True],
            "description": "must be true: the good-faith statement",
        },
    },
}
DECISION_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["decision", "reason"],
    "properties": {
        "decision": {"type": "string", "enum": list(DECISIONS)},
        "reason": _text(TAKEDOWN_LIMITS["reason"]),
        "all_versions": {"type": "boolean"},
    },
}
BUNDLE_BODY: dict[str, Any] = {
    "type": "object",
    "description": "the Sigstore bundle 'lorareg sign' writes (checked against the stored blob)",
    "required": ["mediaType", "verificationMaterial", "dsseEnvelope"],
    "properties": {
        "mediaType": {"type": "string"},
        "verificationMaterial": {"type": "object"},
        "dsseEnvelope": {
            "type": "object",
            "required": ["payload", "payloadType", "signatures"],
            "properties": {
                "payload": {"type": "string"},
                "payloadType": {"type": "string"},
                "signatures": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            },
        },
    },
}
ALIAS_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["version"],
    "properties": {"version": {"type": "string", "pattern": f"^{SEMVER}$", "maxLength": MAX_VERSION_CHARS}},
}
WEBHOOK_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["url", "events"],
    "properties": {
        "url": {"type": "string", "maxLength": 2000},
        "events": {"type": "array", "items": {"type": "string"}},
        "namespace": {"type": ["string", "null"]},
    },
}
_ALIAS_PATH = "/api/v1/adapters/{namespace}/{adapter}/aliases/{alias}"
JSON_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("put", _ALIAS_PATH): ALIAS_BODY,
    ("post", "/api/v1/webhooks"): WEBHOOK_BODY,
    ("post", "/api/v1/adapters/{namespace}/{adapter}/versions"): BUNDLE_BODY,
    ("post", "/api/v1/takedowns"): TAKEDOWN_BODY,
    ("post", "/api/v1/takedowns/{request_id}/decision"): DECISION_BODY,
}
# ``lorareg login`` (RFC 8628) and token revocation (RFC 7009): urlencoded forms, OAuth-shaped errors.
_DEVICE_CODE, _DEVICE_TOKEN, _REVOKE = "/api/v1/device/code", "/api/v1/device/token", "/api/v1/tokens/revoke"
_FIELD = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": _TEXT_PATTERN}
FORM_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", _DEVICE_CODE): {
        "type": "object",
        "required": ["client_id"],
        "properties": {
            "client_id": {"type": "string", "enum": ["lorareg-cli"]},
            "scope": {"type": "string", "enum": ["viewer", "publisher", "reviewer", "admin"]},
        },
    },
    ("post", _DEVICE_TOKEN): {
        "type": "object",
        "required": ["grant_type", "device_code", "client_id"],
        "properties": {
            "grant_type": {"type": "string", "enum": ["urn:ietf:params:oauth:grant-type:device_code"]},
            "device_code": _FIELD,
            "client_id": {"type": "string", "enum": ["lorareg-cli"]},
        },
    },
    ("post", _REVOKE): {"type": "object", "required": ["token"], "properties": {"token": _FIELD}},
}
OAUTH_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
# Routes whose refusals are RFC 6749 §5.2 JSON (what device-flow clients parse), by status.
OAUTH_ERRORS: dict[tuple[str, str], tuple[str, ...]] = {
    ("post", _DEVICE_CODE): ("400", "429"),
    ("post", _DEVICE_TOKEN): ("400",),
    ("post", _REVOKE): ("400",),
}
OAUTH_ANSWERS: dict[tuple[str, str], dict[str, Any]] = {
    ("post", _DEVICE_CODE): {
        "type": "object",
        "required": ["device_code", "user_code", "verification_uri", "expires_in", "interval"],
        "properties": {
            "device_code": {"type": "string"},
            "user_code": {"type": "string", "pattern": "^[A-Z]{4}-[A-Z]{4}$"},
            "verification_uri": {"type": "string"},
            "verification_uri_complete": {"type": "string"},
            "expires_in": {"type": "integer"},
            "interval": {"type": "integer"},
        },
    },
    ("post", _DEVICE_TOKEN): {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"type": "string", "enum": ["Bearer"]},
            "expires_in": {"type": "integer"},
            "scope": {"type": "string"},
        },
    },
    ("post", _REVOKE): {"type": "object"},
}
# A takedown-list ``status`` filter is checked too, but only on the route that has one.
_STATUS_FILTER = {"type": "string", "enum": list(STATUSES)}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_DESCRIPTIONS = {
    "304": "Not modified (If-None-Match matched)",
    "400": "Bad input (one line in error.message)",
    "401": "No token, or an unusable one",
    "403": "The token lacks the scope or namespace, or a cross-site request",
    "404": "No such resource",
    "408": "The request body stopped arriving",
    "409": "Conflicts with the current state",
    "413": "Body over its cap",
    "416": "Range not satisfiable",
    "422": "Well-formed but unprocessable (digest mismatch, signature does not verify)",
    "429": "Too many requests or uploads in progress",
    "451": "Revoked by an upheld takedown",
}
_BODY = ("408", "413")
_UPLOAD = ("408", "413", "429")

# (method, path) -> the statuses beyond 400 (every route) and 401/403 (every route needing a token).
ERRORS: dict[tuple[str, str], tuple[str, ...]] = {
    ("get", "/api/v1/adapters/{namespace}/{adapter}"): ("404",),
    ("post", "/api/v1/adapters/{namespace}/{adapter}/versions"): (*_UPLOAD, "404", "409", "422", "451"),
    ("get", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}"): ("404",),
    ("get", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/signature"): ("404",),
    ("post", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/yank"): ("404", "409"),
    ("post", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/unyank"): ("404", "409"),
    ("get", "/api/v1/resolve"): ("404",),
    ("put", "/api/v1/blobs/sha256/{digest}"): (*_UPLOAD, "422", "451"),
    ("get", "/api/v1/blobs/sha256/{digest}"): ("304", "401", "404", "416", "451"),
    ("head", "/api/v1/blobs/sha256/{digest}"): ("304", "401", "404", "416", "451"),
    ("post", "/api/v1/takedowns"): (*_BODY, "403", "404", "429"),
    ("get", "/api/v1/takedowns/{request_id}"): ("404",),
    ("post", "/api/v1/takedowns/{request_id}/decision"): (*_BODY, "404", "409"),
    ("post", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/previews"): (
        *_UPLOAD,
        "404",
        "409",
        "451",
    ),
    ("get", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/previews"): ("404",),
    ("get", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/similar"): ("404",),
    ("post", "/api/v1/similar"): _BODY,
    ("get", "/api/v1/keys/chain"): ("404",),
    ("get", "/api/v1/log/checkpoint"): ("404",),
    ("get", "/api/v1/log/evidence"): ("404",),
    ("get", "/api/v1/adapters/{namespace}/{adapter}/aliases"): ("404",),
    ("get", _ALIAS_PATH): ("404",),
    ("put", _ALIAS_PATH): (*_BODY, "404", "409"),
    ("delete", _ALIAS_PATH): ("404",),
    ("get", "/api/v1/webhooks"): (),
    ("post", "/api/v1/webhooks"): _BODY,
    ("delete", "/api/v1/webhooks/{hook_id}"): ("404",),
    ("get", "/api/v1/webhooks/{hook_id}/deliveries"): ("404",),
    ("post", "/api/v1/webhooks/{hook_id}/deliveries/{delivery_id}/redeliver"): ("404", "409"),
}
# Routes that take the bearer token (FastAPI cannot see it: the dependency reads the header itself).
SECURED: frozenset[tuple[str, str]] = frozenset(
    {
        ("post", "/api/v1/adapters/{namespace}/{adapter}/versions"),
        ("post", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/yank"),
        ("post", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/unyank"),
        ("put", "/api/v1/blobs/sha256/{digest}"),
        ("get", "/api/v1/takedowns"),
        ("get", "/api/v1/takedowns/audit"),
        ("post", "/api/v1/takedowns/{request_id}/decision"),
        ("post", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/previews"),
        ("put", _ALIAS_PATH),
        ("delete", _ALIAS_PATH),
        ("get", "/api/v1/webhooks"),
        ("post", "/api/v1/webhooks"),
        ("delete", "/api/v1/webhooks/{hook_id}"),
        ("get", "/api/v1/webhooks/{hook_id}/deliveries"),
        ("post", "/api/v1/webhooks/{hook_id}/deliveries/{delivery_id}/redeliver"),
    }
)
# Raw (non-JSON) bodies and answers, by (method, path): media type.
RAW_BODIES: dict[tuple[str, str], str] = {
    ("put", "/api/v1/blobs/sha256/{digest}"): "application/octet-stream",
    ("post", "/api/v1/adapters/{namespace}/{adapter}/versions/{version}/previews"): "image/png",
}
RAW_ANSWERS: dict[tuple[str, str], dict[str, str]] = {
    ("get", "/api/v1/log/checkpoint"): {"200": "text/plain; charset=utf-8"},
    ("get", "/api/v1/blobs/sha256/{digest}"): {
        "200": "application/octet-stream",
        "206": "application/octet-stream",
    },
    ("head", "/api/v1/blobs/sha256/{digest}"): {
        "200": "application/octet-stream",
        "206": "application/octet-stream",
    },
}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` return the completed document (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
            app.openapi_schema = complete(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add error answers, security, parameter constraints and raw media types to FastAPI's document."""
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    components["schemas"].pop("HTTPValidationError", None)
    components["schemas"].pop("ValidationError", None)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            _complete_operation(method, path, operation)
    return schema


def _complete_operation(method: str, path: str, operation: dict[str, Any]) -> None:
    key = (method, path)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's validation answer; this server answers 400
    statuses = ["400", *ERRORS.get(key, ())]
    if key in SECURED:
        operation["security"] = [{"bearer": []}]
        statuses += ["401", "403"]
    for status in statuses:
        responses[status] = _error_answer(status)
    for status in OAUTH_ERRORS.get(key, ()):
        responses[status] = {
            "description": "Refused (RFC 6749 §5.2: error, error_description)",
            "content": {"application/json": {"schema": OAUTH_ERROR_SCHEMA}},
        }
    if key in OAUTH_ANSWERS:
        responses["200"] = {
            "description": "Done",
            "content": {"application/json": {"schema": OAUTH_ANSWERS[key]}},
        }
    for status, media_type in RAW_ANSWERS.get(key, {}).items():
        responses[status] = {
            "description": "Blob bytes" if status == "200" else "Partial content",
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    if key in JSON_BODIES:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": JSON_BODIES[key]}},
        }
    if key in FORM_BODIES:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": FORM_BODIES[key]}},
        }
    if key in RAW_BODIES:
        operation["requestBody"] = {
            "required": True,
            "content": {RAW_BODIES[key]: {"schema": {"type": "string", "format": "binary"}}},
        }
    for parameter in operation.get("parameters", []):
        _constrain(parameter, path)


def _error_answer(status: str) -> dict[str, Any]:
    if status == "304":
        return {"description": _DESCRIPTIONS[status]}
    return {
        "description": _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _constrain(parameter: dict[str, Any], path: str) -> None:
    name = parameter.get("name", "")
    rule = _STATUS_FILTER if name == "status" and path == "/api/v1/takedowns" else PARAMETERS.get(name)
    if name == "request_id" and parameter.get("in") != "path":
        rule = None
    schema = parameter.get("schema", {})
    if rule is not None:
        parameter["schema"] = dict(rule)
    elif "enum" in schema or "pattern" in schema:
        return
    elif schema.get("type") == "string" or {"type": "string"} in schema.get("anyOf", []):
        parameter["schema"] = {"type": "string", "pattern": _NO_NUL}
