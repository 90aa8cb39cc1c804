"""The lorareg manifest v1: frozen dataclasses, strict parsing from TOML / JSON / dicts, canonical JSON.

A manifest states an adapter's identity (name, version), the file it describes (size, digests and the facts
the tensors show) and its provenance (base model, dataset, consent, licence, creators, lineage). It is signed
as canonical JSON inside the signature file, so parsing is strict (unknown keys, wrong types, bad names,
bad versions, over-long values and control characters are refused with the field's path) and every
manifest has exactly one JSON form. Field reference and canonical form: ``docs/manifest.md``.

Deliberately not here: reading files or computing facts (``lorareg.adapter.facts``,
``lorareg.adapter.hashing``), filling a
draft with them (:mod:`lorareg.manifest.drafting`), signatures, and policy (``lorareg.signing.policy``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lorareg.adapter.facts.model import FAMILIES, FORMATS, TYPES
from lorareg.errors import InputError, PayloadTooLargeError
from lorareg.manifest.canonical import canonical_json, strict_json_loads
from lorareg.manifest.fields import (
    boolean,
    build,
    choice,
    clean,
    dump,
    format_utc,
    hex_digest,
    integer,
    number,
    pattern,
    spec,
    text,
    url,
    utc_datetime,
)
from lorareg.manifest.ids import SemVer, check_name

MANIFEST_ROOT = "manifest"  # first element of every field path in error messages
MAX_MANIFEST_BYTES = 4 * 2**20  # TOML or JSON text of one manifest
MAX_MANIFEST_DEPTH = 8  # JSON nesting; the schema itself is 3 deep
MAX_FILE_BYTES = 2**53 - 1  # the largest integer every JSON reader keeps exact
MAX_RANK = 65536
MAX_ALPHA = 1e6
MAX_IMAGES = 10**9
MAX_LINE_CHARS = 200  # a single-line free-text field (labels, ids, contacts)
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 8000
MAX_TRIGGER_WORDS = 32
MAX_TRIGGER_WORD_CHARS = 100
MAX_TAGS = 32
MAX_TAG_CHARS = 40
MAX_TARGETS = 4096
MAX_TARGET_CHARS = 512
MAX_CREATORS = 32
MAX_DERIVED_FROM = 32
MAX_LICENSE_ID_CHARS = 64

# "unknown": what an import is, when nothing it came with says (lorareg import never guesses a subject)
CONSENT_SUBJECTS: tuple[str, ...] = ("style", "likeness", "character", "product", "concept", "unknown")
CONSENT_STATUSES: tuple[str, ...] = ("obtained", "not-required", "public-domain", "unknown")
ORIGIN_SOURCES: tuple[str, ...] = ("civitai", "huggingface", "local")
UNKNOWN_LICENSE = "unknown"  # licence id of an import whose licence nothing stated (never guessed)

_SHA256 = hex_digest(64)
_TAG = pattern(r"[a-z0-9]+(?:-[a-z0-9]+)*", max_chars=MAX_TAG_CHARS,
               expected="a lower-case tag of a-z, 0-9 and single hyphens")  # fmt: skip
check_license_id = pattern(
    r"[A-Za-z0-9][A-Za-z0-9.+-]*",
    max_chars=MAX_LICENSE_ID_CHARS,
    expected="an SPDX licence id or a known licence name such as CreativeML-OpenRAIL-M",
)


def _name(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"{path}: expected text, got a {type(value).__name__}")
    return check_name(value, path)


def _version(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise InputError(f'{path}: expected a semantic version as text such as "1.2.0", got {value!r:.40}')
    return str(SemVer.parse(value, path))


@dataclass(frozen=True, kw_only=True)
class Digests:
    """Lower-case hex digests: ``sha256`` of the file, ``autov3`` of its tensor data, optional others."""

    sha256: str = field(metadata=spec(_SHA256))
    autov3: str = field(metadata=spec(_SHA256))
    blake3: str | None = field(default=None, metadata=spec(_SHA256))
    autov1: str | None = field(default=None, metadata=spec(hex_digest(8)))
    autov2: str | None = field(default=None, metadata=spec(hex_digest(10)))
    crc32: str | None = field(default=None, metadata=spec(hex_digest(8)))


@dataclass(frozen=True, kw_only=True)
class BaseModel:
    """The base model: ``family`` (computed from the file) and the author's ``id`` of the exact checkpoint."""

    family: str = field(metadata=spec(choice(FAMILIES), filled=True))
    id: str | None = field(default=None, metadata=spec(text(max_chars=MAX_LINE_CHARS)))


@dataclass(frozen=True, kw_only=True)
class AdapterInfo:
    """What the tensors show: key format, adapter type, most common rank and alpha, target modules."""

    format: str = field(metadata=spec(choice(FORMATS), filled=True))
    type: str = field(metadata=spec(choice(TYPES), filled=True))
    rank: int | None = field(default=None, metadata=spec(integer(low=1, high=MAX_RANK), filled=True))
    alpha: float | None = field(default=None, metadata=spec(number(low=0.0, high=MAX_ALPHA), filled=True))
    targets: tuple[str, ...] = field(
        default=(),
        metadata=spec(
            items=spec(text(max_chars=MAX_TARGET_CHARS)), max_items=MAX_TARGETS, ascending=True, filled=True
        ),
    )


@dataclass(frozen=True, kw_only=True)
class Dataset:
    """The training set: its ``lorareg dataset-hash`` digest, image count, and where it came from."""

    sha256: str = field(metadata=spec(_SHA256))
    images: int | None = field(default=None, metadata=spec(integer(low=0, high=MAX_IMAGES)))
    source: str | None = field(default=None, metadata=spec(text(max_chars=MAX_LINE_CHARS)))


@dataclass(frozen=True, kw_only=True)
class Consent:
    """What the adapter depicts and whether consent covers it (evidence kept off-registry, by digest)."""

    subject: str = field(metadata=spec(choice(CONSENT_SUBJECTS)))
    status: str = field(metadata=spec(choice(CONSENT_STATUSES)))
    evidence_sha256: str | None = field(default=None, metadata=spec(_SHA256))


@dataclass(frozen=True, kw_only=True)
class License:
    """Licence id and the three permissions a studio's policy asks about."""

    id: str = field(metadata=spec(check_license_id))
    url: str | None = field(default=None, metadata=spec(url(max_chars=MAX_URL_CHARS)))
    commercial_use: bool = field(metadata=spec(boolean))
    derivatives: bool = field(metadata=spec(boolean))
    attribution_required: bool = field(metadata=spec(boolean))


@dataclass(frozen=True, kw_only=True)
class Creator:
    """A person or organisation credited for the adapter."""

    name: str = field(metadata=spec(text(max_chars=MAX_LINE_CHARS)))
    role: str | None = field(default=None, metadata=spec(text(max_chars=MAX_LINE_CHARS)))
    contact: str | None = field(default=None, metadata=spec(text(max_chars=MAX_LINE_CHARS)))


@dataclass(frozen=True, kw_only=True)
class Derivation:
    """An adapter this one was derived from (merged, fine-tuned, extracted).

    Without ``registry`` the parent is in the registry the version is published to, which checks that
    it has ``name@version`` (and its ``sha256``); ``registry`` (a URL, or a name such as ``civitai``) marks
    a parent published elsewhere, shown as external lineage rather than a link.
    """

    name: str = field(metadata=spec(_name))
    version: str = field(metadata=spec(_version))
    sha256: str | None = field(default=None, metadata=spec(_SHA256))
    registry: str | None = field(default=None, metadata=spec(text(max_chars=MAX_URL_CHARS)))


@dataclass(frozen=True, kw_only=True)
class Origin:
    """Where an imported file came from, so attribution survives ``lorareg import``.

    Claims of the sidecar that named them (a Civitai id, a URL, a creator's handle), kept with the
    SHA-256 of that sidecar file so a reviewer can ask for it and check it; never facts about the tensors.
    """

    source: str = field(metadata=spec(choice(ORIGIN_SOURCES)))
    model_id: str | None = field(default=None, metadata=spec(text(max_chars=MAX_LINE_CHARS)))
    version_id: str | None = field(default=None, metadata=spec(text(max_chars=MAX_LINE_CHARS)))
    url: str | None = field(default=None, metadata=spec(url(max_chars=MAX_URL_CHARS)))
    creator: str | None = field(default=None, metadata=spec(text(max_chars=MAX_LINE_CHARS)))
    sidecar_sha256: str | None = field(default=None, metadata=spec(_SHA256))


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A complete, validated manifest v1. Build it with :meth:`from_toml`, :meth:`from_json` or
    :meth:`from_json_bytes` (or :func:`lorareg.manifest.complete_manifest` from a draft), never by hand."""

    name: str = field(metadata=spec(_name))
    version: str = field(metadata=spec(_version))
    size: int = field(metadata=spec(integer(low=0, high=MAX_FILE_BYTES), filled=True))
    digests: Digests = field(metadata=spec(table=Digests, filled=True))
    base_model: BaseModel = field(metadata=spec(table=BaseModel, filled=True))
    adapter: AdapterInfo = field(metadata=spec(table=AdapterInfo, filled=True))
    license: License = field(metadata=spec(table=License))
    consent: Consent = field(metadata=spec(table=Consent))
    created: datetime = field(metadata=spec(utc_datetime, dump=format_utc, filled=True))
    trigger_words: tuple[str, ...] = field(
        default=(),
        metadata=spec(
            items=spec(text(max_chars=MAX_TRIGGER_WORD_CHARS)), max_items=MAX_TRIGGER_WORDS, unique=True
        ),
    )
    tags: tuple[str, ...] = field(
        default=(), metadata=spec(items=spec(_TAG), max_items=MAX_TAGS, unique=True)
    )
    dataset: Dataset | None = field(default=None, metadata=spec(table=Dataset))
    creators: tuple[Creator, ...] = field(
        default=(), metadata=spec(items=spec(table=Creator), max_items=MAX_CREATORS)
    )
    derived_from: tuple[Derivation, ...] = field(
        default=(), metadata=spec(items=spec(table=Derivation), max_items=MAX_DERIVED_FROM)
    )
    description: str | None = field(
        default=None, metadata=spec(text(max_chars=MAX_DESCRIPTION_CHARS, multiline=True))
    )
    origin: Origin | None = field(default=None, metadata=spec(table=Origin))

    @classmethod
    def from_json(cls, obj: Any) -> Manifest:
        """Validate a dict (parsed TOML or JSON) strictly and build the manifest.

        Raises:
            InputError: the first problem, with its field path (``manifest.license.id: ...``).
        """
        return build(cls, clean(cls, obj, MANIFEST_ROOT))

    @classmethod
    def from_toml(cls, source: str | bytes) -> Manifest:
        """Parse a complete manifest written as TOML (see ``docs/manifest.md``)."""
        return cls.from_json(parse_toml(source))

    @classmethod
    def from_json_bytes(cls, data: bytes) -> Manifest:
        """Parse JSON strictly: duplicate keys, NaN, deep nesting and unknown fields are refused."""
        return cls.from_json(
            strict_json_loads(data, max_bytes=MAX_MANIFEST_BYTES, max_depth=MAX_MANIFEST_DEPTH)
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: absent optional values omitted, lists always present, ``created`` as text."""
        return dump(self)

    def to_canonical_json(self) -> bytes:
        """The one byte form of this manifest, as signed (``docs/manifest.md``, "Canonical JSON")."""
        return canonical_json(self.to_json())

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def namespace(self) -> str:
        """The part of ``name`` before the slash: the publisher's namespace."""
        return self.name.split("/", 1)[0]

    def version_key(self) -> tuple[Any, ...]:
        """Sort key by semver precedence (``max(manifests, key=Manifest.version_key)``)."""
        return SemVer.parse(self.version).key()

    def review_reasons(self) -> list[str]:
        """Why this imported manifest is ``unreviewed`` (empty: it is not); see :func:`review_reasons`."""
        return review_reasons(self.to_json())


def review_reasons(manifest: Mapping[str, Any]) -> list[str]:
    """Why a manifest (as JSON) is an ``unreviewed`` import; empty when it is not.

    An import (a manifest with ``origin``) whose licence or consent nothing stated stays unreviewed until
    its owner or a reviewer publishes a version that states them; hand-written manifests are never
    unreviewed, whatever they say. The registry stores this per version (catalogue filter) and the default
    policy refuses such versions (``allow_unreviewed``).
    """
    if not manifest.get("origin"):
        return []
    licence, consent = manifest.get("license") or {}, manifest.get("consent") or {}
    reasons = []
    if licence.get("id") == UNKNOWN_LICENSE:
        reasons.append("its licence is unknown")
    if consent.get("subject") == "unknown":
        reasons.append("what it depicts (consent.subject) is unknown")
    if consent.get("status") == "unknown":
        reasons.append("its consent status is unknown")
    return reasons


def parse_toml(source: str | bytes) -> dict[str, Any]:
    """Parse manifest TOML text (strict UTF-8, size-capped) into a dict; no schema check.

    Raises:
        PayloadTooLargeError: over :data:`MAX_MANIFEST_BYTES`.
        InputError: not UTF-8, or not valid TOML (with line and column).
    """
    size = len(source) if isinstance(source, bytes) else len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_MANIFEST_BYTES:
        raise PayloadTooLargeError(f"manifest is {size} bytes; the limit is {MAX_MANIFEST_BYTES} bytes")
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"manifest is not valid UTF-8 (byte {e.start}); expected UTF-8 TOML") from e
    try:
        return tomllib.loads(source)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"manifest is not valid TOML: {e}") from e
